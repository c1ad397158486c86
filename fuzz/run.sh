#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of shmparse.loadtxt against numpy.loadtxt (atheris / libFuzzer).
#
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]      (default 300 s)
#
# Environment:
#   FUZZ_NATIVE=auto|1|0  auto (default): if clang and atheris's ASan+libFuzzer runtime are
#                         there, build an instrumented copy of the extension
#                         (-fsanitize=address,undefined,fuzzer-no-link; -fno-wrapv, or Python's
#                         -fwrapv hides signed and pointer overflow from UBSan) in the work dir and fuzz
#                         that, so libFuzzer sees the C core's edges and ASan/UBSan watch it;
#                         1: the same, or fail; 0: the normal extension, Python coverage only.
#   FUZZ_WORKDIR=DIR      where the scratch corpus, the build and findings go (default: a new
#                         temporary directory, kept and printed at the end).
#   FUZZ_TIMEOUT=S        a single input running longer than this is a hang (default 20).
#
# The seed corpus fuzz/corpus/ is copied, never grown in place.  Findings are written to
# $FUZZ_WORKDIR/findings/ (crash-*, timeout-*); replay one with `python fuzz/repro.py FILE`.
# Nothing is built in the repository: its own _core*.so is left alone.
# As root, the run gets a private /dev/shm (a tmpfs in its own mount namespace), so shared
# segments of concurrent test runs and this run cannot meet.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
SECONDS_TOTAL="${1:-300}"
shift || true
PY="${PYTHON:-python3}"

if [ "$(id -u)" = 0 ] && [ -z "${_FUZZ_IN_PRIVATE_SHM:-}" ] && command -v unshare >/dev/null \
   && unshare -m --propagation private true 2>/dev/null; then
    export _FUZZ_IN_PRIVATE_SHM=1
    exec unshare -m --propagation private sh -c \
        'mount -t tmpfs -o size=4g tmpfs /dev/shm && exec "$0" "$@"' "$0" "$SECONDS_TOTAL" "$@"
fi

"$PY" -c "import atheris" 2>/dev/null || { echo "atheris is not installed: pip install atheris" >&2; exit 2; }

WORK="${FUZZ_WORKDIR:-$(mktemp -d /tmp/shmparse-fuzz.XXXXXX)}"
mkdir -p "$WORK/corpus" "$WORK/findings"
cp -n "$HERE"/corpus/* "$WORK/corpus/" 2>/dev/null || true

# --- which extension: an instrumented copy, or the repository's own ------------------------------
NATIVE="${FUZZ_NATIVE:-auto}"
CLANG="$(command -v clang || command -v clang-14 || true)"
SITE="$("$PY" -c 'import atheris, os; print(os.path.dirname(os.path.dirname(atheris.__file__)))')"
ASAN_RT="$SITE/asan_with_fuzzer.so"
MODE="python-only"
PRELOAD=""
if [ "$NATIVE" != 0 ]; then
    if [ -n "$CLANG" ] && [ -f "$ASAN_RT" ]; then
        B="$WORK/build"
        STAMP="$(cd "$REPO" && cat setup.py src/*.c src/*.h src/*.pyx | sha1sum | cut -c1-40)"
        if [ "$(cat "$B/.built" 2>/dev/null)" != "$STAMP" ]; then
            echo "building an instrumented copy of the extension in $B (clang: $CLANG)"
            rm -rf "$B" && mkdir -p "$B"
            (cd "$REPO" && tar cf - --exclude='*.so' --exclude='__pycache__' --exclude='src/_core.c' \
                setup.py pyproject.toml README.md src shmparse) | (cd "$B" && tar xf -)
            if (cd "$B" && CC="$CLANG" LDSHARED="$CLANG -shared" SHMPARSE_SANITIZE=1 \
                  CFLAGS="-fsanitize=fuzzer-no-link -fno-wrapv" LDFLAGS="-fsanitize=fuzzer-no-link" \
                  "$PY" setup.py -q build_ext --inplace >"$B/build.log" 2>&1); then
                echo "$STAMP" >"$B/.built"
            else
                echo "instrumented build failed (see $B/build.log)" >&2
                [ "$NATIVE" = 1 ] && exit 2
            fi
        fi
        # the Python side always comes fresh from the repository (only the .so is built here)
        [ -f "$B/.built" ] && cp "$REPO"/shmparse/*.py "$REPO"/shmparse/*.pyi "$B/shmparse/"
        if [ -f "$B/.built" ]; then
            MODE="native (C core: ASan+UBSan+libFuzzer edge coverage; Python: atheris)"
            PRELOAD="$ASAN_RT"
            export PYTHONPATH="$B${PYTHONPATH:+:$PYTHONPATH}"
        fi
    elif [ "$NATIVE" = 1 ]; then
        echo "FUZZ_NATIVE=1 needs clang (apt-get install clang-14) and atheris's asan_with_fuzzer.so" >&2
        exit 2
    fi
fi
[ "$MODE" = python-only ] && export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
echo "coverage mode: $MODE"
echo "work dir: $WORK   time: ${SECONDS_TOTAL}s"

cd "$WORK"
LOG="$WORK/fuzz.log"
set +e
env ${PRELOAD:+LD_PRELOAD="$PRELOAD"} \
    ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    "$PY" "$HERE/fuzz_loadtxt.py" "$WORK/corpus" \
    -max_total_time="$SECONDS_TOTAL" -timeout="${FUZZ_TIMEOUT:-20}" -max_len=4096 \
    -rss_limit_mb=8192 -dict="$HERE/loadtxt.dict" -artifact_prefix="$WORK/findings/" \
    -print_final_stats=1 "$@" 2>&1 | tee "$LOG"
RC=${PIPESTATUS[0]}
set -e

echo
echo "=== summary"
echo "coverage mode: $MODE"
grep -m1 'INFO: shmparse core:' "$LOG" || true   # which extension was really imported
grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$LOG" | tail -n 2 || true
grep -E '^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb' "$LOG" || true
echo "findings: $(ls "$WORK/findings" | wc -l) file(s) in $WORK/findings"
ls "$WORK/findings" 2>/dev/null | sed 's/^/  /'
echo "libFuzzer exit status: $RC"
exit "$RC"
