#!/usr/bin/env bash
# Runs Instructure's official DAP client (`instructure-dap-client`, CLI `dap`), unmodified,
# against `dap-run sandbox`: list, schema, snapshot and incremental must all succeed and the
# downloaded files must be valid gzip JSON Lines. Then the oracle: every table of every
# namespace the sandbox serves is replicated by `dap initdb` + `dap syncdb` and by dap-run
# (examples/replicate.toml) into scratch PostgreSQL and MariaDB/MySQL databases (created and
# dropped here), each continues the other's replica without a rebuild, and the two replicas
# must have the same tables, column types, NOT NULL, primary keys and rows (see "The oracle"
# below). It prints one line per database with what it compared and fails on any difference,
# printing the differing lines (< official, > dap-run). PostgreSQL comes from
# DAP_RUN_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), MariaDB/MySQL from
# DAP_RUN_TEST_MYSQL (default mysql://root@127.0.0.1:3306/test); an unreachable one is skipped
# with a message, except under CI=true, where it fails. ORACLE_OBJECT_ROWS (default 4): rows per
# sandbox object (two objects a job); ORACLE_KEEP=1 keeps the work folder and the databases.
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
    if [[ -n ${ORACLE_KEEP:-} ]]; then
        echo "kept (ORACLE_KEEP): $work and the scratch databases" >&2
        return
    fi
    for d in ${my_scratch:-} ${my_ours:-}; do
        dbq sql "$my_admin" "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true
    done
    for d in ${scratch_db:-} ${pg_ours:-}; do
        dbq sql "$pg_admin" "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -x $venv/bin/dap ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'instructure-dap-client[postgresql]'
fi
echo "official client: $("$venv/bin/pip" show instructure-dap-client | grep '^Version')"

"$bin" sandbox --instant-jobs --object-rows "${ORACLE_OBJECT_ROWS:-4}" --objects-per-job 2 >"$work/sandbox.out" 2>"$work/sandbox.err" &
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

# The oracle (issues 14, 16, 23): every table of every namespace the sandbox serves, into
# PostgreSQL and into MariaDB/MySQL, loaded by the official client and by dap-run.
#  A. `dap initdb` then (the data has changed since) `dap syncdb` make the official replica;
#     dap-run continues it (no snapshot of any table: no rebuild) and makes its own replica
#     from scratch.
#  B. The sandbox's data stops changing (POST /sandbox/freeze): dap-run continues the official
#     replica again and `dap syncdb` continues dap-run's (no rebuild on either side), so both
#     stand at the same point. Then they must have the same tables, columns, types (with enum
#     labels and array element types), NOT NULL, primary keys and rows, and every table the
#     sandbox's row count at that point.
# The two databases run side by side. DAP_RUN_TEST_POSTGRES, DAP_RUN_TEST_MYSQL: the servers.
my_admin=${DAP_RUN_TEST_MYSQL:-mysql://root@127.0.0.1:3306/test}
if ! "$venv/bin/python" -c 'import aiomysql, asyncpg' 2>/dev/null; then
    "$venv/bin/pip" install --quiet 'instructure-dap-client[postgresql,mysql]'
fi
dbq() { "$venv/bin/python" "$repo/scripts/oracle_db.py" "$@"; }

namespaces=()
for f in "$repo"/src/sandbox/catalog/*.json; do namespaces+=("$(basename "$f" .json)"); done
total_tables=0
for ns in "${namespaces[@]}"; do
    dap list --namespace "$ns" 2>/dev/null | grep -v '^\s*$' >"tables.$ns" || true
    [[ -s tables.$ns ]] || { echo "dap list --namespace $ns listed no tables" >&2; exit 1; }
    total_tables=$((total_tables + $(wc -l <"tables.$ns")))
done
echo "== the catalog: ${#namespaces[@]} namespaces (${namespaces[*]}), $total_tables tables"
csv() { paste -sd, "tables.$1"; }
json() { python3 -c 'import json, sys; print(json.dumps(sys.stdin.read().split()))' <"tables.$1"; }

dap_run() { # dap_run DB-URL LOG: dap-run's replicate.toml on every namespace
    local db=$1 log=$2 ns jobs
    # A copy per database: a run locks its job file, and the two databases run side by side.
    jobs=$work/jobs-${log##*/}
    mkdir -p "$jobs"
    cp "$repo/examples/replicate.toml" "$jobs/replicate.toml"
    # The sandbox has no rate limits (the gateway's 5 jobs a minute would take 26 minutes).
    printf '%s\n' '[gateway.rate_limits]' '"POST /dap/query/*/table/*/data" = "unlimited"' \
        '"GET /dap/query/*/table" = "unlimited"' '"GET /dap/query/*/table/*/schema" = "unlimited"' \
        '"GET /dap/job/*" = "unlimited"' '"POST /dap/object/url" = "unlimited"' >"$jobs/dap-run.toml"
    for ns in "${namespaces[@]}"; do
        "$bin" run "$jobs/replicate.toml" --output-dir "$work/out-$(basename "$log" .log)-$ns" \
            --database "$db" --var "namespace=$ns" --var "tables=$(json "$ns")" >>"$log" 2>&1 \
            || { echo "dap-run failed on $ns (log: $log)" >&2; tail -n 30 "$log" >&2; return 1; }
    done
}
official() { # official initdb|syncdb DB-URL LOG
    local command=$1 db=$2 log=$3 ns
    for ns in "${namespaces[@]}"; do
        DAP_CONNECTION_STRING=$db dap "$command" --namespace "$ns" --table "$(csv "$ns")" >>"$log" 2>&1 \
            || { echo "dap $command failed on $ns (log: $log)" >&2; tail -n 30 "$log" >&2; return 1; }
    done
}
no_snapshot() { # no_snapshot LOG WHAT: dap-run continued every table
    if grep -E 'snapshot \(' "$1" >&2; then
        echo "dap-run snapshotted (rebuilt) a table of $2 instead of continuing it (above)" >&2
        return 1
    fi
}

