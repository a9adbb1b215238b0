#!/usr/bin/env bash
# Benchmark 9: the whole catalog, every night. Every table of the sandbox's catalog (the
# `canvas` namespace, `canvas_logs.web_logs`, the `catalog` namespace) into PostgreSQL under the
# gateway's rate limits (5 job creations a window), jobs that take seconds to minutes with a few
# much slower, most tables small and a few large: dap-run's examples/replicate.toml over every
# table against the official client doing what its docs say (`dap initdb` per table the first
# night, `dap syncdb` per table a later night, one after another), each on a sandbox of its own
# with the same limits and the same data (same seed).
#
# Time-scaled by SCALE (default 10): the sandbox's rate-limit window is 60/SCALE seconds, the
# job times are divided by SCALE, and dap-run's job copy paces to the same window
# (`rate_limits = {... "5/6s"}`). Sizes are not scaled (the largest table, SIZES below).
#
# dap-run: a first night (snapshots), then later nights (incrementals) with `order =
# "slowest-first"` off and on, into one database: each later night's history is the night
# before it. Reported per night: total time, the pacing floor (job creations / allowed rate),
# the 429s the sandbox sent, peak RSS, database time (the sum of the loads' own time from the
# bookkeeping), the slowest table's own time (its job's created → complete plus its load), the
# ratio to max(floor, slowest), and the ratio to the official client's loop.
#
# OFFICIAL_PARALLEL=1 (default) runs the official client's two nights beside dap-run's, on
# their own sandbox and database: they are mostly waiting (5 s polls), and one after the other
# they take longer than the rest of the benchmark together.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${SCALE:=10}"
: "${VENV:=$BENCH_CACHE/venv}"
: "${OFFICIAL:=1}"
: "${OFFICIAL_PARALLEL:=1}"
: "${LATER_ROUNDS:=1}"         # later nights off then on, this many times
: "${TABLE_LIMIT:=0}"          # >0: only the first N tables (a trial)
: "${SMALL_ROWS:=200}"         # keys of every table SIZES does not name
# Keys of the large tables (not scaled).
: "${SIZES:=submissions=300000 web_logs=250000 assignments=100000 enrollments=100000 submission_comments=60000 users=50000 quiz_submissions=40000 courses=20000 discussion_entries=20000 attachments=20000}"
# Real job times (seconds): every table between BASE and BASE+SPREAD (a share fixed per table),
# the slow ones their own. Divided by SCALE.
: "${JOB_BASE:=10}"
: "${JOB_SPREAD:=50}"
: "${SLOW:=submissions=1200 web_logs=900 assignments=480 enrollments=300}"
: "${CHANGE_PERIOD:=20000}"     # each key changes once in this many seconds (later nights)
: "${KEEP:=0}"                  # 1: keep the work folder (logs) and print its path
pg_admin=${DAP_RUN_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}

