"""numpy's own loadtxt tests, run against shmparse.loadtxt with SHMPARSE_FALLBACK=0.

The yardstick of "drop-in": every test in numpy/lib/tests/test_loadtxt.py and
numpy/lib/tests/test_io.py::TestLoadTxt must pass, except those exercising a
documented fallback feature (docs/user/loadtxt.rst, "What falls back to numpy"), which must
fail only with the NotImplementedError that names that feature.
"""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

NP_TESTS = Path(np.__file__).parent / "lib" / "tests"
REPO = Path(__file__).resolve().parent.parent

# features routed to numpy.loadtxt (docs/user/loadtxt.rst, "What falls back to numpy"); a
# failure naming any other is a bug
DOCUMENTED_FALLBACKS = (
    r"converters",
    r"like=",
    r"dtype '(complex\d+|>c\d+|float128|>f16|complex256|>c32|object)'",
    r"dtype '(<U0|\|S0|<M8|<m8)' \(length or unit discovery\)",
    r"dtype 'StringDType\(.*\)'",    # numpy's variable-width strings ("T"), tested from numpy 2.5
)


@pytest.mark.skipif(not (NP_TESTS / "test_loadtxt.py").exists(),
                    reason="this numpy installation ships without its test files")
def test_numpy_loadtxt_suite_passes(tmp_path):
    report = tmp_path / "numpy-suite.xml"
    env = dict(os.environ, SHMPARSE_FALLBACK="0", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
         "-p", "tests._numpy_as_shmparse", f"--junitxml={report}",
         str(NP_TESTS / "test_loadtxt.py"), f"{NP_TESTS / 'test_io.py'}::TestLoadTxt"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    passed, fallback, bugs = 0, {}, []
    for case in ET.parse(report).iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is None:
            passed += case.find("skipped") is None
            continue
        msg = bad.get("message", "")
        m = re.search(r"NotImplementedError: shmparse\.loadtxt: (.*?) is not handled", msg)
        if m and any(re.fullmatch(p, m.group(1)) for p in DOCUMENTED_FALLBACKS):
            fallback[m.group(1)] = fallback.get(m.group(1), 0) + 1
        else:
            bugs.append(f"{case.get('classname')}::{case.get('name')}: {msg[:300]}")
    print(f"numpy suite: {passed} passed; fallback-only failures: {fallback}")
    assert not bugs, "\n".join(bugs)
    assert passed > 200
