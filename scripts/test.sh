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
# The model-quality tests read ../shared/data: here a missing copy fails them instead of skipping them.
export CASEMGR_REQUIRE_SHARED_DATA=1
BIN=.venv/bin

PGDIR=$(mktemp -d /tmp/casemgr-pg.XXXXXX)
PGPORT=${CASEMGR_TEST_PG_PORT:-55433}
cleanup() { bash scripts/pg.sh stop "$PGDIR" || true; rm -rf "$PGDIR"; }
trap cleanup EXIT
PGURL=$(bash scripts/pg.sh start "$PGDIR" "$PGPORT")
export CASEMGR_TEST_PG_URL="$PGURL"

$BIN/ruff check casemgr tests
# A rise in mypy errors fails the run, but only at the end: the test results below are still produced.
typecheck_status=0
BIN=$BIN bash scripts/typecheck.sh || typecheck_status=$?

echo "== test suite on SQLite"
$BIN/pytest -q -m "not slow" tests "$@"

echo "== test suite on PostgreSQL ($PGURL)"
CASEMGR_TEST_DATABASE_URL="$PGURL" $BIN/pytest -q -m "not slow and not browser and not sqlite_only" tests "$@"

if [ "$typecheck_status" != 0 ]; then
  echo "== scripts/typecheck.sh failed (exit $typecheck_status): see its output at the top" >&2
  exit "$typecheck_status"
fi
