"""Replay fuzz inputs (crash-*, timeout-*, corpus files) through the harness without atheris.

    python fuzz/repro.py FILE [FILE ...]

Prints each input's options and text, then OK or the mismatch / traceback.
Exit status 1 if any input fails.
"""
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.harness import check_one, describe  # noqa: E402


def main(paths):
    bad = 0
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        print(f"== {p}\n   {describe(data)[:3000]}")
        try:
            print("   OK:", check_one(data))
        except Exception:
            bad += 1
            traceback.print_exc()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
