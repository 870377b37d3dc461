#!/usr/bin/env bash
# The whole suite as `make test` runs it, in two lanes at once:
#   - unit + ecsbox + functional under pytest-xdist, a worker per core, one test file per worker at a time
#     (--dist loadfile: a file's module fixtures are built once, and a file that races processes against each
#     other, such as the lock races, never runs beside itself);
#   - e2e (the real Docker Engine and registry) in one process beside them: those tests mostly wait on dockerd,
#     so they overlap the CPU-bound lane instead of adding to it.
# Each lane writes its own report; both are printed, the slower one last, and the exit status is the first failure.
# Extra arguments go to both pytest runs (e.g. -x, --durations=25).
set -u
PY=${PY:-.venv/bin/python}
OUT=${SNAIL_TEST_OUT:-.snail/test}
mkdir -p "$OUT"
WORKERS=${SNAIL_TEST_WORKERS:-auto}

start=$(date +%s)
"$PY" -m pytest -q -p no:cacheprovider tests/e2e "$@" >"$OUT/e2e.log" 2>&1 &
e2e_pid=$!
"$PY" -m pytest -q -n "$WORKERS" --dist loadfile --ignore=tests/e2e tests "$@" 2>&1 | tee "$OUT/main.log"
main_rc=${PIPESTATUS[0]}
main_s=$(($(date +%s) - start))
wait "$e2e_pid"
e2e_rc=$?
e2e_s=$(($(date +%s) - start))
echo "--- e2e (real Docker, beside the rest) ---"
cat "$OUT/e2e.log"
echo "suite: unit+ecsbox+functional rc=$main_rc in ${main_s}s; e2e rc=$e2e_rc done at ${e2e_s}s"
[ "$main_rc" -ne 0 ] && exit "$main_rc"
exit "$e2e_rc"
