#!/usr/bin/env bash
# Benchmark 4: a 1 GiB object from the sandbox's object store (gzip data generated while it is
# streamed): dap-run (login, one object-URL call, streamed download) vs `curl -o` on a pre-signed
# URL of the same object. Wall time and peak RSS from GNU time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_sandboxes EXIT

: "${DL_RUNS:=7}"
: "${DL_BYTES:=1073741824}"
start_sandbox --polls 0 --large-object-bytes "$DL_BYTES" --objects-per-job 1
tok=$(token)
auth=(-H "Authorization: Bearer $tok")
job=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d '{"format": "jsonl"}' "$sandbox_url/dap/query/canvas/table/accounts/data" | jq -r .id)
oid=$(curl -sf "${auth[@]}" "$sandbox_url/dap/job/$job" | jq -r '.objects[0].id')
url=$(jq -n --arg id "$oid" '[{id: $id}]' | curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d @- "$sandbox_url/dap/object/url" | jq -r '.urls[].url')

work=$(mktemp -d)
: >"$RESULTS_DIR/04-curl"; : >"$RESULTS_DIR/04-dap"
for _ in $(seq "$DL_RUNS"); do
    timev "$work/time-curl" curl -sf -o "$work/curl.gz" "$url" >>"$RESULTS_DIR/04-curl"
    bytes=$(stat -c %s "$work/curl.gz")
    rm -f "$work/curl.gz"
    timev "$work/time-dap" "$DAP_RUN" run -q "$bench_dir/jobs/download.toml" --gateway-url "$sandbox_url" \
        --state-dir "$work" --output-dir "$work/out" --var "object_id=$oid" >>"$RESULTS_DIR/04-dap"
    [[ $(stat -c %s "$work/out/object-0.gz") == "$bytes" ]] || { echo "dap-run's file differs in size from curl's" >&2; exit 1; }
    rm -rf "$work/out"
done
cat "$RESULTS_DIR/04-curl" "$RESULTS_DIR/04-dap" >&2
cw=$(cut -d' ' -f1 "$RESULTS_DIR/04-curl" >"$work/x" && median "$work/x")
dw=$(cut -d' ' -f1 "$RESULTS_DIR/04-dap" >"$work/x" && median "$work/x")
cr=$(cut -d' ' -f2 "$RESULTS_DIR/04-curl" >"$work/x" && median "$work/x")
dr=$(cut -d' ' -f2 "$RESULTS_DIR/04-dap" >"$work/x" && median "$work/x")
mibs() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.0f MiB/s", b / s / 1048576}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
row "4. download $(awk -v b="$bytes" 'BEGIN {printf "%.2f GiB", b / 1073741824}') (throughput, whole process)" "$(mibs "$dw")" "curl $(mibs "$cw")" "$(ratio "$cw" "$dw")" "≥ 0.90" "$(verdict 0.9 "$(ratio "$cw" "$dw" 4)")"
row "4. download: peak RSS" "$(mib "$dr")" "curl $(mib "$cr")" "$(ratio "$dr" "$cr")" "≤ 32 MiB" "$(verdict "$dr" 32768)"
rm -rf "$work"
