#!/usr/bin/env bash
# Starts the local control plane in its own network namespace (sbk8s-N, see lib.sh): etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, NATS (JetStream) and Redis for the pods,
# the node agent (in place of a kubelet) and Prometheus, each in its own process group with a
# pidfile under $SWITCHBOARD_CLUSTER_DIR/pids.
# Needs root. Settings: see lib.sh. Prints the KUBECONFIG to use. Does nothing when the cluster is
# already up. Exits with 3 when cluster number N is taken by another cluster.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_net_admin

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [[ -x "$bin/$b" ]] || { echo "cluster-up: $bin/$b is missing: run 'make cluster-build' first" >&2; exit 1; }
done
prometheus_bin="$(command -v prometheus || true)"
[[ -n "$prometheus_bin" ]] ||
  { echo "cluster-up: prometheus is missing: run 'make cluster-build' (it apt-get installs Debian's prometheus)" >&2; exit 1; }
node_bin="$repo_root/node_modules/.bin/node"
[[ -x "$node_bin" ]] || { echo "cluster-up: $node_bin is missing: run 'make install' first" >&2; exit 1; }
# The current nats-server of `make nats-build` (scripts/build-nats-server.sh; keep the version in
# step), else Debian's.
nats_bin="$cache/nats-server-v2.15.2/nats-server"
[[ -x "$nats_bin" ]] || nats_bin="$(command -v nats-server || true)"
redis_bin="$(command -v redis-server || true)"
[[ -n "$nats_bin" && -n "$redis_bin" ]] ||
  { echo "cluster-up: nats-server or redis-server is missing: run 'make test-deps' (and 'make nats-build' for the current nats-server)" >&2; exit 1; }
command -v redis-cli > /dev/null || { echo "cluster-up: redis-cli is missing: run 'make test-deps'" >&2; exit 1; }

all_up=1
netns_exists "$netns" || all_up=0
for d in "${daemons[@]}"; do pidfile_alive "$pids/$d.pid" || all_up=0; done
if [[ $all_up == 1 ]]; then
  log "already up at https://$node_ip:$apiserver_port"
  echo "export KUBECONFIG=$dir/admin.kubeconfig"
  exit 0
fi
# Half a cluster (a crash, a killed shell) is stopped and started again from its saved state.
"$here/down.sh" >/dev/null

start=$SECONDS
mkdir -p "$dir" "$logs" "$pids"
# The service range and pod addresses live in etcd (Services' cluster IPs, the default ServiceCIDR
# object, pods' IPs): state made with other addresses (another N, or the loopback layout before
# the namespace) would not fit, so it starts over.
network="layout=netns pods=$pod_cidr services=$service_cidr node=$node_ip"
if [[ -d "$dir/etcd" && "$(cat "$dir/network" 2>/dev/null)" != "$network" ]]; then
  log "the cluster's addresses changed ($(cat "$dir/network" 2>/dev/null || echo 'loopback layout') -> $network): starting from an empty etcd"
  rm -rf "$dir/etcd" "$dir/pods" "$dir/nats"
fi
echo "$network" > "$dir/network"
"$here/certs.sh"
kubectl=("$bin/kubectl" --kubeconfig "$dir/admin.kubeconfig")

# start_daemon NAME COMMAND...: runs COMMAND in the cluster's network namespace and a new session
# (its own process group), logs to logs/NAME.log, records "pid start-time" so that down.sh never
# signals a recycled pid. (nsenter execs COMMAND, so the pid is COMMAND's.)
start_daemon() {
  local name="$1"; shift
  setsid nsenter --net="$netns_path" -- "$@" > "$logs/$name.log" 2>&1 < /dev/null 9>&- &
  local pid=$!
  echo "$pid $(proc_start "$pid")" > "$pids/$name.pid"
}

# wait_for NAME SECONDS COMMAND...: polls COMMAND until it succeeds; fails with the daemon's log.
wait_for() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" > /dev/null 2>&1; do
    if ! pidfile_alive "$pids/$name.pid"; then
      echo "cluster-up: $name exited; last lines of $logs/$name.log:" >&2; tail -n 30 "$logs/$name.log" >&2
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      echo "cluster-up: $name not ready after ${timeout}s; last lines of $logs/$name.log:" >&2
      tail -n 30 "$logs/$name.log" >&2; exit 1
    fi
    sleep 0.3
  done
}

