#!/usr/bin/env bash
# Benchmark 10: the scale of one table (issue 28): a `canvas_logs.web_logs` snapshot of about
# WEBLOG_ROWS live rows, then an incremental of about WEBLOG_CHANGES changes, into PostgreSQL, by dap-run
# (`examples/replicate.toml`, one table), against `psql \copy` of the same data (the snapshot's
# objects from a run that keeps them, decompressed) into an empty table of the same layout and
# primary key.
#   - The sandbox serves the real catalog's `web_logs` (a uuid key, 22 value columns). One key in
#     ten is deleted at any time, so it gets WEBLOG_ROWS * 10 / 9 keys; each tick changes one key in
#     PERIOD = keys / WEBLOG_CHANGES, and the ticks are TICK long: the sandbox clock starts a few seconds
#     before a tick, so the snapshot's `at` falls before it and the incremental right after it
#     (one tick: about WEBLOG_CHANGES keys; 9 in 10 of them upserts, 1 in 10 deletes).
#   - Reported: wall time of each (and the database time from the replica's bookkeeping), peak
#     memory (max RSS, /usr/bin/time), the output folder (the downloads) sampled every 0.1 s
#     during each load (its peak, and what is left after), and `uptime` around each step.
# One run each: these take minutes. Writes its rows to $RESULTS_DIR/rows.md like the others.
#
# usage: bench/10-weblogs.sh   (WEBLOG_ROWS=10000000 WEBLOG_CHANGES=1000000 WEBLOG_OBJECTS=10 TICK=1200 DAP_RUN=... DAP_RUN_TEST_POSTGRES=...)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${WEBLOG_ROWS:=10000000}"
: "${WEBLOG_CHANGES:=1000000}"
: "${WEBLOG_OBJECTS:=10}"  # objects per job (the real gateway splits a large table into many)
: "${TICK:=1200}"   # seconds: the snapshot must finish within one tick (else 2 ticks of changes)
keys=$(((WEBLOG_ROWS * 10 + 8) / 9))
period=$(((keys + WEBLOG_CHANGES / 2) / WEBLOG_CHANGES))
pg_admin=${DAP_RUN_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
cleanup() {
    stop_sandboxes
    drop_dbs
    rm -rf "$work"
}
trap cleanup EXIT

load() { echo "uptime $1: $(uptime)" | tee -a "$work/uptime" >&2; }

t() { awk -v n="$1" '$1 == n {print $2}' "$work/timings"; }
m() { awk -v n="$1" '$1 == n {print $3}' "$work/timings"; }

folder_bytes() { { find "$1" -type f -printf '%s\n' 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'; }
# sampled NAME FOLDER CMD...: `timed NAME CMD...` while sampling the size of FOLDER every 0.1 s.
sampled() {
    local name=$1 folder=$2 peak=0 size sampler
    shift 2
    echo 0 >"$work/$name.peak"
    (
        while kill -0 $$ 2>/dev/null; do
            size=$(folder_bytes "$folder")
            ((size > peak)) && { peak=$size; echo "$peak" >"$work/$name.peak"; }
            sleep 0.1
        done
    ) &
    sampler=$!
    timed "$name" "$@"
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
    printf '%s-disk %s %s\n' "$name" "$(cat "$work/$name.peak")" "$(folder_bytes "$folder")" | tee -a "$work/disk" >&2
}
peak() { awk -v n="$1-disk" '$1 == n {print $2}' "$work/disk"; }
after() { awk -v n="$1-disk" '$1 == n {print $3}' "$work/disk"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
gib() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1073741824}'; }

# The sandbox clock starts LEAD seconds before a tick: the sandbox's ticks count from its
# EPOCH (2025-01-01, a multiple of any TICK that divides a day).
epoch=1735689600
lead=8
now=$(date +%s)
offset=$((TICK - (now - epoch) % TICK - lead))
((offset >= 0)) || offset=$((offset + TICK))
start_sandbox --polls 0 --rows "$keys" --objects-per-job "$WEBLOG_OBJECTS" \
    --change-every "${TICK}s" --change-period "$period" --clock-offset "${offset}s"
export DAP_API_URL=$sandbox_url
example_jobs
vars=(--var namespace=canvas_logs --var 'tables=["web_logs"]')

echo "# dap-run: $keys keys, period $period, $WEBLOG_OBJECTS objects a job, tick ${TICK}s" >&2
new_db dap
load snapshot
sampled snapshot "$work/out" "$DAP_RUN" run "$work/replicate.toml" --output-dir "$work/out" "${vars[@]}" --database "$db"
psql -At -F ' ' -d "$db" -c "SELECT 'snapshot-db', duration_ms / 1000.0, upserted, deleted FROM dap_run.table_state" | tee -a "$work/db" >&2
# The incremental after the tick (the snapshot's `at` is before it).
sleep $((lead + 2))
load incremental
sampled incremental "$work/out" "$DAP_RUN" run "$work/replicate.toml" --output-dir "$work/out" "${vars[@]}" --database "$db"
psql -At -F ' ' -d "$db" -c "SELECT 'incremental-db', duration_ms / 1000.0, upserted, deleted FROM dap_run.table_state" | tee -a "$work/db" >&2
live=$(psql -At -d "$db" -c "SELECT count(*) FROM canvas_logs.web_logs")
table_bytes=$(psql -At -d "$db" -c "SELECT pg_total_relation_size('canvas_logs.web_logs')")
psql -q -d "$pg_admin" -c "DROP DATABASE $(basename "$db") WITH (FORCE)"

echo "# psql \\copy of a snapshot, decompressed, into an empty table of the same layout" >&2
new_db keep
"$DAP_RUN" run "$work/replicate-keep.toml" --output-dir "$work/out-keep" "${vars[@]}" \
    --database "$db" >"$work/keep.log" 2>&1 || { tail -20 "$work/keep.log" >&2; exit 1; }
snap=$(psql -At -d "$db" -c "SELECT job_id FROM dap_run.load_history WHERE load = 'snapshot'")
parts=("$work/out-keep/canvas_logs/web_logs/$snap"/part-*.tsv.gz)
# The columns without `meta.*`, in the header's order; every part starts with the header.
header=$(zcat "${parts[0]}" | head -n1 || true)
fields=$(tr '\t' '\n' <<<"$header" | awk '!/^meta\./ {printf "%s%d", (n++ ? "," : ""), NR}')
cols=$(tr '\t' '\n' <<<"$header" | awk '!/^meta\./ {sub(/^[^.]*\./, ""); printf "%s%s", (n++ ? "," : ""), $0}')
tsv="$work/snapshot.tsv"
for part in "${parts[@]}"; do zcat "$part" | tail -n +2 | cut -f "$fields"; done >"$tsv"
rm -rf "$work/out-keep"
psql -q -d "$db" -c "CREATE TABLE canvas_logs.web_logs_copy (LIKE canvas_logs.web_logs INCLUDING ALL)"
psql -q -d "$db" -c "DROP TABLE canvas_logs.web_logs"
tsv_bytes=$(stat -c %s "$tsv")
load copy
timed psql-copy psql -q -d "$db" -c "\\copy canvas_logs.web_logs_copy ($cols) FROM '$tsv'"
copied=$(psql -At -d "$db" -c "SELECT count(*) FROM canvas_logs.web_logs_copy")
rm -f "$tsv"
load end

read -r _ snap_db snap_rows _ < <(grep '^snapshot-db' "$work/db")
read -r _ inc_db inc_up inc_del < <(grep '^incremental-db' "$work/db")
ts=$(t snapshot); ti=$(t incremental); pc=$(t psql-copy)
peak_rss=$(printf '%s\n' "$(m snapshot)" "$(m incremental)" | sort -n | tail -n1)
echo "# $live rows after the incremental, $(gib "$table_bytes") GiB with its index; the TSV $(gib "$tsv_bytes") GiB, $copied rows" >&2
row "10. \`web_logs\` snapshot of $snap_rows rows into PostgreSQL, whole run (query, download, load) vs \`psql \\copy\` of the same decompressed TSV ($(gib "$tsv_bytes") GiB) into an empty table" "$(ratio "$ts" 1 1) s (database time $(ratio "$snap_db" 1 1) s)" "psql \\copy $(ratio "$pc" 1 1) s" "$(ratio "$ts" "$pc")" "≤ 1.5" "$(verdict "$(ratio "$ts" "$pc" 4)" 1.5)"
row "10. then an incremental of $((inc_up + inc_del)) changes ($inc_up upserts, $inc_del deletes) into the $snap_rows rows" "$(ratio "$ti" 1 1) s (database time $(ratio "$inc_db" 1 1) s)" "—" "$(ratio "$ti" "$pc") × the snapshot's \\copy" "—" "—"
row "10. snapshot / incremental: dap-run peak RSS" "$(m snapshot) / $(m incremental) MiB" "psql $(m psql-copy) MiB" "—" "≤ 64 MiB" "$(verdict "$peak_rss" 64)"
row "10. snapshot / incremental: the output folder (the downloads) at its peak during the load, and after" "$(mib "$(peak snapshot)") / $(mib "$(peak incremental)") MiB; after: $(after snapshot) / $(after incremental) B" "—" "—" "0 B after" "$(verdict "$(($(after snapshot) + $(after incremental)))" 0)"
cat "$work/uptime" >&2
