"""The README's examples run, as a reader would run them.

Every ```python block runs as a script in a fresh interpreter and every ```bash block that
installs nothing runs in bash, in the README's order, in one temporary directory holding the
tables they read (``calls.tsv``, ``calls/*.tsv``, ``big.tsv``).  The blocks that install
(``pip install``) are the "Install" and "Two commands" sections: .ci/run runs the second
command itself, and this test checks its text is still there, word for word.
(The documentation's examples run in ``sphinx-build -b doctest``; see docs/conf.py.)
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from shmparse._sample import SEED_DTYPE, write_seed_file

README = Path(__file__).resolve().parent.parent / "README.md"
TEST_COMMAND = ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" '
                '&& python -m pytest tests')
DEMO_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install . && shmparse demo"


def _blocks(text):
    """``(language, code)`` of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```[ \t]*$", text, re.M | re.S)


def test_readme_keeps_the_two_commands():
    text = README.read_text()
    bash = [code.strip() for lang, code in _blocks(text) if lang == "bash"]
    assert TEST_COMMAND in bash, "the README's test command (run by .ci/run) changed"
    assert DEMO_COMMAND in bash, "the README's install-and-demo command changed"


def test_readme_examples_run(tmp_path):
    write_seed_file(str(tmp_path / "calls.tsv"), 1000, seed=1)
    (tmp_path / "calls").mkdir()
    for i, name in enumerate("abcd"):
        write_seed_file(str(tmp_path / "calls" / f"{name}.tsv"), 2000, seed=10 + i)
    write_seed_file(str(tmp_path / "big.tsv"), 60_000, seed=2)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    ran = {"python": 0, "bash": 0}
    for k, (lang, code) in enumerate(_blocks(README.read_text())):
        if lang == "python":
            script = tmp_path / f"readme_{k}.py"
            script.write_text(code)
            cmd = [sys.executable, "-W", "error", str(script)]
        elif lang == "bash" and "pip install" not in code:
            cmd = ["bash", "-e", "-c", code]
        else:
            continue
        r = subprocess.run(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        assert r.returncode == 0, f"README block {k} ({lang}) failed:\n{code}\n--- output:\n{r.stdout}"
        ran[lang] += 1
    # the four examples: loadtxt, shared arrays, loaders (python); the command (bash)
    assert ran == {"python": 3, "bash": 1}, ran
    # what the command wrote is numpy.loadtxt of each file
    with h5py.File(tmp_path / "calls.h5", "r") as f:
        assert list(f) == ["a.tsv", "b.tsv", "c.tsv", "d.tsv"]
        for name in f:
            want = np.loadtxt(tmp_path / "calls" / name, delimiter="\t", dtype=SEED_DTYPE)
            assert f[name][:].tobytes() == want.tobytes()
    with h5py.File(tmp_path / "matrix.h5", "r") as f:
        want = np.concatenate([np.loadtxt(tmp_path / "calls" / f"{n}.tsv", delimiter="\t",
                                          usecols=(1, 2, 3, 4), ndmin=2) for n in "abcd"])
        assert f["data"].compression == "gzip"
        assert f["data"][:].tobytes() == want.tobytes()
