#!/usr/bin/env bash
# README command 1: installs dependencies, builds, starts `orrery serve` on its
# embedded defaults (./orrery-data, http://127.0.0.1:7070) and publishes the
# example packages under examples/ as public servables of the tenant
# `examples`. The hub stays in the foreground; Ctrl-C stops it. Running it
# again reuses the data and publishes only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/example-envs.sh
orrery=build/orrery
export ORRERY_URL=${ORRERY_URL:-http://127.0.0.1:7070}

# The sklearn example needs its Python environment (scripts/example-envs.sh).
$orrery serve --python-env sklearn=build/python-envs/sklearn "$@" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do
  curl -fs "$ORRERY_URL/v2/health/live" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "run-hub: orrery serve exited" >&2; exit 1; }
  sleep 0.1
done

# The hub admin token (written on first start) creates the examples tenant and
# a short-lived publisher token for it.
$orrery tenant create examples --exist-ok
publisher=$($orrery token create --tenant examples --role publisher --expires-in 10m \
  --description "run-hub.sh example publisher" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
is_pipeline() { grep -q '^backend: pipeline' "$1/orrery.yaml"; }
for package in examples/*/; do
  [[ -f "$package/orrery.yaml" ]] || continue
  is_pipeline "$package" && continue
  ORRERY_TOKEN=$publisher $orrery publish "$package" --public --if-changed
done
# Pipelines last: their steps are the servables published above.
for package in examples/*/; do
  [[ -f "$package/orrery.yaml" ]] && is_pipeline "$package" || continue
  ORRERY_TOKEN=$publisher $orrery publish "$package" --public --if-changed
done
$orrery list --tenant examples
$orrery list --kind datasets --tenant examples
# Every example servable answers a real inference: verify runs the examples
# of its manifest through the serving path and compares the outputs.
for package in examples/*/; do
  [[ -f "$package/orrery.yaml" ]] || continue
  grep -q '^kind: dataset' "$package/orrery.yaml" && continue
  name=$(sed -n 's/^name: *//p' "$package/orrery.yaml")
  ORRERY_TOKEN=$publisher $orrery verify "examples/$name"
done
echo "run-hub: the hub is up at $ORRERY_URL (admin token: orrery-data/admin.token). Ctrl-C stops it."
wait $server
