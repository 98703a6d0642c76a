"""A multi-threaded parser of whitespace-separated numeric text, exact to the last bit, and
the compiled writer of integer triples (the challenge's images).

Each line is parsed on its own, in parallel. A number whose decimal mantissa fits in 53 bits and
whose power of ten is at most 22 in size is converted with one correctly rounded multiplication or
division (Clinger's fast path), which is the same double Python's ``float`` gives; any other
token (long mantissas, large exponents, ``nan``) is left to ``float`` itself.
"""

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

OK, BAD_COUNT, SLOW = 0, 1, 2
_POW10 = np.array([10.0**k for k in range(23)])


@nb.njit(cache=True, inline="always")
def _is_space(c):
    return c == 32 or c == 9 or c == 13


@nb.njit(parallel=True, cache=True)
def _parse_lines(buf, starts, ends, ncols, out, status):
    for r in nb.prange(starts.shape[0]):
        i, end = starts[r], ends[r]
        col = 0
        st = OK
        while True:
            while i < end and _is_space(buf[i]):
                i += 1
            if i >= end:
                break
            if col == ncols:
                st = BAD_COUNT
                break
            neg = False
            if buf[i] == 45 or buf[i] == 43:  # '-' or '+'
                neg = buf[i] == 45
                i += 1
            mant, digits, exp10, seen = 0, 0, 0, False
            while i < end and 48 <= buf[i] <= 57:
                seen = True
                if digits < 18:
                    mant = mant * 10 + (buf[i] - 48)
                    if mant:
                        digits += 1
                else:
                    exp10 += 1
                    st = SLOW
                i += 1
            if i < end and buf[i] == 46:  # '.'
                i += 1
                while i < end and 48 <= buf[i] <= 57:
                    seen = True
                    if digits < 18:
                        mant = mant * 10 + (buf[i] - 48)
                        if mant:
                            digits += 1
                        exp10 -= 1
                    elif buf[i] != 48:
                        st = SLOW
                    i += 1
            if i < end and (buf[i] == 101 or buf[i] == 69):  # 'e' or 'E'
                i += 1
                eneg = False
                if i < end and (buf[i] == 45 or buf[i] == 43):
                    eneg = buf[i] == 45
                    i += 1
                e, edigits = 0, 0
                while i < end and 48 <= buf[i] <= 57:
                    if e < 100000:
                        e = e * 10 + (buf[i] - 48)
                    edigits += 1
                    i += 1
                if edigits == 0:
                    seen = False
                exp10 += -e if eneg else e
            if not seen or (i < end and not _is_space(buf[i])):
                st = SLOW  # not a plain decimal: let float() decide
                while i < end and not _is_space(buf[i]):
                    i += 1
                col += 1
                continue
            if mant > 9007199254740992 or exp10 > 22 or exp10 < -22:
                st = SLOW
            value = float(mant)
            if exp10 > 0:
                value *= _POW10[exp10]
            elif exp10 < 0:
                value /= _POW10[-exp10]
            out[r, col] = -value if neg else value
            col += 1
        if st == OK and col != ncols:
            st = BAD_COUNT
        status[r] = st


