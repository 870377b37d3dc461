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

# 3. The local registry (stands in for ECR's data plane): the same code `snail sandbox up` runs (ecsbox.docker_setup, via python -m ecsbox):
# SNAIL_REGISTRY if set, else one answering on 127.0.0.1:$PORT, else the docker-registry binary, else registry:2.
PY="${SNAIL_PYTHON:-$REPO/.venv/bin/python}"
[[ -x $PY ]] || PY=python3
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m ecsbox registry --state-dir "$STATE_DIR" --port "$PORT" \
  || die "no registry on 127.0.0.1:$PORT"

# 4. The offline base image the phase images build FROM.
if [[ "${1:-}" != "--no-base-image" ]]; then
  "$REPO/scripts/make-base-image.sh"
fi
say "done: export SNAIL_REGISTRY=127.0.0.1:$PORT SNAIL_BASE_IMAGE=${SNAIL_BASE_IMAGE:-snail-base/python:3.11}"
