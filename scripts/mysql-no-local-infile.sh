#!/usr/bin/env bash
# Runs the MySQL test of a server that refuses LOAD DATA LOCAL INFILE (issue 16): MySQL 8's
# default, which the shared MariaDB on 3306 cannot play without changing a global variable
# under parallel tests. Starts a private MariaDB (mariadbd from the Debian package) with
# --local-infile=0 and the upstream default character set (latin1) in a temporary folder on
# PORT, runs COMMAND with DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE naming it (by default the one test
# that needs it; `.ci/run` runs the whole suite this way), and stops it. The test fails under
# CI=true without such a server, so CI cannot pass without running it.
#
# usage: scripts/mysql-no-local-infile.sh [COMMAND...]   (PORT=3317)
set -euo pipefail

: "${PORT:=3317}"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(mktemp -d)
pid=

cleanup() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

user=()
[[ $(id -u) == 0 ]] && user=(--user=root)
mariadb-install-db --no-defaults --datadir="$dir/data" "${user[@]}" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
    || { cat "$dir/install.log" >&2; exit 1; }
/usr/sbin/mariadbd --no-defaults --datadir="$dir/data" "${user[@]}" --port="$PORT" \
    --bind-address=127.0.0.1 --socket="$dir/sock" --pid-file="$dir/pid" --skip-grant-tables \
    --local-infile=0 --skip-log-bin --innodb-buffer-pool-size=64M >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    mariadb -h127.0.0.1 -P"$PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
done
mariadb -h127.0.0.1 -P"$PORT" -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
echo "private MariaDB on $PORT: local_infile=$(mariadb -h127.0.0.1 -P"$PORT" -uroot -N -e 'SELECT @@local_infile')"

cd "$repo"
if (($# == 0)); then
    set -- nice -n 19 cargo test --test it -- --exact \
        load_mysql::a_server_refusing_local_infile_gets_insert_batches
fi
export DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE="mysql://root@127.0.0.1:$PORT/test"
CI=true "$@"
