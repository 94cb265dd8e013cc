#!/usr/bin/env bash
# Installs and starts what the tests need beyond npm packages, when it is missing: Debian's
# chromium (browser tests), coturn (TURN test), redis-server and nats-server (cluster tests), and
# starts Redis and NATS (JetStream) on 127.0.0.1 if they are not running. Idempotent.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "install-test-deps: starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  echo "install-test-deps: starting nats-server (JetStream) on 127.0.0.1:4222"
  mkdir -p /tmp/switchboard-nats
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/switchboard-nats >/tmp/switchboard-nats.log 2>&1 &
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi
