#!/usr/bin/env bash
# Peak memory of a large download (issue 5): one table whose objects are each SIZE bytes of
# gzip data, streamed by the sandbox, downloaded by the nightly job. Prints the peak RSS of
# dap-run (GNU time's "Maximum resident set size") and the size on disk.
#
#   bench/large-download.sh [DAP_RUN_BINARY] [SIZE_BYTES] [OBJECTS]
#   DECOMPRESS=1 bench/large-download.sh ...     # gunzip while streaming instead
#
# Needs GNU time at /usr/bin/time (Debian: apt-get install time).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/debug/dap-run}
size=${2:-300000000}
objects=${3:-1}
[ -x "$bin" ] || { echo "no binary at $bin (cargo build first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
sandbox_pid=
cleanup() {
    [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" sandbox --large-object-bytes "$size" --objects-per-job "$objects" >"$work/url" 2>"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -n1 "$work/url")

sed -e 's/^tables = \[.*\]/tables = ["accounts"]/' "$here/examples/nightly.toml" >"$work/job.toml"
if [ "${DECOMPRESS:-0}" = 1 ]; then
    sed -i -e 's/\.jsonl\.gz" }/.jsonl", decompress = true }/' "$work/job.toml"
fi

DAP_CLIENT_ID=sandbox DAP_CLIENT_SECRET=sandbox \
    /usr/bin/time -v -o "$work/time" \
    "$bin" run "$work/job.toml" --gateway-url "$url" --output-dir "$work/out" -q

rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time")
bytes=$(du -cb "$work/out"/accounts/* | tail -n1 | cut -f1)
echo "downloaded $((bytes / 1000000)) MB in $objects file(s) (decompress=${DECOMPRESS:-0}) in $wall"
echo "peak RSS of dap-run: $((rss_kb / 1024)) MiB ($rss_kb kB)"
