# Shared by tests/t_prep_*.sh: PASS/FAIL helpers, built programs, a scratch directory.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PREP=${SEMAIM_PREP_BIN:-$PWD/bin/semaim-prep}   # override to test another build, e.g. build/asan/prep/semaim-prep
FIX=$PWD/build/tools/prep_fixtures
PY=/usr/bin/python3
failures=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; failures=$((failures + 1)); }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
finish() { [ "$failures" = 0 ]; exit $?; }
if [ ! -x "$PREP" ] || [ ! -x "$FIX" ]; then
  make -s bin/semaim-prep build/tools/prep_fixtures >/dev/null || { echo "FAIL: cannot build bin/semaim-prep and build/tools/prep_fixtures"; exit 1; }
fi
mkdir -p build
TMP=$(mktemp -d "$PWD/build/prep-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The fixture tree (tests/prep/fixtures.h) and the shard counts the checks expect.
make_suite() { "$FIX" suite "$TMP/src" || { echo "FAIL: fixture generation"; exit 1; }; }
SUITE_FLAGS="--train-shards 3 --val-shards 2 --progress none"
