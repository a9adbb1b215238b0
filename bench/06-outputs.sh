#!/usr/bin/env bash
# Benchmark 6 through the binary: peak memory (GNU time's maximum RSS) of `dap-run run` whose
# second step GETs a gateway job answering about 50 MB (the sandbox's --objects-per-job
# objects, each `{"id": "<job>/part-NNNNN-<hex>.json.gz"}`) with only `$.status` as output
# (bench/jobs/outputs-one.toml), with only `$.objects` (outputs-objects.toml), and with
# `$.status`, `$.objects[0].id`, `$.objects[*].id` and `$.objects` (outputs-four.toml). The
# three run in turn, OUTPUT_RUNS times each, against one sandbox; the medians are reported.
# BEFORE=path/to/an/older/dap-run also runs that build's three steps in the same turns (e.g.
# one built from eed7164, before outputs were shared: `git worktree add /tmp/old eed7164 &&
# cargo build --release --manifest-path /tmp/old/Cargo.toml`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_sandboxes EXIT

: "${OBJECTS:=600000}"     # objects in the job answer: 600,000 make 49.7 MB
: "${OUTPUT_RUNS:=3}"      # runs of each job (median)
: "${BEFORE:=}"            # an older dap-run to run beside (optional)

work=$(mktemp -d)
start_sandbox --polls 0 --objects-per-job "$OBJECTS"

# The answer's size, as a client receives it.
tok=$(token)
job=$(curl -sf -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"format": "jsonl"}' "$sandbox_url/dap/query/canvas/table/accounts/data" | jq -r .id)
bytes=$(curl -sf -H "Authorization: Bearer $tok" "$sandbox_url/dap/job/$job" | wc -c)
mb=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1e6}')

kinds=(one objects four)
builds=(now)
[[ -n $BEFORE ]] && builds+=(before)
for build in "${builds[@]}"; do
    for kind in "${kinds[@]}"; do : >"$work/$build-$kind.rss"; : >"$work/$build-$kind.wall"; done
done
for run in $(seq "$OUTPUT_RUNS"); do
    for build in "${builds[@]}"; do
        bin=$DAP_RUN
        [[ $build == before ]] && bin=$BEFORE
        for kind in "${kinds[@]}"; do
            read -r wall rss < <(timev "$work/t-$build-$kind-$run" "$bin" run -q \
                "$bench_dir/jobs/outputs-$kind.toml" --gateway-url "$sandbox_url" \
                --state-dir "$work" --output-dir "$work/out-$kind")
            echo "$rss" >>"$work/$build-$kind.rss"
            echo "$wall" >>"$work/$build-$kind.wall"
        done
    done
done
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
echo "job answer: $mb MB ($OBJECTS objects); peak RSS, median of $OUTPUT_RUNS runs each:" >&2
for build in "${builds[@]}"; do
    for kind in "${kinds[@]}"; do
        printf -v "${build}_$kind" '%s' "$(median "$work/$build-$kind.rss")"
    done
    one=${build}_one objects=${build}_objects four=${build}_four
    {
        echo "  $build:"
        echo "    \$.status only:    $(mib "${!one}") MiB ($(median "$work/$build-one.wall") s)"
        echo "    \$.objects only:   $(mib "${!objects}") MiB ($(median "$work/$build-objects.wall") s)"
        echo "    the four outputs: $(mib "${!four}") MiB ($(median "$work/$build-four.wall") s)"
        echo "    four / \$.status only $(ratio "${!four}" "${!one}"), four / \$.objects only $(ratio "${!four}" "${!objects}")"
    } >&2
done
r_one=$(ratio "$now_four" "$now_one")
r_objects=$(ratio "$now_four" "$now_objects")
before=""
if [[ -n $BEFORE ]]; then
    before="; before: four $(mib "$before_four") MiB, \`\$.status\` only $(mib "$before_one") MiB, \`\$.objects\` only $(mib "$before_objects") MiB"
    r_before="; $(ratio "$now_four" "$before_one") × \`\$.status\` only before"
fi
row "6. through the binary: a step with outputs \`\$.status\`, \`\$.objects[0].id\`, \`\$.objects[*].id\`, \`\$.objects\` on a $mb MB job answer (sandbox), peak RSS" \
    "$(mib "$now_four") MiB" \
    "the same step with only \`\$.status\`: $(mib "$now_one") MiB; only \`\$.objects\`: $(mib "$now_objects") MiB$before" \
    "$r_one × \`\$.status\` only; $r_objects × \`\$.objects\` only${r_before:-}" \
    "≤ 1.3" "$(verdict "$r_one" 1.3) against \`\$.status\` only; $(verdict "$r_objects" 1.3) against \`\$.objects\` only"
rm -rf "$work"
