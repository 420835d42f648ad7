#!/usr/bin/env bash
# Checks (and, as root with apt, installs) the Debian packages semaim needs.
# Usage: scripts/deps.sh [--check]   --check only reports, never installs.
# libdnnl-dev (oneDNN, the second GEMM backend) is optional: installed like the others when
# possible; without it `make` (GEMM=auto) builds the OpenBLAS backend only.
set -u
PKGS="build-essential pkg-config openmpi-bin libopenmpi-dev libopenblas-openmp-dev
libhdf5-dev hdf5-tools libturbojpeg0-dev libjpeg62-turbo-dev slurm-wlm munge
python3-torch python3-numpy python3-h5py dataset-fashion-mnist"
OPTIONAL="libdnnl-dev"
missing_of() {
  local m="" p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || m="$m $p"
  done
  echo "$m"
}
missing=$(missing_of $PKGS)
optional=$(missing_of $OPTIONAL)
[ -z "$missing$optional" ] && exit 0
if [ "${1:-}" != "--check" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  echo "deps: installing:$missing$optional" >&2
  apt-get update -qq >/dev/null
  if [ -n "$missing" ]; then
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    rc=$?
    if [ $rc != 0 ]; then echo "deps: apt-get install failed (exit $rc) for:$missing" >&2; exit 1; fi
  fi
  if [ -n "$optional" ] && ! apt-get install -y -qq --no-install-recommends $optional >/dev/null; then
    echo "deps: could not install the optional$optional: building without oneDNN (OpenBLAS only)" >&2
  fi
  exit 0
fi
if [ -n "$missing" ]; then
  echo "deps: missing Debian packages:$missing$optional" >&2
  echo "deps: install them with: sudo apt-get install$missing$optional" >&2
  exit 1
fi
echo "deps: optional$optional missing: building without oneDNN (install it for the oneDNN GEMM backend)" >&2
exit 0
