#!/usr/bin/env bash
# Runs every tests/bench/*.sh. Each prints "bench <name>: <value> <unit>" lines (and anything
# else it likes); this script echoes those lines and records them, with the command, machine
# and date, in results/bench-<script>.json. Usage: tests/bench.sh [pattern]; learning.sh runs
# only as `tests/bench.sh learning` (make bench-learning).
set -u
cd "$(dirname "$0")/.."
mkdir -p results build
pat=${1:-}
machine="$(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB"
for b in tests/bench/*.sh; do
  [ -f "$b" ] || continue
  name=$(basename "$b" .sh)
  [ -n "$pat" ] && [[ "$name" != *"$pat"* ]] && continue
  # the learning benchmark trains for half an hour: only when asked for by name (make bench-learning)
  [ "$name" = learning ] && [ "$pat" != learning ] && continue
  out=build/bench-$name.out
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  bash "$b" | tee "$out"
  python3 - "$out" "$name" "$machine" "$date" "${OPENBLAS_CORETYPE:-unset}" > "results/bench-$name.json.tmp" <<'PY' && mv "results/bench-$name.json.tmp" "results/bench-$name.json"
import json, re, sys
out, name, machine, date, core = sys.argv[1:6]
figs = []
for line in open(out):
    m = re.match(r'^bench (\S+): (\S+) ?(.*)$', line.strip())
    if m:
        try: v = float(m.group(2))
        except ValueError: continue
        figs.append({"name": m.group(1), "value": v, "unit": m.group(3)})
json.dump({"bench": name, "command": "make bench-learning (tests/bench/learning.sh)" if name == "learning" else f"make bench (tests/bench/{name}.sh)", "machine": machine,
           "date": date, "env": {"OPENBLAS_CORETYPE": core}, "figures": figs}, sys.stdout, indent=1)
print()
PY
done
# results/README.md lists the current figures of every record
if [ -x bin/semaim-report ]; then bin/semaim-report bench --results results; fi
