#!/usr/bin/env bash
# Builds the NATS server the fault tests run (e2e/src/pods/services.ts) once per machine into the
# cache (not the repo): $SWITCHBOARD_CACHE/nats-server-<version>/nats-server, from the Go module
# proxy with the machine's Go toolchain. Debian's nats-server (2.9) keeps serving the ordinary tests;
# the fault tests stop and restart their own, current server (JetStream has had data-loss fixes
# since 2.9). Idempotent: skips when the binary reports the pinned version.
set -euo pipefail

# Keep in step with NATS_SERVER_VERSION in e2e/src/pods/services.ts.
version="v2.15.2"
cache="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
dir="$cache/nats-server-$version"

if [[ -x "$dir/nats-server" ]] && "$dir/nats-server" --version 2>/dev/null | grep -qF "$version"; then
  echo "nats-server $version up to date in $dir"
  exit 0
fi

go_bin="$(command -v go || true)"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
[[ -n "$go_bin" ]] || { echo "build-nats-server.sh: no Go toolchain found (looked in PATH and /usr/local/go/bin)" >&2; exit 1; }

export GOPATH="$cache/gopath" GOMODCACHE="$cache/gopath/pkg/mod" GOCACHE="$cache/gocache"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
start=$SECONDS
echo "building nats-server $version into $dir with $("$go_bin" version)"
# Build into a scratch directory and move it in place, so an interrupted build leaves nothing
# that looks finished.
tmp="$cache/nats-server-$version.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
(cd "$tmp" && GOBIN="$tmp" "$go_bin" install "github.com/nats-io/nats-server/v2@$version")
"$tmp/nats-server" --version | grep -qF "$version" || { echo "build-nats-server.sh: built binary does not report $version" >&2; exit 1; }
rm -rf "$dir" && mv "$tmp" "$dir"
echo "nats-server $version built in $((SECONDS - start))s"
