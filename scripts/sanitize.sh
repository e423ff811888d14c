#!/usr/bin/env bash
# Runs every unit test under AddressSanitizer and UndefinedBehaviorSanitizer
# (a second tree, build-sanitize/, g++), then each libFuzzer target of fuzz/
# (build-fuzz/, clang) for a short, fixed time on its seed corpus.
#   scripts/sanitize.sh                       unit tests + 20 s per fuzz target
#   FUZZ_SECONDS=600 scripts/sanitize.sh      longer fuzzing (scripts/fuzz.sh: fuzzing only)
#   SANITIZE_UNIT=0 scripts/sanitize.sh       fuzzing only
# A finding stops it with the input under build-fuzz/findings/<target>/: add it
# as a regression test beside the parser's unit tests, then fix the parser.
# (scripts/test.sh runs this after the main test suite.)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
SANITIZE_UNIT=${SANITIZE_UNIT:-1}

if [[ "$SANITIZE_UNIT" == 1 ]]; then
  # -O0 with line tables only: stack traces name the lines, and the tree
  # builds in about the time of the usual -O2 -g (-O1 takes twice as long).
  # A unity build (eight sources a unit) parses the heavy headers less often:
  # 6 minutes instead of 10 on a fresh 2-core machine; reports still name the
  # original files and lines. (build/ stays one unit a file, for quick rebuilds.)
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" -DPython3_EXECUTABLE=/usr/bin/python3 \
    -DORRERY_SANITIZE=ON -DORRERY_BENCH=OFF \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=8 >/dev/null
  ninja -C build-sanitize -j "$(nproc)"
  # libtorch and OpenBLAS are not instrumented and keep what they allocate
  # for the process's life: leak reports are about them, not about Orrery.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-sanitize --output-on-failure -j 2 -L unit --timeout 900
fi

CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja >/dev/null
ninja -C build-fuzz -j "$(nproc)"
corpus=build-fuzz/corpus
findings=build-fuzz/findings
rm -rf "$findings"  # the corpus grows from run to run
/usr/bin/python3 fuzz/make_corpus.py "$corpus"
for target in http_head chunked infer_json infer_binary npy manifest archive; do
  name=${target}_fuzzer
  mkdir -p "$findings/$name"
  echo "sanitize: $name for ${FUZZ_SECONDS} s"
  status=0
  build-fuzz/$name -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/$name/" \
    "$corpus/$name" >"$findings/$name.log" 2>&1 || status=$?
  grep -E "^#[0-9]+ +DONE|^stat::number_of_executed_units" "$findings/$name.log" || true
  if [[ $status -ne 0 ]] || compgen -G "$findings/$name/*" >/dev/null; then
    grep -E "ERROR|SUMMARY|Test unit written" "$findings/$name.log" >&2 || true
    echo "sanitize: $name found a crash (log: $findings/$name.log)" >&2
    exit 1
  fi
done
echo "sanitize: unit tests under ASan/UBSan and the fuzz targets are clean"
