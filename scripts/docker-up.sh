#!/usr/bin/env bash
# Start what the image builds and e2e tests need, idempotently: the Docker Engine, a local OCI registry on
# 127.0.0.1 and the offline base image. Safe to run again: whatever already answers is left alone.
#
# Usage: scripts/docker-up.sh [--no-base-image]
# Env:   SNAIL_REGISTRY_PORT (default 5055), SNAIL_STATE_DIR (default <repo>/.snail),
#        DOCKERD_WAIT (seconds, default 60)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SNAIL_STATE_DIR:-$REPO/.snail}"
PORT="${SNAIL_REGISTRY_PORT:-5055}"
WAIT="${DOCKERD_WAIT:-60}"
REG_DIR="$STATE_DIR/registry"
say() { echo "docker-up: $*"; }
die() { echo "docker-up: $*" >&2; exit 1; }
mkdir -p "$STATE_DIR"

# 1. Packages (a fresh CI machine has none of them). apt-get update at most once.
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# a static busybox: the e2e test's FROM-scratch image (an image without python3) is built from it
[[ -x /bin/busybox ]] || missing+=(busybox-static)
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: run as root or: sudo apt-get install -y ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The Debian package would start its own registry on :5000 under systemd; we run ours below.
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "packages present (docker.io, docker-registry, debootstrap, busybox-static)"
fi

# 2. The Docker Engine.
if docker info >/dev/null 2>&1; then
  say "dockerd already answering"
else
  [[ $(id -u) == 0 ]] || die "docker info fails and we are not root: start the engine (sudo dockerd &)"
  say "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # setsid: the engine must outlive the shell (and process group) that started it
  setsid nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/dockerd.pid"
  for ((i = 0; i < WAIT * 2; i++)); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null || { tail -20 "$STATE_DIR/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -20 "$STATE_DIR/dockerd.log" >&2; die "dockerd not ready after ${WAIT}s"; }
  say "dockerd ready after $((i / 2))s"
fi

# 3. The local registry (stands in for ECR's data plane). 127.0.0.0/8 is an insecure registry by default.
# python3, not curl: a fresh machine may lack curl. /v2/ answers 200 (or 401 behind auth) when it is up.
registry_up() {
  python3 - "$PORT" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=2)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 401 else 1)
except Exception:
    sys.exit(1)
PY
}
if registry_up; then
  say "registry already answering on 127.0.0.1:$PORT"
else
  mkdir -p "$REG_DIR/data"
  cat >"$REG_DIR/config.yml" <<YAML
version: 0.1
log:
  level: warn
  fields: {service: registry}
storage:
  filesystem: {rootdirectory: $REG_DIR/data}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:$PORT
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  say "starting registry on 127.0.0.1:$PORT (storage $REG_DIR/data, log $REG_DIR/registry.log)"
  setsid nohup docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$REG_DIR/registry.pid"
  for ((i = 0; i < 40; i++)); do
    registry_up && break
    kill -0 "$(cat "$REG_DIR/registry.pid")" 2>/dev/null || { tail -20 "$REG_DIR/registry.log" >&2; die "registry exited"; }
    sleep 0.25
  done
  registry_up || { tail -20 "$REG_DIR/registry.log" >&2; die "registry not answering on 127.0.0.1:$PORT"; }
  say "registry ready"
fi

# 4. The offline base image the phase images build FROM.
if [[ "${1:-}" != "--no-base-image" ]]; then
  "$REPO/scripts/make-base-image.sh"
fi
say "done: export SNAIL_REGISTRY=127.0.0.1:$PORT SNAIL_BASE_IMAGE=${SNAIL_BASE_IMAGE:-snail-base/python:3.11}"
