#!/usr/bin/env bash
# Benchmark 2: the whole nightly sync (examples/nightly.toml) vs the official Python client
# (`dap snapshot` per table, one after another, as users script it), on a sandbox whose jobs
# complete a fixed time after they were created (`--job-time`), as the real gateway's do.
# A fresh sandbox for every measured run: the gateway returns the existing job for an identical
# query, which would let a second run skip the polling.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_sandboxes EXIT

: "${SYNC_RUNS:=3}"          # dap-run runs per case (median)
: "${OFFICIAL_RUNS:=1}"      # official client runs per job time (5 tables, one after another)
: "${JOB_TIMES:=2 10 30}"    # seconds a gateway job takes
# ONLY_JOB_TIMES=1: skip the 50-table and rate-limited rows.
# dap-run before issue 15 (polling from 0.5 s, doubling to 10 s), measured on this sandbox.
declare -A BEFORE=([2]=3.76 [10]=15.8 [30]=35.7)
: "${OFFICIAL_50:=0}"        # 1: also run the official client at 50 tables (about 10 minutes)
: "${PACE_TABLES:=12}"       # tables of the rate-limited run (create job: 5/min)
: "${VENV:=$HOME/.cache/dap-run-bench/venv}"

if [[ ! -x $VENV/bin/dap ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'instructure-dap-client[postgresql]'   # benchmark 8 loads with it
fi
official_version=$("$VENV/bin/pip" show instructure-dap-client | sed -n 's/^Version: //p')

# nightly.toml with dap-run's own create-job pacing (5/min, the published limit) lifted, for the
# 50-table run against a sandbox without rate limits.
work=$(mktemp -d)
cp "$repo_dir/examples/nightly.toml" "$work/nightly-unpaced.toml"
cat >>"$work/nightly-unpaced.toml" <<'TOML'

[gateway]
rate_limits = { "POST /dap/query/*/table/*/data" = "unlimited" }
TOML

now() { date +%s.%N; }

# time_dap_run JOB TABLES_JSON LOG SANDBOX_ARGS...: seconds of one run on a fresh sandbox.
time_dap_run() {
    local job=$1 tables=$2 log=$3 out start end
    shift 3
    start_sandbox "$@"
    out=$(mktemp -d)
    start=$(now)
    "$DAP_RUN" run "$job" --gateway-url "$sandbox_url" --state-dir "$out" --output-dir "$out" \
        --var "tables=$tables" >/dev/null 2>"$log"
    end=$(now)
    [[ $(find "$out" -name '*.gz' | wc -l) -gt 0 ]] || { echo "dap-run downloaded nothing" >&2; exit 1; }
    rm -rf "$out"
    stop_sandboxes
    awk -v a="$start" -v b="$end" 'BEGIN {print b - a}'
}

# time_official TABLES_JSON SANDBOX_ARGS...: seconds of `dap snapshot` for each table in turn.
time_official() {
    local tables=$1 out start end t
    shift
    start_sandbox "$@"
    out=$(mktemp -d)
    start=$(now)
    for t in $(jq -r '.[]' <<<"$tables"); do
        DAP_API_URL=$sandbox_url "$VENV/bin/dap" --no-tracking --non-interactive --loglevel warning \
            snapshot --namespace canvas --table "$t" --format jsonl --output-directory "$out" >/dev/null 2>&1
    done
    end=$(now)
    [[ $(find "$out" -name '*.gz' | wc -l) -gt 0 ]] || { echo "the official client downloaded nothing" >&2; exit 1; }
    rm -rf "$out"
    stop_sandboxes
    awk -v a="$start" -v b="$end" 'BEGIN {print b - a}'
}

start_sandbox
t5=$(tables_json 5)
t50=$(tables_json 50)
tp=$(tables_json "$PACE_TABLES")
stop_sandboxes
[[ $(jq 'unique | length' <<<"$t50") == 50 ]] || { echo "fewer than 50 distinct canvas tables" >&2; exit 1; }

for jt in $JOB_TIMES; do
    : >"$RESULTS_DIR/02-d5-$jt"; : >"$RESULTS_DIR/02-o5-$jt"
    for _ in $(seq "$SYNC_RUNS"); do
        time_dap_run "$repo_dir/examples/nightly.toml" "$t5" "$work/d5.log" --job-time "${jt}s" >>"$RESULTS_DIR/02-d5-$jt"
    done
    polls=$(grep -oE '[0-9]+ requests' <<<"$(grep -E 'nightly: ' "$work/d5.log" | tail -n1)" | grep -oE '^[0-9]+')
    for _ in $(seq "$OFFICIAL_RUNS"); do
        time_official "$t5" --job-time "${jt}s" >>"$RESULTS_DIR/02-o5-$jt"
    done
    d=$(median "$RESULTS_DIR/02-d5-$jt"); o=$(median "$RESULTS_DIR/02-o5-$jt")
    target=$(awk -v j="$jt" 'BEGIN {print 1.15 * j + 0.6}')
    echo "job time ${jt}s: dap-run $(tr '\n' ' ' <"$RESULTS_DIR/02-d5-$jt")s ($polls requests in the last run); official $official_version $(tr '\n' ' ' <"$RESULTS_DIR/02-o5-$jt")s" >&2
    row "2. nightly sync, 5 tables, jobs of $jt s (vs dap-run before issue 15, official \`dap\` $official_version)" "$(ratio "$d" 1 2) s" "before ${BEFORE[$jt]:-?} s; official $(ratio "$o" 1 1) s" "$(ratio "$d" "$jt") × job time; $(ratio "$o" "$d" 0)× faster than official" "≤ $(ratio "$target" 1 2) s" "$(verdict "$d" "$target")"
done
if [[ ${ONLY_JOB_TIMES:-0} == 1 ]]; then rm -rf "$work"; exit 0; fi   # the time-based rows only
: >"$RESULTS_DIR/02-d50"
for _ in $(seq "$SYNC_RUNS"); do
    time_dap_run "$work/nightly-unpaced.toml" "$t50" "$work/d50.log" --job-time 2s >>"$RESULTS_DIR/02-d50"
done
d50=$(median "$RESULTS_DIR/02-d50"); o5=$(median "$RESULTS_DIR/02-o5-2")
tail -n1 "$work/d50.log" >&2
if [[ $OFFICIAL_50 == 1 ]]; then
    o50=$(time_official "$t50" --job-time 2s)
    row "2. nightly sync, 50 tables, jobs of 2 s, no rate limits" "$(ratio "$d50" 1 2) s" "$(ratio "$o50" 1 1) s" "$(ratio "$o50" "$d50" 0)× faster" "—" "—"
else
    o50=$(awk -v o="$o5" 'BEGIN {print o * 10}')
    row "2. nightly sync, 50 tables, jobs of 2 s, no rate limits" "$(ratio "$d50" 1 2) s" "≈ $(ratio "$o50" 1 0) s (10 × the official 5-table run, not measured)" "≈ $(ratio "$o50" "$d50" 0)× faster" "—" "—"
fi

# Pacing: the sandbox enforces the published limits (create job 5/min, 429 with Retry-After);
# dap-run's own pacer should keep it from ever seeing a 429 and finish when the limit allows:
# ceil(N / 5) - 1 full minutes after the first create, plus one 5-table sync (jobs of 2 s). (dap-run waits a
# fiftieth of the window more, 1.2 s a minute, for requests that arrive unevenly.)
d5=$(median "$RESULTS_DIR/02-d5-2")
dp=$(time_dap_run "$repo_dir/examples/nightly.toml" "$tp" "$work/dp.log" --job-time 2s --rate-limits)
summary=$(grep -E 'nightly: ' "$work/dp.log" | tail -n1)
retries=$(grep -oE '[0-9]+ retr(y|ies)' <<<"$summary" | grep -oE '^[0-9]+')
floor=$(awk -v n="$PACE_TABLES" -v d="$d5" 'BEGIN {print (int((n + 4) / 5) - 1) * 60 + d}')
echo "rate-limited run: $summary" >&2
row "2. nightly sync, $PACE_TABLES tables, sandbox rate limits on (create job 5/min)" "$(ratio "$dp" 1 1) s, $retries retries$([[ $retries == 0 ]] && echo " (no 429)")" "floor $(ratio "$floor" 1 1) s (limit + one 5-table sync)" "$(ratio "$dp" "$floor")" "0 retries, ≈ floor" "$([[ $retries == 0 ]] && le "$dp" "$(awk -v f="$floor" 'BEGIN {print f + 5}')" && echo met || echo '**missed**')"
rm -rf "$work"
