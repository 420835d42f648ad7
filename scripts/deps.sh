#!/usr/bin/env bash
# Checks (and, as root with apt, installs) the Debian packages semaim needs.
# Usage: scripts/deps.sh [--check]   --check only reports, never installs.
set -u
PKGS="build-essential pkg-config openmpi-bin libopenmpi-dev libpmix-dev libopenblas-openmp-dev
libhdf5-dev hdf5-tools libturbojpeg0-dev libjpeg62-turbo-dev slurm-wlm munge
python3-torch python3-torchvision python3-pil python3-numpy python3-h5py dataset-fashion-mnist iproute2 libdnnl-dev
clang libomp-14-dev librsvg2-bin"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "${1:-}" != "--check" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "deps: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null
  rc=$?
  [ $rc = 0 ] && exit 0
  echo "deps: apt-get install failed (exit $rc) for:$missing" >&2
  exit 1
fi
echo "deps: missing Debian packages:$missing" >&2
echo "deps: install them with: sudo apt-get install$missing" >&2
exit 1
