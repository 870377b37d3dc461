#!/usr/bin/env bash
# Build the offline base image snail-base/python:3.11 (Docker Hub is not reachable on our machines).
#
# A debootstrapped Debian bookworm with python3 (3.11), ca-certificates and python3-numpy, imported into
# the local Docker Engine. The root filesystem tarball is cached, so a second call (or a call after
# `docker rmi`) only re-imports it (~2 s). Dockerfiles keep `FROM ${BASE_IMAGE}` with default
# python:3.11-slim; we pass --build-arg BASE_IMAGE=snail-base/python:3.11.
#
# Usage: scripts/make-base-image.sh [--force]      (--force rebuilds the tarball and the image)
# Env:   SNAIL_BASE_IMAGE (default snail-base/python:3.11), SNAIL_CACHE_DIR (default ~/.cache/snail-trail),
#        SNAIL_DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail

IMAGE="${SNAIL_BASE_IMAGE:-snail-base/python:3.11}"
CACHE_DIR="${SNAIL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/snail-trail}"
MIRROR="${SNAIL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
# python3-numpy: the ML phases compute with numpy when present (they fall back to pure Python otherwise).
# No curl: python:3.11-slim has none either, so HEALTHCHECKs use python's urllib.
PACKAGES="python3,ca-certificates,python3-numpy"
# The tarball name changes with its recipe, so editing PACKAGES invalidates the cache.
RECIPE_HASH="$(printf '%s|%s|v1' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)"
TARBALL="$CACHE_DIR/rootfs-$SUITE-$RECIPE_HASH.tar"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

say() { echo "make-base-image: $*"; }
start=$(date +%s.%N)
elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

if [[ $FORCE == 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE already present (nothing to do)"
  exit 0
fi

if [[ $FORCE == 1 || ! -s "$TARBALL" ]]; then
  command -v debootstrap >/dev/null || { echo "make-base-image: debootstrap missing (apt-get install -y debootstrap)" >&2; exit 1; }
  mkdir -p "$CACHE_DIR"
  root="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$root" "$TARBALL.tmp"' EXIT
  say "debootstrap $SUITE ($PACKAGES) from $MIRROR into $root"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -30 "$root.log" >&2; echo "make-base-image: debootstrap failed (full log: $root.log)" >&2; exit 1; }
  rm -f "$root.log"
  # Keep it small: package caches, docs, manuals and translations are of no use in a container.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
         "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*
  # python:3.11-slim has `python`; Debian only `python3`. Make both spellings work.
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$root"
  trap - EXIT
  say "cached root filesystem $TARBALL ($(du -h "$TARBALL" | cut -f1)) after $(elapsed)s"
else
  say "using cached root filesystem $TARBALL"
fi

docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "snail-trail offline base: debootstrap $SUITE minbase + $PACKAGES" \
  "$TARBALL" "$IMAGE" >/dev/null
say "imported $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $(elapsed)s total"
