#!/usr/bin/env python3
"""The reader processes of bench_loadtxt.py ("runners"), and the main process's handle on them.

Two builds of shmparse cannot be imported into one interpreter, so every reader runs in a
long-lived child process that the main process drives over a pipe:

* one runner per shmparse build, started with that build's tree first on PYTHONPATH and with
  its cwd outside the repository, so the editable install of the working tree (a finder on
  sys.meta_path, consulted after sys.path) cannot win; `hello` reports shmparse.__file__ so the
  main process can check which build it got.  The working tree's own build runs this way too,
  so both builds pay exactly the same overhead;
* one runner for the peers: numpy.loadtxt, pandas, polars, pyarrow and duckdb.

Only one runner works at a time (the main process waits for each reply), so they never compete
for the CPUs.  The clock is read inside the runner, around the reader's call alone: the pipe's
round trip is not timed.

Protocol: one JSON object per line each way.  An input travels as a plain dict (a "spec"):

    {"name": "repr", "path": "/abs/repr.csv", "dtype": "<f8" or a structured descr list,
     "delimiter": numpy's delimiter (None: any whitespace), "sep": the peers' one-character
     separator, "ncols": 20}

    {"op": "hello"}                          -> python / library versions, shmparse.__file__
    {"op": "reference", "input": SPEC}       -> numpy.loadtxt's result (kept by the runner for the
                                                peers' checks): sha256 of its bytes, dtype, shape
    {"op": "check", "reader": R, "input": SPEC, "ref": REFERENCE}
        shmparse: run R once, equal to the reference bit for bit?  (if not, the first differing
        row); a peer: run R once, same rows and columns as numpy's result?  how many values differ?
    {"op": "time", "reader": R, "input": SPEC, "n": N}  -> {"seconds": [N times]}
    {"op": "quit"}

Every reply has "ok"; a failed request has ok false and "error" (the exception's one-line text).

Run as a script this file is a runner:  python _bench_runner.py {shmparse|peers} [--threads N]
"""
import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback

SHMPARSE_READERS = ("shmparse1", "shmparse")     # threads=1, and --threads (default: automatic)
PEER_READERS = ("numpy", "pandas", "polars", "pyarrow", "duckdb")
READERS = SHMPARSE_READERS + PEER_READERS


# ----------------------------------------------------------------------------------------------
# main-process side
# ----------------------------------------------------------------------------------------------

class RunnerError(RuntimeError):
    """A runner died or broke the protocol (not: a reader failed, which is a normal reply)."""


