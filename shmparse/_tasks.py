"""Tasks: what runs on an executor's worker, as plain functions of their arguments.

Each takes a block (or a whole file) and a destination that is a shared-memory segment, and
returns a small picklable value: the engine's result dict, a handle, compressed bytes.  No
task knows which executor runs it (a loader process, a thread of this process), nor what
happens to the rows afterwards (an array, an HDF5 dataset).

* :func:`parse_file` -- one whole file by ``loadtxt`` into a new segment (named by the caller).
* :func:`parse_range` -- one range of a file into its slice of one segment (``loadtxt(workers=)``).
* :func:`parse_block` -- one block of a conversion into a reusable segment (a *slot*).
* :func:`compress_chunks` -- whole chunks of a parsed block, filtered as HDF5's gzip would.

A process keeps the slots it filled mapped from block to block (:func:`release_slots` drops
them): mapping 8 MB again for every block (page-table entries filled, then torn down) cost
about a millisecond of each block's 14.
"""
from __future__ import annotations

import mmap
import os
import zlib
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _core, _segments
from ._blocks import AnyBlock, Block, SlotBlock
from ._job import LOADTXT_DEFAULTS
from ._reader import entry
from ._sources import read_as
from ._segments import HEADER
from .shm import SharedArray, SharedHandle, disown

__all__ = ["parse_file", "parse_range", "parse_block", "compress_chunks", "release_slots",
           "map_range", "block_text"]


def parse_file(path: str, kw: Dict[str, Any], name: str,
               kind: Optional[str] = None) -> SharedHandle:
    """Parse one whole file with ``loadtxt(path, **kw)`` into the new segment ``name``, and
    give it up (the caller adopts it with :func:`shmparse.shm.adopt`).

    ``kind``: a compressed file numpy would not decompress by its name (``"gzip"``,
    ``"bgzf"``, ``"bz2"``, ``"xz"``): read as if it were named so."""
    release_slots()
    kw = dict(LOADTXT_DEFAULTS, **kw)
    if kw["threads"] is None:
        kw["threads"] = 1        # the other workers use the other CPUs
    with read_as(path, kind) if kind is not None else nullcontext():
        sa = entry(path, kw["dtype"], kw["comments"], kw["delimiter"], kw["converters"],
                   kw["skiprows"], kw["usecols"], kw["unpack"], kw["ndmin"], kw["encoding"],
                   kw["max_rows"], kw["quotechar"], kw["like"], kw["strict"], None,
                   kw["threads"], True, name)
    return disown(sa)


def map_range(block: Block) -> Tuple[mmap.mmap, int]:
    """The bytes of ``block`` (its file must still be the file the plan was made for), mapped
    with their page-table entries filled in one call (a task reads them all; faulting them
    in, 16 pages a fault, cost about 1 ms per 8 MB); and where ``block.start`` is in the map."""
    path, start, end, stamp = block
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if (st.st_size, st.st_mtime_ns) != stamp:
            raise RuntimeError(f"{path!r} changed while it was being loaded")
        if end <= start:        # nothing to read (a file all skipped rows): an empty view
            return mmap.mmap(-1, 1), 1
        base = start - start % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(f.fileno(), end - base, flags=mmap.MAP_SHARED | _segments.MAP_POPULATE,
                       prot=mmap.PROT_READ, offset=base)
    return mm, start - base


def parse_range(block: AnyBlock, kw: Dict[str, Any], out: SharedHandle,
                capacity: int) -> Dict[str, Any]:
    """Parse ``block`` into the slice ``out`` of a segment the caller made (room for
    ``capacity`` rows), reserving the slice's pages first."""
    release_slots()
    view, _, done = block_text(block)
    try:
        try:
            seg = _segments.map_segment(out.name, out.offset + out.size, True,
                                        populate_tables=False)
            try:
                # pages for the slice before any byte is written (a reservation)
                if not _segments.populate(seg, out.offset, out.size):
                    _segments.reserve_range(out.name, out.offset, out.size)
                dest = np.frombuffer(seg, np.uint8, count=out.size, offset=out.offset)
                try:
                    res = _core.parse(view, dest=dest, capacity=capacity, threads=1, **kw)
                finally:
                    del dest
            finally:
                seg.close()
        finally:
            view.release()
    finally:
        done()
    return res


# the slots of one conversion, kept mapped from block to block in this process; a task of
# another conversion, or of another kind, drops them (and the conversion has them dropped
# when it ends)
_slot_maps: Dict[str, mmap.mmap] = {}
_slot_owner: List[Optional[str]] = [None]


def release_slots(owner: Optional[str] = None) -> None:
    """Unmap the slots this process keeps mapped, unless they belong to the conversion
    ``owner``."""
    if owner is not None and owner == _slot_owner[0]:
        return
    for mm in list(_slot_maps.values()):
        try:
            mm.close()
        except BufferError:    # a view still alive (an error's traceback): unmapped with it
            pass
    _slot_maps.clear()
    _slot_owner[0] = owner


