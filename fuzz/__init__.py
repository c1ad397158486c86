"""Coverage-guided differential fuzzing of shmparse.loadtxt against numpy.loadtxt.

harness.py (no atheris needed), fuzz_loadtxt.py (atheris entry point), run.sh (bounded run),
make_corpus.py (the seed corpus in corpus/), repro.py (replay findings).
"""
