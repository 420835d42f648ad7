# Sourced by tests/t_prep_*.sh after tests/lib.sh: the converter's programs, fixtures and a
# scratch folder $TMP under build/.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PREP=${SEMAIM_PREP_BIN:-$PWD/bin/semaim-prep}   # override to test another build, e.g. build/asan/prep/semaim-prep
FIX=$PWD/build/tools/prep_fixtures
if [ ! -x "$PREP" ] || [ ! -x "$FIX" ]; then
  make -s bin/semaim-prep build/tools/prep_fixtures >/dev/null || { echo "FAIL: cannot build bin/semaim-prep and build/tools/prep_fixtures"; exit 1; }
fi
mkdir -p build
scratch TMP prep-test "$PWD/build"
# The fixture tree (tests/prep/fixtures.h) and the shard counts the checks expect.
make_suite() { "$FIX" suite "$TMP/src" || { echo "FAIL: fixture generation"; exit 1; }; }
SUITE_FLAGS="--train-shards 3 --val-shards 2 --progress none"
