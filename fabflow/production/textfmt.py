"""Numbers to text, vectorised: the core of the OBJ, ASCII STL and 3MF writers.

``np.savetxt`` and ``%``-formatting go through Python once per number, which makes text meshes
the slow part of a production run. Here every digit of every number is computed with array
arithmetic into one byte matrix (one row per output line), and a keep-mask drops the leading
zeros, the trailing zeros and the unneeded sign or decimal point. ``matrix[mask]`` is the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

_ZERO = ord("0")


def format_rows(values: NDArray[Any], pieces: list[bytes], decimals: int) -> bytes:
    """Text of one line per row of ``values`` (n, k), numbers interleaved with k+1 ``pieces``.

    ``pieces[0]`` comes before the first number, ``pieces[i]`` between numbers i-1 and i, and
    ``pieces[k]`` after the last. Numbers have at most ``decimals`` decimals, no trailing zeros
    (``1.5``, ``-0.25``, ``3``), so the text reads the same as ``%g`` would print it.
    """
    rows, k = values.shape
    if len(pieces) != k + 1:
        raise ValueError(f"{k} columns need {k + 1} pieces, not {len(pieces)}")
    if rows == 0:
        return b""
    fields = [_Field(values[:, column], decimals) for column in range(k)]
    total = sum(len(p) for p in pieces) + sum(f.width for f in fields)
    # One matrix for the whole text, written in place: no per-column temporaries to join.
    chars = np.empty((rows, total), dtype=np.uint8)
    keep = np.empty((rows, total), dtype=bool)
    at = 0
    for column, piece in enumerate(pieces):
        chars[:, at : at + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        keep[:, at : at + len(piece)] = True
        at += len(piece)
        if column < k:
            fields[column].write(chars[:, at : at + fields[column].width], keep[:, at:])
            at += fields[column].width
    return chars[keep].tobytes()


class _Field:
    """One column of numbers as fixed-width characters: sign, digits, point, decimals."""

    def __init__(self, column: NDArray[Any], decimals: int) -> None:
        self.column = column
        self.decimals = decimals
        scale = 10**decimals
        if np.issubdtype(column.dtype, np.integer):
            self.magnitude = np.abs(column.astype(np.int64)) * scale
        else:
            self.magnitude = np.rint(np.abs(column.astype(np.float64)) * scale).astype(np.int64)
        self.whole, self.fraction = np.divmod(self.magnitude, scale)
        self.digits = max(1, len(str(int(self.whole.max()))))
        self.width = 1 + self.digits + (1 + decimals if decimals else 0)

    def write(self, chars: NDArray[np.uint8], keep: NDArray[np.bool_]) -> None:
        """Fill ``chars`` (rows, width) and the first ``width`` columns of ``keep``."""
        n = self.digits
        chars[:, 0] = ord("-")
        keep[:, 0] = (self.column < 0) & (self.magnitude > 0)  # never print "-0"
        _digits(self.whole, chars[:, 1 : 1 + n])
        places = 10 ** np.arange(n - 1, -1, -1, dtype=np.int64)
        keep[:, 1 : 1 + n] = self.whole[:, None] >= places[None, :]
        keep[:, n] = True  # the ones digit, even for 0
        if self.decimals:
            d = self.decimals
            chars[:, 1 + n] = ord(".")
            keep[:, 1 + n] = self.fraction > 0
            _digits(self.fraction, chars[:, 2 + n : 2 + n + d])
            rest = 10 ** np.arange(d, 0, -1, dtype=np.int64)  # value of digit j and those after
            keep[:, 2 + n : 2 + n + d] = (self.fraction[:, None] % rest[None, :]) != 0


# Every number 0..9999 as four ASCII digits: one table lookup writes four digits at once.
_FOUR_DIGITS = np.frombuffer(
    "".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint8
).reshape(10_000, 4)


def _digits(numbers: NDArray[np.int64], out: NDArray[np.uint8]) -> None:
    """Write the decimal digits of ``numbers`` into ``out`` (n, width), most significant first."""
    remaining = numbers
    end = out.shape[1]
    while end > 0:
        remaining, chunk = np.divmod(remaining, 10_000)
        take = min(4, end)
        out[:, end - take : end] = _FOUR_DIGITS[chunk, 4 - take :]
        end -= take
