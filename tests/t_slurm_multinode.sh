#!/usr/bin/env bash
# The jobs/ scripts on a real three-node Slurm cluster made on this machine: every node is a
# network namespace with its own address and hostname and its own slurmd, one slurmctld,
# munge as in t_slurm.sh (tests/slurm/cluster.sh start-nodes; torn down by pid and namespace
# at the end, whatever happens). Open MPI between the nodes runs over TCP only, on the
# nodes' veths (SEMAIM_MPI_BTL=tcp,self, SEMAIM_MPI_IF=semaim0): the nodes share /dev/shm
# like everything else on this machine, so shared memory is excluded, and the bytes on each
# node's veth are checked against what the ring all-reduce must send.
# Scenarios: the prep array spread over the nodes; 1, 2 and 3 nodes give the same losses;
# Slurm's time-limit warning → checkpoint → requeue onto another node set → bit-exact; a node
# dies mid-step → the job ends in bounded time, no rank left, the resubmitted job resumes from
# the newest checkpoint bit-exactly; a network stall (a node's link down) → the stall watchdog
# ends the job naming the phase; the scaling sweep on 1, 2, 3 nodes and its report.
# If the namespaces or the cluster cannot be made, this fails loudly; it never skips.
# SEMAIM_KEEP=1 keeps the work dir.
. "$(dirname "$0")/lib.sh"
repo=$PWD
py=$PY

# Nothing from an enclosing Slurm job or Open MPI setting may leak into our submissions.
for v in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\|SBATCH_[A-Za-z0-9_]*\|SALLOC_[A-Za-z0-9_]*\|SRUN_[A-Za-z0-9_]*\|OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset SEMAIM_LAUNCHER SEMAIM_REQUEUE SEMAIM_EVAL_AT_INIT SEMAIM_MPI_IF SEMAIM_MPI_BTL
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export SEMAIM_HOME=$repo
# between nodes: TCP on the nodes' own interface, nothing else (jobs/mpi-net.sh)
export SEMAIM_MPI_BTL=tcp,self SEMAIM_MPI_IF=semaim0
# 3 ranks on 2 cores: a rank waiting in MPI must yield its core, not spin on it
export OMPI_MCA_mpi_yield_when_idle=1

