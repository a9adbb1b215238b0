#!/usr/bin/env bash
# Benchmark 5: startup and validation. `dap-run check` on a generated 100-step job.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

work=$RESULTS_DIR   # the generated job is kept there
{
    echo 'name = "bench-check"'
    echo
    echo '[vars]'
    echo 'namespace = "canvas"'
    echo 'tables = ["accounts", "courses", "users"]'
    for i in $(seq 0 99); do
        echo
        echo '[[step]]'
        echo "id = \"s$i\""
        if ((i % 2)); then
            echo 'for_each = "tables"'
            echo 'as = "table"'
            echo 'concurrency = 4'
            echo 'get = "/dap/query/{{ namespace }}/table/{{ table }}/schema"'
            echo "outputs = { version$i = \"\$.version\", type$i = { path = \"\$.schema.type\", optional = true } }"
            echo "check = { that = \"version$i >= 1\", message = \"\`{{ table }}\` has version {{ version$i }}\" }"
            echo "save = \"schemas/$i/{{ table }}.json\""
        else
            echo 'get = "/dap/query/{{ namespace }}/table"'
            echo "outputs = { tables$i = \"\$.tables\" }"
            echo "check = \"tables$i | length > 0\""
        fi
    done
} >"$work/job100.toml"
"$DAP_RUN" check "$work/job100.toml" >/dev/null
hyperfine --style basic -N --warmup 10 --runs "$((RUNS * 5))" --export-json "$RESULTS_DIR/05.json" \
    -n check "$DAP_RUN check $work/job100.toml" >&2
d=$(hyperfine_median "$RESULTS_DIR/05.json" 0)
row "5. \`dap-run check\` on a 100-step job (startup + validation)" "$(ms "$d")" "—" "—" "< 10 ms" "$(verdict "$d" 0.010)"

