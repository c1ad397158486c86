"""The ``shmparse`` command (also ``python -m shmparse``).

* ``shmparse convert INPUT... -o OUT.h5 --dtype SPEC`` — text files in, one HDF5 file out.
* ``shmparse demo`` — writes seed-format sample files, converts them, checks the result.
* ``shmparse gc`` — removes shared-memory segments whose creator died.

Exit codes: 0 success; 1 a data error (the message names file:line:column and the text) or
another failure while converting; 2 a usage error (bad options, output exists, input
missing); 130 on Ctrl-C; 143 on SIGTERM.  No output file appears unless the run succeeded.
"""
from __future__ import annotations

import os
import sys

if "numpy" not in sys.modules:
    # The command does no linear algebra, and OpenBLAS's threads spin on the CPUs for a while
    # after numpy loads them (about 0.1 CPU-s here), taking a core from the workers.  Only
    # when the user has not chosen, and only for this command's process tree.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import atexit  # noqa: E402
import codecs  # noqa: E402
import logging  # noqa: E402,F401  (its fork hooks must be registered before ours: see _on_signal)
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from . import __version__, cleanup, list_segments
from ._segments import remove_quietly
from .errors import ParseError

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot run (exit code 2)."""


# -- option parsing -------------------------------------------------------------------------
def parse_dtype(spec: str) -> np.dtype:
    """``'chr:S10,pos:i4,pct:f4'`` (fields) or any numpy dtype string (``'f8'``, ``'<i4'``)."""
    spec = spec.strip()
    try:
        if ":" in spec:
            fields = []
            for part in spec.split(","):
                name, sep, code = part.partition(":")
                if not sep or not name.strip() or not code.strip():
                    raise ValueError(f"field {part!r} is not NAME:TYPE")
                fields.append((name.strip(), code.strip()))
            return np.dtype(fields)
        return np.dtype(spec)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--dtype {spec!r}: {exc}") from None


_NAMED = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "semicolon": ";", "pipe": "|"}


def parse_delimiter(value: Optional[str]) -> Optional[str]:
    """``TAB``, ``COMMA``, ``SPACE``... or one character; ``whitespace`` (the default) is numpy's
    ``delimiter=None``: any run of spaces and tabs."""
    if value is None or value.lower() in ("whitespace", "ws", "none"):
        return None
    v = _NAMED.get(value.lower(), value)
    if len(v) != 1:
        raise UsageError(f"--delimiter {value!r}: one character, or TAB, COMMA, SPACE, "
                         "SEMICOLON, PIPE, WHITESPACE")
    return v


def parse_usecols(value: Optional[str]) -> Optional[List[int]]:
    if value is None:
        return None
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--usecols {value!r}: a comma-separated list of column numbers "
                         "(from 0)") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shmparse", description=f"shmparse {__version__}: big text "
                                "tables into numpy and HDF5")
    p.add_argument("--version", action="version", version=f"shmparse {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{convert,demo,gc}")
    c = sub.add_parser("convert", help="convert text files to one HDF5 file",
                       description="Convert text files to one HDF5 file (written to a temporary "
                       "file and renamed into place on success).")
    c.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="text files (gzip, BGZF, bz2, xz too, by content)")
    c.add_argument("-o", "--output", required=True, metavar="OUT.h5")
    c.add_argument("--dtype", required=True,
                   help="fields 'chr:S10,pos:i4,pct:f4' or a numpy dtype such as 'f8'")
    c.add_argument("--delimiter", default=None,
                   help="TAB, COMMA, SPACE, ... or one character (default: whitespace)")
    c.add_argument("--comments", default="#", help="comment prefix; '' for none (default '#')")
    c.add_argument("--skiprows", type=int, default=0, metavar="N")
    c.add_argument("--usecols", default=None, metavar="0,1,3")
    c.add_argument("--max-rows", type=int, default=None, metavar="N")
    c.add_argument("--encoding", default=None)
    c.add_argument("--quotechar", default=None)
    c.add_argument("--workers", type=int, default=None, metavar="N",
                   help="loader processes (default: the usable CPUs)")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="parse on a Dask cluster (tcp://host:8786; needs shmparse[dask]); "
                        "its workers must see the input paths")
    c.add_argument("--layout", choices=("per-file", "concat"), default="per-file")
    c.add_argument("--compression", choices=("gzip", "lzf"), default=None)
    c.add_argument("--compression-level", type=int, default=None, metavar="0-9",
                   help="gzip level (default 4)")
    c.add_argument("--shuffle", action="store_true", help="HDF5 shuffle filter")
    c.add_argument("--compress-in", choices=("workers", "parent"), default="workers",
                   help="where gzip runs (default: on the workers, all CPUs)")
    c.add_argument("--chunk-rows", type=int, default=None, metavar="N")
    c.add_argument("--block-size", type=float, default=8, metavar="MiB",
                   help="text per block (memory: about 2 x workers blocks; default 8)")
    c.add_argument("--fsync", action="store_true",
                   help="flush OUT.h5 to disk before exiting (survives a power loss)")
    c.add_argument("--no-strict", action="store_true",
                   help="truncate strings longer than their field, as numpy does")
    w = c.add_mutually_exclusive_group()
    w.add_argument("--overwrite", action="store_true", help="replace OUT.h5 if it exists")
    w.add_argument("--append", action="store_true", help="add datasets to an existing OUT.h5")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    d = sub.add_parser("demo", help="write sample seed-format files and convert them to HDF5")
    d.add_argument("-o", "--output", default="shmparse-demo.h5", metavar="OUT.h5",
                   help="(default: ./shmparse-demo.h5, replaced if it exists)")
    d.add_argument("--files", type=int, default=4)
    d.add_argument("--rows", type=int, default=250_000, help="rows per file")
    d.add_argument("--workers", type=int, default=None)
    d.add_argument("-q", "--quiet", action="store_true")
    g = sub.add_parser("gc", help="remove shared-memory segments left behind by dead processes")
    g.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    g.add_argument("--list", action="store_true", help="list every shmparse segment and exit")
    return p


# -- convert --------------------------------------------------------------------------------
def _fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class _Report:
    """Progress: a tqdm bar on an interactive stderr, else one line per file; or nothing.

    Called after every block, it is also where a signal that Python could not raise at once
    (it arrived inside a callback, where exceptions are dropped) is raised after all."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.interactive = (not quiet) and sys.stderr.isatty()
        self.files_done = 0
        self.rows_at = 0
        self.t0 = time.perf_counter()
        self.bar: Any = None

    def __call__(self, p: Any) -> None:
        _raise_pending_signal()
        if self.quiet:
            return
        if self.interactive:
            if self.bar is None:
                from tqdm import tqdm
                self.bar = tqdm(total=p.bytes_total, unit="B", unit_scale=True,
                                unit_divisor=1024, desc="shmparse", dynamic_ncols=True)
            self.bar.update(p.bytes_done - self.bar.n)
            self.bar.set_postfix_str(f"{p.rows_done:,} rows, file {p.files_done}/"
                                     f"{p.files_total}", refresh=False)
            return
        if p.files_done > self.files_done:
            self.files_done = p.files_done
            rows = p.rows_done - self.rows_at
            self.rows_at = p.rows_done
            el = time.perf_counter() - self.t0
            print(f"shmparse: [{p.files_done}/{p.files_total}] {p.path}: {rows:,} rows "
                  f"({_fmt_bytes(p.bytes_done)} of {_fmt_bytes(p.bytes_total)} in {el:.1f} s)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _convert(args: argparse.Namespace) -> int:
    from .hdf5 import to_hdf5
    dtype = parse_dtype(args.dtype)
    missing = [p for p in args.inputs if not os.path.exists(p)]
    if missing:
        raise UsageError(f"input not found: {', '.join(missing)}")
    mode = "a" if args.append else ("w" if args.overwrite else "w-")
    _watch[:] = [args.output, _identity(args.output)]
    if mode == "w-" and os.path.exists(args.output):
        raise UsageError(f"{args.output} exists: use --overwrite to replace it or --append to "
                         "add datasets to it")
    if args.block_size <= 0:
        raise UsageError("--block-size must be positive")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.encoding is not None:
        try:
            codecs.lookup(args.encoding)
        except LookupError:
            raise UsageError(f"--encoding {args.encoding!r}: unknown encoding") from None
    comments = args.comments if args.comments not in ("", "none", "None") else None
    compression: Any = args.compression
    if args.compression_level is not None:
        if compression not in (None, "gzip"):
            raise UsageError("--compression-level applies to gzip")
        compression = "gzip"
    kwargs = dict(delimiter=parse_delimiter(args.delimiter), comments=comments,
                  skiprows=args.skiprows, usecols=parse_usecols(args.usecols),
                  max_rows=args.max_rows, encoding=args.encoding, quotechar=args.quotechar)
    report = _Report(args.quiet)
    client = None
    if args.scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler needs dask.distributed: pip install "
                             "\"shmparse[dask]\"") from None
        try:
            client = Client(args.scheduler, timeout=30, set_as_default=False)
        except OSError as exc:
            raise UsageError(f"--scheduler {args.scheduler}: cannot connect ({exc})") from None
    try:
        summary = to_hdf5(args.inputs, args.output, dtype=dtype, workers=args.workers,
                          layout=args.layout, compression=compression,
                          compression_opts=args.compression_level, shuffle=args.shuffle,
                          chunk_rows=args.chunk_rows, mode=mode, progress=report,
                          strict=not args.no_strict, block_bytes=int(args.block_size * (1 << 20)),
                          compress_in=args.compress_in, fsync=args.fsync, client=client,
                          **kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, (ParseError, UnicodeError)):
            raise
        if _is_argument_error(exc):
            raise UsageError(str(exc)) from None
        raise
    finally:
        report.close()
        if client is not None:
            client.close()
    _raise_pending_signal()     # one that came too late for any block: the output is complete
    if not args.quiet:
        s = summary
        rate = s.bytes_read / s.seconds / 1e6 if s.seconds > 0 else 0.0
        print(f"shmparse: wrote {s.output}: {s.files} file(s), {s.rows:,} rows, "
              f"{_fmt_bytes(s.bytes_read)} read in {s.seconds:.2f} s ({rate:.0f} MB/s)",
              file=sys.stderr)
    return EXIT_OK