phase_a() { # phase_a KIND OFFICIAL-URL OURS-URL
    local kind=$1 off=$2 ours=$3
    official initdb "$off" "$kind-initdb.log"
    official syncdb "$off" "$kind-syncdb.log"
    dbq ids "$off" >"$kind-ids.official"
    dap_run "$off" "$work/$kind-continue1.log"
    no_snapshot "$kind-continue1.log" "the official client's $kind replica"
    dap_run "$ours" "$work/$kind-ours.log"
}
phase_b() { # phase_b KIND OFFICIAL-URL OURS-URL
    local kind=$1 off=$2 ours=$3
    dap_run "$off" "$work/$kind-continue2.log"
    no_snapshot "$kind-continue2.log" "the official client's $kind replica"
    dbq ids "$ours" >"$kind-ids.ours"
    official syncdb "$ours" "$kind-syncdb-ours.log"
    # No table was dropped and made again (or altered, in MySQL) on either side.
    same_tables "$off" "$kind-ids.official" "dap-run rebuilt a table of the official client's $kind replica"
    same_tables "$ours" "$kind-ids.ours" "dap syncdb rebuilt a table of dap-run's $kind replica"
    # What `dap syncdb` changed in dap-run's tables' definitions beyond what it does to its own
    # (comments, enum types of JSON objects' properties): shown, not failed (docs/official-client.md).
    local changed
    changed=$(schema_sql "$kind-syncdb-ours.log" | sort -u | grep -vxFf <(schema_sql "$kind-syncdb.log" | sort -u) || true)
    if [[ -n $changed ]]; then
        echo "note: dap syncdb changed the definitions of dap-run's $kind tables (not their rows, not rebuilt): $(wc -l <<<"$changed") statements:"
        sed 's/^/  /' <<<"$changed" | cut -c1-200 | awk 'NR <= 40'
    fi
}
schema_sql() { # the SQL statements the official client ran to synchronize schemas (log)
    awk '/synchronize schema with SQL:/ {on = 1; next} /^[0-9]{4}-[0-9]{2}-[0-9]{2} / {on = 0} on' "$1"
}
same_tables() { # same_tables URL IDS-FILE MESSAGE
    if ! dbq ids "$1" | diff "$2" - >&2; then
        echo "$3 (above: < before, > after)" >&2
        return 1
    fi
}

