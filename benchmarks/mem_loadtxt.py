#!/usr/bin/env python3
"""One loadtxt of the seed table, for ../shared/tools/memwatch.py:
  memwatch.py -- python benchmarks/mem_loadtxt.py shmparse|numpy|baseline bench-data/seed.tsv
`baseline` only imports the libraries (the interpreter's own footprint)."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import shmparse  # noqa: E402
from shmparse._sample import SEED_DTYPE  # noqa: E402

which, path = sys.argv[1], sys.argv[2]
if which == "shmparse":
    a = shmparse.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
elif which == "numpy":
    a = np.loadtxt(path, dtype=SEED_DTYPE, delimiter="\t")
else:
    a = np.zeros(0, SEED_DTYPE)
print(f"{which}: rows={len(a)} result_mb={a.nbytes / 1e6:.1f}")
