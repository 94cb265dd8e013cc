#!/usr/bin/env bash
# Builds the local control plane's binaries once per machine into the cache (not the repo):
#   $SWITCHBOARD_CACHE/cluster/bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,helm}
# from the pinned modules in go/*/go.mod, with the machine's Go toolchain and the Go module proxy.
# Idempotent: skips when the binaries exist and were built from the same go.mod/go.sum files.
# Also installs Debian's prometheus when it is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=VERSIONS
source "$here/VERSIONS"
cache="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
bin="$cache/cluster/bin"
stamp="$bin/.build-stamp"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl helm)

go_bin="$(command -v go || true)"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
[[ -n "$go_bin" ]] || { echo "build.sh: no Go toolchain found (looked in PATH and /usr/local/go/bin)" >&2; exit 1; }

check_pin() { # module-dir module version
  grep -qE "^(require )?\s*$2 $3( // indirect)?\$" "$here/go/$1/go.mod" ||
    { echo "build.sh: go/$1/go.mod does not require $2 $3 (see VERSIONS)" >&2; exit 1; }
}
check_pin kube k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin helm helm.sh/helm/v3 "$HELM_VERSION"
if grep -E '^\s+k8s.io/\S+ => ' "$here/go/kube/go.mod" | grep -vq " $KUBERNETES_STAGING_VERSION\$"; then
  echo "build.sh: go/kube/go.mod pins a staging module to a version other than $KUBERNETES_STAGING_VERSION" >&2; exit 1
fi

# Prometheus is Debian's package, not built: install it when missing (CI machines are root).
if ! command -v prometheus > /dev/null; then
  echo "installing Debian's prometheus"
  if [[ $(id -u) == 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends prometheus > /dev/null
fi

key="$( { cat "$here/VERSIONS" "$here"/go/*/go.mod "$here"/go/*/go.sum; "$go_bin" version; } | sha256sum | cut -d' ' -f1)"
have_all=1
for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || have_all=0; done
if [[ $have_all == 1 && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
  echo "cluster binaries up to date in $bin (kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION)"
  exit 0
fi

export GOPATH="$cache/gopath" GOMODCACHE="$cache/gopath/pkg/mod" GOCACHE="$cache/gocache"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
# The linker of kube-apiserver peaks at a few GiB; two compile jobs fit on 2 cores and 24 GiB.
jobs="${SWITCHBOARD_BUILD_JOBS:-2}"
out="$cache/cluster/bin.tmp"
rm -rf "$out" && mkdir -p "$out"
start=$SECONDS
echo "building into $bin with $("$go_bin" version) (jobs=$jobs); a first build takes a long while"

step() { echo "[$((SECONDS - start))s] $*"; }

minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
kv=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kv+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  kv+=" -X $p.buildDate=1970-01-01T00:00:00Z"
done

step "etcd $ETCD_VERSION"
(cd "$here/go/etcd" && "$go_bin" build -p "$jobs" -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
step "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBERNETES_VERSION"
(cd "$here/go/kube" && "$go_bin" build -p "$jobs" -ldflags "-s -w$kv" -o "$out/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
step "helm $HELM_VERSION"
(cd "$here/go/helm" && "$go_bin" build -p "$jobs" \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$out/helm" helm.sh/helm/v3/cmd/helm)

echo "$key" > "$out/.build-stamp"
rm -rf "$bin" && mv "$out" "$bin"
step "done: $(cd "$bin" && echo "${binaries[*]}") in $bin"
echo "cluster build took $((SECONDS - start))s"