compare() { # compare KIND LABEL OFFICIAL-URL OURS-URL FROZEN-AT
    local kind=$1 label=$2 off=$3 ours=$4 at=$5 failed=0
    dbq layout "$off" >"$kind-layout.official"
    dbq layout "$ours" >"$kind-layout.ours"
    dbq rows "$off" >"$kind-rows.official"
    dbq rows "$ours" >"$kind-rows.ours"
    if ! diff "$kind-layout.official" "$kind-layout.ours" >"$kind-layout.diff"; then
        echo "$label: dap-run's tables differ from the official client's (< official, > dap-run):" >&2
        cat "$kind-layout.diff" >&2
        failed=1
    fi
    if ! diff "$kind-rows.official" "$kind-rows.ours" >"$kind-rows.diff"; then
        echo "$label: dap-run's rows differ from the official client's (< official, > dap-run):" >&2
        head -n 200 "$kind-rows.diff" >&2
        failed=1
    fi
    # Every official table holds the sandbox's row count at the frozen point.
    "$venv/bin/python" - "$url" "$at" "$kind-rows.official" "$kind-layout.official" <<'PY' || failed=1
import collections, sys, urllib.request
url, at, rows, layout = sys.argv[1:]
have = collections.Counter(line.split("\t", 1)[0] for line in open(rows))
tables = sorted({line.split("\t", 1)[0] for line in open(layout)})
bad = 0
for name in tables:
    ns, table = name.split(".", 1) if "." in name else name.split("__", 1)
    with urllib.request.urlopen(f"{url}/sandbox/rows/{ns}/{table}?at={at}") as response:
        want = sum(1 for line in response.read().splitlines() if line.strip())
    if have[name] != want:
        bad += 1
        print(f"  {name}: {have[name]} rows, the sandbox has {want} at {at}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    local tables columns rows
    tables=$(cut -f1 "$kind-layout.official" | sort -u | wc -l)
    columns=$(wc -l <"$kind-layout.official")
    rows=$(wc -l <"$kind-rows.official")
    echo "oracle $label: ${#namespaces[@]} namespaces, $tables tables, $columns columns, $rows rows compared: $([[ $failed == 0 ]] && echo same || echo DIFFERENT)"
    [[ $tables == "$total_tables" ]] || { echo "$label: $tables tables, the sandbox lists $total_tables" >&2; failed=1; }
    return $failed
}

kinds=()
if ! dbq sql "$my_admin" 'SELECT 1' >/dev/null 2>&1; then
    [[ ${CI:-} == true ]] && { echo "MySQL at $my_admin is unreachable; under CI=true this fails" >&2; exit 1; }
    echo "skipped: MySQL at $my_admin is unreachable; the MySQL part is not checked"
else
    my_scratch="dap_run_official_$$_$RANDOM"
    my_ours="dap_run_ours_$$_$RANDOM"
    dbq sql "$my_admin" "CREATE DATABASE $my_scratch" >/dev/null
    dbq sql "$my_admin" "CREATE DATABASE $my_ours" >/dev/null
    echo "MariaDB/MySQL: $my_scratch (official), $my_ours (dap-run) ($(dbq sql "$my_admin" 'SELECT VERSION()'))"
    kinds+=(mysql)
fi
if ! dbq sql "$pg_admin" 'SELECT 1' >/dev/null 2>&1; then
    [[ ${CI:-} == true ]] && { echo "PostgreSQL at $pg_admin is unreachable; under CI=true this fails" >&2; exit 1; }
    echo "skipped: PostgreSQL at $pg_admin is unreachable; the PostgreSQL part is not checked"
else
    scratch_db="dap_run_official_$$_$RANDOM"
    pg_ours="dap_run_ours_$$_$RANDOM"
    dbq sql "$pg_admin" "CREATE DATABASE $scratch_db" >/dev/null
    dbq sql "$pg_admin" "CREATE DATABASE $pg_ours" >/dev/null
    echo "PostgreSQL: $scratch_db (official), $pg_ours (dap-run) ($(dbq sql "$pg_admin" 'SHOW server_version'))"
    kinds+=(postgresql)
fi
url_of() { # url_of KIND official|ours
    case $1-$2 in
        mysql-official) echo "${my_admin%/*}/$my_scratch" ;;
        mysql-ours) echo "${my_admin%/*}/$my_ours" ;;
        postgresql-official) echo "${pg_admin%/*}/$scratch_db" ;;
        postgresql-ours) echo "${pg_admin%/*}/$pg_ours" ;;
    esac
}
label_of() { [[ $1 == mysql ]] && echo MariaDB/MySQL || echo PostgreSQL; }
run_all() { # run_all PHASE: the phase for every database, side by side; fails if one failed
    local phase=$1 kind pids=() failed=0
    for kind in "${kinds[@]}"; do
        "$phase" "$kind" "$(url_of "$kind" official)" "$(url_of "$kind" ours)" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    return $failed
}

started=$SECONDS
echo "== A: dap initdb, dap syncdb; dap-run continues that replica and makes its own (${kinds[*]})"
run_all phase_a
at=$(python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/sandbox/freeze", method="POST")))["at"])' "$url")
echo "== B: the data stops changing at $at; dap-run continues the official replica, dap syncdb dap-run's"
run_all phase_b
echo "== compare (phases: $((SECONDS - started)) s)"
failed=0
for kind in "${kinds[@]}"; do
    compare "$kind" "$(label_of "$kind")" "$(url_of "$kind" official)" "$(url_of "$kind" ours)" "$at" || failed=1
done
[[ $failed == 0 ]] || { echo "official client check: FAILED (differences above)" >&2; exit 1; }
echo "official client check: ok"