work=$(mktemp -d)
cleanup() {
    stop_sandboxes
    [[ -n ${official_pid:-} ]] && kill "$official_pid" 2>/dev/null
    drop_dbs
    if [[ $KEEP == 1 ]]; then echo "# logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
scaled() { awk -v s="$1" -v k="$SCALE" 'BEGIN {printf "%gms", s * 1000 / k}'; }
window_s=$(awk -v k="$SCALE" 'BEGIN {print 60 / k}')

if [[ $OFFICIAL == 1 && ! -x $VENV/bin/dap ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'instructure-dap-client[postgresql]'
fi

sandbox_args=(--rate-limits --rate-limit-window "${window_s}s" --rows "$SMALL_ROWS"
    --job-time "$(scaled "$JOB_BASE")" --job-time-spread "$(scaled "$JOB_SPREAD")"
    --change-every 1s --change-period "$CHANGE_PERIOD" --seed 9)
for s in $SIZES; do sandbox_args+=(--table-rows "$s"); done
for s in $SLOW; do sandbox_args+=(--table-job-time "${s%%=*}=$(scaled "${s#*=}")"); done

# The catalog, from a sandbox without limits.
start_sandbox
tok=$(token)
: >"$work/tables.tsv"
for ns in canvas canvas_logs catalog; do
    curl -sf -H "Authorization: Bearer $tok" "$sandbox_url/dap/query/$ns/table" |
        jq -r --arg ns "$ns" '.tables[] | [$ns, .] | @tsv' >>"$work/tables.tsv"
done
stop_sandboxes
if ((TABLE_LIMIT > 0)); then
    head -n "$TABLE_LIMIT" "$work/tables.tsv" >"$work/t" && mv "$work/t" "$work/tables.tsv"
fi
n_tables=$(wc -l <"$work/tables.tsv")
tables=$(jq -Rnc '[inputs | split("\t") | {ns: .[0], name: .[1]}]' <"$work/tables.tsv")
floor=$(awk -v n="$n_tables" -v w="$window_s" 'BEGIN {print n * w / 5}')
echo "# $n_tables tables, window ${window_s}s (scale 1/$SCALE), pacing floor ${floor}s" >&2

# The example, over namespaces and tables, paced to the scaled window.
job="$work/replicate.toml"
sed -e 's/namespace = "{{ namespace }}", table = "{{ table }}"/namespace = "{{ table.ns }}", table = "{{ table.name }}"/' \
    "$repo_dir/examples/replicate.toml" >"$job"
grep -q 'table.name' "$job" || { echo "examples/replicate.toml changed: adjust the sed" >&2; exit 1; }
cat >>"$job" <<TOML

[gateway]
rate_limits = { "POST /dap/query/*/table/*/data" = "5/${window_s}s", "GET /dap/job/*" = "500/${window_s}s", "GET /dap/query/*/table" = "5/${window_s}s", "GET /dap/query/*/table/*/schema" = "500/${window_s}s", "POST /dap/object/url" = "200/${window_s}s" }
TOML
sed 's/, order = "slowest-first"//' "$job" >"$work/replicate-listed.toml"
! grep -q slowest-first "$work/replicate-listed.toml"

# stop_counted: stops the sandboxes with SIGINT and prints the 429s the last one answered.
stop_counted() {
    local pid
    for pid in "${sandbox_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for _ in $(seq 100); do grep -q '^sandbox: ' "$sandbox_log" && break; sleep 0.1; done
    for pid in "${sandbox_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    sandbox_pids=()
    local n
    n=$(sed -n 's/^sandbox: .*, \([0-9]*\) answered 429.*/\1/p' "$sandbox_log" | tail -n1)
    echo "${n:-?}"
}

# night NAME JOB DB: one dap-run night on a fresh sandbox; appends a line to $work/nights.
night() {
    local name=$1 jobfile=$2 db=$3 start end secs rss n429 stats
    start_sandbox "${sandbox_args[@]}"
    /usr/bin/time -f '%e %M' -o "$work/$name.time" "$DAP_RUN" run "$jobfile" --output-dir "$work/out" \
        --state-dir "$work/state" --database "$db" --gateway-url "$sandbox_url" \
        --var "tables=$tables" >"$work/$name.log" 2>&1 || { tail -30 "$work/$name.log" >&2; exit 1; }
    n429=$(stop_counted)
    read -r secs rss <"$work/$name.time"
    # database time, slowest table's own time (job + load) and which
    stats=$(psql -At -F ' ' -d "$db" -c "SELECT round(sum(duration_ms) / 1000.0, 1),
        (SELECT round((job_ms + duration_ms) / 1000.0, 1) || ' ' || namespace || '.' || \"table\"
         FROM dap_run.table_state ORDER BY job_ms + duration_ms DESC LIMIT 1),
        sum(upserted), sum(deleted) FROM dap_run.table_state")
    echo "$name $secs $((rss / 1024)) $n429 $stats" | tee -a "$work/nights" >&2
    grep -m1 'slowest first' "$work/$name.log" | cut -c1-400 >&2 || true
    tail -n1 "$work/$name.log" >&2
}

official_nights() {
    local db=$1 cmd t ns start end n429 peak=0 fails=0 kib
    start_sandbox "${sandbox_args[@]}"
    for cmd in initdb syncdb; do
        start=$(now)
        while IFS=$'\t' read -r ns t; do
            DAP_API_URL=$sandbox_url DAP_CONNECTION_STRING=$db /usr/bin/time -f '%M' -o "$work/o.time" \
                "$VENV/bin/dap" --no-tracking --non-interactive --loglevel warning \
                "$cmd" --namespace "$ns" --table "$t" >>"$work/official-$cmd.log" 2>&1 || fails=$((fails + 1))
            kib=$(tail -n1 "$work/o.time"); ((kib > peak)) && peak=$kib
        done <"$work/tables.tsv"
        end=$(now)
        echo "official-$cmd $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') $((peak / 1024)) $fails" >>"$work/official"
        fails=0 peak=0
    done
    n429=$(stop_counted)
    echo "official-429 $n429" >>"$work/official"
}

echo "# load at start: $(uptime)" >&2
load_start=$(uptime | sed 's/.*load average: //')
started_at=$(date -u +%H:%M)
if [[ $OFFICIAL == 1 ]]; then
    new_db official
    odb=$db
    if [[ $OFFICIAL_PARALLEL == 1 ]]; then
        (official_nights "$odb") &
        official_pid=$!
    fi
fi
new_db dap
ddb=$db
night first "$job" "$ddb"
for _ in $(seq "$LATER_ROUNDS"); do
    night later-listed "$work/replicate-listed.toml" "$ddb"
    night later-slowest "$job" "$ddb"
done
if [[ $OFFICIAL == 1 ]]; then
    if [[ $OFFICIAL_PARALLEL == 1 ]]; then wait "$official_pid"; official_pid=; else official_nights "$odb"; fi
    cat "$work/official" >&2
fi
load_end=$(uptime | sed 's/.*load average: //')
echo "# load at end: $(uptime)" >&2

# Rows: one a night. The ratio's target: a later night within 1.1 × max(floor, slowest table).
o() { awk -v n="$1" '$1 == n {print $'"$2"'}' "$work/official" 2>/dev/null; }
emit() {
    local name=$1 label=$2 official=$3 secs rss n429 dbs slow slowt up del bound
    read -r _ secs rss n429 dbs slow slowt up del < <(awk -v n="$name" '$1 == n' "$work/nights" | tail -n1)
    bound=$(awk -v f="$floor" -v s="$slow" 'BEGIN {print (f > s) ? f : s}')
    local vs="—"
    [[ -n $official ]] && vs="official $(ratio "$official" 1 1) s: $(ratio "$official" "$secs" 1)× faster"
    row "9. whole catalog, $n_tables tables, $label (scale 1/$SCALE)" \
        "$(ratio "$secs" 1 1) s; $n429 × 429; $rss MiB peak; database $dbs s ($up upserted, $del deleted)" \
        "floor $(ratio "$floor" 1 1) s; slowest $slowt $slow s; $vs" \
        "$(ratio "$secs" "$bound") × max(floor, slowest)" \
        "$([[ $name == later-slowest ]] && echo "≤ 1.1" || echo "—")" \
        "$([[ $name == later-slowest ]] && verdict "$(ratio "$secs" "$bound" 4)" 1.1 || echo "—")"
}
emit first "first night (snapshots; nothing recorded yet, so the list's order)" "$(o official-initdb 2)"
emit later-listed "later night, list order" ""
emit later-slowest "later night, slowest first" "$(o official-syncdb 2)"
if [[ $OFFICIAL == 1 ]]; then
    official_version=$("$VENV/bin/pip" show instructure-dap-client | sed -n 's/^Version: //p')
    row "9. official client $official_version, same catalog and limits: \`dap initdb\` / \`dap syncdb\` per table, one after another" \
        "—" "$(o official-initdb 2) s / $(o official-syncdb 2) s; $(o official-429 2) × 429; peak $(o official-initdb 3) / $(o official-syncdb 3) MiB; failed tables $(o official-initdb 4) / $(o official-syncdb 4)" "—" "—" "—"
fi
echo "# started $started_at UTC, load average $load_start at the start, $load_end at the end" >&2
