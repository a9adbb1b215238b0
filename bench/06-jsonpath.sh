#!/usr/bin/env bash
# Benchmark 6: JSONPath outputs on a 50 MB response vs parsing alone (benches/jsonpath.rs), with
# peak memory of each from GNU time: `parse` holds the parsed response, `step` also takes the
# four outputs from it as the runner does.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

: "${JSONPATH_BIN:?run.sh builds benches/jsonpath.rs and sets JSONPATH_BIN}"
work=$(mktemp -d)
/usr/bin/time -v -o "$work/t-parse" "$JSONPATH_BIN" parse 50 >"$work/parse.out"
/usr/bin/time -v -o "$work/t-step" "$JSONPATH_BIN" step 50 >"$work/step.out"
"$JSONPATH_BIN" outputs 50 >"$work/outputs.out"
rss_parse=$(awk '/Maximum resident/ {print $NF}' "$work/t-parse")
rss_step=$(awk '/Maximum resident/ {print $NF}' "$work/t-step")
column -t -s $'\t' <"$work/outputs.out" >&2
echo "peak RSS: generate + parse $((rss_parse / 1024)) MiB; generate + parse + the 4 outputs $((rss_step / 1024)) MiB" >&2
cp "$work/outputs.out" "$RESULTS_DIR/06.txt"
parse=$(awk -F'\t' '/^parse \(/ {print $2 + 0}' "$work/outputs.out")
all=$(awk -F'\t' '/^parse \+ the 4 direct/ {print $2 + 0}' "$work/outputs.out")
copied=$(awk -F'\t' '/^parse \+ the 4 outputs, each copied/ {print $2 + 0}' "$work/outputs.out")
templated=$(awk -F'\t' '/^parse \+ the 4 outputs \+ template/ {print $2 + 0}' "$work/outputs.out")
rec=$(awk -F'\t' '/recursive_ids/ {print $2 + 0}' "$work/outputs.out")
t_ratio=$(ratio "$all" "$parse")
m_ratio=$(ratio "$rss_step" "$rss_parse")
ok=$(le "$t_ratio" 1.3 && le "$m_ratio" 1.3 && echo met || echo '**missed**')
row "6. 50 MB response: parse + 4 outputs (\`\$.status\`, \`\$.objects[0].id\`, \`\$.objects[*].id\`, \`\$.objects\`)" "$all ms, $((rss_step / 1024)) MiB peak" "serde_json parse alone $parse ms, $((rss_parse / 1024)) MiB peak" "time $t_ratio, memory $m_ratio" "≤ 1.3 each" "$ok"
row "6. same, each output copied from the response (how it was before issue 15)" "$copied ms" "parse $parse ms" "$(ratio "$copied" "$parse")" "—" "—"
row "6. same, plus the outputs converted to template values (what a later template use costs)" "$templated ms" "parse $parse ms" "$(ratio "$templated" "$parse")" "—" "—"
row "6. 50 MB response: one \`\$..id\` output (recursive descent)" "$rec ms" "parse $parse ms" "$(ratio "$rec" "$parse")" "—" "—"
rm -rf "$work"
