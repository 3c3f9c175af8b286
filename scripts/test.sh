#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, Python packages, PostgreSQL on loopback,
# then pytest against SQLite and against PostgreSQL, and the slow suite (fault, soak and timing tests, SQLite).
# Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

# CPU time beside wall time on every progress line: on a shared machine the wall time mostly measures the load,
# the CPU time (user + system of every finished child, tests' subprocesses included) is what a change can cut.
CPU_FILE=$(mktemp /tmp/casemgr-cpu.XXXXXX)
trap 'rm -f "$CPU_FILE"' EXIT
# cpu_s FILE: the children's user + system seconds from a `times` report (its second line).
cpu_s() { awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); n += p[1] * 60 + p[2] } printf "%d", n }' "$1"; }
# progress TEXT: one line with the wall seconds so far and the CPU seconds of all finished children.
progress() { times >"$CPU_FILE"; echo "== [${SECONDS}s, CPU $(cpu_s "$CPU_FILE") s] $*"; }

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v strace >/dev/null || need_apt+=(strace)  # tests/intake/test_durable_ack.py (slow suite)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
[ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)
command -v faketime >/dev/null || need_apt+=(faketime)  # slow suite: SLA/jobs/metrics 400 days ahead
[ -x /usr/sbin/postfix ] || need_apt+=(postfix)  # slow suite: tests/intake/test_postfix_pipe.py (MTA pipe transport)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
  else
    echo "missing Debian packages: ${need_apt[*]} (run as root or install them)" >&2
  fi
fi

make install
progress "system and Python packages in place"
# The model-quality tests read ../shared/data: here a missing copy fails them instead of skipping them.
export CASEMGR_REQUIRE_SHARED_DATA=1
BIN=.venv/bin

PGDIR=$(mktemp -d /tmp/casemgr-pg.XXXXXX)
LOGS=$(mktemp -d /tmp/casemgr-test-logs.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  bash scripts/pg.sh stop "$PGDIR" || true; rm -rf "$PGDIR" "$LOGS" "$CPU_FILE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
PGPORT=${CASEMGR_TEST_PG_PORT:-55433}
PGURL=$(bash scripts/pg.sh start "$PGDIR" "$PGPORT")
export CASEMGR_TEST_PG_URL="$PGURL"

$BIN/ruff check casemgr tests
progress "installed, PostgreSQL up, ruff clean"

# The machine has 2 cores. mypy, the two databases' suites and a third run (the browser journeys and the slow
# suite's untimed part: fault, soak and install runs that wait on subprocesses, sleeps and leases much of the time)
# run side by side, each into its own log, printed whole (closing lines included) once all are done. The slow tests
# that measure speed (`timing`: floors, same-run ratios, kill windows) run after them, alone on the machine. The
# PostgreSQL run leaves out the tests that never touch a database (`no_db`, checked by tests/conftest.py on SQLite):
# there they would only repeat the SQLite run.
# in_background NAME CMD...: CMD into $LOGS/NAME.log, which ends with its exit status, wall time and CPU time.
in_background() {
  local name=$1; shift
  { local started=$SECONDS rc=0; "$@" || rc=$?; times >"$LOGS/$name.cpu"
    echo "== $name: exit $rc after $((SECONDS - started)) s (CPU $(cpu_s "$LOGS/$name.cpu") s)"; exit $rc; } \
    >"$LOGS/$name.log" 2>&1 &
  pids+=("$!")
}
# A rise in mypy errors fails the run, but only at the end: the test results below are still produced.
in_background typecheck env BIN=$BIN bash scripts/typecheck.sh
in_background sqlite $BIN/pytest -q -m "not slow and not browser" tests "$@"
# Its own pytest cache directory: two runs writing one lastfailed file at once could garble it.
in_background postgresql env CASEMGR_TEST_DATABASE_URL="$PGURL" $BIN/pytest -q -o cache_dir=.pytest_cache/postgresql \
  -m "not slow and not browser and not sqlite_only and not no_db" tests "$@"
# SQLite too; the browser journeys (Chromium, a served app) balance the two SQLite runs.
in_background slow_browser $BIN/pytest -q -o cache_dir=.pytest_cache/slow -m "(slow and not timing) or browser" tests "$@"

status=()
for i in "${!pids[@]}"; do rc=0; wait "${pids[$i]}" || rc=$?; status+=("$rc"); done
pids=()
# Arguments that select a few tests may leave a run with nothing to collect (exit 5): only then is that fine.
if [ $# -gt 0 ]; then for i in 1 2 3; do if [ "${status[$i]}" = 5 ]; then status[i]=0; fi; done; fi
cat "$LOGS/typecheck.log"
echo "== test suite on SQLite"
cat "$LOGS/sqlite.log"
echo "== test suite on PostgreSQL ($PGURL)"
cat "$LOGS/postgresql.log"
echo "== browser journeys and the slow suite's untimed part (fault, soak and install runs; SQLite)"
cat "$LOGS/slow_browser.log"
progress "both suites and the untimed slow tests done"

# Alone on the machine: their figures would mostly measure the runs above. Exit 5 (nothing collected) fails too.
timing_status=0
$BIN/pytest -q -o cache_dir=.pytest_cache/slow -m "slow and timing" tests "$@" || timing_status=$?
if [ $# -gt 0 ] && [ "$timing_status" = 5 ]; then timing_status=0; fi
progress "timing-sensitive slow tests done"

if [ "${status[1]}" != 0 ] || [ "${status[2]}" != 0 ] || [ "${status[3]}" != 0 ] || [ "$timing_status" != 0 ]; then
  echo "== pytest failed: SQLite exit ${status[1]}, PostgreSQL exit ${status[2]}, browser and slow untimed exit" \
    "${status[3]}, slow timing exit $timing_status" >&2
  exit 1
fi
if [ "${status[0]}" != 0 ]; then
  echo "== scripts/typecheck.sh failed (exit ${status[0]}): see its output at the top" >&2
  exit "${status[0]}"
fi