for b in bin/semaim-prep bin/semaim-train bin/semaim-report build/tools/startup_barrier_check; do
  [ -x "$b" ] || { echo "FAIL: multinode_prerequisites ($b is not built: run make)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "FAIL: multinode_prerequisites (network namespaces need root)"; exit 1; }
work=$(mktemp -d /tmp/tmn.XXXXXX)   # short: the munge socket path must fit in 108 bytes
c=$work/cluster
. tests/slurm/cluster.sh
bg=()
at_exit() {
  local p
  for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; done
  slurm_cluster_stop "$c"
  if [ "${SEMAIM_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}

t0=$(date +%s)
if ! slurm_nodes_start "$c" 3 2; then
  echo "FAIL: multinode_cluster_starts (namespaces, veths, bridge, munged/slurmctld/slurmd: see the lines above)"
  exit 1
fi
. "$c/net.env"
pass "multinode_cluster_starts ($(sinfo -h -N -o '%N@%o:%T' | tr '\n' ' '))"

# ---- helpers ---------------------------------------------------------------------------
field() { scontrol show job -o "$1" 2>/dev/null | head -n 1 | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2-; }
terminal() { case $1 in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) return 0;; esac; return 1; }
wait_job() {   # ID SECONDS: prints the final state (or WAIT-TIMEOUT:<state>)
  local s="" i
  for ((i = 0; i < $2 * 5; i++)); do s=$(field "$1" JobState); terminal "$s" && { echo "$s"; return; }; sleep 0.2; done
  echo "WAIT-TIMEOUT:$s"
}
nsteps() { local n; n=$(grep -c '"event": "step"' "$1/metrics.jsonl" 2>/dev/null); echo "${n:-0}"; }
wait_steps() {   # run folder, count, seconds
  local i
  for ((i = 0; i < $3 * 5; i++)); do [ "$(nsteps "$1")" -ge "$2" ] && return 0; sleep 0.2; done; return 1
}
wait_grep() {   # pattern, file, seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do grep -q -- "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
show_log() { [ -f "$1" ] && sed 's/^/    | /' "$1" | grep -v '^    | *$' | tail -n "${2:-15}"; }
now() { date +%s.%N; }
since() { $py -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
# semaim-train processes left in any node (their namespaces hold all of the nodes' processes)
ranks_left() {
  local k p n=0
  for k in 1 2 3; do
    for p in $(netns_pids "$c" "$k"); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = semaim-train ] && n=$((n + 1)); done
  done
  echo $n
}
sent() { cat "/sys/class/net/$(netns_veth "$c" "$1")/statistics/rx_bytes"; }   # bytes node K sent
last_field() { grep "\"event\": \"$2\"" "$1/metrics.jsonl" 2>/dev/null | tail -n 1 | sed -n "s/.*\"$3\": \"\{0,1\}\([^,\"}]*\).*/\1/p"; }
newest_ckpt() { local f n=""; for f in "$1"/ckpt-*.bin; do [[ ${f##*/} =~ ^ckpt-[0-9]+\.bin$ ]] && n=${f##*/}; done; echo "$n"; }
# an uninterrupted reference on this machine's own namespace: the transport does not change the bits
reference() {   # ranks, out, args...
  local n=$1 out=$2; shift 2
  OMPI_MCA_btl=self,vader timeout 300 mpirun -np "$n" --bind-to none "$repo/bin/semaim-train" "$@" --out "$out" \
    >"$out.log" 2>&1
}

# ---- the nodes: own hostnames, own addresses, nothing routed beyond the bridge -----------
hosts=$(timeout 60 srun -N3 --ntasks-per-node=1 bash -c 'echo "$(hostname) $(ip -4 -o addr show | awk "{print \$2\"=\"\$4}" | sort | tr "\n" " ")$(ip -4 route | tr "\n" ";")"' 2>&1 | sort)
want=$(for k in 1 2 3; do echo "node$k lo=127.0.0.1/8 semaim0=$NN_NET.$k/24 $NN_NET.0/24 dev semaim0 proto kernel scope link src $NN_NET.$k ;"; done)
check "multinode_nodes_have_own_hostname_address_and_no_default_route" [ "$hosts" = "$want" ]
[ "$hosts" = "$want" ] && echo "    ${hosts//$'\n'/$'\n'    }" || { echo "got:"; echo "$hosts"; echo "want:"; echo "$want"; }

# ---- the start-up barrier (src/core/mpi_start.h): a PMIx fence that collects no data, the
# kind that ends Open MPI's MPI_Init, does not wait here; mpi_start's barrier must. Rank 1
# sleeps 2 s before each; the others must wait at least 1.5 s in the barrier.
bar=$(timeout 60 srun -N3 --ntasks-per-node=1 --mpi=pmix "$repo/build/tools/startup_barrier_check" 2 2>&1 | sort)
barok=$(printf '%s\n' "$bar" | awk '$1 == "rank" && $2 != 1 { n++; if ($4 == 0 && $6 >= 1.5) ok++ } END { print (n == 2 && ok == 2) ? 1 : 0 }')
nocollect=$(printf '%s\n' "$bar" | awk '$1 == "rank" && $2 != 1 { printf "%s ", $10 }')
check "startup_barrier_waits_for_every_rank (ranks 0 and 2 wait out rank 1's 2 s: $(printf '%s\n' "$bar" | awk '$1 == "rank" { printf "rank %s %s s; ", $2, $6 }')a no-collect fence waited ${nocollect}s)" [ "$barok" = 1 ]
[ "$barok" = 1 ] || printf '%s\n' "$bar" | sed 's/^/    /' | head -n 10

sub=$work/submit
mkdir -p "$sub"
cd "$sub" || exit 1

# ---- 1. the prep array spread over the three nodes, then the manifest job -----------------
"$repo/bin/semaim-prep" fmnist --src /usr/share/datasets/fashion-mnist --out "$work/jpeg" --limit 600 --threads 2 >/dev/null 2>err.txt \
  || { bad "fmnist_jpegs ($(head -c 200 err.txt))"; exit 1; }
CONV="--train-shards 6 --val-shards 3 --store raw --size 32 --val-size 32 --val-resize 32"   # raw here, jpeg in t_slurm.sh
# 2 cpus per task on 2-cpu nodes: one task per node
ids=$("$repo/jobs/prep.sh" --parsable --tasks 3 --cpus-per-task 2 --src "$work/jpeg" --out "$work/shards" $CONV 2>err.txt) \
  || { bad "prep_submit ($(head -c 200 err.txt))"; exit 1; }
read -r arr man <<<"$ids"
st=$(wait_job "$man" 120)
on=$(sed -n 's/^prep: .* task [0-9] of [0-9]* on \(node[0-9]\),.*/\1/p' logs/semaim-prep-"${arr}"_*.out 2>/dev/null | sort | tr '\n' ' ')
tasks=$(scontrol show job -o "$arr" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
check "prep_array_spread_over_3_nodes_then_manifest (tasks on: $on; $tasks; manifest job $st)" \
  bash -c "[ '$on' = 'node1 node2 node3 ' ] && [ \"$(echo $tasks)\" = '3 JobState=COMPLETED' ] && [ '$st' = COMPLETED ]"
[ "$st" = COMPLETED ] || { show_log "logs/semaim-prep-manifest-$man.out"; for t in 0 1 2; do show_log "logs/semaim-prep-${arr}_$t.out"; done; }
"$repo/bin/semaim-prep" convert --src "$work/jpeg" --out "$work/shards1" $CONV --progress none --threads 2 >/dev/null 2>&1
same=1 nfiles=0
for f in train/train-0000{0,1,2,3,4,5}-of-00006.h5 val/val-0000{0,1,2}-of-00003.h5 manifest.json; do
  nfiles=$((nfiles + 1))
  cmp -s "$work/shards/$f" "$work/shards1/$f" || { same=0; echo "    differs: $f"; }
done
check "prep_array_on_3_nodes_equals_one_node_conversion ($nfiles files)" [ $same = 1 ]
[ -f "$work/shards/manifest.json" ] || { bad "prep_produced_no_shards (cannot continue)"; exit 1; }

# ---- bad MPI network settings: refused with exit 2 before anything runs or is written ---
SEMAIM_MPI_BTL=tcp "$repo/jobs/scaling.sh" --data "$work/shards" --sweep-dir "$work/badsweep" --max-ranks 2 >/dev/null 2>err.txt; rc=$?
record_bad_input scaling_sh_bad_mpi_btl "$rc" err.txt jobs/scaling.sh
check "scaling_sh_rejects_bad_mpi_btl (exit $rc: $(head -c 120 err.txt))" \
  bash -c "[ $rc = 2 ] && grep -q \"SEMAIM_MPI_BTL: 'tcp' lacks self\" err.txt && [ -z \"\$(squeue -h)\" ] && [ ! -e '$work/badsweep' ]"
SEMAIM_MPI_IF=10.0.0.300/8 timeout 120 sbatch --wait -Q -J badnet "$repo/jobs/pretrain.sbatch" --data "$work/shards" --out "$work/badnet" >/dev/null 2>&1
rc=$?
grep -h SEMAIM_MPI_IF logs/badnet-*.out 2>/dev/null | head -n 1 >err.txt; record_bad_input pretrain_job_bad_mpi_interface "$rc" err.txt jobs/pretrain.sbatch
check "pretrain_job_rejects_bad_mpi_interface (exit $rc: $(grep -h SEMAIM_MPI_IF logs/badnet-*.out 2>/dev/null | head -c 120))" \
  bash -c "[ $rc = 2 ] && grep -q \"SEMAIM_MPI_IF: '10.0.0.300/8' is not an IPv4 subnet\" logs/badnet-*.out && [ ! -e '$work/badnet' ]"

# ---- 2. the same losses on 1, 2 and 3 nodes (global batch 12), over TCP ---------------------
MODEL="--image 32 --patch 8 --width 32 --depth 2 --dec-depth 2 --heads 2 --warmup-steps 5 --base-lr 1e-3"
EQ="--steps 20 --assign deal --log-every 1000 --check-every 5"
eqok=1
for n in 1 2 3; do
  before=()
  for k in 1 2 3; do before[k]=$(sent $k); done
  id=$(sbatch --parsable -J eq$n --nodes=$n --ntasks-per-node=1 "$repo/jobs/pretrain.sbatch" --data "$work/shards" \
         --out "$work/eq$n" $MODEL $EQ --batch $((12 / n)) 2>err.txt) || { bad "eq${n}_submit ($(head -c 200 err.txt))"; eqok=0; continue; }
  st=$(wait_job "$id" 120)
  log=logs/eq$n-$id.out
  nodes=$(field "$id" NodeList)
  # the ring: every rank sends 2(N-1)/N of the gradient bytes per step (plus the small reductions)
  params=$(last_field "$work/eq$n" run_start params)
  need=$(( n > 1 ? 20 * 2 * (n - 1) * 4 * ${params:-0} / n : 0 ))
  traffic="" tcp=1 members=" $(scontrol show hostnames "$nodes" | tr '\n' ' ')"
  for k in 1 2 3; do
    b=$(( $(sent $k) - ${before[k]} )); traffic+="node$k ${b}B "
    [[ $members == *" node$k "* ]] && [ "$b" -lt "$need" ] && tcp=0
  done
  check "pretrain_${n}_node_job (state $st on $nodes; sent $traffic>= ${need}B each over TCP)" \
    bash -c "[ '$st' = COMPLETED ] && [ $tcp = 1 ] && grep -q 'MPI: pml ob1, btl tcp,self, interfaces semaim0' '$log' &&
             grep -q 'restart 0 on $n node(s)' '$log'"
  [ "$st" = COMPLETED ] || { show_log "$log" 30; eqok=0; }
done
if [ $eqok = 1 ] && $py - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
ev = {n: [json.loads(l) for l in open(f"{w}/eq{n}/metrics.jsonl")] for n in (1, 2, 3)}
L = {n: [e["loss"] for e in ev[n] if e["event"] == "step"] for n in ev}
for n in ev:
    s = [e for e in ev[n] if e["event"] == "run_start"][0]
    assert s["ranks"] == n and s["nodes_hint"] == str(n) and s["global_batch"] == 12 and s["host"] in ("node1", "node2", "node3"), s
    assert len(L[n]) == 20, (n, len(L[n]))
for n in (2, 3):
    for a, b in zip(L[1], L[n]):
        assert abs(a - b) <= 1e-5 * abs(a), (n, L[1], L[n])
print("    losses", " ".join(f"{x:.5f}" for x in L[1][:5]), "...", f"{L[1][-1]:.5f}")
EOF
then pass "pretrain_1_2_3_nodes_same_losses"; else bad "pretrain_1_2_3_nodes_same_losses"; fi

# ---- 3. time-limit warning → checkpoint → requeue onto another node set → bit-exact ------
# --time=1 --signal=B:USR1@28: slurmctld checks time limits about every 30 s and sends the
# warning up to one check early, so it comes 2-35 s in (never before the batch shell's trap).
LONG="--data $work/shards $MODEL --batch 6 --steps 10000000 --ckpt-every 100000 --log-every 100000"
tl=$(sbatch --parsable -J tl --nodes=2 --ntasks-per-node=1 --time=1 --signal=B:USR1@28 "$repo/jobs/pretrain.sbatch" \
       $LONG --out "$work/tl" 2>err.txt) || { bad "timelimit_submit ($(head -c 200 err.txt))"; exit 1; }
tlog=logs/tl-$tl.out
st=""; rs=""
for ((i = 0; i < 450; i++)); do
  st=$(field "$tl" JobState); rs=$(field "$tl" Restarts)
  [ "$st" = PENDING ] && [ "$rs" = 1 ] && break
  terminal "$st" && break
  sleep 0.2
done
first=$(sed -n 's/^pretrain: .* restart 0 on 2 node(s) \[\([^]]*\]*\)\].*/\1/p' "$tlog" | head -n 1)
s1=$(last_field "$work/tl" run_end step)
check "timelimit_warning_checkpoints_and_requeues (state $st, restarts $rs, first on $first, stopped at step ${s1:-?})" \
  bash -c "[ '$st' = PENDING ] && [ '$rs' = 1 ] && grep -q 'SIGUSR1: the ranks checkpoint' '$tlog' && [ -f '$work/tl/ckpt-$(printf %08d "${s1:-0}").bin' ]"
if [ "$st" = PENDING ]; then
  # elsewhere: not the first node of the first segment (three nodes leave no two others)
  ex=$(scontrol show hostnames "$first" | head -n 1)
  sleep 2   # a credential issued in the second of the requeue counts as revoked (t_slurm.sh)
  scontrol update JobId="$tl" ExcNodeList="$ex" StartTime=now || bad "timelimit_scontrol_update"
  if wait_grep 'restart 1 on 2 node(s)' "$tlog" 60 && wait_steps "$work/tl" $(( ${s1:-0} + 20 )) 60; then
    # the second segment may get its own warning first: either way it stops with a checkpoint
    scancel --batch --signal=USR1 "$tl"
  fi
  for ((i = 0; i < 300; i++)); do
    st=$(field "$tl" JobState); rs=$(field "$tl" Restarts)
    { [ "$rs" = 2 ] && [ "$st" = PENDING ]; } || terminal "$st" && break
    sleep 0.2
  done
  scancel "$tl" 2>/dev/null   # the third segment is not needed
  second=$(sed -n 's/^pretrain: .* restart 1 on 2 node(s) \[\([^]]*\]*\)\].*/\1/p' "$tlog" | head -n 1)
  s2=$(last_field "$work/tl" run_end step)
  host2=$(last_field "$work/tl" run_start host)
  reference 2 "$work/tlref" $LONG --max-steps-this-run "${s2:-1}" || bad "timelimit_reference_run ($(tail -n 2 "$work/tlref.log"))"
  check "timelimit_requeued_elsewhere_resumes_bit_exact (segment 2 on $second, rank 0 on $host2, excluded $ex; steps $s1 → $s2)" \
    bash -c "[ -n '$second' ] && [ '$second' != '$first' ] && [ '$host2' != '$ex' ] && [[ ! '$(scontrol show hostnames "$second" | tr '\n' ' ')' == *'$ex '* ]] &&
             [ \$(grep -c '\"event\": \"run_start\"' '$work/tl/metrics.jsonl') = 2 ] && [ '${s2:-0}' -gt '${s1:-0}' ] &&
             grep -q 'resumed_from\": \"[^\"]*ckpt-$(printf %08d "${s1:-0}").bin' '$work/tl/metrics.jsonl' &&
             cmp -s '$work/tl/ckpt-$(printf %08d "${s2:-0}").bin' '$work/tlref/ckpt-$(printf %08d "${s2:-0}").bin'"
else show_log "$tlog" 30; fi

# ---- 4. a node dies mid-step ---------------------------------------------------------------
# Open MPI notices the peer's closed connections but then waits forever (it prints "An MPI
# communication peer process has unexpectedly disconnected" and hangs), so the watchdog is
# what ends the job; srun then waits KillWait + 2 s for the dead node's step.
ND="$LONG --ckpt-every 40 --stall-timeout 10"
nd=$(SEMAIM_REQUEUE=0 sbatch --parsable -J nodedeath --nodes=2 --ntasks-per-node=1 "$repo/jobs/pretrain.sbatch" \
       $ND --out "$work/nd" 2>err.txt) || { bad "nodedeath_submit ($(head -c 200 err.txt))"; exit 1; }
ndlog=logs/nodedeath-$nd.out
if wait_steps "$work/nd" 100 90; then
  nodes=$(scontrol show hostnames "$(field "$nd" NodeList)" | tr '\n' ' ')
  victim=$(echo $nodes | awk '{print $2}')   # not the batch host: the job must notice by itself
  k=${victim#node}
  tk=$(now); at=$(nsteps "$work/nd")
  slurm_node_kill "$c" "$k"
  ended=0
  wait_grep '^pretrain: .* launcher exit' "$ndlog" 90 && ended=1
  dt=$(since "$tk")
  newest=$(newest_ckpt "$work/nd")
  left=$(ranks_left)
  check "nodedeath_job_ends_in_bounded_time_with_message ($victim killed at step $at; script ended after ${dt} s, bound 60 s; $left ranks left; newest $newest)" \
    bash -c "[ $ended = 1 ] && (( \$(printf %.0f '$dt') <= 60 )) && [ '$left' = 0 ] && [ -n '$newest' ] &&
             grep -q 'the ranks did not finish this segment (launcher exit [1-9][0-9]*, no run_end).*ckpt-' '$ndlog' &&
             grep -q 'no step completed in .* stuck at step [0-9]* in ' '$ndlog'"
  [ $ended = 1 ] || show_log "$ndlog" 30
  slurm_node_slurmd "$c" "$k"   # the node comes back; the dead job's cleanup needs it
  # resubmitted without the dead node: resumes from the newest checkpoint, which must verify
  nd2=$(SEMAIM_REQUEUE=0 sbatch --parsable -J nodedeath2 --nodes=2 --ntasks-per-node=1 --exclude="$victim" \
          "$repo/jobs/pretrain.sbatch" $ND --out "$work/nd" 2>err.txt) || bad "nodedeath_resubmit ($(head -c 200 err.txt))"
  nd2log=logs/nodedeath2-$nd2.out
  c0=${newest#ckpt-}; c0=$((10#${c0%.bin}))
  if wait_grep '^pretrain: .* restart 0 on 2 node(s)' "$nd2log" 60 && wait_grep '"event": "run_start".*"resumed_from": "' "$work/nd/metrics.jsonl" 30 &&
     wait_steps "$work/nd" $(( $(nsteps "$work/nd") + 30 )) 60; then
    scancel --batch --signal=USR1 "$nd2"
  fi
  st=$(wait_job "$nd2" 90)
  s2=$(last_field "$work/nd" run_end step)
  reference 2 "$work/ndref" $ND --max-steps-this-run "${s2:-1}" || bad "nodedeath_reference_run ($(tail -n 2 "$work/ndref.log"))"
  check "nodedeath_resubmitted_job_resumes_from_newest_checkpoint_bit_exact (state $st on $(field "$nd2" NodeList); from $newest to step ${s2:-?})" \
    bash -c "[ '$st' = COMPLETED ] && [ \"\$(grep '\"event\": \"run_start\"' '$work/nd/metrics.jsonl' | tail -n 1 | grep -o 'ckpt-[0-9]*\.bin')\" = '$newest' ] &&
             ! grep -q 'skipping checkpoint' '$nd2log' && [ '${s2:-0}' -gt $c0 ] &&
             cmp -s '$work/nd/ckpt-$(printf %08d "${s2:-0}").bin' '$work/ndref/ckpt-$(printf %08d "${s2:-0}").bin'"
  [ "$st" = COMPLETED ] || show_log "$nd2log" 30
  for ((i = 0; i < 150; i++)); do [ "$(sinfo -h -N -n "$victim" -o %T)" = idle ] && break; sleep 0.2; done
else bad "nodedeath_running_before_the_kill (steps $(nsteps "$work/nd"), state $(field "$nd" JobState))"; show_log "$ndlog" 30; fi

# ---- 5. a network stall: one node's link goes down -----------------------------------------
STALL=8
ns=$(SEMAIM_REQUEUE=0 sbatch --parsable -J stall --nodes=2 --ntasks-per-node=1 "$repo/jobs/pretrain.sbatch" \
       $LONG --stall-timeout $STALL --out "$work/stall" 2>err.txt) || { bad "stall_submit ($(head -c 200 err.txt))"; exit 1; }
slog=logs/stall-$ns.out
if wait_steps "$work/stall" 50 90; then
  victim=$(scontrol show hostnames "$(field "$ns" NodeList)" | tail -n 1)
  veth=$(netns_veth "$c" "${victim#node}")
  ts=$(now); at=$(nsteps "$work/stall")
  ip link set "$veth" down
  fired=0
  wait_grep 'no step completed in' "$slog" $((STALL + 30)) && fired=1
  dt=$(since "$ts")
  ip link set "$veth" up   # the network comes back; srun can then reach the other node's step
  st=$(wait_job "$ns" 60)
  de=$(since "$ts")
  line=$(grep 'no step completed in' "$slog" | head -n 1)
  left=$(ranks_left)
  per_rank=$(grep -o '^semaim-train: rank [0-9]* on node[0-9]*: no step completed' "$slog" | sort | uniq -c | awk '{print $1}' | sort -u | tr '\n' ' ')
  check "stall_watchdog_ends_job_naming_phase ($victim's link down at step $at; line after ${dt} s, timeout $STALL s + bound 20 s; job $st after ${de} s, $left ranks left; '${line}')" \
    bash -c "[ $fired = 1 ] && (( \$(printf %.0f '$dt') <= $STALL + 20 )) && (( \$(printf %.0f '$dt') >= $STALL )) &&
             [[ '$line' =~ stuck\ at\ step\ [0-9]+\ in\ all-reduce\;\ aborting\ the\ job ]] && [ '$per_rank' = '1 ' ] &&
             [ '$st' = FAILED ] && [ '$left' = 0 ] && grep -q 'the ranks did not finish this segment' '$slog'"
  [ $fired = 1 ] || show_log "$slog" 30
else bad "stall_running_before_the_link_goes_down (steps $(nsteps "$work/stall"))"; show_log "$slog" 30; fi
ip link set "$(netns_veth "$c" 2)" up 2>/dev/null; ip link set "$(netns_veth "$c" 3)" up 2>/dev/null

# ---- 6. the scaling sweep on 1, 2 and 3 nodes and its report --------------------------------
ids=$("$repo/jobs/scaling.sh" --parsable --data "$work/shards" --sweep-dir "$work/sweep" --max-ranks 3 --ntasks-per-node 1 \
        --batch 4 --steps 20 --time 10 --name multinode --results "$work/results" -- $MODEL --log-every 10 2>err.txt) \
  || { bad "scaling_submit ($(head -c 200 err.txt))"; exit 1; }
read -r -a sw <<<"$ids"
for j in "${sw[@]}"; do
  st=$(wait_job "$j" 150)
  [ "$st" = COMPLETED ] || { bad "scaling_job_$j ($st)"; show_log "$(ls logs/*-"$j".out 2>/dev/null | head -n 1)"; }
done
if eff=$($py - "$work/results/multinode/scaling.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
got = sorted((r["kind"], int(r["ranks"]), r["nodes"]) for r in rows)
want = sorted((k, n, str(n)) for k in ("strong", "weak") for n in (1, 2, 3))
assert got == want, (got, want)
print(" ".join(f"{r['kind']}-N{r['ranks']}:E={float(r['efficiency']):.2f}" for r in rows if r.get("efficiency")))
EOF
); then pass "scaling_sweep_1_2_3_nodes_report_nodes_column (efficiencies, a functional check on 2 oversubscribed cores, not a measurement: $eff)"
else bad "scaling_sweep_1_2_3_nodes_report_nodes_column"; head -n 8 "$work/results/multinode/scaling.csv" 2>/dev/null | sed 's/^/    /'; fi

# ---- teardown leaves nothing: daemons, job processes, namespaces, veths, bridge -----------
cd "$work" || exit 1
pids=$(for k in 1 2 3; do netns_pids "$c" "$k"; done | tr '\n' ' ')
daemons=$(cat "$c"/run/*.daemon-pid 2>/dev/null | tr '\n' ' ')
slurm_cluster_stop "$c"
# (a zombie is dead: this shell started the daemons and reaps them when it gets to it)
running() { local st; st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]; }
alive=""
for _ in $(seq 1 50); do
  alive=""
  for p in $pids $daemons; do running "$p" && alive+="$p:$(cat "/proc/$p/comm" 2>/dev/null) "; done
  [ -z "$alive" ] && break
  sleep 0.1
done
left=$(ip netns list | grep -c "^semaim-$NN_ID-"; ip -o link show | grep -c "smv$NN_ID\|$NN_BRIDGE")
check "multinode_teardown_leaves_nothing (processes still alive: '${alive}'; namespaces, veths, bridge left: $(echo $left))" \
  bash -c "[ -z '$alive' ] && [ '$(echo $left)' = '0 0' ] && [ ! -e '$c/net.env' ]"

echo "t_slurm_multinode: $(( $(date +%s) - t0 )) s"
[ $fail = 0 ]
