"""Host-side selection shared by every backend's structural operations: a top-k with a fixed
tie rule, so that every backend picks the same entries from the same scores."""

import numpy as np

GROWTH_BLOCK = 1 << 22  # entries of the dense gradient formed at once during growth


def best(scores, tiebreak, k):
    """Positions of the ``k`` largest ``scores``, ties to the smallest ``tiebreak``; O(n)."""
    if k >= scores.size:
        return np.arange(scores.size)
    if k <= 0:
        return np.empty(0, np.int64)
    threshold = scores[np.argpartition(scores, scores.size - k)[scores.size - k]]
    above = np.flatnonzero(scores > threshold)
    tied = np.flatnonzero(scores == threshold)
    tied = tied[np.argsort(tiebreak[tied], kind="stable")[: k - above.size]]
    return np.concatenate([above, tied])


class RunningTopK:
    """The ``k`` largest scores seen so far with their flat keys (ties to the smaller key,
    which arrive in increasing order): candidates not above the current floor are ignored."""

    def __init__(self, k, floor=-1.0, dtype=np.float64):
        self.k, self.floor = k, floor
        self.scores, self.keys = np.empty(0, dtype), np.empty(0, np.int64)

    def push(self, scores, keys=None, offset=0):
        """Offer ``scores`` with their ``keys`` (default: ``offset`` + their positions)."""
        cand = np.flatnonzero(scores > self.floor)  # later keys lose ties: not the floor
        new_keys = cand + offset if keys is None else keys[cand]
        s = np.concatenate([self.scores, scores[cand]])
        keys = np.concatenate([self.keys, new_keys])
        pick = best(s, keys, self.k)
        self.scores, self.keys = s[pick], keys[pick]
        if self.scores.size == self.k and self.k:
            self.floor = self.scores.min()


def sample_absent(n_in, n_out, existing, k, rng):
    """``k`` distinct flat keys not in the sorted array ``existing``, uniformly at random,
    sorted."""
    total = n_in * n_out
    k = min(k, total - existing.size)
    if k <= 0:
        return np.empty(0, np.int64)
    if 2 * k > total - existing.size:  # few absent places left: list them
        absent = np.setdiff1d(np.arange(total, dtype=np.int64), existing, assume_unique=True)
        return np.sort(rng.choice(absent, size=k, replace=False))
    found = np.empty(0, np.int64)
    while found.size < k:
        cand = rng.integers(total, size=2 * (k - found.size) + 16, dtype=np.int64)
        pos = np.searchsorted(existing, cand).clip(max=max(existing.size - 1, 0))
        cand = cand[existing[pos] != cand] if existing.size else cand
        merged = np.concatenate([found, cand])
        _, first = np.unique(merged, return_index=True)
        found = merged[np.sort(first)][:k]
    return np.sort(found)
