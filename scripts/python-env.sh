#!/usr/bin/env bash
# Makes a Python environment for `orrery serve --python-env NAME=DIR` out of
# Debian packages, without installing them on the host: downloads the named
# .deb files (apt-get download, no root needed) and keeps their Python modules
# (usr/lib/python3/dist-packages) as DIR.
#   scripts/python-env.sh DIR PACKAGE...
#   scripts/python-env.sh build/python-envs/sklearn python3-sklearn python3-sklearn-lib \
#     python3-scipy python3-joblib python3-threadpoolctl
# Name every package the modules need (apt-get download does not follow
# dependencies). Native libraries they link to (for scipy: liblbfgsb0,
# libgfortran5, BLAS) are not taken from the .debs: the host provides them
# (scripts/install-deps.sh installs those of the examples' environment).
# Idempotent: DIR/.orrery-env records the packages; when they are the same,
# nothing is downloaded. DIR is replaced in one rename, never left half-made.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: scripts/python-env.sh DIR PACKAGE..." >&2
  exit 2
fi
dir=$1
shift
wanted="packages: $*"
if [[ -f "$dir/.orrery-env" ]] && head -n 1 "$dir/.orrery-env" | grep -qxF "$wanted"; then
  echo "python-env: $dir present ($*)"
  exit 0
fi

mkdir -p "$(dirname "$dir")"
work=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get downloads as its own user (_apt) where it can: let it write there.
mkdir "$work/debs"
chmod a+x "$work"
chmod a+rwx "$work/debs"
download() { (cd "$work/debs" && apt-get download -qq "$@"); }
if ! download "$@" 2>/dev/null; then
  # A fresh machine may have no package lists yet.
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  download "$@"
fi

{
  echo "$wanted"
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb"
  done
} >"$work/stamp"
modules="$work/root/usr/lib/python3/dist-packages"
if [[ ! -d "$modules" ]]; then
  echo "python-env: none of $* holds Python modules (usr/lib/python3/dist-packages)" >&2
  exit 1
fi
mv "$work/stamp" "$modules/.orrery-env"
rm -rf "$dir.old"
if [[ -e "$dir" ]]; then mv "$dir" "$dir.old"; fi
mv "$modules" "$dir"
rm -rf "$dir.old"
echo "python-env: made $dir from $*"
