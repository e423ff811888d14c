#!/usr/bin/env bash
# Installs the Debian packages Orrery needs. Idempotent: checks each package
# first and installs only what is missing, so a second run changes nothing.
#   scripts/install-deps.sh             build, run and test dependencies
#   scripts/install-deps.sh --examples  also what examples/train.py needs
#   scripts/install-deps.sh --bench     also the peers and load tools of bench/
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ ccache pkg-config
  libssl-dev libsqlite3-dev libarchive-dev libzstd-dev libboost-dev
  libyaml-cpp-dev libyaml-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libxxhash-dev
  zlib1g-dev
  # the Open Inference Protocol over gRPC: the server's library and code generators, and the
  # Python side of the gRPC sample client and tests
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf
  # backends: TorchScript (with OpenBLAS, else 10x slower), XGBoost, ONNX via OpenCV DNN
  libtorch-dev libopenblas0-pthread libxgboost-dev libopencv-dnn-dev
  # worker processes of Python and native servables, and their sandbox
  python3-numpy bubblewrap libseccomp-dev
  # the training job example (examples/train-digits) and its tests: PyTorch for Python
  python3-torch
  # native libraries of the examples' Python environment (scripts/example-envs.sh): scipy's L-BFGS-B
  liblbfgsb0
  # tests and tools; clang and its runtimes build the fuzz targets (scripts/sanitize.sh)
  python3 sqlite3 zstd tar coreutils procps curl clang-format clang-tidy clang libclang-rt-14-dev
)
for option in "$@"; do
  case "$option" in
    --examples) packages+=(python3-sklearn python3-torch python3-onnx python3-xgboost python3-yaml) ;;
    --bench) packages+=(wrk nginx-light python3-torch python3-flask python3-fastapi python3-uvicorn) ;;
    *) echo "install-deps: unknown option $option" >&2; exit 2 ;;
  esac
done

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
$sudo apt-get clean
