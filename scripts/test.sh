#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, Python packages, PostgreSQL on loopback,
# then pytest against SQLite and against PostgreSQL. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

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
echo "== [${SECONDS}s] system and Python packages in place"
# The model-quality tests read ../shared/data: here a missing copy fails them instead of skipping them.
export CASEMGR_REQUIRE_SHARED_DATA=1
BIN=.venv/bin

PGDIR=$(mktemp -d /tmp/casemgr-pg.XXXXXX)
LOGS=$(mktemp -d /tmp/casemgr-test-logs.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  bash scripts/pg.sh stop "$PGDIR" || true; rm -rf "$PGDIR" "$LOGS"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
PGPORT=${CASEMGR_TEST_PG_PORT:-55433}
PGURL=$(bash scripts/pg.sh start "$PGDIR" "$PGPORT")
export CASEMGR_TEST_PG_URL="$PGURL"

$BIN/ruff check casemgr tests
echo "== [${SECONDS}s] installed, PostgreSQL up, ruff clean"

# The machine has 2 cores and each run below keeps about one busy, so mypy and the two databases' suites run side
# by side, each into its own log, printed whole (closing lines included) once all three are done.
# in_background NAME CMD...: CMD into $LOGS/NAME.log, which ends with its exit status and wall time.
in_background() {
  local name=$1; shift
  { local started=$SECONDS rc=0; "$@" || rc=$?; echo "== $name: exit $rc after $((SECONDS - started)) s"; exit $rc; } \
    >"$LOGS/$name.log" 2>&1 &
  pids+=("$!")
}
# A rise in mypy errors fails the run, but only at the end: the test results below are still produced.
in_background typecheck env BIN=$BIN bash scripts/typecheck.sh
in_background sqlite $BIN/pytest -q -m "not slow" tests "$@"
# Its own pytest cache directory: two runs writing one lastfailed file at once could garble it.
in_background postgresql env CASEMGR_TEST_DATABASE_URL="$PGURL" $BIN/pytest -q -o cache_dir=.pytest_cache/postgresql \
  -m "not slow and not browser and not sqlite_only" tests "$@"

typecheck_status=0; wait "${pids[0]}" || typecheck_status=$?
cat "$LOGS/typecheck.log"
sqlite_status=0; wait "${pids[1]}" || sqlite_status=$?
echo "== test suite on SQLite"
cat "$LOGS/sqlite.log"
pg_status=0; wait "${pids[2]}" || pg_status=$?
echo "== test suite on PostgreSQL ($PGURL)"
cat "$LOGS/postgresql.log"
pids=()
echo "== [${SECONDS}s] both suites done"

if [ "$sqlite_status" != 0 ] || [ "$pg_status" != 0 ]; then
  echo "== pytest failed: SQLite exit $sqlite_status, PostgreSQL exit $pg_status" >&2
  exit 1
fi
if [ "$typecheck_status" != 0 ]; then
  echo "== scripts/typecheck.sh failed (exit $typecheck_status): see its output at the top" >&2
  exit "$typecheck_status"
fi
