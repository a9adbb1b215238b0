#!/usr/bin/env bash
# Benchmark 7: `save` of a 200 MB response body by a step with no outputs (streamed to the file
# as it arrives) vs `curl -o` of the same URL. Wall time and peak RSS from GNU time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_sandboxes EXIT

: "${SAVE_RUNS:=3}"
: "${SAVE_BYTES:=209715200}"
start_sandbox --polls 0 --large-object-bytes "$SAVE_BYTES" --objects-per-job 1
tok=$(token)
auth=(-H "Authorization: Bearer $tok")
job=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d '{"format": "jsonl"}' "$sandbox_url/dap/query/canvas/table/accounts/data" | jq -r .id)
oid=$(curl -sf "${auth[@]}" "$sandbox_url/dap/job/$job" | jq -r '.objects[0].id')
url=$(jq -n --arg id "$oid" '[{id: $id}]' | curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d @- "$sandbox_url/dap/object/url" | jq -r '.urls[].url')

work=$(mktemp -d)
: >"$RESULTS_DIR/07-curl"; : >"$RESULTS_DIR/07-dap"
for _ in $(seq "$SAVE_RUNS"); do
    timev "$work/time-curl" curl -sf -o "$work/curl.gz" "$url" >>"$RESULTS_DIR/07-curl"
    bytes=$(stat -c %s "$work/curl.gz")
    rm -f "$work/curl.gz"
    timev "$work/time-dap" "$DAP_RUN" run -q "$bench_dir/jobs/save.toml" --gateway-url "$sandbox_url" \
        --state-dir "$work" --output-dir "$work/out" --var "object_id=$oid" >>"$RESULTS_DIR/07-dap"
    [[ $(stat -c %s "$work/out/object-0.gz") == "$bytes" ]] || { echo "dap-run's file differs in size from curl's" >&2; exit 1; }
    rm -rf "$work/out"
done
cat "$RESULTS_DIR/07-curl" "$RESULTS_DIR/07-dap" >&2
dr=$(cut -d' ' -f2 "$RESULTS_DIR/07-dap" >"$work/x" && median "$work/x")
cr=$(cut -d' ' -f2 "$RESULTS_DIR/07-curl" >"$work/x" && median "$work/x")
dw=$(cut -d' ' -f1 "$RESULTS_DIR/07-dap" >"$work/x" && median "$work/x")
cw=$(cut -d' ' -f1 "$RESULTS_DIR/07-curl" >"$work/x" && median "$work/x")
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
row "7. \`save\` of a $((bytes / 1000000)) MB body, no outputs: peak RSS (time)" "$(mib "$dr") ($(ratio "$dw" 1 1) s)" "curl -o $(mib "$cr") ($(ratio "$cw" 1 1) s)" "$(ratio "$dr" "$cr")" "≤ 32 MiB" "$(verdict "$dr" 32768)"
rm -rf "$work"
