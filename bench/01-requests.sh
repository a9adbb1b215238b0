#!/usr/bin/env bash
# Benchmark 1: request overhead. One login and 100 authenticated GETs of a table schema, each
# with a JSONPath output and a check, one at a time: dap-run vs Hurl vs a curl | jq loop.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_sandboxes EXIT

start_sandbox
tables=$(paste -sd, "$bench_dir/tables-100.txt" | sed 's/[^,]*/"&"/g; s/.*/[&]/')
work=$(mktemp -d)

# The curl | jq loop a user would write.
cat >"$work/curl-loop.sh" <<'SH'
set -euo pipefail
tok=$(curl -sf -u "$DAP_CLIENT_ID:$DAP_CLIENT_SECRET" -d grant_type=client_credentials "$URL/ids/auth/login" | jq -r .access_token)
while read -r t; do
    v=$(curl -sf -H "Authorization: Bearer $tok" "$URL/dap/query/canvas/table/$t/schema" | jq -e .version)
    [ "$v" -ge 1 ]
done <"$TABLES"
SH

export URL=$sandbox_url TABLES=$bench_dir/tables-100.txt
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$RESULTS_DIR/01.json" \
    -n dap-run "$DAP_RUN run -q $bench_dir/jobs/requests.toml --gateway-url $sandbox_url --state-dir $work --output-dir $work --var 'tables=$tables'" \
    -n dap-run-c16 "$DAP_RUN run -q $bench_dir/jobs/fanout.toml --gateway-url $sandbox_url --state-dir $work --output-dir $work --var 'tables=$tables'" \
    -n hurl "$HURL --variable url=$sandbox_url --variable client_id=sandbox --variable client_secret=sandbox $bench_dir/requests.hurl" >&2
# 200 processes a run: a few runs are enough.
hyperfine --style basic --runs 3 --export-json "$RESULTS_DIR/01-curl.json" -n curl-jq "bash $work/curl-loop.sh" >&2

d=$(hyperfine_median "$RESULTS_DIR/01.json" 0)
c=$(hyperfine_median "$RESULTS_DIR/01.json" 1)
h=$(hyperfine_median "$RESULTS_DIR/01.json" 2)
q=$(hyperfine_median "$RESULTS_DIR/01-curl.json" 0)
row "1. login + 100 GETs, concurrency 1 (vs Hurl)" "$(ms "$d")" "Hurl $(ms "$h")" "$(ratio "$d" "$h")" "≤ 0.80" "$(verdict "$(ratio "$d" "$h" 4)" 0.8)"
row "1. same (vs curl \| jq loop)" "$(ms "$d")" "curl \| jq $(ms "$q")" "$(ratio "$d" "$q")" "—" "—"
row "1. same, dap-run concurrency 16 (vs Hurl)" "$(ms "$c")" "Hurl $(ms "$h")" "$(ratio "$c" "$h")" "—" "—"
rm -rf "$work"