def parse_numeric(raw, ncols):
    """``(table, status)``: an (n_lines, ncols) float64 table of ``raw`` (bytes) and a per-line
    status: 0 parsed, 1 wrong number of fields, 2 needs Python's ``float``."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = np.append(newlines, buf.size) if (buf.size and buf[-1] != 10) else newlines
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    out = np.zeros((ends.size, ncols))
    status = np.zeros(ends.size, np.uint8)
    if ends.size:
        _parse_lines(buf, starts, ends.astype(np.int64), ncols, out, status)
    return out, status, starts, ends


@nb.njit(cache=True, inline="always")
def _put_int(out, pos, value):
    """Decimal digits of ``value`` at ``out[pos:]``; returns the position after them."""
    if value < 0:
        out[pos] = 45  # '-'
        pos += 1
        value = -value
    digits = 1
    scale = 10
    while scale <= value:
        digits += 1
        scale *= 10
    for k in range(digits - 1, -1, -1):
        out[pos + k] = 48 + value % 10
        value //= 10
    return pos + digits


@nb.njit(cache=True)
def _int_triples(a, b, c, out):
    pos = 0
    for i in range(a.size):
        pos = _put_int(out, pos, a[i])
        out[pos] = 9
        pos = _put_int(out, pos + 1, b[i])
        out[pos] = 9
        pos = _put_int(out, pos + 1, c[i])
        out[pos] = 10
        pos += 1
    return pos


def int_triples(a, b, c):
    """``a[i]\tb[i]\tc[i]\n`` for integer arrays, as bytes (about 20x Python's formatting)."""
    a, b, c = (np.ascontiguousarray(x, np.int64) for x in (a, b, c))
    out = np.empty(62 * a.size, np.uint8)  # 20 digits and a sign for each, and the separators
    return out[: _int_triples(a, b, c, out)].tobytes()


@nb.njit(nogil=True, cache=True, inline="always")
def _uint(buf, i, end):
    """``(value, next, digits)``: the unsigned decimal at ``buf[i:]`` (digits 0: none; 19 or
    more: too long for the fast path)."""
    value, digits = 0, 0
    while i < end and 48 <= buf[i] <= 57:
        if digits < 18:
            value = value * 10 + (buf[i] - 48)
        digits += 1
        i += 1
    return value, i, digits


@nb.njit(nogil=True, cache=True)
def _triples(buf, rows, cols, vals, slow):
    """Lines ``int int number`` of ``buf`` (whole lines) into ``rows``, ``cols`` and ``vals``
    in one pass. Returns ``(lines, bad, n_slow)``: ``bad`` the index of the first line that is
    not two unsigned integers and a token (-1: none), ``slow`` the lines whose number the fast
    path leaves to Python's ``float`` (``vals`` NaN there)."""
    end = buf.size
    i, n, n_slow = 0, 0, 0
    while i < end:
        while i < end and (buf[i] == 32 or buf[i] == 9):
            i += 1
        a, i, da = _uint(buf, i, end)
        if da == 0 or da > 18 or i >= end or not (buf[i] == 32 or buf[i] == 9):
            return n, n, n_slow
        while i < end and (buf[i] == 32 or buf[i] == 9):
            i += 1
        b, i, db = _uint(buf, i, end)
        if db == 0 or db > 18 or i >= end or not (buf[i] == 32 or buf[i] == 9):
            return n, n, n_slow
        while i < end and (buf[i] == 32 or buf[i] == 9):
            i += 1
        start = i
        neg = False
        if i < end and (buf[i] == 45 or buf[i] == 43):
            neg = buf[i] == 45
            i += 1
        mant, i, dm = _uint(buf, i, end)
        exp10 = 0
        simple = dm > 0 and dm <= 15
        if i < end and buf[i] == 46:  # '.'
            i += 1
            frac, j, df = _uint(buf, i, end)
            i = j
            if df > 0 and dm + df <= 15:
                mant = mant * 10**df + frac
                exp10 = -df
                simple = True
            elif df > 0 or dm == 0:
                simple = False
        while i < end and buf[i] != 10 and buf[i] != 32 and buf[i] != 9 and buf[i] != 13:
            simple = False  # an exponent, nan, inf, or damage: Python decides
            i += 1
        if i == start:
            return n, n, n_slow
        while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
            i += 1
        if i < end and buf[i] != 10:
            return n, n, n_slow  # a fourth field
        i += 1
        rows[n], cols[n] = a, b
        if simple:
            value = float(mant)
            if exp10 < 0:
                value /= _POW10[-exp10]
            vals[n] = -value if neg else value
        else:
            vals[n] = np.nan
            slow[n_slow] = n
            n_slow += 1
        n += 1
    return n, -1, n_slow


def parse_triples(raw, threads=1, scratch=None):
    """``(rows, cols, vals, bad, slow)`` of ``raw`` (bytes or a buffer of whole lines
    ``int int number``, the challenge's images and layers): int64 ``rows`` and ``cols`` as
    written, float64 ``vals`` (exact: a mantissa of at most 15 digits divided once by a power
    of ten), the index of the first malformed line or -1, and the lines whose value needs
    Python's ``float`` (NaN in ``vals`` until then). One compiled pass, split at line ends over
    ``threads`` threads. ``scratch``, a dict kept between calls on blocks of one file, lends
    the output buffers again (fresh pages fault one at a time, which two threads cannot
    share); the results are then copies."""
    buf = np.frombuffer(raw, np.uint8)
    cuts = [0]
    for k in range(1, threads):
        at = _line_end(buf, max(cuts[-1], buf.size * k // threads))
        if at < 0:
            break
        cuts.append(at + 1)
    cuts.append(buf.size)
    parts = [buf[lo:hi] for lo, hi in zip(cuts, cuts[1:]) if hi > lo]
    scratch = {} if scratch is None else scratch
    with ThreadPoolExecutor(max(len(parts), 1)) as pool:
        done = list(pool.map(_parse_part, parts, [scratch] * len(parts), range(len(parts))))
    rows, cols, vals, bad, slow, seen = [], [], [], -1, [], 0
    for r, c, v, b, s in done:
        rows.append(r)
        cols.append(c)
        vals.append(v)
        slow.append(s + seen)
        if b >= 0:
            bad = seen + b
            break
        seen += r.size
    join = lambda parts, dtype: np.concatenate(parts) if parts else np.empty(0, dtype)  # noqa: E731
    return (join(rows, np.int64), join(cols, np.int64), join(vals, np.float64), bad,
            join(slow, np.int64))  # fmt: skip


def _line_end(buf, start):
    """The index of the first newline of ``buf`` (uint8) at or after ``start``, or -1."""
    for at in range(start, buf.size, 1 << 16):
        hits = np.flatnonzero(buf[at : at + (1 << 16)] == 10)
        if hits.size:
            return at + int(hits[0])
    return -1


def _parse_part(buf, scratch, key):
    cap = buf.size // 6 + 1  # the shortest line, "1\t1\t1\n"
    if key not in scratch or scratch[key][0].size < cap:
        scratch[key] = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap),
                        np.empty(cap, np.int64))  # fmt: skip
    rows, cols, vals, slow = scratch[key]
    n, bad, n_slow = _triples(buf, rows, cols, vals, slow)
    return rows[:n], cols[:n], vals[:n], bad, slow[:n_slow]


@nb.njit(nogil=True, cache=True)
def _to_ids(rows, cols, vals, row_max, col_max, r32, c32, v32):
    """One pass: 0-based int32 ids into ``r32``, ``c32`` and float32 values into ``v32``;
    returns ``(first id out of range, first non-finite value, whether every value is exactly
    a float32)`` (-1: none)."""
    bad_id, bad_value, exact = -1, -1, True
    for k in range(rows.size):
        r, c, v = rows[k], cols[k], vals[k]
        if bad_id < 0 and (r < 1 or r > row_max or c < 1 or c > col_max):
            bad_id = k
        if bad_value < 0 and not np.isfinite(v):
            bad_value = k
        r32[k] = r - 1
        c32[k] = c - 1
        s = np.float32(v)
        v32[k] = s
        exact = exact and s == v
    return bad_id, bad_value, exact


def checked_ids(rows, cols, vals, row_max, col_max):
    """``(rows, cols, vals, bad_id, bad_value)``: 0-based int32 ids, the values as float32
    where that is exact (else float64, copied), and the first entry whose id is outside
    1..max or whose value is not finite (-1: none)."""
    r32, c32 = np.empty(rows.size, np.int32), np.empty(rows.size, np.int32)
    v32 = np.empty(rows.size, np.float32)
    bad_id, bad_value, exact = _to_ids(rows, cols, vals, row_max, col_max, r32, c32, v32)
    return r32, c32, (v32 if exact else vals.copy()), bad_id, bad_value
