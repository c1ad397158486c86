"""A conversion's driver: plan -> tasks on an executor -> parsed blocks in input order -> writer.

The one place where the parts meet, and data goes one way through it:

1. each input is cut into blocks by the planner (``_blocks.plan_input``), one input at a
   time as the previous one's blocks go out;
2. each block is a task on the executor: ``parse_block`` into a reusable slot (a shared
   segment), or ``parse_file`` (a whole file, when it cannot be cut) into a segment of its
   own.  At most ``limit`` blocks hold memory at a time, and no more tasks are outstanding
   than the executor runs at once (compress tasks go first, as they free a block);
3. parsed blocks are written in input order: errors are raised here, in file order, with
   file and line; the rows go to the writer, which may hand back whole chunks to compress
   (``compress_chunks`` tasks, stored when they come back).

The driver knows the executor only through ``submit`` and ``shmparse._executors``, and the
writer only through its methods: a Loader, a thread pool or a cluster client run the same
conversion.
"""
from __future__ import annotations

import errno
import os
import stat
import sys
import threading
from collections import deque
from contextlib import nullcontext
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from . import _core, _segments
from ._blocks import AnyBlock, InputPlan, SlotBlock, plan_input
from ._cplan import numpy_opens, plan_compressed
from ._executors import cancel, completed_now, is_cluster, run_everywhere, width
from ._h5writer import H5Writer
from ._inflate import sniff_path
from ._job import raise_decode_error, warn_user
from ._outfile import Room, clear, fmt_mb, free_bytes
from ._segments import HEADER
from ._remote import parse_block_rows, parse_file_rows
from ._sources import open_path, read_as
from ._tasks import compress_chunks, parse_block, parse_file, release_slots
from .errors import WorkerCrashedError
from .shm import SharedArray, SharedHandle, adopt

__all__ = ["Conversion", "Source", "import_h5py"]


class Source:
    """One input file and what is known about it."""

    def __init__(self, index: int, given: Any) -> None:
        self.index = index
        self.path = os.path.abspath(os.fspath(given))
        st = os.stat(self.path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"{self.path} is a directory, not a text file")
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.plan: Optional[InputPlan] = None
        self.ncols: Optional[int] = None
        self.line_base = 0       # lines before the block being written (for error lines)
        self.rows = 0            # rows written so far
        self.blocks = 0          # blocks this file was cut into
        self.first_row = 0       # (concat) its first row in the dataset
        self.whole = False       # parsed whole by one task
        self.kind: Optional[str] = None   # compressed: "gzip", "bgzf", "bz2", "xz"
        self.consumed = 0        # a stream: compressed bytes its blocks covered so far


