#!/usr/bin/env bash
# Runs Instructure's official DAP client (`instructure-dap-client`, CLI `dap`), unmodified,
# against `dap-run sandbox`: list, schema, snapshot and incremental must all succeed and the
# downloaded files must be valid gzip JSON Lines. Then `dap initdb` and `dap syncdb` replicate
# a few tables into a scratch PostgreSQL database (created and dropped here), and every table
# must hold exactly the sandbox's rows at the client's recorded `timestamp`: same count, same
# keys, same `updated_at` per key. PostgreSQL comes from DAP_RUN_TEST_POSTGRES (default
# postgresql://postgres@127.0.0.1:5432/test); when it is unreachable that part is skipped with
# a message, except under CI=true, where it fails. The same round trip runs against MariaDB or
# MySQL (DAP_RUN_TEST_MYSQL, default mysql://root@127.0.0.1:3306/test) before the PostgreSQL one.
#
# usage: scripts/official-client-check.sh path/to/dap-run [venv-dir]
set -euo pipefail

bin=${1:?usage: official-client-check.sh path/to/dap-run [venv-dir]}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
venv=${2:-$work/venv}
sandbox_pid=
pg_admin=${DAP_RUN_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
scratch_db=

cleanup() {
    if [[ -n $sandbox_pid ]]; then
        kill "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    for d in ${my_scratch:-} ${my_ours:-}; do
        my "$my_admin" "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true
    done
    if [[ -n $scratch_db ]]; then
        psql -q -d "$pg_admin" -c "DROP DATABASE IF EXISTS $scratch_db" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -x $venv/bin/dap ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'instructure-dap-client[postgresql]'
fi
echo "official client: $("$venv/bin/pip" show instructure-dap-client | grep '^Version')"

"$bin" sandbox --polls 0 >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!
for _ in $(seq 100); do
    [[ -s $work/sandbox.out ]] && break
    sleep 0.1
done
url=$(head -n1 "$work/sandbox.out")
[[ $url == http://* ]] || { echo "sandbox did not print its URL" >&2; cat "$work/sandbox.err" >&2; exit 1; }
echo "sandbox: $url"

export DAP_API_URL=$url DAP_CLIENT_ID=sandbox DAP_CLIENT_SECRET=sandbox DAP_TRACKING=false
dap() { "$venv/bin/dap" --no-tracking --non-interactive --loglevel info "$@"; }
cd "$work"

echo "== dap list"
dap list --namespace canvas | tee list.txt
grep -qx accounts list.txt

echo "== dap schema"
dap schema --namespace canvas --table accounts --output-directory schema
find schema -type f -name '*.json' | grep -q . 
find schema -type f -name '*.json' -exec python3 -m json.tool {} \; >/dev/null

check_jsonl_gz() {
    local dir=$1 count=0
    while IFS= read -r -d '' file; do
        gzip -t "$file"
        gzip -dc "$file" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.strip()]
assert rows, "no rows"
assert all({"key", "meta"} <= row.keys() for row in rows), "rows lack key/meta"
print(f"  {sys.argv[1]}: {len(rows)} rows")' "$file"
        count=$((count + 1))
    done < <(find "$dir" -type f -name '*.gz' -print0)
    [[ $count -gt 0 ]] || { echo "no files downloaded to $dir" >&2; exit 1; }
}

echo "== dap snapshot"
dap snapshot --namespace canvas --table accounts --format jsonl --output-directory snapshot 2>&1 | tee snapshot.log
check_jsonl_gz snapshot
# The snapshot's `at`, from the job the client printed, chains into the incremental query.
since=$(python3 -c '
import json, sys
jobs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
print(jobs[-1]["at"])' snapshot.log)
echo "snapshot at: $since"

echo "== dap incremental"
dap incremental --namespace canvas --table accounts --format jsonl --since "$since" --output-directory incremental 2>&1 | tee incremental.log
check_jsonl_gz incremental

# MariaDB/MySQL (issue 16): the same round trip with DAP_RUN_TEST_MYSQL (default
# mysql://root@127.0.0.1:3306/test): `dap initdb`/`syncdb` into a scratch database, dap-run
# continues it, dap-run's own replica has the same tables, columns and types, and `dap syncdb`
# continues dap-run's replica; every table holds the sandbox's rows at its recorded point.
my_admin=${DAP_RUN_TEST_MYSQL:-mysql://root@127.0.0.1:3306/test}
if ! "$venv/bin/python" -c 'import aiomysql' 2>/dev/null; then
    "$venv/bin/pip" install --quiet 'instructure-dap-client[mysql]'
fi
my() { # my URL SQL: tab-separated rows
    "$venv/bin/python" - "$@" <<'PY'
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
my_check() { # my_check URL: every table in table_sync equals the sandbox at its timestamp
    "$venv/bin/python" - "$url" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request, uuid, pymysql
url, db = sys.argv[1], sys.argv[2]
def key_text(k):  # a uuid key (web_logs.id) is binary(16) in MySQL
    return str(uuid.UUID(bytes=bytes(k))) if isinstance(k, (bytes, bytearray)) and len(k) == 16 else str(k)
u = urllib.parse.urlparse(db)
c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=urllib.parse.unquote(u.username or ""),
                    password=urllib.parse.unquote(u.password or ""), database=u.path.lstrip("/"))
cur = c.cursor()
cur.execute("SELECT source_namespace, source_table, DATE_FORMAT(`timestamp`, '%Y-%m-%dT%H:%i:%sZ'), "
            "target_table FROM instructure_dap__table_sync ORDER BY 1, 2")
failed = False
synced = cur.fetchall()
assert len(synced) == 6, f"table_sync has {len(synced)} rows, expected 6"
for namespace, table, at, target in synced:
    with urllib.request.urlopen(f"{url}/sandbox/rows/{namespace}/{table}?at={at}") as response:
        expected = [json.loads(line) for line in response.read().decode().splitlines()]
    column = "timestamp" if table == "web_logs" else "updated_at"
    want = {str(row["key"]["id"]): row["value"][column].rstrip("Z") for row in expected}
    # The official client's `target_table` is the DAP table; the MySQL table has the prefix.
    cur.execute(f"SELECT id, DATE_FORMAT(`{column}`, '%Y-%m-%dT%H:%i:%s') FROM `{namespace}__{target}`")
    got = {key_text(k): v for k, v in cur.fetchall()}
    failed |= got != want
    print(f"  {u.path.lstrip('/')}: {namespace}.{table} at {at}: {len(got)} rows, "
          f"{len(want)} in the sandbox: {'same keys and versions' if got == want else 'DIFFERENT'}")
sys.exit(1 if failed else 0)
PY
}
echo "== dap initdb + dap syncdb into MariaDB/MySQL"
if ! my "$my_admin" 'SELECT 1' >/dev/null 2>&1; then
    if [[ ${CI:-} == true ]]; then
        echo "MySQL at $my_admin is unreachable; under CI=true this fails" >&2
        exit 1
    fi
    echo "skipped: MySQL at $my_admin is unreachable; the MySQL part is not checked"
else
    my_scratch="dap_run_official_$$_$RANDOM"
    my_ours="dap_run_ours_$$_$RANDOM"
    my "$my_admin" "CREATE DATABASE $my_scratch" >/dev/null
    my "$my_admin" "CREATE DATABASE $my_ours" >/dev/null
    my_db="${my_admin%/*}/$my_scratch"
    my_ours_url="${my_admin%/*}/$my_ours"
    echo "scratch database: $my_scratch ($(my "$my_admin" 'SELECT VERSION()'))"
    my_tables=accounts,users,courses,enrollments,submissions
    DAP_CONNECTION_STRING=$my_db dap initdb --namespace canvas --table "$my_tables"
    DAP_CONNECTION_STRING=$my_db dap initdb --namespace canvas_logs --table web_logs
    DAP_CONNECTION_STRING=$my_db dap syncdb --namespace canvas --table "$my_tables"
    DAP_CONNECTION_STRING=$my_db dap syncdb --namespace canvas_logs --table web_logs
    my_check "$my_db"
    cp "$repo/examples/replicate.toml" "$work/replicate.toml"
    my_json='["accounts","users","courses","enrollments","submissions"]'
    echo "== dap-run continues the official client's MariaDB replica"
    "$bin" run "$work/replicate.toml" --output-dir "$work/my-out" --database "$my_db" --var "tables=$my_json" 2>&1 | tee my-takeover.log
    "$bin" run "$work/replicate.toml" --output-dir "$work/my-out" --database "$my_db" --var namespace=canvas_logs --var 'tables=["web_logs"]' 2>&1 | tee -a my-takeover.log
    if grep -q 'snapshot (' my-takeover.log; then
        echo "dap-run took a snapshot of an official-client MySQL table instead of continuing it" >&2
        exit 1
    fi
    my_check "$my_db"
    echo "== dap-run from scratch into $my_ours"
    "$bin" run "$work/replicate.toml" --output-dir "$work/my-ours" --database "$my_ours_url" --var "tables=$my_json"
    "$bin" run "$work/replicate.toml" --output-dir "$work/my-ours" --database "$my_ours_url" --var namespace=canvas_logs --var 'tables=["web_logs"]'
    layout_my="SELECT table_name, column_name, column_type, is_nullable, column_key, ordinal_position
      FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name LIKE 'canvas%' ORDER BY 1, 6"
    diff <(my "$my_db" "$layout_my") <(my "$my_ours_url" "$layout_my") \
        || { echo "dap-run's MySQL tables differ from the official client's (< official, > dap-run)" >&2; exit 1; }
    echo "  same tables, columns, types, nullability and keys as the official client's"
    echo "== dap syncdb continues dap-run's MariaDB replica"
    DAP_CONNECTION_STRING=$my_ours_url dap syncdb --namespace canvas --table "$my_tables"
    DAP_CONNECTION_STRING=$my_ours_url dap syncdb --namespace canvas_logs --table web_logs
    my_check "$my_ours_url"
fi

echo "== dap initdb + dap syncdb into PostgreSQL"
if ! command -v psql >/dev/null 2>&1 || ! psql -q -d "$pg_admin" -c 'SELECT 1' >/dev/null 2>&1; then
    if [[ ${CI:-} == true ]]; then
        echo "PostgreSQL at $pg_admin is unreachable (or psql is missing); under CI=true this fails" >&2
        exit 1
    fi
    echo "skipped: PostgreSQL at $pg_admin is unreachable (or psql is missing); initdb/syncdb not checked"
    echo "official client check: ok (without the database part)"
    exit 0
fi
if ! "$venv/bin/python" -c 'import asyncpg' 2>/dev/null; then
    "$venv/bin/pip" install --quiet 'instructure-dap-client[postgresql]'
fi
scratch_db="dap_run_official_$$_$RANDOM"
psql -q -d "$pg_admin" -c "CREATE DATABASE $scratch_db" >/dev/null
db_url="${pg_admin%/*}/$scratch_db"
echo "scratch database: $scratch_db ($(psql -At -d "$db_url" -c 'SHOW server_version'))"
export DAP_CONNECTION_STRING=$db_url
canvas_tables=accounts,users,courses,enrollments,submissions
dap initdb --namespace canvas --table "$canvas_tables"
dap initdb --namespace canvas_logs --table web_logs
# The sandbox's data changes every second (a key in four each second), and the client waits at
# least 5 s for each job: the incrementals carry updates, inserts and deletes.
dap syncdb --namespace canvas --table "$canvas_tables"
dap syncdb --namespace canvas_logs --table web_logs

"$venv/bin/python" - "$url" "$db_url" <<'PY'
import json, subprocess, sys, urllib.request
url, db = sys.argv[1], sys.argv[2]
def psql(sql):
    out = subprocess.run(["psql", "-At", "-F", "\t", "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]
synced = psql("SELECT source_namespace, source_table, "
              "to_char(timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), target_schema, target_table "
              "FROM instructure_dap.table_sync ORDER BY 1, 2")
assert len(synced) == 6, f"table_sync has {len(synced)} rows, expected 6: {synced}"
failed = False
for namespace, table, at, schema, target in synced:
    with urllib.request.urlopen(f"{url}/sandbox/rows/{namespace}/{table}?at={at}") as response:
        expected = [json.loads(line) for line in response.read().decode().splitlines()]
    column = "timestamp" if table == "web_logs" else "updated_at"
    want = {str(row["key"]["id"]): row["value"][column].rstrip("Z") for row in expected}
    got = {key: ts.replace(" ", "T") for key, ts in psql(
        f'SELECT id, {column} FROM "{schema}"."{target}"')}
    ok = got == want
    failed |= not ok
    print(f"  {namespace}.{table} at {at}: {len(got)} rows in PostgreSQL, "
          f"{len(want)} in the sandbox: {'same keys and versions' if ok else 'DIFFERENT'}")
    if not ok:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        stale = [k for k in want if k in got and got[k] != want[k]][:5]
        print(f"    missing {missing}, extra {extra}, stale {stale}")
sys.exit(1 if failed else 0)
PY

# dap-run (issue 14): it continues the official client's replica incrementally (no snapshot),
# and a replica it makes from scratch has the official client's tables, columns and types;
# the official client's `syncdb` then continues dap-run's replica.
cp "$repo/examples/replicate.toml" "$work/replicate.toml"
tables_json='["accounts","users","courses","enrollments","submissions"]'
replicate() {
    "$bin" run "$work/replicate.toml" --output-dir "$work/replica-out" "$@"
}
echo "== dap-run continues the official client's replica"
replicate --var "tables=$tables_json" 2>&1 | tee takeover.log
replicate --var namespace=canvas_logs --var 'tables=["web_logs"]' 2>&1 | tee -a takeover.log
if grep -q 'snapshot (' takeover.log; then
    echo "dap-run took a snapshot of an official-client table instead of continuing it" >&2
    exit 1
fi
[[ $(grep -c 'incremental since' takeover.log) -ge 12 ]] || { echo "expected 6 incremental loads" >&2; exit 1; }

ours_db="dap_run_ours_$$_$RANDOM"
psql -q -d "$pg_admin" -c "CREATE DATABASE $ours_db" >/dev/null
ours_url="${pg_admin%/*}/$ours_db"
trap 'psql -q -d "$pg_admin" -c "DROP DATABASE IF EXISTS $ours_db" >/dev/null 2>&1 || true; cleanup' EXIT
echo "== dap-run from scratch into $ours_db"
replicate --database "$ours_url" --var "tables=$tables_json"
replicate --database "$ours_url" --var namespace=canvas_logs --var 'tables=["web_logs"]'
layout_sql="SELECT table_schema, table_name, column_name, data_type, udt_schema || '.' || udt_name,
  coalesce(character_maximum_length, 0), is_nullable, ordinal_position
  FROM information_schema.columns WHERE table_schema IN ('canvas', 'canvas_logs') ORDER BY 1, 2, 8"
diff <(psql -At -d "$db_url" -c "$layout_sql") <(psql -At -d "$ours_url" -c "$layout_sql") \
    || { echo "dap-run's tables differ from the official client's (above: < official, > dap-run)" >&2; exit 1; }
echo "  same tables, columns, types and nullability as the official client's"
pk_sql="SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'p'
  AND connamespace::regnamespace::text IN ('canvas', 'canvas_logs') ORDER BY 1"
diff <(psql -At -d "$db_url" -c "$pk_sql") <(psql -At -d "$ours_url" -c "$pk_sql") \
    || { echo "primary keys differ" >&2; exit 1; }
echo "== dap syncdb continues dap-run's replica"
DAP_CONNECTION_STRING=$ours_url dap syncdb --namespace canvas --table "$canvas_tables"
DAP_CONNECTION_STRING=$ours_url dap syncdb --namespace canvas_logs --table web_logs
# Both replicas hold the sandbox's rows at their recorded points.
for db in "$db_url" "$ours_url"; do
"$venv/bin/python" - "$url" "$db" <<'PY'
import json, subprocess, sys, urllib.request
url, db = sys.argv[1], sys.argv[2]
def psql(sql):
    out = subprocess.run(["psql", "-At", "-F", "\t", "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]
failed = False
for namespace, table, at, schema, target in psql(
        "SELECT source_namespace, source_table, "
        "to_char(timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), target_schema, target_table "
        "FROM instructure_dap.table_sync ORDER BY 1, 2"):
    with urllib.request.urlopen(f"{url}/sandbox/rows/{namespace}/{table}?at={at}") as response:
        expected = [json.loads(line) for line in response.read().decode().splitlines()]
    column = "timestamp" if table == "web_logs" else "updated_at"
    want = {str(row["key"]["id"]): row["value"][column].rstrip("Z") for row in expected}
    got = {key: ts.replace(" ", "T") for key, ts in psql(
        f'SELECT id, {column} FROM "{schema}"."{target}"')}
    failed |= got != want
    print(f"  {db.rsplit('/', 1)[-1]}: {namespace}.{table} at {at}: "
          f"{'same rows as the sandbox' if got == want else 'DIFFERENT'} ({len(got)})")
sys.exit(1 if failed else 0)
PY
done

echo "official client check: ok"