class Runner:
    """One runner process.  `kind` is "shmparse" (then `tree` is the source tree whose build it
    imports) or "peers"."""

    def __init__(self, label, kind, cwd, tree=None, threads=None):
        self.label = label
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)          # nothing of the caller's may shadow the tree
        if tree is not None:
            env["PYTHONPATH"] = tree
        cmd = [sys.executable, os.path.abspath(__file__), kind]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        # stderr is inherited: a reader's warnings reach the terminal
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=cwd, env=env)

    def request(self, op, **fields):
        fields["op"] = op
        try:
            self.proc.stdin.write(json.dumps(fields) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            rc = self.proc.wait()
            raise RunnerError(f"the {self.label} runner exited (status {rc}) during {op!r}")
        return json.loads(line)

    def close(self, kill=False):
        """Ask the runner to quit; kill it (this child, by its pid) if asked to or if it hangs."""
        if self.proc.poll() is None and not kill:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass


# ----------------------------------------------------------------------------------------------
# runner side
# ----------------------------------------------------------------------------------------------

def _dtype(d):
    """The numpy dtype of a spec's "dtype" (a dtype string, or a structured descr as JSON lists)."""
    import numpy as np
    return np.dtype([tuple(f) for f in d]) if isinstance(d, list) else np.dtype(d)


def _columns(spec):
    """[(column name, numpy dtype)] of an input: the fields of a structured dtype, else ncols
    columns c0, c1, ... of the one dtype."""
    dt = _dtype(spec["dtype"])
    if dt.names:
        return [(n, dt[n]) for n in dt.names]
    return [(f"c{j}", dt) for j in range(spec["ncols"])]


def _kind(dt):
    """'S' for text, else kind and size: 'i4', 'i8', 'f4', 'f8'."""
    return "S" if dt.kind in "SU" else f"{dt.kind}{dt.itemsize}"


def _digest(a):
    """sha256 of an array's bytes in C order (what a.tobytes() holds, without the copy)."""
    import numpy as np
    return hashlib.sha256(np.ascontiguousarray(a).view(np.uint8).reshape(-1)).hexdigest()


def _encode_dtype(dt):
    return dt.descr if dt.names else dt.str


def _make_reader(name, spec, threads):
    """A no-argument function that reads the input to `name`'s native result, with the column
    types of numpy's dtype where the reader takes them (text columns: the reader's own kind)."""
    import numpy as np
    path, sep = spec["path"], spec["sep"]
    cols = _columns(spec)
    if name in ("shmparse1", "shmparse", "numpy"):
        kw = dict(dtype=_dtype(spec["dtype"]), delimiter=spec["delimiter"])
        if name == "numpy":
            return lambda: np.loadtxt(path, **kw)
        import shmparse
        kw["threads"] = 1 if name == "shmparse1" else threads
        return lambda: shmparse.loadtxt(path, **kw)
    if name == "pandas":
        import pandas as pd
        # the default float parser (float_precision=None), as users run it: it is not exact
        dtype = {j: dt.name for j, (_, dt) in enumerate(cols) if _kind(dt) != "S"}
        return lambda: pd.read_csv(path, engine="c", header=None, sep=sep, dtype=dtype)
    if name == "polars":
        import polars as pl
        types = {"S": pl.String, "i4": pl.Int32, "i8": pl.Int64, "f4": pl.Float32, "f8": pl.Float64}
        schema = pl.Schema({n: types[_kind(dt)] for n, dt in cols})
        return lambda: pl.read_csv(path, has_header=False, separator=sep, schema=schema)
    if name == "pyarrow":
        import pyarrow as pa
        import pyarrow.csv as pacsv
        types = {"S": pa.string(), "i4": pa.int32(), "i8": pa.int64(), "f4": pa.float32(),
                 "f8": pa.float64()}
        ro = pacsv.ReadOptions(autogenerate_column_names=True)       # columns f0, f1, ...
        po = pacsv.ParseOptions(delimiter=sep)
        co = pacsv.ConvertOptions(column_types={f"f{j}": types[_kind(dt)]
                                                for j, (_, dt) in enumerate(cols)})
        return lambda: pacsv.read_csv(path, read_options=ro, parse_options=po, convert_options=co)
    if name == "duckdb":
        import duckdb
        con = duckdb.connect()       # in memory, one per reader (an input's reader is cached)
        types = {"S": "VARCHAR", "i4": "INTEGER", "i8": "BIGINT", "f4": "FLOAT", "f8": "DOUBLE"}
        columns = {n: types[_kind(dt)] for n, dt in cols}

        # The dialect and the types are given, so the sniffer is off: with columns= alone it
        # still samples the file first, a fixed ~90 ms that dwarfs the --quick inputs' parse
        def run():   # to an Arrow table, duckdb's native columnar result in Python
            rel = con.read_csv(path, header=False, sep=sep, columns=columns, auto_detect=False)
            return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()
        return run
    raise ValueError(f"unknown reader {name!r}")


def _peer_columns(name, result):
    """(rows, number of columns, [one numpy array per column]) of a peer's result."""
    if name == "pandas":
        return (*result.shape, [result.iloc[:, j].to_numpy() for j in range(result.shape[1])])
    if name == "polars":
        return (*result.shape, [result.to_series(j).to_numpy() for j in range(result.shape[1])])
    # pyarrow and duckdb: an Arrow table
    return (result.num_rows, result.num_columns,
            [result.column(j).to_numpy() for j in range(result.num_columns)])


def _first_difference(path, got, want):
    """A message on how `got` differs from numpy's `want`: the first differing row, its text."""
    import numpy as np
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"dtype/shape {got.dtype} {got.shape}, numpy.loadtxt gives {want.dtype} {want.shape}"
    g = np.ascontiguousarray(got).view(np.uint8).reshape(len(got), -1)
    w = np.ascontiguousarray(want).view(np.uint8).reshape(len(want), -1)
    bad = np.flatnonzero((g != w).any(axis=1))
    if not bad.size:
        return "its bytes differ from the reference's, yet equal a second numpy.loadtxt's"
    i = int(bad[0])
    with open(path, "rb") as f:
        for k, line in enumerate(f):
            if k == i:
                break
    return (f"{len(bad)} rows differ; the first, row {i}, text {line!r}: "
            f"shmparse {got[i].tolist()!r}, numpy.loadtxt {want[i].tolist()!r}")


class _Server:
    def __init__(self, kind, threads):
        self.kind, self.threads = kind, threads
        self.readers = {}        # (reader, input name) -> function
        self.ref = None          # (input name, numpy.loadtxt's result) for the peers' checks

    def reader(self, name, spec):
        allowed = SHMPARSE_READERS if self.kind == "shmparse" else PEER_READERS
        if name not in allowed:
            raise ValueError(f"a {self.kind} runner has no reader {name!r}")
        key = (name, spec["name"])
        if key not in self.readers:
            self.readers[key] = _make_reader(name, spec, self.threads)
        return self.readers[key]

    def hello(self):
        import numpy as np
        info = {"python": sys.version.split()[0], "pid": os.getpid(), "cwd": os.getcwd(),
                "versions": {"numpy": np.__version__}}
        if self.kind == "shmparse":
            import shmparse
            import shmparse._core
            info["shmparse"] = {"version": shmparse.__version__, "file": shmparse.__file__,
                                "core": shmparse._core.__file__}
        else:
            for lib in PEER_READERS[1:]:
                try:
                    info["versions"][lib] = __import__(lib).__version__
                except ImportError:
                    info["versions"][lib] = None
        return info

    def reference(self, spec):
        import numpy as np
        self.ref = None
        gc.collect()
        a = np.loadtxt(spec["path"], dtype=_dtype(spec["dtype"]), delimiter=spec["delimiter"])
        self.ref = (spec["name"], a)
        return {"sha256": _digest(a), "dtype": _encode_dtype(a.dtype), "shape": list(a.shape)}

    def check(self, name, spec, ref):
        import numpy as np
        got = self.reader(name, spec)()
        if name in SHMPARSE_READERS:
            same = (got.dtype == _dtype(ref["dtype"]) and list(got.shape) == ref["shape"]
                    and _digest(got) == ref["sha256"])
            if same:
                return {}
            want = np.loadtxt(spec["path"], dtype=_dtype(spec["dtype"]), delimiter=spec["delimiter"])
            raise AssertionError("not numpy.loadtxt's result: "
                                 + _first_difference(spec["path"], got, want))
        if name == "numpy":
            return {"differ": 0}
        if self.ref is None or self.ref[0] != spec["name"]:
            raise RuntimeError("check before reference")
        want = self.ref[1]
        rows, ncols, columns = _peer_columns(name, got)
        if (rows, ncols) != (len(want), spec["ncols"]):
            raise ValueError(f"reads {rows} rows x {ncols} columns, numpy.loadtxt "
                             f"{len(want)} x {spec['ncols']}")
        differ = 0
        for j, (field, dt) in enumerate(_columns(spec)):
            w = want[field] if want.dtype.names else want[:, j]
            if _kind(dt) == "S":
                differ += int(np.count_nonzero(np.asarray(columns[j], dtype=str) != w.astype(str)))
            else:   # bit for bit, after the cast to numpy's type (a no-op: the types were asked for)
                g = np.ascontiguousarray(columns[j], dtype=dt)
                u = f"u{dt.itemsize}"
                differ += int(np.count_nonzero(g.view(u) != np.ascontiguousarray(w).view(u)))
        return {"differ": differ, "values": int(len(want) * spec["ncols"])}

    def time(self, name, spec, n):
        fn = self.reader(name, spec)
        seconds = []
        for _ in range(n):
            gc.collect()             # the previous result is gone: no collection inside the call
            t = time.perf_counter()
            r = fn()
            seconds.append(time.perf_counter() - t)
            del r
        return {"seconds": seconds}

    def handle(self, req):
        op = req["op"]
        if op == "hello":
            return self.hello()
        if op == "reference":
            return self.reference(req["input"])
        if op == "check":
            return self.check(req["reader"], req["input"], req.get("ref"))
        if op == "time":
            return self.time(req["reader"], req["input"], int(req.get("n", 1)))
        raise ValueError(f"unknown op {op!r}")


def serve(argv):
    kind = argv[0]
    if kind not in ("shmparse", "peers"):
        raise SystemExit("usage: _bench_runner.py {shmparse|peers} [--threads N]")
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else None
    # Ctrl-C reaches the whole process group: the main process handles it and ends us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the protocol gets the real stdout; whatever a library prints goes to stderr instead
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    server = _Server(kind, threads)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        try:
            reply = dict(server.handle(req), ok=True)
        except Exception as e:   # a reader's failure is an answer, not the runner's end
            msg = str(e).strip().splitlines()
            reply = {"ok": False, "error": f"{type(e).__name__}: {msg[0] if msg else ''}".rstrip(": "),
                     "traceback": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    serve(sys.argv[1:])
