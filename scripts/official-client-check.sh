#!/usr/bin/env bash
# Runs Instructure's official DAP client (`instructure-dap-client`, CLI `dap`), unmodified,
# against `dap-run sandbox`: list, schema, snapshot and incremental must all succeed and the
# downloaded files must be valid gzip JSON Lines.
#
# usage: scripts/official-client-check.sh path/to/dap-run [venv-dir]
set -euo pipefail

bin=${1:?usage: official-client-check.sh path/to/dap-run [venv-dir]}
work=$(mktemp -d)
venv=${2:-$work/venv}
sandbox_pid=

cleanup() {
    if [[ -n $sandbox_pid ]]; then
        kill "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -x $venv/bin/dap ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet instructure-dap-client
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

echo "official client check: ok"
