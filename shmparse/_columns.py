"""numpy dtype (+ usecols) -> the column plan the engine understands (which converter, which slot).

A plan is one entry per column of the file that lands in the result: which
converter runs, the byte offset of its slot inside a record, and its width.
Structured dtypes are flattened the way numpy's reader flattens them (nested
structs and subarray fields become consecutive columns).
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence as SequenceABC
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import _core

# numpy's message for subarray dtypes lost a space ("You canput") until numpy 2.5 put it back
_CAN_PUT = " " if np.lib.NumpyVersion(np.__version__) >= "2.5.0.dev0" else ""


class Unsupported(Exception):
    """The compiled engine does not handle this; the message names the feature."""


@dataclass(frozen=True)
class Column:
    descr: np.dtype
    kind: int
    size: int
    swap: int
    offset: int
    width: int
    imin: int
    imax: int
    umax: int

    def spec(self, offset: Optional[int] = None) -> Tuple[int, ...]:
        return (self.kind, self.size, self.swap,
                self.offset if offset is None else offset,
                self.width, self.imin, self.imax, self.umax)


class RepeatedSpec(SequenceABC):
    """The specs of a plain dtype's ``count`` columns: one spec, its slot ``stride`` bytes
    further for each next column.  The engine gets the one spec and the stride, so a row of
    millions of columns costs no memory per column (a list of tuples cost ~250 bytes each)."""

    def __init__(self, spec: Tuple[int, ...], count: int, stride: int) -> None:
        self.spec = tuple(spec)
        self.count = count
        self.stride = stride

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):   # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.count))]
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError(i)
        s = self.spec
        return s[:3] + (s[3] + i * self.stride,) + s[4:]


@dataclass(frozen=True)
class Plan:
    dtype: np.dtype
    homogeneous: bool          # not structured: columns discovered from the data
    columns: Tuple[Column, ...]  # structured: one per field; homogeneous: the one template
    has_gaps: bool             # record bytes that no column writes (padding)

    def specs(self, ncols: int) -> Sequence[Tuple[int, ...]]:
        """Column specs for the engine, for a result with ``ncols`` columns."""
        if self.homogeneous:
            return RepeatedSpec(self.columns[0].spec(0), ncols, self.dtype.itemsize)
        return [c.spec() for c in self.columns]

    def row_size(self, ncols: int) -> int:
        return self.dtype.itemsize * (ncols if self.homogeneous else 1)


def _column(d: np.dtype, offset: int) -> Column:
    swap = int(not d.isnative)
    k = d.kind
    if k == "b":
        # numpy reads bools as int64 and stores value != 0
        return Column(d, _core.KIND_BOOL, 1, 0, offset, 0, -(2**63), 2**63 - 1, 0)
    if k == "i":
        info = np.iinfo(d)
        return Column(d, _core.KIND_INT, d.itemsize, swap, offset, 0, int(info.min), int(info.max), 0)
    if k == "u":
        info = np.iinfo(d)
        return Column(d, _core.KIND_UINT, d.itemsize, swap, offset, 0, 0, 0, int(info.max))
    if k == "f" and d.itemsize in (2, 4, 8):
        kind = {2: _core.KIND_F16, 4: _core.KIND_F32, 8: _core.KIND_F64}[d.itemsize]
        return Column(d, kind, d.itemsize, swap, offset, 0, 0, 0, 0)
    if k == "S" and d.itemsize > 0:
        return Column(d, _core.KIND_BYTES, 1, 0, offset, d.itemsize, 0, 0, 0)
    if k == "U" and d.itemsize > 0:
        return Column(d, _core.KIND_UCS4, 4, swap, offset, d.itemsize // 4, 0, 0, 0)
    if k in "SU":
        raise Unsupported(f"dtype {d.str!r} without a length (string length discovery)")
    raise Unsupported(f"dtype {str(d)!r}")


def _flatten(d: np.dtype, offset: int, out: List[Column]) -> None:
    if d.subdtype is not None:
        base, shape = d.subdtype
        for _ in range(int(np.prod(shape, dtype=np.int64))):
            _flatten(base, offset, out)
            offset += base.itemsize
    elif d.names is not None:
        for name in d.names:
            fd, foff = d.fields[name][:2]
            _flatten(fd, offset + foff, out)
    else:
        out.append(_column(d, offset))


def make_plan(dtype: np.dtype) -> Plan:
    """Raises TypeError exactly where numpy does, Unsupported for the fallback."""
    if dtype.subdtype is not None:
        raise TypeError(
            "file reader does not support subarray dtypes.  You can" + _CAN_PUT +
            "put the dtype into a structured one using "
            "`np.dtype(('name', dtype))` to avoid this limitation.")
    if dtype.names is None:
        return Plan(dtype, True, (_column(dtype, 0),), False)
    cols: List[Column] = []
    _flatten(dtype, 0, cols)
    covered = np.zeros(dtype.itemsize, dtype=bool)
    for c in cols:
        covered[c.offset:c.offset + c.descr.itemsize] = True
    return Plan(dtype, False, tuple(cols), not bool(covered.all()))
