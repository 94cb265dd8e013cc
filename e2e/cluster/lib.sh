# Shared settings of the local control plane's scripts (sourced, not run).
# Every setting can be overridden from the environment:
#   SWITCHBOARD_CACHE          cache root                         (~/.cache/switchboard)
#   SWITCHBOARD_CLUSTER_DIR    state: pki, kubeconfigs, etcd data, logs, pids, pods
#                                                                 ($SWITCHBOARD_CACHE/cluster/run)
#   SWITCHBOARD_CLUSTER_SUBNET third octet N of the cluster's loopback /24: the control plane
#                              listens on 127.0.N.1, pods get 127.0.N.10-254       (1)
#   SWITCHBOARD_CLUSTER_NODE   name of the node the node agent registers  (switchboard-node)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
# shellcheck source=VERSIONS
source "$here/VERSIONS"
cache="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
bin="$cache/cluster/bin"
dir="${SWITCHBOARD_CLUSTER_DIR:-$cache/cluster/run}"
subnet="${SWITCHBOARD_CLUSTER_SUBNET:-1}"
node_name="${SWITCHBOARD_CLUSTER_NODE:-switchboard-node}"
[[ "$subnet" =~ ^[0-9]+$ ]] && (( subnet >= 1 && subnet <= 254 )) ||
  { echo "SWITCHBOARD_CLUSTER_SUBNET must be 1-254, got '$subnet'" >&2; exit 1; }
host_ip="127.0.$subnet.1"
# Service cluster IPs are never routed here (no kube-proxy); keeping them in loopback means a
# client that tries one anyway is refused locally instead of sending traffic off the machine.
service_cidr="127.1.$subnet.0/24"
kubernetes_service_ip="127.1.$subnet.1"
apiserver_port=6443
pki="$dir/pki"
logs="$dir/logs"
pids="$dir/pids"
# Start order; down.sh stops them in reverse.
daemons=(etcd kube-apiserver kube-controller-manager kube-scheduler node-agent prometheus)

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