def _is_argument_error(exc: BaseException) -> bool:
    """TypeError/ValueError raised while checking arguments, before any input was parsed."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name in (
        "to_hdf5", "compression_args", "check_h5_dtype", "make_job", "check_nonneg_int",
        "check_control_chars", "control_char", "make_plan", "_column", "_flatten")


def _data_error_message(exc: BaseException) -> str:
    if isinstance(exc, ParseError) and exc.source is not None:
        where = f"{exc.source}:{exc.line}" + (f":{exc.column}" if exc.column else "")
        text = f" (text {exc.text!r})" if exc.text is not None else ""
        return f"{where}: {exc}{text}"
    return f"{type(exc).__name__}: {exc}"


# -- demo and gc ----------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from ._sample import SEED_DTYPE, write_seed_file
    from .hdf5 import to_hdf5
    import h5py
    with tempfile.TemporaryDirectory(prefix="shmparse-demo-") as tmp:
        paths = []
        for i in range(args.files):
            p = os.path.join(tmp, f"sample_{i}.tsv")
            write_seed_file(p, args.rows, seed=i)
            paths.append(p)
        total = sum(os.path.getsize(p) for p in paths)
        if not args.quiet:
            print(f"shmparse demo: {args.files} seed-format files x {args.rows:,} rows "
                  f"({_fmt_bytes(total)}) in {tmp}")
        report = _Report(args.quiet or not sys.stderr.isatty())   # a bar, or nothing
        try:
            s = to_hdf5(paths, args.output, dtype=SEED_DTYPE, delimiter="\t", mode="w",
                        workers=args.workers, progress=report)
        finally:
            report.close()
        _raise_pending_signal()
        same = True
        with h5py.File(s.output, "r") as h5:
            for p, name in zip(paths, s.datasets):
                same &= h5[name][:].tobytes() == np.loadtxt(p, dtype=SEED_DTYPE,
                                                            delimiter="\t").tobytes()
            first = h5[s.datasets[0]][:3]
        if not args.quiet:
            print(f"wrote {s.output}: datasets {', '.join(s.datasets)}; {s.rows:,} rows in "
                  f"{s.seconds:.2f} s ({total / s.seconds / 1e6:.0f} MB/s)")
            print(f"every dataset equals numpy.loadtxt of its file: {same}")
            print(f"first rows of {s.datasets[0]}:\n{first}")
        return EXIT_OK if same else EXIT_DATA


def _gc(dry_run: bool, list_only: bool) -> int:
    if list_only:
        for name, pid, size in list_segments():
            print(f"{name}\tpid {pid}\t{size} bytes")
        return EXIT_OK
    removed = cleanup(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for name in removed:
        print(f"{verb} {name}")
    print(f"{verb} {len(removed)} orphaned segment(s)")
    return EXIT_OK


_pending_signal: List[int] = []
_watch: List[Any] = []              # [output path, its identity before the run]


def _identity(path: str) -> Any:
    """What changes when a new file is put under ``path`` (to_hdf5 renames one into place)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _written() -> Optional[str]:
    """The output, if this run put it in place (a signal may land after that, even inside
    to_hdf5 as it stops its workers)."""
    if _watch and _identity(_watch[0]) not in (None, _watch[1]):
        return str(_watch[0])
    return None


