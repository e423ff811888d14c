#!/usr/bin/env bash
# README command 2: installs dependencies, builds, and runs every test (unit
# tests and end-to-end tests that start the real `orrery` binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j 2 --timeout 900 "$@"
