#!/usr/bin/env bash
# Generates the cluster's PKI, service-account keys and kubeconfigs under $SWITCHBOARD_CLUSTER_DIR
# with openssl, the way kubeadm lays them out. Keeps existing files when the cluster's addresses
# and node name are unchanged.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

params="layout=netns subnet=$subnet api=$node_ip service=$kubernetes_service_ip node=$node_name"
if [[ -f "$pki/.params" && "$(cat "$pki/.params")" == "$params" && -f "$dir/admin.kubeconfig" ]]; then
  exit 0
fi
rm -rf "$pki" && mkdir -p "$pki" && chmod 700 "$pki"
cd "$pki"
days=3650

new_ca() { # name CN
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 \
    -keyout "$1.key" -out "$1.crt" -days "$days" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

new_cert() { # ca name subject extendedKeyUsage [subjectAltName]
  local ca="$1" name="$2" subj="$3" eku="$4" san="${5:-}"
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku"
  [[ -n "$san" ]] && ext+=$'\n'"subjectAltName=$san"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 \
    -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -sha256 \
    -days "$days" -out "$name.crt" -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$name.csr"
}

new_ca ca switchboard-local-ca
new_ca front-proxy-ca switchboard-local-front-proxy-ca
new_ca etcd-ca switchboard-local-etcd-ca

# Inside the cluster's network namespace, etcd and the controllers' health ports listen on its
# loopback only; the API server listens on the namespace's veth address, which the host routes to.
local_sans="IP:127.0.0.1,DNS:localhost"
new_cert etcd-ca etcd-server "/CN=etcd" serverAuth,clientAuth "$local_sans"
new_cert etcd-ca apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
new_cert ca apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$node_ip,$local_sans,IP:$kubernetes_service_ip,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
new_cert ca apiserver-kubelet-client "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" clientAuth
new_cert front-proxy-ca front-proxy-client "/CN=front-proxy-client" clientAuth
new_cert ca kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
new_cert ca kube-scheduler "/CN=system:kube-scheduler" clientAuth
new_cert ca admin "/O=system:masters/CN=kubernetes-admin" clientAuth
# The node agent authenticates exactly as a kubelet does, so the Node authorizer and the
# NodeRestriction admission plugin hold it to its own Node and the pods bound to it.
new_cert ca node-agent "/O=system:nodes/CN=system:node:$node_name" clientAuth "IP:$node_ip"
new_cert ca controller-manager-serving "/CN=kube-controller-manager" serverAuth "$local_sans"
new_cert ca scheduler-serving "/CN=kube-scheduler" serverAuth "$local_sans"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
rm -f ./*.srl
chmod 600 ./*.key

kubeconfig() { # file user cert
  local b64="base64 -w0"
  cat > "$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: switchboard-local
  cluster:
    server: https://$node_ip:$apiserver_port
    certificate-authority-data: $($b64 < ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $($b64 < "$3.crt")
    client-key-data: $($b64 < "$3.key")
contexts:
- name: $2@switchboard-local
  context:
    cluster: switchboard-local
    user: $2
current-context: $2@switchboard-local
KUBECONFIG
  chmod 600 "$1"
}
kubeconfig "$dir/controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager
kubeconfig "$dir/scheduler.kubeconfig" system:kube-scheduler kube-scheduler
kubeconfig "$dir/node-agent.kubeconfig" "system:node:$node_name" node-agent
kubeconfig "$dir/admin.kubeconfig" kubernetes-admin admin
echo "$params" > "$pki/.params"