_in_fork: List[bool] = []           # [True] while os.fork runs its hooks (see _on_signal)
_fork_hooks: List[bool] = []        # [True] once they are registered (they stay for good)


def _fork_begins() -> None:
    _in_fork[:] = [True]


def _fork_ends() -> None:
    _in_fork.clear()


def _watch_forks() -> None:
    """Know when this process is inside ``os.fork`` (a worker starting).  Python runs the
    fork hooks of other modules there, some of them Python code: logging's takes its module
    lock before the fork and releases it after.  An exception raised inside a hook is
    dropped, so a signal raised there would skip the release and the lock would stay held:
    the next ``logging.getLogger`` in another thread (h5py's import) then waits for ever.

    Hooks run in this order: ``before`` hooks newest first, ``after`` hooks oldest first.
    Registered after every other module's (logging is imported above), ours enclose
    theirs."""
    if not _fork_hooks:
        os.register_at_fork(before=_fork_begins, after_in_parent=_fork_ends,
                            after_in_child=_fork_ends)
        _fork_hooks.append(True)


def _on_signal(signum: int, frame: Any) -> None:
    """SIGTERM and SIGINT while converting: unwind (temporary file, workers, segments go).

    Python drops an exception raised inside a callback (a weakref's, as h5py frees objects),
    so the signal is also remembered and raised again at the next block, and at the end.
    Inside a fork's hooks it is only remembered: raising there could leave a lock held."""
    if not _pending_signal:
        _pending_signal.append(signum)
    if _in_fork:
        return
    _raise_for(signum)


