#!/usr/bin/env bash
# Makes the Python environments that example packages name, under
# build/python-envs/ (scripts/run-hub.sh and the tests serve them with
# --python-env NAME=build/python-envs/NAME). Idempotent.
#   sklearn: scikit-learn 1.2.1 and what it imports, from Debian 12's packages,
#            for examples/digits-svm-sklearn
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh build/python-envs/sklearn \
  python3-sklearn python3-sklearn-lib python3-scipy python3-joblib python3-threadpoolctl