# The namespace is made under the machine-wide lock, after removing those of clusters that are
# gone; the lock is held until etcd runs in it, so that a concurrent sweep never takes a new,
# still empty namespace for a stale one.
net_lock
net_sweep_stale
rc=0; net_create || rc=$?
if (( rc != 0 )); then net_unlock; exit "$rc"; fi
# From here on, a failure stops what was started and removes the namespace.
trap 'rc=$?; net_unlock; "$here/down.sh" >&2; exit "$rc"' EXIT
log "network namespace $netns: host $veth $veth_host_ip <-> $node_ip; pods $pod_cidr; services $service_cidr"

log "etcd $ETCD_VERSION on https://127.0.0.1:2379 (in $netns)"
# --unsafe-no-fsync: the data is a throwaway test cluster's, and fsync on a shared disk is what
# makes a local apiserver slow; nothing else about etcd's behaviour changes.
# Only the API server talks to etcd: it listens on the namespace's own loopback.
start_daemon etcd "$bin/etcd" --name default --data-dir "$dir/etcd" \
  --listen-client-urls "https://127.0.0.1:2379" --advertise-client-urls "https://127.0.0.1:2379" \
  --listen-peer-urls "http://127.0.0.1:2380" --initial-advertise-peer-urls "http://127.0.0.1:2380" \
  --initial-cluster "default=http://127.0.0.1:2380" --listen-metrics-urls "http://127.0.0.1:2381" \
  --cert-file "$pki/etcd-server.crt" --key-file "$pki/etcd-server.key" \
  --trusted-ca-file "$pki/etcd-ca.crt" --client-cert-auth \
  --unsafe-no-fsync --log-level warn
net_unlock
wait_for etcd 30 in_netns curl -sf "http://127.0.0.1:2381/health"

log "kube-apiserver $KUBERNETES_VERSION on https://$node_ip:$apiserver_port"
start_daemon kube-apiserver "$bin/kube-apiserver" \
  --advertise-address "$node_ip" --bind-address "$node_ip" --secure-port "$apiserver_port" \
  --allow-privileged=true --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --enable-bootstrap-token-auth=true --client-ca-file "$pki/ca.crt" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --etcd-servers "https://127.0.0.1:2379" --etcd-cafile "$pki/etcd-ca.crt" \
  --etcd-certfile "$pki/apiserver-etcd-client.crt" --etcd-keyfile "$pki/apiserver-etcd-client.key" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" --kubelet-preferred-address-types InternalIP \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
  --requestheader-username-headers X-Remote-User \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$service_cidr"
# From the host, through the veth: the way kubectl, helm and the tests reach it.
wait_for kube-apiserver 120 curl -sf --cacert "$pki/ca.crt" "https://$node_ip:$apiserver_port/readyz"

log "kube-controller-manager and kube-scheduler"
start_daemon kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10257 \
  --tls-cert-file "$pki/controller-manager-serving.crt" --tls-private-key-file "$pki/controller-manager-serving.key" \
  --client-ca-file "$pki/ca.crt" --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
  --cluster-name switchboard-local --cluster-signing-cert-file "$pki/ca.crt" \
  --cluster-signing-key-file "$pki/ca.key" --controllers '*,bootstrapsigner,tokencleaner' \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  --use-service-account-credentials=true --service-cluster-ip-range "$service_cidr" --leader-elect=false
start_daemon kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$dir/scheduler.kubeconfig" \
  --authentication-kubeconfig "$dir/scheduler.kubeconfig" --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10259 \
  --tls-cert-file "$pki/scheduler-serving.crt" --tls-private-key-file "$pki/scheduler-serving.key" \
  --leader-elect=false
wait_for kube-controller-manager 60 in_netns curl -sf --cacert "$pki/ca.crt" "https://127.0.0.1:10257/healthz"
wait_for kube-scheduler 60 in_netns curl -sf --cacert "$pki/ca.crt" "https://127.0.0.1:10259/healthz"

