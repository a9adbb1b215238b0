#!/usr/bin/env bash
# Benchmark 3: fan-out. The schemas of 200 tables (the canvas tables repeated) at concurrency 16,
# every gateway answer delayed 50 ms. Ideal: 200 / 16 × 50 ms = 625 ms (+ 50 ms for the login).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_sandboxes EXIT

start_sandbox --latency 50ms
tables=$(tables_json 200)
work=$(mktemp -d)
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$RESULTS_DIR/03.json" \
    -n dap-run "$DAP_RUN run -q $bench_dir/jobs/fanout.toml --gateway-url $sandbox_url --state-dir $work --output-dir $work --var 'tables=$tables'" >&2
d=$(hyperfine_median "$RESULTS_DIR/03.json" 0)
ideal=0.625
row "3. 200 schemas, 50 ms latency, concurrency 16 (whole process, login included)" "$(ms "$d")" "ideal $(ms "$ideal")" "$(ratio "$d" "$ideal")" "≤ 1.30" "$(verdict "$(ratio "$d" "$ideal" 4)" 1.3)"
rm -rf "$work"
