#!/usr/bin/env bash
# A real Slurm cluster (munged, slurmctld, slurmd) on this machine, without systemd, for tests
# and for trying the jobs/ scripts by hand: one node, or several nodes that are network
# namespaces with their own address and hostname (tests/slurm/netns.sh). Everything lives
# under DIR: a private munge key and socket, free non-default ports, state/spool/log folders
# and the config, so the machine's own Slurm or munge (if any) is never touched. Every daemon
# is started in the foreground as our own background child and stopped by the pid we recorded.
#
#   tests/slurm/cluster.sh start DIR [CPUS]          one node "localhost" (CPUS default 4)
#   tests/slurm/cluster.sh start-nodes DIR N [CPUS]  nodes node1..nodeN (N 1..9; CPUS each, default 2)
#   tests/slurm/cluster.sh stop DIR                  cancel every job, stop the daemons by pid,
#                                                    remove the namespaces, veths and bridge
#   . DIR/env.sh                                     then sbatch/squeue/scontrol talk to this cluster
#
# Sourcing this file defines slurm_cluster_start / slurm_nodes_start / slurm_cluster_stop for
# test scripts, and for the nodes slurm_node_slurmd DIR K ((re)starts node K's slurmd) and
# slurm_node_kill DIR K (node K dies: SIGKILL to everything in it); netns.sh's netns_exec,
# netns_pids and netns_veth come along.
# Debian 12 (slurm-wlm 22.05) facts this relies on are in tests/slurm/slurm.conf.in.
#
# The nodes share this machine's file system (as cluster nodes share a parallel file system)
# and its one munged: its socket is a path, which every network namespace reaches. slurmctld
# stays in this namespace and listens on the bridge's address (SlurmctldHost=semaimctl(ADDR),
# under a hostname of its own so that it knows itself as that host); each slurmd listens on
# its node's address, all on the same port, which separate namespaces allow.

_sc_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$_sc_here/netns.sh"

_sc_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Stops the daemons whose pids are recorded in the files given after $1 = grace seconds:
# SIGTERM to all of them at once, SIGKILL to any still there after the grace period.
_sc_stop_pidfiles() {
  local grace=$1 f pid pids=() names=()
  shift
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); rm -f "$f"
    _sc_alive "$pid" || continue
    kill -TERM "$pid" 2>/dev/null
    pids+=("$pid"); names+=("$(basename "$f" .daemon-pid)")
  done
  local i left
  for _ in $(seq 1 $((grace * 10))); do
    left=0
    for pid in "${pids[@]}"; do _sc_alive "$pid" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if _sc_alive "${pids[i]}"; then
      echo "slurm-cluster: ${names[i]} (pid ${pids[i]}) ignored SIGTERM for ${grace} s, sending SIGKILL" >&2
      kill -KILL "${pids[i]}" 2>/dev/null
    fi
  done
  return 0
}

# Two free TCP ports, chosen by the kernel (so concurrent clusters never collide on purpose).
_sc_free_ports() {
  /usr/bin/python3 - <<'PY'
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
PY
}