nats_url="nats://$node_ip:$nats_port"
nats_monitor_url="http://$node_ip:$nats_monitor_port"
redis_url="redis://$node_ip:$redis_port"
log "NATS ($("$nats_bin" --version | sed 's/^nats-server: //'), JetStream) on $nats_url, Redis on $redis_url"
# JetStream keeps its streams with the rest of the state (as etcd does); Redis keeps nothing, as a
# replaced Redis pod would. Redis' protected mode would refuse every client not on loopback (pods
# and the host alike); the node address exists only on the veth pair and in the namespace.
mkdir -p "$dir/nats" "$dir/redis"
start_daemon nats "$nats_bin" -n "$netns" -a "$node_ip" -p "$nats_port" -m "$nats_monitor_port" \
  -js -sd "$dir/nats"
start_daemon redis "$redis_bin" --bind "$node_ip" --port "$redis_port" --protected-mode no \
  --save "" --appendonly no --dir "$dir/redis" --daemonize no
# From the host, as the tests connect. /healthz answers once JetStream has recovered its streams.
wait_for nats 30 curl -sf "$nats_monitor_url/healthz"
redis_ping() { [[ "$(redis-cli -h "$node_ip" -p "$redis_port" ping)" == PONG ]]; }
wait_for redis 30 redis_ping

log "node agent: node $node_name at $node_ip, pods on ${pod_cidr%.0/24}.10-254"
mkdir -p "$dir/prometheus/file_sd"
start_daemon node-agent "$node_bin" "$repo_root/e2e/src/cluster/node-agent-main.ts" \
  --kubeconfig "$dir/node-agent.kubeconfig" --node-name "$node_name" --node-ip "$node_ip" --pod-cidr "$pod_cidr" \
  --state-dir "$dir" --file-sd "$dir/prometheus/file_sd/$node_name.json"
node_ready() {
  [[ "$("${kubectl[@]}" get node "$node_name" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
wait_for node-agent 60 node_ready

log "prometheus on http://$node_ip:9090"
sed -e "s|@FILE_SD@|$dir/prometheus/file_sd|g" "$here/prometheus.yml" > "$dir/prometheus/prometheus.yml"
start_daemon prometheus "$prometheus_bin" --config.file "$dir/prometheus/prometheus.yml" \
  --storage.tsdb.path "$dir/prometheus/data" --web.listen-address "$node_ip:9090" --web.enable-lifecycle
wait_for prometheus 60 curl -sf "http://$node_ip:9090/-/ready"

cat > "$dir/env" <<ENV
export KUBECONFIG=$dir/admin.kubeconfig
export PATH=$bin:\$PATH
export SWITCHBOARD_PROMETHEUS_URL=http://$node_ip:9090
export SWITCHBOARD_CLUSTER_NETNS=$netns
export SWITCHBOARD_CLUSTER_VETH_HOST_IP=$veth_host_ip
export SWITCHBOARD_CLUSTER_NATS_URL=$nats_url
export SWITCHBOARD_CLUSTER_REDIS_URL=$redis_url
export NO_PROXY=$cluster_no_proxy\${NO_PROXY:+,\$NO_PROXY} no_proxy=$cluster_no_proxy\${no_proxy:+,\$no_proxy}
ENV
# The addresses, for the test helper (e2e/src/cluster/local-cluster.ts).
cat > "$dir/cluster.json" <<JSON
{
  "netns": "$netns",
  "veth": "$veth",
  "apiServer": "https://$node_ip:$apiserver_port",
  "nodeIP": "$node_ip",
  "vethHostIP": "$veth_host_ip",
  "podCIDR": "$pod_cidr",
  "serviceCIDR": "$service_cidr",
  "prometheusUrl": "http://$node_ip:9090",
  "natsUrl": "$nats_url",
  "natsMonitorUrl": "$nats_monitor_url",
  "redisUrl": "$redis_url"
}
JSON
trap - EXIT
log "up in $((SECONDS - start))s: API https://$node_ip:$apiserver_port, Prometheus http://$node_ip:9090, NATS $nats_url, Redis $redis_url, pods ${pod_cidr%.0/24}.10-254, logs in $logs"
echo "export KUBECONFIG=$dir/admin.kubeconfig"
