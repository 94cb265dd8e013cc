#!/usr/bin/env bash
# Stops the local control plane started by up.sh, in reverse order, and every pod process the node
# agent left behind; then removes the cluster's network namespace (killing whatever still runs in
# it), its veth pair and host routes, and those of earlier runs that crashed (see net_sweep_stale
# in lib.sh). Keeps the state (etcd data, pki) unless given --purge. Idempotent. Needs root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_net_admin

purge=0
[[ "${1:-}" == "--purge" ]] && purge=1

if [[ -d "$pids" ]]; then
  for (( i=${#daemons[@]}-1; i>=0; i-- )); do
    d="${daemons[$i]}"
    [[ -f "$pids/$d.pid" ]] || continue
    # The node agent stops its pods first, each within its own grace period.
    grace=10; [[ "$d" == node-agent ]] && grace=60
    pidfile_alive "$pids/$d.pid" && log "stopping $d"
    stop_pidfile "$pids/$d.pid" "$grace"
  done
fi
# Pods of a node agent that died without stopping them (their pidfiles are written by the agent).
if [[ -d "$dir/pods" ]]; then
  while IFS= read -r -d '' f; do
    pidfile_alive "$f" && log "killing leftover pod process group $(cut -d' ' -f1 "$f") ($f)"
    stop_pidfile "$f" 0
  done < <(find "$dir/pods" -name '*.pid' -print0)
fi

net_lock
# The namespace is this cluster's when this state directory made it (or nobody is recorded);
# another cluster's that uses the same number is left alone.
owner="$(cat "$net_state/$netns.dir" 2>/dev/null || true)"
if [[ -z "$owner" || "$owner" == "$dir" ]]; then
  if netns_exists "$netns"; then log "removing network namespace $netns"; fi
  net_remove "$subnet"
fi
net_sweep_stale
net_unlock

if [[ $purge == 1 ]]; then
  rm -rf "$dir"
  log "stopped; removed $dir"
else
  log "stopped; state kept in $dir"
fi