_sc_tail_logs() {
  local d=$1 f
  for f in "$d"/log/munged.log "$d"/log/slurmctld.log "$d"/log/slurmd*.log "$d"/log/*.stderr; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
}

_sc_tools() {
  local p
  for p in munged munge slurmctld slurmd sbatch scontrol squeue scancel sinfo srun; do
    command -v "$p" >/dev/null || { echo "slurm-cluster: '$p' not found (install munge and slurm-wlm: scripts/deps.sh)" >&2; return 1; }
  done
}

# Creates DIR's folders; prints DIR as an absolute path.
_sc_dirs() {
  local d=$1
  mkdir -p "$d" && d=$(cd "$d" && pwd) || { echo "slurm-cluster: $1: cannot create" >&2; return 1; }
  # the munge socket path must fit in sun_path (108 bytes)
  if [ ${#d} -gt 80 ]; then echo "slurm-cluster: $d: path too long for a unix socket; use a shorter DIR" >&2; return 1; fi
  mkdir -p "$d"/{etc,munge,state,spool,run,log,tmp} || return 1
  chmod 755 "$d/munge"; chmod 700 "$d/state" "$d/spool"
  echo "$d"
}

_sc_start_munge() {
  local d=$1
  # munge: private key, socket, pid, log and seed files. --force: DIR may sit in a 0700 folder
  # (mktemp -d), which munged otherwise refuses for a socket other users could not reach
  head -c 1024 /dev/urandom >"$d/munge/munge.key" && chmod 400 "$d/munge/munge.key" || return 1
  munged --foreground --force --key-file="$d/munge/munge.key" --socket="$d/munge/munge.socket" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/munge/munged.seed" \
    >"$d/log/munged.stderr" 2>&1 &
  echo $! >"$d/run/munged.daemon-pid"
  for _ in $(seq 1 100); do
    if [ -S "$d/munge/munge.socket" ] && munge -n -S "$d/munge/munge.socket" 2>/dev/null | unmunge -S "$d/munge/munge.socket" >/dev/null 2>&1; then
      return 0
    fi
    _sc_alive "$(cat "$d/run/munged.daemon-pid")" || break
    sleep 0.1
  done
  echo "slurm-cluster: munged did not start" >&2
  return 1
}

# _sc_write_conf DIR CTLD_HOST NODE_TAG LINE...: DIR/etc/slurm.conf from the template with
# free ports, then the LINEs (nodes, partition); DIR/env.sh; exports SLURM_CONF.
_sc_write_conf() {
  local d=$1 host=$2 tag=$3 ports ctld_port slurmd_port
  shift 3
  ports=$(_sc_free_ports) || { echo "slurm-cluster: cannot find free ports" >&2; return 1; }
  read -r ctld_port slurmd_port <<<"$ports"
  { sed -e "s|@DIR@|$d|g" -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
        -e "s|@CTLD_HOST@|$host|g" -e "s|@NODE_TAG@|$tag|g" -e "s|@USER@|$(id -un)|g" "$_sc_here/slurm.conf.in" &&
    printf '%s\n' "$@"; } >"$d/etc/slurm.conf" || return 1
  : >"$d/etc/plugstack.conf"   # not /etc/slurm/plugstack.conf
  cat >"$d/env.sh" <<EOF
# source me: the Slurm commands then talk to the private test cluster in $d
export SLURM_CONF=$d/etc/slurm.conf
EOF
  export SLURM_CONF=$d/etc/slurm.conf
}

# _sc_wait_idle DIR NODE...: until every NODE is idle; 1 with the daemons' states if not.
_sc_wait_idle() {
  local d=$1 f idle=0 state="" want
  shift
  want=$(IFS=,; echo "$*")
  for _ in $(seq 1 300); do
    state=$(sinfo -h -N -n "$want" -o %T 2>/dev/null | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
    idle=$(sinfo -h -N -n "$want" -o %T 2>/dev/null | grep -cx idle)
    [ "$idle" = $# ] && return 0
    for f in "$d"/run/*.daemon-pid; do _sc_alive "$(cat "$f")" || break 2; done
    sleep 0.1
  done
  local daemons=""
  for f in "$d"/run/slurm*.daemon-pid; do
    daemons+="${daemons:+, }$(basename "$f" .daemon-pid) $(_sc_alive "$(cat "$f")" && echo up || echo down)"
  done
  echo "slurm-cluster: $idle of $# node(s) became idle (state '${state:-none}'); daemons: $daemons" >&2
  return 1
}

slurm_cluster_start() {
  local d=${1:?usage: slurm_cluster_start DIR [CPUS]} cpus=${2:-4}
  _sc_tools || return 1
  case $cpus in ''|*[!0-9]*|0) echo "slurm-cluster: CPUS must be a positive integer, not '$cpus'" >&2; return 1;; esac
  d=$(_sc_dirs "$d") || return 1
  if ! _sc_start_munge "$d"; then _sc_tail_logs "$d"; slurm_cluster_stop "$d"; return 1; fi
  _sc_write_conf "$d" localhost "" "NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN" \
    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP" || { slurm_cluster_stop "$d"; return 1; }
  # -c: start from a clean state; -D: stay in the foreground so that our pid is the daemon's
  slurmctld -D -c -f "$SLURM_CONF" >"$d/log/slurmctld.stderr" 2>&1 &
  echo $! >"$d/run/slurmctld.daemon-pid"
  slurmd -D -f "$SLURM_CONF" -N localhost >"$d/log/slurmd.stderr" 2>&1 &
  echo $! >"$d/run/slurmd.daemon-pid"
  if ! _sc_wait_idle "$d" localhost; then _sc_tail_logs "$d"; slurm_cluster_stop "$d"; return 1; fi
  return 0
}

# slurm_node_slurmd DIR K: starts node K's slurmd in its namespace under hostname nodeK (also
# brings back a node that died).
slurm_node_slurmd() {
  local d=$1 k=$2
  mkdir -p "$d/spool-node$k" "$d/tmp-node$k" && chmod 700 "$d/spool-node$k"
  netns_argv "$d" "$k" || return 1
  # a simple command in the background, not a function: $! is then slurmd's own pid
  "${NN_ARGV[@]}" slurmd -D -f "$d/etc/slurm.conf" -N "node$k" >>"$d/log/slurmd-node$k.stderr" 2>&1 &
  echo $! >"$d/run/slurmd-node$k.daemon-pid"
}

# slurm_node_kill DIR K: node K dies at once: SIGKILL to its slurmd, job steps and ranks.
slurm_node_kill() {
  local d=$1 k=$2 pids
  pids=$(netns_pids "$d" "$k")
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  rm -f "$d/run/slurmd-node$k.daemon-pid"
  return 0
}

slurm_nodes_start() {
  local d=${1:?usage: slurm_nodes_start DIR N [CPUS]} n=${2:-} cpus=${3:-2} k
  _sc_tools || return 1
  case $n in [1-9]) ;; *) echo "slurm-cluster: N must be 1..9 nodes, not '$n'" >&2; return 1;; esac
  case $cpus in ''|*[!0-9]*|0) echo "slurm-cluster: CPUS must be a positive integer, not '$cpus'" >&2; return 1;; esac
  d=$(_sc_dirs "$d") || return 1
  netns_up "$d" "$n" || return 1
  _nn_load "$d" || { slurm_cluster_stop "$d"; return 1; }
  if ! _sc_start_munge "$d"; then _sc_tail_logs "$d"; slurm_cluster_stop "$d"; return 1; fi
  local lines=() names=()
  for ((k = 1; k <= n; k++)); do
    lines+=("NodeName=node$k NodeAddr=$NN_NET.$k CPUs=$cpus State=UNKNOWN"); names+=("node$k")
  done
  lines+=("PartitionName=debug Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP")
  _sc_write_conf "$d" "semaimctl($NN_HUB)" "-%n" "${lines[@]}" || { slurm_cluster_stop "$d"; return 1; }
  unshare --uts sh -c 'hostname semaimctl && exec "$@"' slurmctld slurmctld -D -c -f "$SLURM_CONF" \
    >"$d/log/slurmctld.stderr" 2>&1 &
  echo $! >"$d/run/slurmctld.daemon-pid"
  for ((k = 1; k <= n; k++)); do slurm_node_slurmd "$d" "$k"; done
  if ! _sc_wait_idle "$d" "${names[@]}"; then _sc_tail_logs "$d"; slurm_cluster_stop "$d"; return 1; fi
  return 0
}

slurm_cluster_stop() {
  local d=${1:?usage: slurm_cluster_stop DIR}
  [ -d "$d" ] || return 0
  d=$(cd "$d" && pwd)
  local conf=$d/etc/slurm.conf
  if [ -f "$conf" ] && _sc_alive "$(cat "$d/run/slurmctld.daemon-pid" 2>/dev/null)"; then
    # cancel what is left, give it a moment, then kill any job process slurmd still knows
    local jobs; jobs=$(SLURM_CONF=$conf squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
      SLURM_CONF=$conf scancel $jobs 2>/dev/null
      for _ in $(seq 1 200); do
        [ -z "$(SLURM_CONF=$conf squeue -h -t running,completing -o %A 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
    # (one node; on namespace nodes netns_down below kills whatever is left in them)
    if _sc_alive "$(cat "$d/run/slurmd.daemon-pid" 2>/dev/null)"; then
      local pids; pids=$(SLURM_CONF=$conf scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}')
      [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    fi
  fi
  _sc_stop_pidfiles 10 "$d"/run/slurmd*.daemon-pid "$d/run/slurmctld.daemon-pid"
  netns_down "$d"
  _sc_stop_pidfiles 5 "$d/run/munged.daemon-pid"   # last: the Slurm daemons use it until they end
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-} in
    start) shift; slurm_cluster_start "$@" && echo "slurm-cluster: up; run: . ${1%/}/env.sh" ;;
    start-nodes)
      shift
      slurm_nodes_start "$@" && { sinfo -N -h -o '%N %o %T' | sed 's/^/slurm-cluster: node /'; echo "slurm-cluster: up; run: . ${1%/}/env.sh"; } ;;
    stop) shift; slurm_cluster_stop "$@" ;;
    *) echo "usage: $0 start DIR [CPUS] | start-nodes DIR N [CPUS] | stop DIR" >&2; exit 2 ;;
  esac
fi
