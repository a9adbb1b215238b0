#!/usr/bin/env bash
# Benchmark 8: loading a table into PostgreSQL (issue 14): a snapshot of ROWS rows and an incremental that
# changes every row (about 9 in 10 updated, 1 in 10 deleted), by
#   - dap-run (`examples/replicate.toml`, one table), end to end and its database time;
#   - the official client (`dap initdb` / `dap syncdb`), at OFFICIAL_ROWS rows (default ROWS:
#     it needs about 240 µs a row, so 1M rows take about 6 minutes each way; a smaller
#     OFFICIAL_ROWS also runs dap-run at that size, and the speed-up rows compare equal sizes);
#   - `psql \copy` of a snapshot of the same table (a run that keeps its objects), decompressed,
#     into an empty table of the same layout.
# Peak memory (max RSS) from /usr/bin/time; the output folder's size sampled every 0.1 s during
# dap-run's loads (its downloads: peak, and what is left after). One run each: these take
# seconds to minutes.
#
# usage: bench/08-load.sh   (ROWS=1000000 OFFICIAL_ROWS=1000000 DAP_RUN_TEST_POSTGRES=... VENV=...)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ROWS:=1000000}"
: "${OFFICIAL_ROWS:=$ROWS}"
: "${VENV:=$HOME/.cache/dap-run-bench/venv}"
pg_admin=${DAP_RUN_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
cleanup() {
    stop_sandboxes
    drop_dbs
    rm -rf "$work"
}
trap cleanup EXIT


# t NAME: seconds of a timed run; m NAME: its peak RSS in MiB.
t() { awk -v n="$1" '$1 == n {print $2}' "$work/timings"; }
m() { awk -v n="$1" '$1 == n {print $3}' "$work/timings"; }

if [[ ! -x $VENV/bin/dap ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'instructure-dap-client[postgresql]'
fi
# The `psql \copy` comparison reads the snapshot's objects: a copy of the job that keeps them.
example_jobs

# sampled NAME CMD...: `timed NAME CMD...` while sampling the size of $work/out every 0.1 s;
# prints "NAME-disk PEAK_BYTES AFTER_BYTES" (files only, so an empty folder counts 0).
folder_bytes() { { find "$work/out" -type f -printf '%s\n' 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'; }
sampled() {
    local name=$1 peak=0 size sampler
    (
        while kill -0 $$ 2>/dev/null; do
            size=$(folder_bytes)
            ((size > peak)) && { peak=$size; echo "$peak" >"$work/$name.peak"; }
            sleep 0.1
        done
    ) &
    sampler=$!
    echo 0 >"$work/$name.peak"
    timed "$@"
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
    printf '%s-disk %s %s\n' "$name" "$(cat "$work/$name.peak")" "$(folder_bytes)" | tee -a "$work/disk" >&2
}
# peak NAME / after NAME: bytes of the output folder at its peak, and after.
peak() { awk -v n="$1-disk" '$1 == n {print $2}' "$work/disk"; }
after() { awk -v n="$1-disk" '$1 == n {print $3}' "$work/disk"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

# One row per key changes every tick (`--change-period 1`): an incremental one tick or more
# after the snapshot holds every key.
bench_table() {
    local rows=$1 tag=$2
    stop_sandboxes
    start_sandbox --polls 0 --rows "$rows" --change-every 2s --change-period 1
    export DAP_API_URL=$sandbox_url
}

echo "# dap-run, $ROWS rows" >&2
bench_table "$ROWS" dap
new_db dap
job=(run "$work/replicate.toml" --output-dir "$work/out" --var 'tables=["users"]' --database "$db")
sampled dap-run-snapshot "$DAP_RUN" "${job[@]}"
snap_db=$(psql -At -d "$db" -c "SELECT duration_ms / 1000.0 FROM dap_run.table_state")
echo "dap-run-snapshot database time: $snap_db s" >&2
sleep 3
sampled dap-run-incremental "$DAP_RUN" "${job[@]}"
psql -At -d "$db" -c "SELECT 'dap-run-incremental-db', duration_ms / 1000.0, upserted, deleted FROM dap_run.table_state" >&2

echo "# psql \\copy of a snapshot, decompressed, into an empty table of the same layout" >&2
new_db dap_keep
"$DAP_RUN" run "$work/replicate-keep.toml" --output-dir "$work/out-keep" --var 'tables=["users"]' \
    --database "$db" >"$work/keep.log" 2>&1 || { tail -20 "$work/keep.log" >&2; exit 1; }
snap=$(psql -At -d "$db" -c "SELECT job_id FROM dap_run.load_history WHERE load = 'snapshot'")
tsv="$work/snapshot.tsv"
# The file's columns in the header's order, without `meta.*`.
zcat "$work/out-keep/canvas/users/$snap"/part-*.tsv.gz | python3 -c '
import sys
header = None
out = open(sys.argv[1], "w")
for line in sys.stdin:
    fields = line.rstrip("\n").split("\t")
    if header is None or fields == header:
        if header is None:
            header = fields
            keep = [i for i, h in enumerate(header) if not h.startswith("meta.")]
            open(sys.argv[1] + ".cols", "w").write(",".join(header[i].split(".", 1)[1] for i in keep))
        continue
    out.write("\t".join(fields[i] for i in keep) + "\n")
' "$tsv"
psql -q -d "$db" -c "CREATE TABLE canvas.users_copy (LIKE canvas.users INCLUDING ALL)"
timed psql-copy psql -q -d "$db" -c "\\copy canvas.users_copy ($(cat "$tsv.cols")) FROM '$tsv'"

echo "# official client, $OFFICIAL_ROWS rows" >&2
bench_table "$OFFICIAL_ROWS" official
new_db official
# An array, not a function: /usr/bin/time runs a program, and a shell function is not one.
dap=("$VENV/bin/dap" --no-tracking --non-interactive --loglevel warning)
export DAP_CONNECTION_STRING=$db
timed official-initdb "${dap[@]}" initdb --namespace canvas --table users
sleep 3
timed official-syncdb "${dap[@]}" syncdb --namespace canvas --table users
psql -At -d "$db" -c "SELECT 'official-rows', count(*) FROM canvas.users" >&2
official_version=$("$VENV/bin/pip" show instructure-dap-client | sed -n 's/^Version: //p')

if [[ $OFFICIAL_ROWS != "$ROWS" ]]; then
    echo "# dap-run, $OFFICIAL_ROWS rows (the official client's size)" >&2
    new_db dap_small
    job=(run "$work/replicate.toml" --output-dir "$work/out-small" --var 'tables=["users"]' --database "$db")
    bench_table "$OFFICIAL_ROWS" dap_small
    timed dap-run-snapshot-small "$DAP_RUN" "${job[@]}"
    sleep 3
    timed dap-run-incremental-small "$DAP_RUN" "${job[@]}"
    small=-small
else
    small=
fi

rows_k=$(awk -v r="$ROWS" 'BEGIN {print (r >= 1000000) ? r / 1000000 "M" : r / 1000 "k"}')
orows_k=$(awk -v r="$OFFICIAL_ROWS" 'BEGIN {print (r >= 1000000) ? r / 1000000 "M" : r / 1000 "k"}')
ds=$(t dap-run-snapshot$small); di=$(t dap-run-incremental$small)
os=$(t official-initdb); oi=$(t official-syncdb)
row "8. load into PostgreSQL: $orows_k-row snapshot (vs official \`dap initdb\` $official_version)" "$(ratio "$ds" 1 1) s" "official $(ratio "$os" 1 1) s" "$(ratio "$os" "$ds" 0)× faster" "≥ 25×" "$(verdict 25 "$(ratio "$os" "$ds" 4)")"
row "8. load into PostgreSQL: incremental of $orows_k changes, ~9/10 updates, 1/10 deletes (vs \`dap syncdb\`)" "$(ratio "$di" 1 1) s" "official $(ratio "$oi" 1 1) s" "$(ratio "$oi" "$di" 0)× faster" "≥ 25×" "$(verdict 25 "$(ratio "$oi" "$di" 4)")"
pc=$(t psql-copy); dsb=$(t dap-run-snapshot)
row "8. $rows_k-row snapshot, whole run (query, download, load) vs \`psql \\copy\` of the same decompressed TSV into an empty table" "$(ratio "$dsb" 1 1) s (database time $(ratio "$snap_db" 1 1) s)" "psql \\copy $(ratio "$pc" 1 1) s" "$(ratio "$dsb" "$pc")" "≤ 1.5" "$(verdict "$(ratio "$dsb" "$pc" 4)" 1.5)"
row "8. $rows_k-row snapshot / incremental: the output folder (the downloads) at its peak during the load, and after" "$(mib "$(peak dap-run-snapshot)") / $(mib "$(peak dap-run-incremental)") MiB; after: $(after dap-run-snapshot) / $(after dap-run-incremental) B" "—" "—" "0 B after" "$(verdict "$(($(after dap-run-snapshot) + $(after dap-run-incremental)))" 0)"
peak=$(printf '%s\n' "$(m dap-run-snapshot)" "$(m dap-run-incremental)" | sort -n | tail -n1)
row "8. $rows_k-row snapshot and incremental: dap-run peak RSS" "$peak MiB" "official $(m official-initdb) / $(m official-syncdb) MiB, psql $(m psql-copy) MiB" "—" "≤ 64 MiB" "$(verdict "$peak" 64)"
