#!/usr/bin/env bash
# Hosts made of network namespaces, for multi-node tests and benchmarks on one machine: N
# namespaces, each with one veth end (named semaim0 inside, address 10.X.Y.K/24) whose other
# end sits on a bridge in this namespace (address 10.X.Y.254). Nothing else is routed: the
# namespaces have no default route, so their traffic stays on these veths and the bridge. The
# subnet is one no route of this machine uses yet, chosen under a lock, so concurrent runs
# (other developers' tests) never share one. Everything made is recorded in DIR/net.env,
# which netns_down reads, so teardown works from a trap or another shell.
# Hostnames are not per namespace (a network namespace has none): netns_exec runs a command
# in a node's namespace under its own UTS namespace with the hostname nodeK.
#
#   . tests/slurm/netns.sh
#   netns_up DIR N        make N nodes (1..9); prints nothing, 1 with a message on failure
#   netns_exec DIR K CMD  run CMD on node K (its namespace, hostname nodeK)
#   netns_argv DIR K      the same as a command prefix in NN_ARGV (for daemons: keeps $!)
#   netns_pids DIR K      pids of every process in node K's namespace
#   netns_down DIR        SIGKILL whatever still runs in the namespaces, remove everything

_nn_need() {
  local p
  for p in ip nsenter unshare hostname flock; do
    command -v "$p" >/dev/null || { echo "netns: '$p' not found (iproute2, util-linux)" >&2; return 1; }
  done
}

# A /24 in 10.200.0.0-10.254.255.0 that no address or route here overlaps (we only ever make
# /24s there, so comparing the first three octets of this machine's IPv4 routes suffices).
_nn_free_subnet() {
  local used x y
  used=$(ip -4 route show table all 2>/dev/null | awk '{print $1}' | sed -n 's|^\([0-9]*\.[0-9]*\.[0-9]*\)\..*|\1|p'
         ip -4 -o addr show 2>/dev/null | awk '{print $4}' | sed -n 's|^\([0-9]*\.[0-9]*\.[0-9]*\)\..*|\1|p')
  for _ in $(seq 1 200); do
    x=$((200 + RANDOM % 55)); y=$((RANDOM % 256))
    grep -qx "10\.$x\.$y" <<<"$used" || { echo "10.$x.$y"; return 0; }
  done
  return 1
}

netns_up() {
  local d=${1:?usage: netns_up DIR N} n=${2:?usage: netns_up DIR N} k
  _nn_need || return 1
  case $n in [1-9]) ;; *) echo "netns: N must be 1..9, not '$n'" >&2; return 1;; esac
  [ "$(id -u)" = 0 ] || { echo "netns: network namespaces need root" >&2; return 1; }
  mkdir -p "$d" || return 1
  [ -e "$d/net.env" ] && { echo "netns: $d/net.env exists: already up (netns_down first)" >&2; return 1; }
  # short names: interface names have at most 15 characters
  local id; id=$(printf '%04x' $(( ($$ ^ RANDOM ^ (RANDOM << 15)) & 0xffff )))
  local bridge=smbr$id net="" lockfd
  # the lock only serialises choosing and claiming the subnet between concurrent runs
  exec {lockfd}>>/tmp/.semaim-netns.lock || return 1
  flock -w 60 "$lockfd" || { echo "netns: /tmp/.semaim-netns.lock: busy for 60 s" >&2; exec {lockfd}>&-; return 1; }
  net=$(_nn_free_subnet) || { flock -u "$lockfd"; exec {lockfd}>&-; echo "netns: no free 10.x.y.0/24 subnet" >&2; return 1; }
  # record first, so that netns_down removes whatever part of this gets made
  { echo "NN_ID=$id"; echo "NN_NODES=$n"; echo "NN_NET=$net"; echo "NN_BRIDGE=$bridge"; echo "NN_HUB=$net.254"; } >"$d/net.env"
  local ok=1
  ip link add "$bridge" type bridge && ip addr add "$net.254/24" dev "$bridge" && ip link set "$bridge" up || ok=0
  for ((k = 1; k <= n && ok; k++)); do
    local ns=semaim-$id-node$k veth=smv${id}h$k
    ip netns add "$ns" || { ok=0; break; }
    ip link add "$veth" type veth peer name "smv${id}n$k" &&
      ip link set "smv${id}n$k" netns "$ns" &&
      ip -n "$ns" link set "smv${id}n$k" name semaim0 &&
      ip -n "$ns" addr add "$net.$k/24" dev semaim0 &&
      ip -n "$ns" link set semaim0 up && ip -n "$ns" link set lo up &&
      ip link set "$veth" master "$bridge" && ip link set "$veth" up || ok=0
  done
  flock -u "$lockfd"; exec {lockfd}>&-
  if [ $ok = 0 ]; then
    echo "netns: cannot make the namespaces, veths and bridge (see the ip error above)" >&2
    netns_down "$d"
    return 1
  fi
  # the bridge forwards as soon as its ports are up; wait until every node answers on TCP from
  # here and from node1 (a firewall on bridged traffic would stop the latter): bash's /dev/tcp
  # to a closed port fails at once with "refused" once the path works
  local from reach
  for from in host node1; do
    for ((k = 1; k <= n; k++)); do
      [ $from = node1 ] && [ $k = 1 ] && continue
      reach=0
      for _ in $(seq 1 50); do
        if [ $from = host ]; then timeout 2 bash -c "exec 3<>/dev/tcp/$net.$k/9" 2>&1 | grep -q refused && reach=1
        else nsenter --net="/run/netns/semaim-$id-node1" timeout 2 bash -c "exec 3<>/dev/tcp/$net.$k/9" 2>&1 | grep -q refused && reach=1; fi
        [ $reach = 1 ] && break
        sleep 0.1
      done
      [ $reach = 1 ] || { echo "netns: node$k ($net.$k) does not answer $from across the bridge" >&2; netns_down "$d"; return 1; }
    done
  done
  return 0
}

