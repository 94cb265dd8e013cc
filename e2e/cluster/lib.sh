# Shared settings of the local control plane's scripts (sourced, not run).
# Every setting can be overridden from the environment:
#   SWITCHBOARD_CACHE          cache root                         (~/.cache/switchboard)
#   SWITCHBOARD_CLUSTER_DIR    state: pki, kubeconfigs, etcd data, logs, pids, pods
#                                                                 ($SWITCHBOARD_CACHE/cluster/run)
#   SWITCHBOARD_CLUSTER_SUBNET the cluster's number N (1-254): it runs in the network namespace
#                              sbk8s-N with the addresses below                      (1)
#   SWITCHBOARD_CLUSTER_NODE   name of the node the node agent registers  (switchboard-node)
#   SWITCHBOARD_CLUSTER_OWNER_PID  a process the cluster belongs to (a test run): once it is gone,
#                              the cluster counts as stale and the next up.sh or down.sh of any
#                              cluster removes it                                   (none)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
# shellcheck source=VERSIONS
source "$here/VERSIONS"
cache="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
bin="$cache/cluster/bin"
dir="$(realpath -m "${SWITCHBOARD_CLUSTER_DIR:-$cache/cluster/run}")"
subnet="${SWITCHBOARD_CLUSTER_SUBNET:-1}"
node_name="${SWITCHBOARD_CLUSTER_NODE:-switchboard-node}"
[[ "$subnet" =~ ^[0-9]+$ ]] && (( subnet >= 1 && subnet <= 254 )) ||
  { echo "SWITCHBOARD_CLUSTER_SUBNET must be 1-254, got '$subnet'" >&2; exit 1; }

# The network (docs/local-kubernetes.md, "Networking"). Every process of cluster N (etcd, the
# control plane, the node agent, the pods, Prometheus) runs in the network namespace sbk8s-N, which
# has no default route: it reaches its own addresses and the host's end of the veth, nothing else.
#   host  sbk8s-N 10.200.N.1/30  <-veth->  eth0 10.200.N.2/30  namespace sbk8s-N
#   namespace: lo 127.0.0.1 (etcd, the controllers' health ports), and the local route
#              10.244.N.0/24 on lo: every pod address is the namespace's own (pods bind theirs)
#   host routes: 10.244.N.0/24 via 10.200.N.2 (pods), unreachable 10.96.N.0/24 (Service IPs)
# The addresses are private ones that exist only on these links; nothing routes them off the
# machine, and Service IPs fail at once on the host rather than going out of the default route.
netns="sbk8s-$subnet"
veth="sbk8s-$subnet"                    # host end of the veth pair; the namespace's end is eth0
veth_host_ip="10.200.$subnet.1"         # the host, as the namespace sees it
node_ip="10.200.$subnet.2"              # API server, node InternalIP, pods' hostIP, Prometheus, NATS, Redis
link_prefix=30
pod_cidr="10.244.$subnet.0/24"          # pods get 10.244.N.10-254
service_cidr="10.96.$subnet.0/24"       # Service cluster IPs: allocated, never routed (no kube-proxy)
kubernetes_service_ip="10.96.$subnet.1"
# A proxy from the environment must never see the cluster's traffic (kubectl, helm, curl).
cluster_no_proxy="$node_ip,$pod_cidr,$service_cidr"
export NO_PROXY="$cluster_no_proxy${NO_PROXY:+,$NO_PROXY}" no_proxy="$cluster_no_proxy${no_proxy:+,$no_proxy}"
# Marks the host routes the scripts add, so that stale ones are found (and nobody else's touched).
route_proto=233
# Which state directory owns which namespace (sbk8s-N.dir), the owner process if any
# (sbk8s-N.owner: "pid start-time"), and the lock of setup and sweeps.
net_state=/run/switchboard-cluster
netns_path="/run/netns/$netns"

