#!/usr/bin/env bash
# Runs every benchmark side by side with its alternative and prints a markdown table (also
# written to bench/results.md). Not part of CI: it takes several minutes and wants a quiet machine.
#
# usage: bench/run.sh [01 02 03 04 05 06 07 08 09 10]   (default: all but 10, and only then is results.md written;
# 10, one table of 10M rows, takes about 15 minutes: `bench/run.sh 10`)
# Needs: cargo, curl, python3; installs what else is missing (lib.sh's ensure_tools): jq,
# hyperfine and GNU time from Debian, Hurl 8 built from crates.io (HURL=... to use another),
# the official client in a venv (VENV=..., default ~/.cache/dap-run-bench/venv).
# Knobs: RUNS (hyperfine runs, 10), SYNC_RUNS (3), OFFICIAL_RUNS (1), OFFICIAL_50 (0),
# PACE_TABLES (12), DL_RUNS (7), DL_BYTES (1 GiB), SAVE_RUNS (3), OBJECTS and OUTPUT_RUNS
# (benchmark 6 through the binary: 600000 objects, 3 runs; BEFORE=an older dap-run), ROWS and OFFICIAL_ROWS
# (benchmark 8: 1000000 each; the official client takes about 6 minutes per phase at 1M rows).
# As root it installs with `apt-get install -y hyperfine time jq pkg-config libcurl4-openssl-dev
# libxml2-dev libclang-dev` (the last four only to build Hurl); otherwise through sudo.
# Benchmark 9 (the whole catalog, time-scaled 1/10: SCALE, SIZES, SLOW, LATER_ROUNDS, OFFICIAL)
# takes about 40 minutes, most of it the official client's two nights.
# Benchmarks 8 and 9 need PostgreSQL (DAP_RUN_TEST_POSTGRES, default postgres@127.0.0.1:5432/test).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cd "$repo_dir"
ensure_tools
echo "building dap-run (release) in $CARGO_TARGET_DIR" >&2
cargo build --release --locked --bin dap-run >&2
JSONPATH_BIN=$(cargo build --release --locked --bench jsonpath --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "jsonpath") | .executable')
export JSONPATH_BIN
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

benches=("$@")
[[ ${#benches[@]} -gt 0 ]] || benches=(01 02 03 04 05 06 07 08 09)
: >"$RESULTS_DIR/rows.md"
for b in "${benches[@]}"; do
    echo "== benchmark $b" >&2
    for script in "$bench_dir/$b"-*.sh; do
        "$script" >/dev/null
    done
done

{
    echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr); load average at the start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "dap-run $(git rev-parse --short HEAD), $(rustc --version | cut -d' ' -f1-2), $("$HURL" --version | head -n1 | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2), hyperfine $(hyperfine --version | cut -d' ' -f2). Medians; $(date -u +%Y-%m-%d)."
    echo
    echo "| benchmark | dap-run | alternative | ratio | target | |"
    echo "| --- | --- | --- | --- | --- | --- |"
    cat "$RESULTS_DIR/rows.md"
} | if [[ $# -eq 0 ]]; then tee "$bench_dir/results.md"; else cat; fi   # a subset leaves results.md alone