class Slot:
    """A reusable shared-memory segment for blocks: made here, filled by a task (which grows
    it, reserving the pages, when a block needs more room), read here, then filled again.
    Reuse spares every block the page allocation, zeroing, faults and freeing a new segment
    costs."""

    def __init__(self) -> None:
        self.name, fd = _segments.create_segment(HEADER)
        os.close(fd)
        self.mm: Optional[Any] = None

    def array(self, size: int, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The block a task left in the segment (now ``size`` bytes long)."""
        if self.mm is None or len(self.mm) < size:
            if self.mm is not None:
                self.mm.close()
            self.mm = _segments.map_segment(self.name, size, False)
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.mm, dtype, count=count, offset=HEADER).reshape(shape)

    def handle(self, nbytes: int) -> SharedHandle:
        return SharedHandle(self.name, (nbytes,), np.dtype(np.uint8), HEADER, nbytes)

    def close(self) -> None:
        try:
            if self.mm is not None:
                self.mm.close()
        except BufferError:   # a view still alive (an exception's traceback): it keeps
            pass              # the pages until it goes; the name goes now
        self.mm = None
        _segments.remove_quietly(self.name)


class InputSlot:
    """A reusable shared-memory segment the parent writes a block of decompressed text into,
    for a worker to parse (a stream's blocks reach the workers this way: one copy into
    pages the worker maps, no pickling of the text through a pipe)."""

    def __init__(self) -> None:
        self.name: Optional[str] = None
        self.mm: Optional[Any] = None

    def fill(self, data: Any, offset: int) -> SlotBlock:
        """``data`` into the segment (a bigger one if it does not fit): the block to parse."""
        n = len(data)
        if self.mm is None or len(self.mm) < HEADER + n:
            self.close()
            size = HEADER + n + n // 8
            self.name, fd = _segments.create_segment(size)
            os.close(fd)
            self.mm = _segments.map_segment(self.name, size, True)
        self.mm[HEADER:HEADER + n] = data
        assert self.name is not None
        return SlotBlock(self.name, n, offset)

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.name is not None:
            _segments.remove_quietly(self.name)
            self.name = None


class _Block:
    __slots__ = ("seq", "src", "last", "nbytes", "block", "name", "future", "sa", "pending",
                 "slot", "data", "error", "inslot")

    def __init__(self, src: Source, last: bool, nbytes: int, block: Optional[AnyBlock] = None,
                 name: Optional[str] = None) -> None:
        self.seq = 0
        self.src = src
        self.last = last           # the file's last block
        self.nbytes = nbytes       # bytes of input it covers
        self.block = block         # a block of a file cut in pieces
        self.name = name           # a whole file: its segment's name
        self.future: Any = None
        self.sa: Optional[SharedArray] = None     # a whole file's result
        self.pending = 0           # compress tasks not yet stored
        self.slot: Optional[Slot] = None
        self.data: Any = None          # a stream's block: its text (until it is in a slot)
        self.error: Optional[BaseException] = None   # a stream's damage, raised in order
        self.inslot: Optional[InputSlot] = None


def _crash_named(exc: BaseException, path: str) -> BaseException:
    return exc.about(path) if isinstance(exc, WorkerCrashedError) else exc


class Conversion:
    """Plans the inputs, runs their tasks on ``executor``, writes blocks in input order."""

    def __init__(self, executor: Any, sources: List[Source], dtype: np.dtype,
                 kw: Dict[str, Any], strict: bool, block_bytes: int, limit: int,
                 level: Optional[int], shuffle: bool) -> None:
        self.executor = executor
        # a cluster's workers share neither this machine's memory nor its segments: their
        # tasks return the rows by value (the same blocks, the same engine, the same rows)
        self.remote = is_cluster(executor)
        self.writer: Optional[H5Writer] = None   # set before run(): start() does not write
        self.sources = sources
        self.dtype = dtype
        self.kw = kw
        self.strict = strict
        self.block_bytes = block_bytes
        self.limit = limit
        self.width = width(executor, limit)
        self.level = level
        self.shuffle = shuffle
        self.bar: Any = None
        self.callback: Optional[Callable[[Any], Any]] = None
        self.progress_type: Any = None
        self.next_source = 0
        self.queue: Deque[_Block] = deque()          # blocks cut, not yet submitted
        self.compress: Deque[Tuple[Tuple[Any, ...], _Block, Any, int]] = deque()
        self.running: Dict[Any, Tuple[str, _Block, Any, int]] = {}   # future -> its work
        self.parsed: Dict[int, _Block] = {}          # seq -> parsed block, not yet written
        self.live: Dict[int, _Block] = {}            # blocks holding memory
        self.slots: List[Slot] = []                  # every slot made
        self.idle_slots: List[Slot] = []
        self.whole_names: set = set()                # segments of whole-file tasks, unfreed
        self.stream: Any = None                      # the compressed stream being cut
        self.stream_src: Optional[Source] = None
        self.inslots: List[InputSlot] = []           # every input slot made
        self.idle_inslots: List[InputSlot] = []
        self.seq = 0
        self.next_write = 0
        self.bytes_done = 0
        self.bytes_total = sum(s.size for s in sources)
        self.rows_done = 0
        self.files_done = 0
        self.current: Optional[Source] = None       # the input being written
        self.room: Optional[Room] = None            # space taken before each write
        self.foresee = False                        # check the room for all at the first block
        self.token = os.urandom(8).hex()            # this conversion, for the workers' slots

    # -- 1. the plan: inputs -> blocks -------------------------------------------------------
    def _cut_next(self) -> bool:
        """Cut the next input into blocks (queued); False when there is none left."""
        if self.next_source >= len(self.sources):
            return False
        src = self.sources[self.next_source]
        self.next_source += 1
        src.kind = sniff_path(src.path)
        if src.kind is not None and self.remote:
            # blocks of a compressed input live in this machine's shared slots: on a cluster
            # the file is one task, opened as numpy opens it (by its suffix)
            plan = InputPlan(whole=True)
        elif src.kind is not None:
            plan = plan_compressed(src.path, src.kind, self.dtype, self.kw, self.strict,
                                   self.block_bytes)
        else:
            plan = plan_input(src.path, self.dtype, self.kw, self.strict, self.block_bytes)
        src.plan = plan
        src.ncols = plan.ncols
        src.line_base = plan.line_base
        if plan.whole:
            src.whole = True
            blocks = [_Block(src, True, src.size, name=_segments.new_name())]
        elif plan.stream is not None:         # cut as it is decompressed (_pull)
            self.stream, self.stream_src = plan.stream, src
            src.blocks = 2
            return True
        else:
            n = len(plan.blocks)
            sizes = plan.sizes or [(b.end - b.start) + (plan.head if k == 0 else 0)
                                   for k, b in enumerate(plan.blocks)]
            blocks = [_Block(src, k == n - 1, sizes[k], block=b)
                      for k, b in enumerate(plan.blocks)]
            if plan.error is not None:
                end = _Block(src, True, 0)
                end.error = plan.error
                blocks.append(end)
        src.blocks = len(blocks)
        if not blocks:                  # no rows at all: an empty dataset, in order
            blocks = [_Block(src, True, src.size)]
        for b in blocks:
            self._queue(b)
        return True

    def _queue(self, blk: _Block) -> None:
        blk.seq = self.seq
        self.seq += 1
        self.queue.append(blk)

    def _pull(self) -> None:
        """The stream's next block of text (queued), or its end: a last block with no rows
        that covers the rest of the file, or a block that raises the stream's damage when
        it is its turn to be written."""
        src = self.stream_src
        assert src is not None
        try:
            data, offset, consumed = next(self.stream)
        except StopIteration:
            self._end_stream(_Block(src, True, max(0, src.size - src.consumed)))
            return
        except Exception as exc:
            end = _Block(src, True, 0)
            end.error = exc
            self._end_stream(end)
            return
        src.consumed += consumed
        blk = _Block(src, False, consumed)
        blk.data = data
        blk.block = SlotBlock("", len(data), offset)
        self._queue(blk)

    def _end_stream(self, blk: _Block) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = self.stream_src = None
        self._queue(blk)

    # -- 2. tasks on the executor ----------------------------------------------------------
    def start(self) -> None:
        """Hand out the first blocks (nothing is written yet)."""
        self._feed()

    def _feed(self) -> None:
        while len(self.running) < self.width:
            if self.compress:
                args, blk, ds, row = self.compress.popleft()
                self.running[self.executor.submit(compress_chunks, *args)] = \
                    ("compress", blk, ds, row)
                continue
            if len(self.live) >= self.limit:
                return
            if not self.queue:
                if self.stream is not None:
                    self._pull()
                elif not self._cut_next():
                    return
                continue
            blk = self.queue.popleft()
            src = blk.src
            if blk.block is None and blk.name is None:   # an input with no rows
                self.parsed[blk.seq] = blk
                continue
            if blk.name is not None:                     # a whole file, by loadtxt
                kw = dict(self.kw, dtype=self.dtype, strict=self.strict,
                          ndmin=1 if self.dtype.names is not None else 2)
                if self.remote:
                    fut = self.executor.submit(parse_file_rows, src.path, kw)
                else:
                    self.whole_names.add(blk.name)
                    kind = (src.kind if src.kind and not numpy_opens(src.path, src.kind)
                            else None)
                    fut = self.executor.submit(parse_file, src.path, kw, blk.name, kind)
            elif self.remote:
                plan = src.plan
                assert plan is not None
                fut = self.executor.submit(parse_block_rows, blk.block, plan.engine_kw,
                                           plan.row_size, plan.check)
            else:
                plan = src.plan
                assert plan is not None
                if blk.data is not None:                 # a stream's text, to a slot
                    blk.inslot = (self.idle_inslots.pop() if self.idle_inslots
                                  else self._new_inslot())
                    blk.block = blk.inslot.fill(blk.data, blk.block.offset)
                    blk.data = None
                slot = self.idle_slots.pop() if self.idle_slots else self._new_slot()
                blk.slot = slot
                fut = self.executor.submit(parse_block, blk.block, plan.engine_kw,
                                           plan.row_size, plan.check, self.token, slot.name)
            blk.future = fut
            self.running[fut] = ("block", blk, None, 0)
            self.live[blk.seq] = blk

    def run(self) -> None:
        """Until every input is written."""
        try:
            while True:
                self._feed()
                if self.next_write in self.parsed:
                    self._write(self.parsed.pop(self.next_write))
                    continue
                if not self.running:
                    if (self.queue or self.compress or self.stream is not None
                            or self.next_source < len(self.sources)):
                        if len(self.live) >= self.limit:
                            raise RuntimeError("shmparse: conversion stalled")   # (a bug)
                        continue
                    break
                for fut in completed_now(self.executor, list(self.running)):
                    self._received(fut)
        finally:
            self.close()

    def pump(self, timeout: float = 0.0) -> bool:
        """Take the block tasks that finished within ``timeout`` and hand out the next
        blocks; False when no block is being parsed (nothing to wait for).

        Called between two chunk writes of a block, so that a worker done meanwhile does not
        wait for the whole block to be written (8 MiB: about 4 ms) to get its next one; and
        while h5py is imported.  A compress task's chunks are stored by the loop, after the
        block."""
        mine = [f for f, work in self.running.items() if work[0] == "block"]
        if not mine:
            return False
        done = completed_now(self.executor, mine, timeout)
        if done:
            for fut in done:
                self._received(fut)
            self._feed()
        return True

    def _received(self, fut: Any) -> None:
        kind, blk, ds, row = self.running.pop(fut)
        if kind == "compress":
            try:
                chunks = fut.result()
            except BaseException as exc:
                raise _crash_named(exc, blk.src.path) from None
            assert self.writer is not None
            self.writer.store_chunks(ds, row, chunks)
            blk.pending -= 1
            if blk.pending == 0:
                self._free(blk)
            return
        if blk.inslot is not None:                    # the text is parsed: slot free
            self.idle_inslots.append(blk.inslot)
            blk.inslot = None
        exc = fut.exception()
        if isinstance(exc, WorkerCrashedError):       # not the data's fault: at once
            raise exc.about(blk.src.path)
        self.parsed[blk.seq] = blk                    # (other errors: in input order)

    def _new_inslot(self) -> InputSlot:
        slot = InputSlot()
        self.inslots.append(slot)
        return slot

    def _new_slot(self) -> Slot:
        slot = Slot()
        self.slots.append(slot)
        return slot

    def _free(self, blk: _Block) -> None:
        if blk.sa is not None:
            blk.sa.close()
            blk.sa = None
        if blk.name is not None:
            self.whole_names.discard(blk.name)
        if blk.slot is not None:
            self.idle_slots.append(blk.slot)
            blk.slot = None
        self.live.pop(blk.seq, None)

    # -- 3. parsed blocks, in input order, to the writer -------------------------------------
    def _write(self, blk: _Block) -> None:
        self.next_write += 1
        src = blk.src
        writer = self.writer
        assert writer is not None
        if blk.error is not None:                   # the stream's damage, in file order
            raise blk.error
        res: Any = None
        if blk.future is not None:
            try:
                res = blk.future.result()
            except BaseException as exc:
                raise _crash_named(exc, src.path) from None
        plan = src.plan
        if blk.block is not None:                   # a block of a file cut in pieces
            assert plan is not None and plan.job is not None
            job = plan.job
            if res["status"] == "decode":
                with read_as(src.path, src.kind) if src.kind else nullcontext():
                    text = open_path(src.path, self.kw.get("encoding"))
                try:
                    raise_decode_error(text, res["offset"])
                finally:
                    text.close()
            job.note(res, src.rows)
            if res["status"] != _core.OK:
                if res["status"] in (_core.ERR_CONVERT, _core.ERR_TRUNCATE, _core.ERR_NCOLS,
                                     _core.ERR_USECOL):
                    res["err_row"] += src.rows
                job.raise_for(res, enc=plan.enc, line_base=src.line_base, ncols=src.ncols)
            src.line_base += res["line_ends"]
        arr: Optional[np.ndarray] = None
        if blk.name is not None and self.remote:
            arr = res
        elif blk.name is not None:
            blk.sa = adopt(res)
            arr = blk.sa.array
        elif blk.block is not None and self.remote:
            assert plan is not None and plan.job is not None
            rows = res["rows"]
            shape = (rows, src.ncols) if plan.job.plan.homogeneous else (rows,)
            arr = res.pop("data").view(self.dtype).reshape(shape)
        elif blk.slot is not None:
            assert plan is not None and plan.job is not None
            rows = res["rows"]
            shape = (rows, src.ncols) if plan.job.plan.homogeneous else (rows,)
            arr = blk.slot.array(res["slot_size"], shape, self.dtype)
        if self.current is not src:
            self.current = src
            ncols = src.ncols
            if arr is not None and arr.ndim == 2 and (arr.shape[0] or writer.layout
                                                      == "per-file"):
                ncols = arr.shape[1]      # (concat: an input with no row says nothing)
            hint = arr.shape[0] if (arr is not None and blk.last and src.blocks <= 1) else None
            writer.begin(src, ncols, hint)
        runs: List[Tuple[int, int, int]] = []
        handle: Optional[SharedHandle] = None
        per_row = 0
        if arr is not None:
            if (writer.layout == "concat" and arr.ndim == 2 and arr.shape[0]
                    and writer.ncols is not None and arr.shape[1] != writer.ncols):
                raise ValueError(f"layout='concat' needs the same number of columns in every "
                                 f"input: {src.path} has {arr.shape[1]}, the inputs before it "
                                 f"{writer.ncols}")
            if self.room is not None and arr.nbytes:
                self._check_space(arr.nbytes, blk.nbytes if blk.block is not None else 0)
            runs = writer.append(arr)
            n = arr.shape[0]
            src.rows += n
            self.rows_done += n
            if runs:
                per_row = arr.nbytes // n
                if blk.sa is not None:
                    h = blk.sa.handle
                    handle = SharedHandle(h.name, (h.size,), np.dtype(np.uint8), h.offset, h.size)
                else:
                    assert blk.slot is not None
                    handle = blk.slot.handle(arr.nbytes)
        del arr
        if blk.last:
            if plan is not None and plan.job is not None and plan.job.f16_overflow:
                warn_user("overflow encountered in cast", RuntimeWarning)
            if src.rows == 0 and not src.whole:     # (a whole file: its task warned)
                warn_user(f'loadtxt: input contained no data: "{src.path}"', UserWarning)
            writer.end(src)
            self.files_done += 1
            self.current = None
        if runs:
            elsize = self.dtype.itemsize
            for first, row, nchunks in runs:
                args = (handle, per_row, first, nchunks, writer.ds.chunks[0], elsize,
                        self.shuffle, self.level)
                blk.pending += 1
                self.compress.append((args, blk, writer.ds, row))
        else:
            self._free(blk)
        self.bytes_done += blk.nbytes
        if self.bar is not None:
            self.bar.update(blk.nbytes)
            self.bar.set_postfix_str(f"{self.rows_done:,} rows", refresh=False)
        if self.callback is not None:
            self.callback(self.progress_type(src.path, self.bytes_done, self.bytes_total,
                                             self.rows_done, self.files_done,
                                             len(self.sources)))

    def _check_space(self, nbytes: int, text_bytes: int) -> None:
        """Room for a block of ``nbytes`` on the output's file system, taken before HDF5
        writes it (see Room).  At the first block of plain text (uncompressed output), also
        a check of the room for the whole rest, foreseen from the block's bytes per input
        byte, so that a run that cannot fit stops at once."""
        room = self.room
        assert room is not None
        if self.foresee and text_bytes:
            self.foresee = False
            need = int((self.bytes_total - self.bytes_done) * (nbytes / text_bytes))
            free = free_bytes(room.dir)
            if free is not None and need * 0.8 > free:
                raise clear(OSError(
                    errno.ENOSPC, f"the output needs about {fmt_mb(need)} more (foreseen from "
                    f"the first block) but its file system has {fmt_mb(free)} free", room.dir))
        room.take(nbytes)

    def close(self) -> None:
        """On the way out (normally everything is already written and freed): stop the
        tasks still running, have the workers drop the slots, remove every segment."""
        futures = list(self.running)
        self.running.clear()
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        try:
            cancel(self.executor, futures)
            if self.slots:
                run_everywhere(self.executor, release_slots)
        finally:
            self._remove_segments()

    def _remove_segments(self) -> None:
        for slot in self.slots:
            slot.close()
        self.slots.clear()
        for inslot in self.inslots:
            inslot.close()
        self.inslots.clear()
        self.idle_inslots.clear()
        for blk in list(self.parsed.values()) + list(self.live.values()):
            if blk.sa is not None:
                blk.sa.close()
                blk.sa = None
        for name in self.whole_names:          # whole-file segments, wherever they got to
            _segments.remove_quietly(name)
        self.whole_names.clear()
        self.parsed.clear()
        self.live.clear()
        self.compress.clear()
        self.idle_slots.clear()


def import_h5py(pump: Callable[[float], bool]) -> Any:
    """``import h5py`` (30 ms of the parent's start here) in a thread, while this one keeps
    handing the workers their next blocks (``pump``; the import holds the GIL, but this
    thread mostly waits on the workers, which releases it)."""
    if sys.modules.get("h5py") is not None:
        return sys.modules["h5py"]
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            import h5py
            box["h5py"] = h5py
        except BaseException as exc:      # raised again in the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="shmparse-import-h5py", daemon=True)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)    # a reply waits at most this long for the GIL (not 5 ms)
    try:
        t.start()
        while t.is_alive() and pump(0.002):
            pass
        t.join()
    finally:
        sys.setswitchinterval(switch)
    if "error" in box:
        raise box["error"]
    return box["h5py"]
