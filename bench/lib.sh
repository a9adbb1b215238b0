# Shared helpers for the bench/ scripts (sourced, not run).
# Every script builds nothing itself: run.sh builds dap-run in release and exports DAP_RUN.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$bench_dir/.." && pwd)
: "${CARGO_TARGET_DIR:=$repo_dir/target}"
: "${DAP_RUN:=$CARGO_TARGET_DIR/release/dap-run}"
: "${BENCH_CACHE:=$HOME/.cache/dap-run-bench}"   # the official client's venv, Hurl built from source
: "${HURL:=$(command -v hurl || echo "$BENCH_CACHE/hurl/bin/hurl")}"
: "${RUNS:=10}"          # hyperfine runs per command
: "${RESULTS_DIR:=$(mktemp -d)}"
export DAP_RUN HURL RUNS RESULTS_DIR BENCH_CACHE

# ensure_tools: installs what is missing. Hurl has no Debian 12 package, and its npm package
# fetches a prebuilt binary from outside the registries, so it is built from crates.io
# (`cargo install hurl`, about ten minutes on 2 cores; Hurl 8.0.1 is the last that builds with
# rustc 1.95) against the system's libcurl and libxml2 (its libxml bindings need libclang). hyperfine and GNU time come from Debian.
ensure_tools() {
    local apt=()
    command -v hyperfine >/dev/null || apt+=(hyperfine)
    [[ -x /usr/bin/time ]] || apt+=(time)
    command -v jq >/dev/null || apt+=(jq)
    if [[ ! -x $HURL ]]; then
        for p in pkg-config libcurl4-openssl-dev libxml2-dev libclang-dev; do
            dpkg -s "$p" >/dev/null 2>&1 || apt+=("$p")
        done
    fi
    if [[ ${#apt[@]} -gt 0 ]]; then
        echo "installing ${apt[*]} (apt-get)" >&2
        if [[ $(id -u) == 0 ]]; then apt-get install -y -qq "${apt[@]}" >&2; else sudo apt-get install -y -qq "${apt[@]}" >&2; fi
    fi
    if [[ ! -x $HURL ]]; then
        echo "building Hurl 8.0.1 from crates.io into $BENCH_CACHE/hurl" >&2
        cargo install hurl --version 8.0.1 --locked --root "$BENCH_CACHE/hurl" >&2
        HURL=$BENCH_CACHE/hurl/bin/hurl
    fi
}

# The sandbox's credentials, as the official client reads them.
export DAP_CLIENT_ID=sandbox DAP_CLIENT_SECRET=sandbox DAP_TRACKING=false

sandbox_pids=()
stop_sandboxes() {
    local pid
    for pid in "${sandbox_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    sandbox_pids=()
}

# start_sandbox ARGS...: starts `dap-run sandbox` with ARGS, sets $sandbox_url and
# $sandbox_log (its stderr).
start_sandbox() {
    local out
    out=$(mktemp)
    sandbox_log=$(mktemp)
    "$DAP_RUN" sandbox --addr 127.0.0.1:0 "$@" >"$out" 2>"$sandbox_log" &
    sandbox_pids+=($!)
    for _ in $(seq 200); do
        [[ -s $out ]] && break
        sleep 0.05
    done
    sandbox_url=$(head -n1 "$out")
    [[ $sandbox_url == http://* ]] || { echo "sandbox did not start" >&2; cat "$sandbox_log" >&2; exit 1; }
}

# token: a bearer token from the current sandbox.
token() {
    curl -sf -u sandbox:sandbox -d grant_type=client_credentials "$sandbox_url/ids/auth/login" | jq -r .access_token
}

# tables_json N [NAMESPACE]: a JSON list of N table names, the namespace's tables repeated.
tables_json() {
    local n=$1 ns=${2:-canvas}
    curl -sf -H "Authorization: Bearer $(token)" "$sandbox_url/dap/query/$ns/table" |
        jq -c --argjson n "$n" '[.tables as $t | range($n) | $t[. % ($t | length)]]'
}

# median FILE: median of the numbers in FILE, one a line.
median() {
    sort -g "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# hyperfine_median JSON INDEX: median seconds of a hyperfine result.
hyperfine_median() {
    jq -r ".results[$2].median" "$1"
}

# row BENCH DAPRUN ALT RATIO TARGET VERDICT: one markdown table row, appended to the results.
row() {
    printf '| %s | %s | %s | %s | %s | %s |\n' "$@" | tee -a "$RESULTS_DIR/rows.md"
}

# ms SECONDS: "123 ms".
ms() { awk -v s="$1" 'BEGIN {if (s < 0.1) printf "%.1f ms", s * 1000; else printf "%.0f ms", s * 1000}'; }
# ratio A B [DIGITS]: A / B.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {printf "%.*f", d, a / b}'; }
# le A B: whether A <= B.
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a <= b)}'; }
verdict() { if le "$1" "$2"; then echo met; else echo "**missed**"; fi; }

# timev OUT CMD...: runs CMD under GNU time -v (report in OUT); prints "WALL_SECONDS MAX_RSS_KIB".
timev() {
    local out=$1
    shift
    /usr/bin/time -v -o "$out" "$@"
    awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i]}
        /Maximum resident set size/ {r = $2} END {print w, r}' "$out"
}

# PostgreSQL scratch databases (pg_admin: the server's admin URL). new_db TAG creates one and
# sets $db to its URL (not echoed: `$(new_db …)` would run in a subshell, and drop_dbs would
# not see it in $dbs); drop_dbs drops every one made (from a script's cleanup).
dbs=()
new_db() {
    local name="dap_run_bench_$1_$$"
    psql -q -d "$pg_admin" -c "CREATE DATABASE $name" >/dev/null
    dbs+=("$name")
    db="${pg_admin%/*}/$name"
}
drop_dbs() {
    local d
    for d in "${dbs[@]}"; do
        psql -q -d "$pg_admin" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
    done
}

# timed NAME CMD...: runs CMD under /usr/bin/time, its output in $work/NAME.log; prints
# "NAME seconds max-rss-MiB" (and appends it to $work/timings). A failure shows the log's end.
timed() {
    local name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/$name.log" 2>&1 \
        || { echo "$name failed:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
    read -r secs kib <"$work/time"
    printf '%s %s %s\n' "$name" "$secs" "$((kib / 1024))" | tee -a "$work/timings" >&2
}

# example_jobs: copies examples/replicate.toml into $work, and beside it replicate-keep.toml,
# the same job keeping its objects (keep_downloads), for the `psql \copy` comparisons.
example_jobs() {
    cp "$repo_dir/examples/replicate.toml" "$work/"
    sed 's/table = "{{ table }}"/table = "{{ table }}", keep_downloads = true/' \
        "$work/replicate.toml" >"$work/replicate-keep.toml"
    grep -q keep_downloads "$work/replicate-keep.toml" \
        || { echo "examples/replicate.toml: no load line to add keep_downloads to" >&2; exit 1; }
}
