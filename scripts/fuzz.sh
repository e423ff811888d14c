#!/usr/bin/env bash
# Fuzzes each parser longer than CI does: FUZZ_SECONDS per target (default
# 600), corpora kept in build-fuzz/corpus/ between runs. Needs clang
# (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS=${FUZZ_SECONDS:-600}
SANITIZE_UNIT=0 exec scripts/sanitize.sh