_raised: List[BaseException] = []   # the exception _raise_for raised last


def _raise_for(signum: int) -> None:
    exc = KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)
    _raised[:] = [exc]
    raise exc


def _unraisable_hook(previous: Any) -> Any:
    """A ``sys.unraisablehook`` that keeps quiet about the exception of a signal that
    Python dropped (it was raised inside a callback): it is raised again at the next block.
    Python would print it ("Exception ignored in: ...", a traceback, ``KeyboardInterrupt``)
    above the command's own one-line message.  Anything else goes to ``previous``."""
    def hook(unraisable: Any) -> None:
        if _raised and unraisable.exc_value is _raised[0]:
            return
        previous(unraisable)
    return hook


def _raise_pending_signal() -> None:
    if _pending_signal:
        _raise_for(_pending_signal[0])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)      # exits 2 on a usage error
    previous = {}
    unraisablehook = sys.unraisablehook
    if args.cmd in ("convert", "demo"):
        _pending_signal.clear()
        _raised.clear()
        _watch.clear()
        _watch_forks()
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:               # not the main thread
            pass
        if previous:
            sys.unraisablehook = _unraisable_hook(unraisablehook)
    try:
        if args.cmd == "convert":
            return _convert(args)
        if args.cmd == "demo":
            return _demo(args)
        return _gc(args.dry_run, args.list)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"shmparse: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        written = _written()
        if written:
            print(f"shmparse: interrupted after {written} was written (it is complete)",
                  file=sys.stderr)
        else:
            print("shmparse: interrupted; nothing was written", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:
        print(f"shmparse: error: {_data_error_message(exc)}", file=sys.stderr)
        return EXIT_DATA
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = unraisablehook
        if args.cmd in ("convert", "demo"):
            try:
                _sweep_own_segments()
            except BaseException:     # a signal landing here: the outcome is decided already
                pass


def _sweep_own_segments() -> None:
    """Remove any segment this process made that is still there.  A command hands no segment
    to anyone, so none should be; but a signal landing between the creation of a segment
    and the bookkeeping that would remove it (a few bytecodes) could leave one."""
    me = os.getpid()
    for name, pid, _ in list_segments():
        if pid == me:
            remove_quietly(name)


def run() -> None:
    """The ``shmparse`` command: :func:`main`, then the process ends without tearing the
    interpreter down.  A normal shutdown frees every module one by one (numpy's and HDF5's
    state included: about 35 ms after a conversion) only for the OS to drop it all anyway.
    Output is flushed and the ``atexit`` handlers run first, as in a normal exit.  A
    ``SystemExit`` (SIGTERM's 143 after the conversion unwound; argparse's 0 or 2) ends the
    same way: an interrupted conversion may leave a daemon thread (h5py's import) running,
    which a teardown would then race."""
    try:
        code = main()
    except KeyboardInterrupt:            # a Ctrl-C after main's own handler was taken down
        code = 130
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:                            # sys.exit("message"), as the interpreter shows it
            print(exc.code, file=sys.stderr)
            code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):      # (a closed pipe...): the normal exit reports it
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    run()
