#!/usr/bin/env bash
# Configures and builds Orrery into ./build (Release with debug info, Ninja,
# ccache when present). Safe to run again: only what changed is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
ninja -C build -j "$(nproc)"