_nn_load() {   # reads DIR/net.env into NN_*; 1 if there is none
  [ -f "$1/net.env" ] || return 1
  local k v
  NN_ID="" NN_NODES=0 NN_NET="" NN_BRIDGE="" NN_HUB=""
  while IFS='=' read -r k v; do
    case $k in NN_ID|NN_NODES|NN_NET|NN_BRIDGE|NN_HUB) printf -v "$k" '%s' "$v" ;; esac
  done <"$1/net.env"
  case $NN_ID in [0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;; *) echo "netns: $1/net.env: bad NN_ID" >&2; return 1;; esac
}

netns_name() { _nn_load "$1" && echo "semaim-$NN_ID-node$2"; }
netns_veth() { _nn_load "$1" && echo "smv${NN_ID}h$2"; }   # the host end of node K's veth

# netns_argv DIR K: NN_ARGV becomes the command prefix that runs a command on node K. Each
# part execs the next, so a command started as "${NN_ARGV[@]}" cmd & has $! as its own pid.
# nsenter, not `ip netns exec`: that one remounts /sys, hiding /sys/fs/cgroup from slurmd.
netns_argv() {
  local ns
  ns=$(netns_name "$1" "$2") || return 1
  NN_ARGV=(nsenter --net="/run/netns/$ns" unshare --uts sh -c 'hostname "$0" && exec "$@"' "node$2")
}

netns_exec() {
  local d=$1 k=$2
  shift 2
  netns_argv "$d" "$k" || return 1
  "${NN_ARGV[@]}" "$@"
}

netns_pids() {
  local ns
  ns=$(netns_name "$1" "$2") || return 1
  [ -e "/run/netns/$ns" ] || return 0
  ip netns pids "$ns" 2>/dev/null
}

netns_down() {
  local d=${1:?usage: netns_down DIR} k pids
  _nn_load "$d" || return 0
  for ((k = 1; k <= NN_NODES; k++)); do
    local ns=semaim-$NN_ID-node$k
    if [ -e "/run/netns/$ns" ]; then
      # every process in our namespace is ours: a node's slurmd, its job steps, its ranks
      for _ in 1 2 3 4 5; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -z "$pids" ] && break
        kill -KILL $pids 2>/dev/null
        sleep 0.2
      done
      [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && echo "netns: $ns: processes left: $(ip netns pids "$ns" | tr '\n' ' ')" >&2
    fi
    ip link del "smv${NN_ID}h$k" 2>/dev/null   # takes the peer in the namespace with it
    [ -e "/run/netns/$ns" ] && ip netns del "$ns"
  done
  ip link show "$NN_BRIDGE" >/dev/null 2>&1 && ip link del "$NN_BRIDGE"
  rm -f "$d/net.env"
  return 0
}
