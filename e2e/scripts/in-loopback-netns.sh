#!/usr/bin/env bash
# Runs a command in a new network namespace that has only a loopback interface, so that nothing
# it starts (Chromium's ICE agent, coturn) can send a packet anywhere but 127.0.0.0/8.
# Usage: e2e/scripts/in-loopback-netns.sh <command> [args...]
set -euo pipefail
if [ "${SWITCHBOARD_IN_NETNS:-}" = "1" ]; then exec "$@"; fi
exec unshare --net -- env SWITCHBOARD_IN_NETNS=1 bash -c 'ip link set lo up && exec "$@"' bash "$@"
