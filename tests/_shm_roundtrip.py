"""Round trips of SharedArrays across processes, run by test_shared.py in a child interpreter
(``python -W error _shm_roundtrip.py METHOD DIR``) so that its exit, and anything Python's
resource tracker prints then, can be checked.  Prints "ok" last when every check held."""
import multiprocessing as mp
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import shmparse

DT = np.dtype([("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")])


def make(n):
    """A worker creates and fills a segment, and hands its ownership to the caller."""
    sa = shmparse.SharedArray.create((n,), DT)
    sa.array["pos"] = np.arange(n)
    sa.array["chr"] = b"chrW"
    return sa.handover()


def bump(args):
    """A worker writes into an array it received: the parent sees it only if no copy was made."""
    sa, i = args
    sa.array["c"][i] = os.getpid()
    return sa.name, sa.owner


def parse(path):
    return shmparse.loadtxt(path, dtype=DT, delimiter="\t", shared=True).handover()


def queue_child(inbox, outbox):
    sa = inbox.get()
    sa.array["pct"] = 2.5                # write through the received handle
    outbox.put((sa.name, sa.owner))
    outbox.put(make(7))                  # and send one back, owned by the receiver


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main(method, tmp):
    ctx = mp.get_context(method)
    path = os.path.join(tmp, "in.tsv")
    with open(path, "w") as f:
        for i in range(3000):
            f.write(f"chr{i % 5}\t{i}\t{i / 8}\t{i % 7}\t{i * 3}\n")
    ref = np.loadtxt(path, dtype=DT, delimiter="\t")
    parent_owned = shmparse.share(np.zeros(4, DT))
    check(len(pickle.dumps(parent_owned)) < 400, "a pickled SharedArray carries only its handle")

    # Pool: arguments (attach, write through) and results (ownership handed over)
    with ctx.Pool(2) as pool:
        made = pool.map(make, [5, 6])
        check(all(m.owner for m in made), "the parent owns what workers handed over")
        check(made[1].array["pos"].tolist() == list(range(6)), "Pool results hold the data")
        check((made[0].array["chr"] == b"chrW").all(), "structured fields survive")
        seen = pool.map(bump, [(parent_owned, i) for i in range(4)])
        check(all(name == parent_owned.name and not owner for name, owner in seen),
              "workers attach, they do not own")
        check((parent_owned.array["c"] != 0).all(), "workers wrote into the parent's pages")
        parsed = pool.apply(parse, (path,))
        check(parsed.owner and parsed.array.tobytes() == ref.tobytes(),
              "loadtxt(shared=True) in a worker equals numpy.loadtxt")

    # Queue: to a child and back
    inbox, outbox = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=queue_child, args=(inbox, outbox))
    proc.start()
    inbox.put(parent_owned)
    name, child_owner = outbox.get(timeout=60)
    back = outbox.get(timeout=60)
    proc.join(60)
    check(proc.exitcode == 0, f"queue child exit code {proc.exitcode}")
    check(name == parent_owned.name and not child_owner, "the Queue child attached")
    check((parent_owned.array["pct"] == 2.5).all(), "the Queue child wrote into our pages")
    check(back.owner and back.array["pos"].tolist() == list(range(7)), "Queue result owned")

    # ProcessPoolExecutor: results
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        outs = list(ex.map(parse, [path] * 3))
    check(all(o.owner and o.array.tobytes() == ref.tobytes() for o in outs),
          "ProcessPoolExecutor results equal numpy.loadtxt and are owned here")
    check(len({o.name for o in outs}) == 3, "one segment per result")
    # no explicit close: owners release their segments at exit, without any warning
    print("ok", method)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
