#!/usr/bin/env bash
# Benchmark 6: JSONPath outputs on a 50 MB response vs parsing alone (benches/jsonpath.rs), with
# peak memory of each from GNU time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

: "${JSONPATH_BIN:?run.sh builds benches/jsonpath.rs and sets JSONPATH_BIN}"
work=$(mktemp -d)
/usr/bin/time -v -o "$work/t-parse" "$JSONPATH_BIN" parse 50 >"$work/parse.out"
/usr/bin/time -v -o "$work/t-out" "$JSONPATH_BIN" outputs 50 >"$work/outputs.out"
rss_parse=$(awk '/Maximum resident/ {print $NF}' "$work/t-parse")
rss_out=$(awk '/Maximum resident/ {print $NF}' "$work/t-out")
cat "$work/outputs.out" | column -t -s $'\t' >&2
echo "peak RSS: generate + parse $((rss_parse / 1024)) MiB; generate + parse + outputs $((rss_out / 1024)) MiB" >&2
cp "$work/outputs.out" "$RESULTS_DIR/06.txt"
parse=$(awk -F'\t' '/^parse \(/ {print $2 + 0}' "$work/outputs.out")
all=$(awk -F'\t' '/^parse \+ the 4/ {print $2 + 0}' "$work/outputs.out")
rec=$(awk -F'\t' '/recursive_ids/ {print $2 + 0}' "$work/outputs.out")
row "6. 50 MB response: parse + 4 outputs (\`\$.status\`, \`\$.objects[0].id\`, \`\$.objects[*].id\`, \`\$.objects\`)" "$all ms, $((rss_out / 1024)) MiB peak" "serde_json parse alone $parse ms, $((rss_parse / 1024)) MiB peak" "$(ratio "$all" "$parse")" "—" "—"
row "6. 50 MB response: one \`\$..id\` output (recursive descent)" "$rec ms" "parse $parse ms" "$(ratio "$rec" "$parse")" "—" "—"
rm -rf "$work"
