"""A multi-threaded parser of whitespace-separated numeric text, exact to the last bit.

Each line is parsed on its own, in parallel. A number whose decimal mantissa fits in 53 bits and
whose power of ten is at most 22 in size is converted with one correctly rounded multiplication or
division (Clinger's fast path), which is the same double Python's ``float`` gives; any other
token (long mantissas, large exponents, ``nan``) is left to ``float`` itself.
"""

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
