# Sourced by every tests/t_*.sh first: the repository root as working folder, MPI as root,
# the PASS/FAIL vocabulary tests/run.sh counts, and scratch folders removed at exit.
#   pass NAME / bad NAME        one PASS: / FAIL: line (bad also sets fail=1)
#   check NAME CMD...           pass or bad by CMD's exit status
#   scratch VAR PREFIX          VAR=a new folder under $TMPDIR, removed when the script exits
#   at_exit                     define it for more cleanup; it runs before the folders go
# A script ends with `exit $fail`.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the shared tree
PY=/usr/bin/python3
fail=0
pass() { echo "PASS: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else bad "$name"; fi; }
_lib_scratch=()
scratch() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX") || { echo "FAIL: $2.scratch (mktemp -d failed)"; exit 1; }
  _lib_scratch+=("$d")
  printf -v "$1" '%s' "$d"
}
_lib_exit() {
  local rc=$?
  if declare -F at_exit >/dev/null; then at_exit; fi
  for d in "${_lib_scratch[@]}"; do rm -rf "$d"; done
  exit $rc
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM HUP
