#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster on loopback for the test suite.
#   scripts/pg.sh start DIR PORT   -> prints the database URL
#   scripts/pg.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?dir}; port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
case $cmd in
  start)
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then run "$bin/initdb -D '$dir' -U postgres --auth=trust -E UTF8 >/dev/null"; fi
    run "$bin/pg_ctl -D '$dir' -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300' -l '$dir/log' -w start >/dev/null"
    for db in casemgr_test casemgr_test2; do
      run "$bin/psql -h 127.0.0.1 -p $port -U postgres -tc \"select 1 from pg_database where datname='$db'\" | grep -q 1 || $bin/createdb -h 127.0.0.1 -p $port -U postgres $db"
    done
    echo "postgresql://postgres@127.0.0.1:$port/casemgr_test"
    ;;
  stop)
    run "$bin/pg_ctl -D '$dir' -m fast stop >/dev/null" || true
    ;;
esac
