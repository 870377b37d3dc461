#!/usr/bin/env bash
# `make demo-fleet`: one release through a fleet in the sandbox (3 waves, 4 targets, 2 regions, real containers),
# then a broken release caught in the first wave: the line stops, no later wave is touched, and the trail is
# printed. No AWS account needed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SNAIL="${SNAIL:-$( [ -x .venv/bin/snail ] && echo "$ROOT/.venv/bin/snail" || echo snail)}"
export SNAIL_SANDBOX=1 SNAIL_BASE_IMAGE="${SNAIL_BASE_IMAGE:-snail-base/python:3.11}" SNAIL_FLEET_POLL="${SNAIL_FLEET_POLL:-1}"
cd examples/fleet
OUT=.snail/demo
mkdir -p "$OUT"
t0=$(date +%s)
step() { printf '\n\033[1m━━ %s\033[0m\n' "$*"; }
expect() { # expect CODE COMMAND...: run it, and fail the demo unless it exits with CODE
  local want=$1; shift
  set +e; "$@"; local rc=$?; set -e
  if [ "$rc" -ne "$want" ]; then echo "demo-fleet: expected exit $want from '$*', got $rc" >&2; exit 1; fi
  echo "   exit code $rc"
}

step "1/7  a fresh sandbox seeded from fleet.yaml: 4 clusters and services in us-east-1 and eu-west-1"
"$SNAIL" sandbox down --fleet >/dev/null 2>&1 || true
rm -rf .snail/fleet .snail/targets
"$SNAIL" sandbox up --fleet

step "2/7  snail fleet validate, snail fleet plan: every target's pipeline, per wave what run will do"
"$SNAIL" fleet validate
"$SNAIL" fleet plan

step "3/7  snail fleet run: staging, then the one-box, then cell2 + euw1 (eu-west-1); the image is built once"
expect 0 "$SNAIL" fleet run

step "4/7  the next scheduled run: the release is live and good everywhere, nothing to do (-q: silent)"
expect 0 "$SNAIL" -q fleet run

step "5/7  a broken release (DEMO_BREAK_ML=1: /ml/status reports failed): caught in wave 1, the line stops"
expect 1 env DEMO_BREAK_ML=1 "$SNAIL" fleet run
echo "   staging rolled back to the last good revision, verified; one-box and rest never started"
expect 1 env DEMO_BREAK_ML=1 "$SNAIL" fleet run
echo "   the release is quarantined for the whole fleet: no target deploys it again until it changes"

step "6/7  snail fleet status: every target on a good revision"
"$SNAIL" fleet status --live

step "7/7  the fleet trail"
"$SNAIL" fleet trail -o "$OUT/fleet-trail.md"
"$SNAIL" fleet trail --format html -o "$OUT/fleet-trail.html"
sed -n '1,200p' "$OUT/fleet-trail.md"

printf '\n\033[1mdemo-fleet done in %ss.\033[0m trail: examples/fleet/%s/fleet-trail.md and .html\n' \
  "$(( $(date +%s) - t0 ))" "$OUT"
echo "the sandbox is still up: try 'snail --sandbox fleet status' in examples/fleet; stop it with 'snail sandbox down --fleet'"
