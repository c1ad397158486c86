"""A built-in sample in the seed's format (methylation calls: chr, pos, pct, c, t)."""
from __future__ import annotations

import numpy as np

SEED_DTYPE = np.dtype([("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")])
CHROMS = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrY", "chrM"]


def write_seed_file(path: str, rows: int, seed: int = 0, block: int = 100_000) -> None:
    """Write `rows` tab-separated methylation rows to `path` (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    chroms = np.array(CHROMS)
    with open(path, "w") as f:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            c = rng.integers(0, 50, n)
            t = rng.integers(0, 50, n)
            pct = np.round(100.0 * c / np.maximum(c + t, 1), 2)
            pos = rng.integers(1, 2**28, n)
            names = chroms[rng.integers(0, len(chroms), n)]
            f.write("".join(f"{a}\t{b}\t{p:g}\t{x}\t{y}\n" for a, b, p, x, y in zip(names, pos, pct, c, t)))