apiserver_port=6443
# NATS (JetStream) and Redis for the pods, on the node address: pods reach it in the namespace and
# the host through the veth (the host's 127.0.0.1 is not the namespace's).
nats_port=4222
nats_monitor_port=8222
redis_port=6379
pki="$dir/pki"
logs="$dir/logs"
pids="$dir/pids"
# Start order; down.sh stops them in reverse (NATS and Redis after the node agent has stopped the
# pods that use them).
daemons=(etcd kube-apiserver kube-controller-manager kube-scheduler nats redis node-agent prometheus)

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Prints the start time (clock ticks since boot) of a process, empty when it is gone (or a zombie).
proc_start() {
  local s; s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  s="${s##*) }"; set -- $s
  [[ "$1" == Z ]] || echo "${20}"
}

# Succeeds when the pidfile names a process that is still the one it recorded ("pid start").
pidfile_alive() {
  local pid start
  [[ -f "$1" ]] || return 1
  read -r pid start < "$1" || return 1
  [[ -n "$pid" && -n "$start" && "$(proc_start "$pid")" == "$start" ]]
}

# Stops the process group recorded in a pidfile: SIGTERM, then SIGKILL after $2 seconds.
stop_pidfile() {
  local file="$1" grace="$2" pid start waited=0
  if pidfile_alive "$file"; then
    read -r pid start < "$file"
    kill -TERM -- "-$pid" 2>/dev/null || true
    while pidfile_alive "$file" && (( waited < grace * 10 )); do sleep 0.1; waited=$((waited + 1)); done
    if pidfile_alive "$file"; then
      log "$(basename "$file" .pid) ignored SIGTERM for ${grace}s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      while pidfile_alive "$file"; do sleep 0.1; done
    fi
    # Whatever else was left in the group goes too.
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# ---- network namespace ----

# Network namespaces, veth pairs and routes need root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
require_net_admin() {
  [[ $(id -u) == 0 ]] ||
    { echo "cluster: the local cluster runs in its own network namespace, which needs root" >&2; exit 1; }
  command -v ip > /dev/null && command -v nsenter > /dev/null && command -v flock > /dev/null ||
    { echo "cluster: needs ip (iproute2), nsenter and flock (util-linux)" >&2; exit 1; }
}

# in_netns COMMAND...: runs COMMAND in the cluster's network namespace (nsenter execs it: same pid).
in_netns() { nsenter --net="$netns_path" -- "$@"; }

# Serialises namespace setup and sweeps of all clusters on the machine (fd 9; children close it).
net_lock() { mkdir -p "$net_state"; exec 9> "$net_state/lock"; flock 9; }
net_unlock() { exec 9>&-; }

netns_exists() { [[ -e "/run/netns/$1" ]] && ip netns pids "$1" > /dev/null 2>&1; }

# net_remove N: removes cluster N's namespace (killing every process still in it), veth, routes
# and owner file. Idempotent.
net_remove() {
  local n="$1" name="sbk8s-$1" p tries=0
  if [[ -e "/run/netns/$name" ]]; then
    p="$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ')" || true
    if [[ -n "${p// /}" ]]; then
      log "killing processes left in network namespace $name: $p"
      while [[ -n "${p// /}" ]] && (( tries < 100 )); do
        # shellcheck disable=SC2086
        kill -KILL $p 2>/dev/null || true
        sleep 0.1; tries=$((tries + 1))
        p="$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ')" || true
      done
      [[ -z "${p// /}" ]] || log "processes $p in $name did not die (uninterruptible?); removing the namespace anyway"
    fi
    ip netns delete "$name" 2>/dev/null || rm -f "/run/netns/$name"
  fi
  # Deleting either end destroys the pair (and the routes through it), even while a process that
  # did not die still holds the namespace.
  if ip link show "sbk8s-$n" > /dev/null 2>&1; then ip link delete "sbk8s-$n" 2>/dev/null || true; fi
  ip -4 route del unreachable "10.96.$n.0/24" proto "$route_proto" 2>/dev/null || true
  ip -4 route del "10.244.$n.0/24" proto "$route_proto" 2>/dev/null || true
  rm -f "$net_state/$name.dir" "$net_state/$name.owner"
  return 0
}

# Whether cluster N's namespace belongs to a cluster that is gone: none of its processes is left,
# its state directory was deleted, the process it belonged to (a test run) is gone, or none of its
# daemons runs any more (a crashed run); or no namespace is left at all and only its veth, routes
# or owner file remain.
net_is_stale() {
  local name="sbk8s-$1" owner d
  netns_exists "$name" || return 0
  [[ -n "$(ip netns pids "$name" 2>/dev/null)" ]] || return 0
  owner="$(cat "$net_state/$name.dir" 2>/dev/null)" || return 0
  [[ -n "$owner" && -d "$owner/pids" ]] || return 0
  if [[ -f "$net_state/$name.owner" ]] && ! pidfile_alive "$net_state/$name.owner"; then return 0; fi
  for d in "${daemons[@]}"; do pidfile_alive "$owner/pids/$d.pid" && return 1; done
  return 0
}

# Removes what crashed runs left: namespaces sbk8s-N, host veths, routes and owner files of
# clusters that are gone. Call with the lock held.
net_sweep_stale() {
  local n found
  found="$( {
    ip netns list 2>/dev/null | sed -nE 's/^sbk8s-([0-9]+)( .*)?$/\1/p' || true
    ip -o link show 2>/dev/null | sed -nE 's/^[0-9]+: sbk8s-([0-9]+)[@:].*/\1/p' || true
    ip -4 route show proto "$route_proto" 2>/dev/null | sed -nE 's/^(unreachable )?10\.(96|244)\.([0-9]+)\.0\/24 .*/\3/p' || true
    if [[ -d "$net_state" ]]; then ls "$net_state" | sed -nE 's/^sbk8s-([0-9]+)\.dir$/\1/p'; fi
  } | sort -un)"
  for n in $found; do
    if net_is_stale "$n"; then
      log "removing network namespace sbk8s-$n of a cluster that is gone ($(cat "$net_state/sbk8s-$n.dir" 2>/dev/null || echo 'no owner'))"
      net_remove "$n"
    fi
  done
}

