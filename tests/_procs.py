"""Processes seen through /proc (Linux): for the tests that check nothing is left running."""
import os


def proc_stat(pid):
    """(state, ppid, process group) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def children(pid):
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and (proc_stat(p) or ("", 0))[1] == pid]


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in "ZX"
