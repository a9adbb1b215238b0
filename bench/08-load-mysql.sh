#!/usr/bin/env bash
# Loading a table into MariaDB/MySQL (issue 16), the MySQL twin of 07-load.sh: a snapshot of
# ROWS rows and an incremental that changes every row (about 9 in 10 updated, 1 in 10 deleted),
# by
#   - dap-run (`examples/replicate.toml`, one table), end to end and its database time;
#   - dap-run at ROWS rows again with `?local_infile=false` (rows staged with INSERT batches,
#     the path of a server that refuses LOAD DATA LOCAL INFILE), unless INSERT_PATH=0;
#   - the official client (`dap initdb` / `dap syncdb` into MySQL), at OFFICIAL_ROWS rows
#     (default 100000: row-by-row `executemany`, minutes at 1M rows; 0 skips it);
#   - dap-run at OFFICIAL_ROWS rows, for the same-size comparison.
# Peak memory (max RSS) from /usr/bin/time. One run each.
#
# usage: bench/08-load-mysql.sh   (ROWS=1000000 OFFICIAL_ROWS=100000 INSERT_PATH=1 DAP_RUN_TEST_MYSQL=... VENV=...)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ROWS:=1000000}"
: "${OFFICIAL_ROWS:=100000}"
: "${INSERT_PATH:=1}"
: "${VENV:=$HOME/.cache/dap-run-bench/venv}"
my_admin=${DAP_RUN_TEST_MYSQL:-mysql://root@127.0.0.1:3306/test}
work=$(mktemp -d)
dbs=()

if [[ ! -x $VENV/bin/dap ]]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import aiomysql' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet 'instructure-dap-client[mysql]'
fi

# my URL SQL: tab-separated rows (pymysql from the official client's venv).
my() {
    "$VENV/bin/python" - "$@" <<'PY'
import sys, urllib.parse, pymysql
u = urllib.parse.urlparse(sys.argv[1])
c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=urllib.parse.unquote(u.username or ""),
                    password=urllib.parse.unquote(u.password or ""), database=u.path.lstrip("/") or None,
                    autocommit=True)
with c.cursor() as cur:
    cur.execute(sys.argv[2])
    for row in cur.fetchall():
        print("\t".join("" if v is None else str(v) for v in row))
PY
}

cleanup() {
    stop_sandboxes
    for db in "${dbs[@]}"; do
        my "$my_admin" "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# new_db TAG: creates a database and sets $db to its URL (not in a subshell, so that
# cleanup sees it in $dbs).
new_db() {
    local name="dap_run_bench_$1_$$"
    my "$my_admin" "CREATE DATABASE $name" >/dev/null
    dbs+=("$name")
    db="${my_admin%/*}/$name"
}


cp "$repo_dir/examples/replicate.toml" "$work/"
bench_table() {
    stop_sandboxes
    start_sandbox --polls 0 --rows "$1" --change-every 2s --change-period 1
    export DAP_API_URL=$sandbox_url
}
state_sql="SELECT CONCAT(last_load, '-db'), duration_ms / 1000.0, upserted, deleted FROM dap_run__table_state"

echo "# server: $(my "$my_admin" 'SELECT VERSION()')"
if [[ $ROWS -gt 0 ]]; then # ROWS=0: only the official client and the same-size dap-run
echo "# dap-run, $ROWS rows"
bench_table "$ROWS"
new_db dap
job=(run "$work/replicate.toml" --output-dir "$work/out" --var 'tables=["users"]' --database "$db")
timed dap-run-snapshot "$DAP_RUN" "${job[@]}"
my "$db" "$state_sql"
sleep 3
timed dap-run-incremental "$DAP_RUN" "${job[@]}"
my "$db" "$state_sql"
if [[ $INSERT_PATH == 1 ]]; then
echo "# dap-run, $ROWS rows, local_infile=false (INSERT batches)"
bench_table "$ROWS"
new_db dap_insert
job=(run "$work/replicate.toml" --output-dir "$work/out-insert" --var 'tables=["users"]' --database "$db?local_infile=false")
timed dap-run-snapshot-insert "$DAP_RUN" "${job[@]}"
my "$db" "$state_sql"
sleep 3
timed dap-run-incremental-insert "$DAP_RUN" "${job[@]}"
my "$db" "$state_sql"
fi
fi
[[ $OFFICIAL_ROWS -gt 0 ]] || exit 0

echo "# official client, $OFFICIAL_ROWS rows"
bench_table "$OFFICIAL_ROWS"
new_db official
# (An executable, not a shell function: /usr/bin/time runs it.)
dap=("$VENV/bin/dap" --no-tracking --non-interactive --loglevel warning)
export DAP_CONNECTION_STRING=$db
timed official-initdb "${dap[@]}" initdb --namespace canvas --table users
sleep 3
timed official-syncdb "${dap[@]}" syncdb --namespace canvas --table users
my "$db" "SELECT 'official-rows', COUNT(*) FROM canvas__users"

echo "# dap-run, $OFFICIAL_ROWS rows (the official client's size)"
new_db dap_small
job=(run "$work/replicate.toml" --output-dir "$work/out-small" --var 'tables=["users"]' --database "$db")
timed dap-run-snapshot-small "$DAP_RUN" "${job[@]}"
sleep 3
timed dap-run-incremental-small "$DAP_RUN" "${job[@]}"
my "$db" "$state_sql"