# Creates cluster N's namespace, veth pair, addresses and routes (see the top of this file), and
# records $dir as its owner. Call with the lock held, after the sweep. Fails when the namespace
# belongs to another cluster or the host already routes one of the cluster's ranges.
net_create() {
  local owner r
  if netns_exists "$netns"; then
    owner="$(cat "$net_state/$netns.dir" 2>/dev/null || echo unknown)"
    echo "cluster-up: network namespace $netns is in use by the cluster in $owner: set SWITCHBOARD_CLUSTER_SUBNET to another number" >&2
    return 3
  fi
  net_remove "$subnet" # half-made leftovers without a namespace
  for r in "10.200.$subnet.0/$link_prefix" "$pod_cidr" "$service_cidr"; do
    if ip -4 route show match "$r" | grep -v '^default ' | grep -q .; then
      echo "cluster-up: the host already routes $r ($(ip -4 route show match "$r" | grep -v '^default ' | head -n1)): set SWITCHBOARD_CLUSTER_SUBNET to another number" >&2
      return 3
    fi
  done
  mkdir -p "$net_state"
  echo "$dir" > "$net_state/$netns.dir"
  if [[ -n "${SWITCHBOARD_CLUSTER_OWNER_PID:-}" ]]; then
    echo "$SWITCHBOARD_CLUSTER_OWNER_PID $(proc_start "$SWITCHBOARD_CLUSTER_OWNER_PID")" > "$net_state/$netns.owner"
  fi
  ip netns add "$netns"
  ip link add "$veth" type veth peer name eth0 netns "$netns"
  # No IPv6 on the link: no router solicitations or DAD, only what the cluster sends.
  echo 1 > "/proc/sys/net/ipv6/conf/$veth/disable_ipv6" 2>/dev/null || true
  in_netns sh -c 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > "$f"; done' 2>/dev/null || true
  ip addr add "$veth_host_ip/$link_prefix" dev "$veth"
  ip link set "$veth" up
  ip -n "$netns" link set lo up
  ip -n "$netns" addr add "$node_ip/$link_prefix" dev eth0
  ip -n "$netns" link set eth0 up
  # Every address of the pod range is local to the namespace, as 127.0.0.0/8 is on lo: a pod
  # binds its own address without anyone assigning it to an interface.
  ip -n "$netns" route add local "$pod_cidr" dev lo
  ip -4 route replace "$pod_cidr" via "$node_ip" dev "$veth" proto "$route_proto"
  ip -4 route replace unreachable "$service_cidr" proto "$route_proto"
}
