#!/usr/bin/env bash
# Builds a second tree (build-sanitize/) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, runs every unit test there, then runs each
# libFuzzer target of fuzz/ for a short, fixed time on its seed corpus.
#   scripts/sanitize.sh               unit tests + 20 s per fuzz target
#   FUZZ_SECONDS=300 scripts/sanitize.sh
# A finding stops it with the crash input under build-sanitize/fuzz-findings/;
# turn it into a regression test, then fix it. (scripts/test.sh runs this.)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
tree=build-sanitize
CC=clang CXX=clang++ cmake -S . -B "$tree" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPython3_EXECUTABLE=/usr/bin/python3 -DORRERY_SANITIZE=ON -DORRERY_FUZZ=ON \
  -DORRERY_BENCH=OFF >/dev/null
ninja -C "$tree" -j "$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$tree" && ctest --output-on-failure -j 2 -L unit --timeout 900)

corpus="$tree/fuzz-corpus"
findings="$tree/fuzz-findings"
rm -rf "$corpus" && mkdir -p "$findings"
/usr/bin/python3 fuzz/make_corpus.py "$corpus"
for target in http_head chunked infer_json infer_binary npy manifest archive; do
  name=${target}_fuzzer
  mkdir -p "$findings/$name"
  echo "sanitize: fuzzing $name for ${FUZZ_SECONDS} s"
  "$tree/fuzz/$name" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/$name/" \
    "$corpus/$name" 2>&1 | grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  if compgen -G "$findings/$name/*" >/dev/null; then
    echo "sanitize: $name found a crash: $(ls "$findings/$name")" >&2
    exit 1
  fi
done
echo "sanitize: unit tests and fuzz targets clean"
