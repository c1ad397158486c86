"""atheris entry point: coverage-guided differential fuzzing of shmparse.loadtxt vs numpy.loadtxt.

Run it through fuzz/run.sh (bounded time, a scratch copy of the corpus, a private
/dev/shm).  By hand:

    python fuzz/fuzz_loadtxt.py WORKDIR/corpus fuzz/corpus -max_total_time=60 -timeout=20

Every input is ``fuzz.harness.check_one(data)``: a crash (signal), a hang
(``-timeout``), an uncaught exception or a ``Mismatch`` with numpy is a finding;
libFuzzer writes the input to ``crash-*`` / ``timeout-*``.  Reproduce one with
``python fuzz/repro.py crash-...``.
"""
import os
import sys

import atheris

# the repository root, for `fuzz.harness`; appended, so that a PYTHONPATH given by run.sh (an
# instrumented build of shmparse) comes first
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports(include=["shmparse", "fuzz"]):
    import shmparse  # instrumented: Python-level coverage of the package
    import shmparse._core
    from fuzz.harness import check_one, describe


def TestOneInput(data: bytes) -> None:
    try:
        check_one(data)
    except BaseException:
        sys.stderr.write("\n=== finding: " + describe(data)[:2000] + "\n")
        raise


def main() -> None:
    sys.stderr.write(f"INFO: shmparse core: {shmparse._core.__file__}\n")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
