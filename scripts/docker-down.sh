#!/usr/bin/env bash
# Stop the local registry that scripts/docker-up.sh started; with --all also the dockerd it started.
# Processes are found by their pidfiles only: anything we did not start is left alone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SNAIL_STATE_DIR:-$REPO/.snail}"
say() { echo "docker-down: $*"; }

stop_pidfile() {  # name pidfile
  local name=$1 pidfile=$2 pid
  if [[ ! -f $pidfile ]]; then say "$name: no pidfile ($pidfile), not started by docker-up"; return; fi
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; say "$name ($pid) killed"; else say "$name ($pid) stopped"; fi
  else
    say "$name ($pid) was not running"
  fi
  rm -f "$pidfile"
}

stop_pidfile registry "$STATE_DIR/registry/registry.pid"
if [[ "${1:-}" == "--all" ]]; then
  stop_pidfile dockerd "$STATE_DIR/dockerd.pid"
else
  say "dockerd left running (use --all to stop it)"
fi
