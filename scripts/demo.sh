#!/usr/bin/env bash
# `make demo`: the reference pipeline in the sandbox (moto + a local registry + real containers), then a
# deliberately broken release and the automatic rollback, then the trail. No AWS account needed.
set -euo pipefail
cd "$(dirname "$0")/.."
SNAIL="${SNAIL:-$( [ -x .venv/bin/snail ] && echo .venv/bin/snail || echo snail)}"
export SNAIL_SANDBOX=1 SNAIL_BASE_IMAGE="${SNAIL_BASE_IMAGE:-snail-base/python:3.11}"
OUT=.snail/demo
mkdir -p "$OUT"
t0=$(date +%s)
step() { printf '\n\033[1m━━ %s\033[0m\n' "$*"; }

step "1/8  a fresh sandbox: moto as ECS/ECR/EC2/IAM/Logs, a registry on 127.0.0.1:5055, Docker for tasks"
"$SNAIL" sandbox down >/dev/null 2>&1 || true
"$SNAIL" sandbox up

step "2/8  snail doctor: the field log's incidents, checked before anything changes"
"$SNAIL" doctor

step "3/8  snail plan: what run will do"
"$SNAIL" plan | sed -n '1,30p'
echo "   … (full diff: snail --sandbox plan)"

step "4/8  snail run: health-only -> hybrid-ml -> optimized -> enhanced (build, probe, push, register, deploy, gate, bake)"
"$SNAIL" run

step "5/8  snail run again, as cron would: nothing changed, nothing to do"
"$SNAIL" run

step "6/8  a broken release of the live phase: enhanced with its ML subsystem failing (DEMO_BREAK_ML=1), blue-green, production under load"
echo "   the ladder is climbed once: run delivers the live phase's new spec directly (health-only, hybrid-ml, optimized are not redeployed)"
# Steady traffic on the production listener while the broken release is judged on the test listener.
PROD_URL=$("$SNAIL" --output json sandbox status 2>/dev/null | python3 -c \
  'import json,sys; print((json.load(sys.stdin).get("seeded") or {}).get("production_url") or "")' || true)
STOP="$OUT/load.stop"
rm -f "$STOP" "$OUT/load.txt"
if [ -n "$PROD_URL" ]; then
  python3 scripts/production_load.py "$PROD_URL/ml/status" "$STOP" 20 >"$OUT/load.txt" 2>&1 &
  LOAD_PID=$!
fi
set +e
DEMO_BREAK_ML=1 "$SNAIL" run
rc=$?
set -e
if [ -n "${LOAD_PID:-}" ]; then
  touch "$STOP"
  wait "$LOAD_PID" || true
fi
if [ "$rc" -ne 1 ]; then
  echo "demo: expected exit 1 (rolled back), got $rc" >&2
  exit 1
fi
echo "   exit code $rc: the release failed its gates on the TEST listener; ECS returned traffic to blue (no new task), verified"
[ -s "$OUT/load.txt" ] && echo "   $(cat "$OUT/load.txt")   <- with rolling, the broken release served production until the rollback"

step "6b   the next scheduled run: the failed release is quarantined, nothing is deployed again"
set +e
DEMO_BREAK_ML=1 "$SNAIL" run
rc=$?
set -e
if [ "$rc" -ne 1 ]; then
  echo "demo: expected exit 1 (quarantined), got $rc" >&2
  exit 1
fi
echo "   exit code $rc: quarantined until its spec changes (or: snail --sandbox run --retry-failed)"

step "7/8  snail status: back on the last good revision"
"$SNAIL" status

step "8/8  the trail"
"$SNAIL" trail -o "$OUT/trail.md"
"$SNAIL" trail --format html -o "$OUT/trail.html"
"$SNAIL" trail --format json -o "$OUT/trail.json"
sed -n '1,400p' "$OUT/trail.md"

printf '\n\033[1mdemo done in %ss.\033[0m trail: %s/trail.md, %s/trail.html, %s/trail.json\n' \
  "$(( $(date +%s) - t0 ))" "$OUT" "$OUT" "$OUT"
echo "the sandbox is still up: try 'snail --sandbox status' or 'snail --sandbox rollback --to-phase hybrid-ml'; stop it with 'snail sandbox down'"
