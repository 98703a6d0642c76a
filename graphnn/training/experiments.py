"""What every experiment shares: a log of runs saved after each run (so a killed experiment
resumes where it stopped), the selection of runs, and the statistics of tables and figures:
sample standard deviations, 95% t-intervals, paired differences across seeds, and the flag of a
run that had not converged."""

import json
from pathlib import Path

import numpy as np

from ..errors import GraphnnError
from ..io import atomic_write

__all__ = ["RunLog", "select", "sample_stats", "describe", "paired_difference", "still_rising",
           "accuracy_curve", "accuracy_band", "flag", "unconverged_note", "mean_curve"]  # fmt: skip


class RunLog:
    """The runs of an experiment in ``folder/results.json`` (``{"settings", "runs"}``),
    rewritten atomically after every :meth:`add`. With ``resume``, the runs already there are
    kept if they were made with the same ``settings`` (else a one-line error naming the
    settings that differ); ``resumed`` says which, for what an experiment keeps beside the log
    (a checkpoint is reused only when the log is)."""

    def __init__(self, folder, settings, resume=False):
        self.path = Path(folder) / "results.json"
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file
        self.resumed = bool(resume and self.path.exists())  # runs (and settings) to continue
        self.runs = self._saved() if resume else []

    def _saved(self):
        if not self.path.exists():
            return []
        try:
            saved = json.loads(self.path.read_text())
            runs, before = saved["runs"], saved["settings"]
        except (ValueError, KeyError, TypeError) as e:
            raise GraphnnError(
                f"resume: {self.path} is not an experiment's results ({e})"
            ) from None
        if before != self.settings:
            keys = set(self.settings) | set(before)
            changed = sorted(k for k in keys if before.get(k) != self.settings.get(k))
            raise GraphnnError(
                f"resume: {self.path} was made with other settings ({', '.join(changed)}); "
                "use another folder, or the same settings"
            )
        return runs

    def done(self, **key):
        """Whether a run with these fields is logged."""
        return any(all(r.get(k) == v for k, v in key.items()) for r in self.runs)

    def add(self, run):
        self.runs.append(run)
        self.save()

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "w") as f:
            json.dump({"settings": self.settings, "runs": self.runs}, f, indent=1)


def select(runs, **key):
    """The runs whose fields equal ``key``."""
    return [r for r in runs if all(r.get(k) == v for k, v in key.items())]


def sample_stats(values):
    """``(n, mean, sd, half)`` of ``values``: the sample standard deviation (ddof=1) and the
    half-width of the 95% Student-t confidence interval of the mean (both nan for one value:
    one run says nothing about the spread)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    n = values.size
    if n < 2:
        return n, float(values.mean()) if n else float("nan"), float("nan"), float("nan")
    sd = float(values.std(ddof=1))
    return n, float(values.mean()), sd, float(t.ppf(0.975, n - 1) * sd / np.sqrt(n))


def accuracy_band(mean, half):
    """``(low, high)``: the interval ``mean +- half`` of accuracies, clipped to [0, 1] where
    they lie (for drawing; the tables give the interval itself)."""
    mean, half = np.asarray(mean, float), np.nan_to_num(np.asarray(half, float))
    return np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1)


def describe(values, signed=False):
    """A table cell: ``mean +- sd [low, high]`` (sample sd, 95% t-interval of the mean), the
    mean alone for one value."""
    n, mean, sd, half = sample_stats(values)
    mean = round(mean, 12) + 0.0  # a difference of exactly nothing reads +0.0000, not -0.0000
    f = "+.4f" if signed else ".4f"
    if n < 2:
        return format(mean, f)
    return f"{mean:{f}} +- {sd:.4f} [{mean - half:{f}}, {mean + half:{f}}]"


def paired_difference(runs, baseline, key="test_accuracy"):
    """The per-seed differences ``run - baseline`` of ``key`` over the seeds both lists hold
    (a paired comparison: each seed's run against the baseline of the same seed)."""
    base = {r["seed"]: r[key] for r in baseline if r.get(key) is not None}
    return np.array([r[key] - base[r["seed"]] for r in runs
                     if r["seed"] in base and r.get(key) is not None])  # fmt: skip


# A run is flagged unconverged when the best accuracy of its last fifth of epochs beats every
# earlier epoch's by more than this: one point, two validation rows of digits (one row is
# noise: digits runs at 10-20 epochs were flagged, converged ones at 60-100 mostly not)
RISE = 0.01


def still_rising(curve, margin=RISE):
    """Whether the accuracy ``curve`` (per epoch) still rose over its last fifth of epochs:
    the best of that tail beats the best before it by more than ``margin``."""
    curve = [c for c in curve if c is not None]
    tail = max(1, len(curve) // 5)
    if len(curve) <= tail:
        return False
    return max(curve[-tail:]) > max(curve[:-tail]) + margin


def accuracy_curve(epochs):
    """The accuracy per epoch that convergence is judged on: validation, else test, else
    training accuracy (the first the records hold)."""
    for key in ("val_accuracy", "test_accuracy", "train_accuracy"):
        if epochs and epochs[0].get(key) is not None:
            return [e.get(key) for e in epochs]
    return []


def flag(runs, curve=lambda run: accuracy_curve(run["epochs"])):
    """``" \u2020"`` when any of ``runs`` had not converged (its ``curve`` still rising)."""
    return " \u2020" if any(still_rising(curve(r)) for r in runs) else ""


def unconverged_note(table):
    """The footnote a table with flagged cells ends with (empty when none is flagged)."""
    if "\u2020" not in table:
        return ""
    return (
        "\n\u2020 accuracy still rose over the last fifth of the epochs in at least one run "
        f"(by more than {RISE:g}): more epochs, or --early-stopping, would change this number\n"
    )


def mean_curve(runs, key):
    """Epochs, and across runs per epoch the mean of ``key`` and the half-width of its 95%
    t-interval (zero for one run)."""
    curves = np.array([[e[key] for e in r["epochs"]] for r in runs], dtype=float)
    stats = [sample_stats(column) for column in curves.T]
    half = np.nan_to_num([h for *_, h in stats])
    return np.arange(1, curves.shape[1] + 1), curves.mean(axis=0), half
