#!/usr/bin/env bash
# README command 2: installs dependencies, builds, and runs every test (unit
# tests and end-to-end tests that start the real `orrery` binary), then
# scripts/sanitize.sh: the unit tests under ASan and UBSan, and each fuzz
# target for a short, fixed time (docs/testing.md). Arguments go to ctest
# (then the sanitizer pass is skipped: a selection is for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/example-envs.sh
(cd build && ctest --output-on-failure -j 2 --timeout 900 "$@")
if [[ $# -eq 0 ]]; then
  scripts/sanitize.sh
fi