def block_text(block: AnyBlock) -> Tuple[memoryview, int, Callable[[], None]]:
    """The text of ``block`` (a plain range, a BGZF block this process inflates, or a block
    the parent decompressed into a shared input slot), where it starts in the input's
    (decompressed) text, and what to call when done with it."""
    if isinstance(block, Block):
        mm, at = map_range(block)
        return memoryview(mm)[at:], block.start, mm.close
    if isinstance(block, SlotBlock):
        a = HEADER + block.at
        seg = _segments.map_segment(block.name, a + block.size, False)
        view = memoryview(seg)[a:a + block.size]

        def close_slot() -> None:
            view.release()
            seg.close()
        return view, block.offset, close_slot
    from ._bgzf import bgzf_block     # (here: plain blocks do not pay for its import)
    path, runs, k, stamp, skip, whole_lines, text_start = block
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if (st.st_size, st.st_mtime_ns) != stamp:
            raise RuntimeError(f"{path!r} changed while it was being loaded")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        text = bgzf_block(mm, runs, k, text_start=text_start, name=path)
    finally:
        mm.close()
    data = text.data
    if whole_lines:
        del data[max(data.rfind(b"\n"), data.rfind(b"\r")) + 1:]
    return memoryview(data)[skip:], text.offset + skip, lambda: None


def parse_block(block: AnyBlock, kw: Dict[str, Any], row_size: int, check: int, owner: str,
                slot: str) -> Dict[str, Any]:
    """Parse ``block`` (see :func:`block_text`) into the reusable segment ``slot`` (one
    block of the conversion ``owner``), growing it (reserved pages) if the block's rows need more room.

    Returns the engine's result with ``line_ends`` (line ends in the block) and
    ``slot_size`` (the segment's size now); or ``{"status": "decode", "offset": ...}`` for
    a byte invalid in the input's encoding."""
    release_slots(owner)
    view, start, done = block_text(block)
    try:
        try:
            res = _block_in_place(view, start, kw, row_size, check, slot)
            if res is not None:
                return res
            lines, bad = _core.prescan(view, _core.LINES_UNIVERSAL, check, 1)
            if bad >= 0:
                return {"status": "decode", "offset": start + bad}
            need = HEADER + lines * row_size
            fd = _core.shm_attach(slot, True)
            try:
                size = os.fstat(fd).st_size
                if size < need:               # reserved before any byte is written
                    # with room for 1/8 more rows: the next blocks, cut to the same size,
                    # differ a little in rows, and one that fits is parsed before it is
                    # counted (see _block_in_place)
                    grown = need + (lines // 8) * row_size
                    _segments.check_free(grown - size)
                    _segments.reserve_pages(fd, size, grown - size)
                    size = grown
            finally:
                os.close(fd)
            out = _slot_maps.pop(slot, None)
            if out is None or len(out) < need:
                if out is not None:
                    out.close()
                out = _segments.map_segment(slot, size, True)
            _slot_maps[slot] = out
            dest = np.frombuffer(out, np.uint8, count=need - HEADER, offset=HEADER)
            res = _core.parse(view, dest=dest, capacity=lines, threads=1,
                              row_size=row_size, **kw)
            del dest
        finally:
            view.release()
    finally:
        done()
    res["line_ends"] = lines - 1
    res["slot_size"] = size
    return res


def _block_in_place(view: memoryview, start: int, kw: Dict[str, Any], row_size: int, check: int,
                    slot: str) -> Optional[Dict[str, Any]]:
    """A block parsed straight into the slot as this process has it mapped, before its lines
    are counted: the rows the row program took are whole ASCII lines (the engine says how
    many, and where they end), so only the bytes after them are counted and checked.  None
    when the slot is not mapped here yet or the parse did not go through (the rows did not
    fit, or an error, which must not win over a decode error later in the block): then the
    caller counts first, grows the slot and parses again, as for a first block."""
    out = _slot_maps.get(slot)
    room = 0 if out is None else (len(out) - HEADER) // row_size
    if room <= 0:
        return None
    dest = np.frombuffer(out, np.uint8, count=room * row_size, offset=HEADER)
    try:
        res = _core.parse(view, dest=dest, capacity=room, threads=1, row_size=row_size, **kw)
    finally:
        del dest
    if res["status"] != _core.OK:
        return None
    plain = res["plain_end"]
    with view[plain:] as rest:
        lines, bad = _core.prescan(rest, _core.LINES_UNIVERSAL, check, 1)
    if bad >= 0:
        return {"status": "decode", "offset": start + plain + bad}
    res["line_ends"] = res["plain_rows"] + lines - 1
    res["slot_size"] = len(out)
    return res


def compress_chunks(handle: SharedHandle, per_row: int, first_row: int, nchunks: int,
                    chunk_rows: int, elsize: int, shuffle: bool, level: int) -> List[bytes]:
    """``nchunks`` whole chunks of a parsed block (the bytes of ``handle``, ``per_row`` bytes
    a row) from its row ``first_row`` on, filtered as HDF5's shuffle and deflate filters
    would: what ``write_direct_chunk`` stores."""
    sa = SharedArray.attach(handle, readonly=True)
    try:
        raw = sa.array
        size = chunk_rows * per_row
        out = []
        for i in range(nchunks):
            a = (first_row + i * chunk_rows) * per_row
            chunk = raw[a:a + size]
            if shuffle and elsize > 1:
                chunk = np.ascontiguousarray(chunk.reshape(-1, elsize).T)
            out.append(zlib.compress(chunk, level))
            del chunk
        del raw
    finally:
        sa.close()
    return out
