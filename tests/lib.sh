# Sourced by every tests/t_*.sh first: the repository root as working folder, MPI as root,
# the PASS/FAIL vocabulary tests/run.sh counts, and scratch folders removed at exit.
#   pass NAME / bad NAME        one PASS: / FAIL: line (bad also sets fail=1)
#   check NAME CMD...           pass or bad by CMD's exit status
#   scratch VAR PREFIX [PARENT] VAR=a new folder under PARENT (default $TMPDIR), removed at exit
#   at_exit                     define it for more cleanup; it runs before the folders go
#   finish                      exit with the verdict (0 when nothing failed), as `exit $fail`
#   small_shards DIR            train (20 + 19 images) and val (10 + 9) shards of 32×32 images in
#                               DIR, 10 classes (tests/tools/make_shards.py); fails the test if not
#   usr1_after RUNDIR N OUT CMD...  runs CMD (an mpirun) in the background with its output in
#                               OUT, sends it SIGUSR1 once RUNDIR/metrics.jsonl has N step
#                               lines, and waits (killed after 120 s); $? is its exit status
#   record KIND NAME K=V...     one line of the reliability record: what the test fed or did
#                               and what came of it (build/reliability/<script>.jsonl, read by
#                               scripts/reliability_doc.py for docs/reliability.md). KIND:
#                               bad_input (program, exit, message), fault (writer, op, errno,
#                               outcome, message), kill (...), shard_change (...)
#   record_bad_input NAME EXIT STDERR-FILE   record bad_input with the first error line
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the shared tree
PY=/usr/bin/python3
fail=0
pass() { echo "PASS: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else bad "$name"; fi; }
finish() { exit $fail; }
usr1_after() {
  local dir=$1 n=$2 out=$3 pid guard rc k
  shift 3
  "$@" >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    k=$(grep -c '"event": "step"' "$dir/metrics.jsonl" 2>/dev/null || true)
    [ "${k:-0}" -ge "$n" ] && break
    sleep 0.1
  done
  kill -USR1 $pid
  ( sleep 120; kill -KILL $pid 2>/dev/null ) & guard=$!
  wait $pid; rc=$?
  kill $guard 2>/dev/null
  return $rc
}
REL_DIR=${REL_DIR:-$PWD/build/reliability}
_rel_log=$REL_DIR/$(basename "$0" .sh).jsonl
mkdir -p "$REL_DIR" && : >"$_rel_log"   # this script's record starts afresh
_json() {   # $1 as a JSON string literal (control characters become spaces)
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/ }; s=${s//$'\n'/ }; s=${s//$'\r'/ }
  printf '"%s"' "$s"
}
record() {
  local kind=$1 name=$2 kv line
  shift 2
  line="{\"kind\": $(_json "$kind"), \"test\": $(_json "$(basename "$0")"), \"name\": $(_json "$name")"
  for kv in "$@"; do line+=", $(_json "${kv%%=*}"): $(_json "${kv#*=}")"; done
  echo "$line}" >>"$_rel_log"
}
record_bad_input() {   # NAME EXIT STDERR-FILE [PROGRAM]
  local msg
  msg=$(grep -v -e '^ *$' -e ': note: ' -e '^\[' -e '^--------' "$3" 2>/dev/null | head -n 1)
  record bad_input "$1" exit="$2" message="$msg" ${4:+program="$4"}
}
small_shards() {
  $PY tests/tools/make_shards.py "$1" --counts 20,19 --size 32 >/dev/null &&
  $PY tests/tools/make_shards.py "$1" --counts 10,9 --size 32 --split val --seed 1 >/dev/null ||
    { echo "FAIL: make_shards ($1)"; exit 1; }
}
_lib_scratch=()
scratch() {
  local d
  d=$(mktemp -d "${3:-${TMPDIR:-/tmp}}/$2.XXXXXX") || { echo "FAIL: $2.scratch (mktemp -d failed)"; exit 1; }
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
