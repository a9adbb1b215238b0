//! Day one as a data engineer (issue 13): no silent snapshots, no overwritten files, one
//! definition of a loop item's record, and a job language that says what it does.

use std::path::Path;

use crate::common::*;

const TABLES: [&str; 5] = ["accounts", "courses", "enrollments", "users", "submissions"];

/// The nightly example with some text replaced (each `from` must occur exactly once).
fn nightly_variant(ws: &Workspace, edits: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(examples_dir().join("nightly.toml")).unwrap();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "`{from}` in nightly.toml");
        text = text.replacen(from, to, 1);
    }
    ws.job("nightly.toml", &text)
}

fn run_job(ws: &Workspace, job: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", job.to_str().unwrap(), "--output-dir", "out"];
    args.extend_from_slice(extra);
    ws.run(&args)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The `query` records of the JSON report's step `query`.
fn report_queries(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "query")
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["query"].clone())
        .collect()
}

#[test]
fn issue_13_every_table_says_snapshot_or_incremental_since_when() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("nightly.toml");

    let first = run_job(
        &ws,
        &job,
        &["--report", "json=r1.json", "--report", "junit=r1.xml"],
    );
    first.expect_code(0);
    for t in TABLES {
        assert!(
            first.stderr.contains(&format!(
                "INFO step `query` (item `{t}`): snapshot of canvas.{t} (the query has no `since`)"
            )),
            "{}",
            first.stderr
        );
    }
    assert!(
        first.stderr.contains(
            "queries: 0 incremental, 5 snapshots (canvas.accounts, canvas.courses, canvas.enrollments, canvas.users, canvas.submissions)"
        ),
        "{}",
        first.stderr
    );
    for q in report_queries(&read_json(&ws.path().join("r1.json"))) {
        assert_eq!(q["kind"], "snapshot", "{q}");
        assert!(q.get("since").is_none());
    }
    assert!(
        ws.read("r1.xml")
            .contains("<system-out>snapshot of canvas.users")
    );

    let until = read_json(&ws.path().join("nightly.state.json"))["state"]["until"].clone();
    let second = run_job(
        &ws,
        &job,
        &["--report", "json=r2.json", "--report", "junit=r2.xml"],
    );
    second.expect_code(0);
    for t in TABLES {
        let since = until[t].as_str().unwrap();
        assert!(
            second.stderr.contains(&format!(
                "INFO step `query` (item `{t}`): incremental query of canvas.{t} since {since}"
            )),
            "{}",
            second.stderr
        );
    }
    assert!(
        second
            .stderr
            .contains("queries: 5 incremental, 0 snapshots"),
        "{}",
        second.stderr
    );
    for (q, t) in report_queries(&read_json(&ws.path().join("r2.json")))
        .iter()
        .zip(TABLES)
    {
        assert_eq!(q["kind"], "incremental", "{q}");
        assert_eq!(q["table"], t);
        assert_eq!(q["since"], until[t]);
    }
    assert!(
        ws.read("r2.xml")
            .contains("<system-out>incremental query of canvas.users since ")
    );
}

#[test]
fn issue_13_a_broken_state_lookup_fails_before_sending_instead_of_taking_snapshots() {
    let ws = Workspace::default_sandbox();
    // The typo a user makes: the lookup misses, `since` is left out, every night a snapshot.
    let job = nightly_variant(
        &ws,
        &[(
            "since = \"{{ state.until[table] }}\"",
            "since = \"{{ state.until[table ~ 's'] }}\"",
        )],
    );
    run_job(&ws, &job, &[]).expect_code(0);
    let state_before = ws.read("nightly.state.json");
    let queries_before = ws.counters().job_queries.len();
    assert_eq!(queries_before, TABLES.len());

    let second = run_job(&ws, &job, &["--report", "json=r.json"]);
    second.expect_code(1);
    assert!(
        second.stderr.contains(
            "step `query`: refusing to take snapshots of tables that must run incrementally; nothing was sent"
        ),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(
            "item `users`: `table in state.until` holds, but the request would take a snapshot of canvas.users: its body has no `since`"
        ),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("= help: fix the state lookup"));
    assert_eq!(
        ws.counters().job_queries.len(),
        queries_before,
        "no query was sent"
    );
    assert_eq!(
        ws.read("nightly.state.json"),
        state_before,
        "state untouched"
    );
    assert_eq!(read_json(&ws.path().join("r.json"))["exit_code"], 1);

    // Without state (deleted on purpose) the same job takes snapshots again.
    std::fs::remove_file(ws.path().join("nightly.state.json")).unwrap();
    run_job(&ws, &job, &[]).expect_code(0);
}

#[test]
fn issue_13_nested_state_works_on_the_first_run_without_default() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "nested.toml",
        r#"
name = "nested"
[vars]
namespace = "canvas"
tables = ["accounts", "users"]
[state]
until = {}
[[step]]
id = "query"
for_each = "tables"
as = "table"
post = "/dap/query/{{ namespace }}/table/{{ table }}/data"
json = { format = "jsonl", since = "{{ state.until[namespace][table] }}" }
incremental = "table in state.until[namespace]"
outputs = { job_id = "$.id" }
[[step]]
id = "wait"
for_each = "query"
get = "/dap/job/{{ item.job_id }}"
poll = { until = "status == 'complete'", every = "50ms..200ms", timeout = "1m" }
outputs = { status = "$.status", until = { path = "$.until", optional = true }, at = { path = "$.at", optional = true } }
persist = { "until.{{ namespace }}.{{ item.table }}" = "{{ until or at }}" }
"#,
    );
    let first = run_job(&ws, &job, &[]);
    first.expect_code(0);
    assert!(
        first.stderr.contains("queries: 0 incremental, 2 snapshots"),
        "{}",
        first.stderr
    );
    let state = read_json(&ws.path().join("nested.state.json"));
    let saved = &state["state"]["until"]["canvas"];
    assert!(saved["users"].is_string(), "{state}");

    let second = run_job(&ws, &job, &[]);
    second.expect_code(0);
    assert!(
        second
            .stderr
            .contains("queries: 2 incremental, 0 snapshots"),
        "{}",
        second.stderr
    );
    let c = ws.counters();
    assert_eq!(
        c.job_queries[3]["since"], saved["users"],
        "{:?}",
        c.job_queries
    );
}

#[test]
fn issue_13_a_later_run_never_overwrites_an_earlier_runs_files() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("nightly.toml");
    let out = ws.path().join("out");
    run_job(&ws, &job, &[]).expect_code(0);
    let snapshot = |out: &Path| -> Vec<(String, Vec<u8>)> {
        files_under(out)
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(out.join(&f)).unwrap();
                (f, bytes)
            })
            .collect()
    };
    let first = snapshot(&out);
    assert_eq!(first.len(), 10, "{first:?}");
    let state1 = read_json(&ws.path().join("nightly.state.json"));

    run_job(&ws, &job, &[]).expect_code(0);
    let state2 = read_json(&ws.path().join("nightly.state.json"));
    let second = snapshot(&out);
    assert_eq!(second.len(), 20, "the second run adds its own files");
    for (f, bytes) in &first {
        let now = second.iter().find(|(g, _)| g == f);
        assert_eq!(
            now.map(|(_, b)| b),
            Some(bytes),
            "{f} kept as the first run wrote it"
        );
    }
    // The layout: <table>/<until of the gateway job, basic format>_<job id>/part-NNNNN.jsonl.gz.
    for t in TABLES {
        let runs = table_runs(&out, t);
        let stamp = |s: &serde_json::Value| {
            s["state"]["until"][t]
                .as_str()
                .unwrap()
                .replace(['-', ':'], "")
        };
        let folders: Vec<&str> = runs
            .iter()
            .map(|(d, _)| d.split_once('_').map_or(d.as_str(), |(until, _)| until))
            .collect();
        let mut expected = vec![stamp(&state1), stamp(&state2)];
        expected.sort();
        assert_eq!(folders, expected, "{t}");
    }
}

#[test]
fn issue_13_templates_see_the_runs_id_and_start_time() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "runs.toml",
        r#"
[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
save = [{ to = "{{ run.id }}/tables.json", output = "tables" }, { to = "started-{{ run.started | stamp }}.txt" }]
check = "run.started < '9999' and (run.started | stamp) in run.id"
"#,
    );
    let r = run_job(&ws, &job, &["--report", "json=r.json"]);
    r.expect_code(0);
    let report = read_json(&ws.path().join("r.json"));
    let id = report["run"]["id"].as_str().unwrap();
    let started = report["run"]["started"].as_str().unwrap();
    assert!(ws.path().join("out").join(id).join("tables.json").is_file());
    assert!(
        ws.path()
            .join("out")
            .join(format!("started-{}.txt", started.replace(['-', ':'], "")))
            .is_file()
    );
    assert!(
        r.stderr.contains(&format!("run `{id}` started")),
        "{}",
        r.stderr
    );
    // A second run has its own id, so its files land beside the first run's.
    run_job(&ws, &job, &[]).expect_code(0);
    let folders: Vec<String> = files_under(&ws.path().join("out"))
        .into_iter()
        .filter(|f| f.ends_with("/tables.json"))
        .collect();
    assert_eq!(folders.len(), 2, "{folders:?}");
}

/// The issue's example: TOML-table loop items read as `item.table` pass `check` and run; the
/// field `check` used to suggest (`item.t.table`) is refused with the real fields named.
#[test]
fn issue_13_table_items_are_read_the_same_by_check_and_the_run() {
    let ws = Workspace::default_sandbox();
    let job = |body: &str| {
        format!(
            r#"
[vars]
tables = [{{ namespace = "canvas", table = "users" }}, {{ namespace = "canvas", table = "courses" }}]
[[step]]
id = "t"
for_each = "tables"
get = "/dap/query/{{{{ item.namespace }}}}/table/{{{{ item.table }}}}/schema"
outputs = {{ version = "$.version" }}
[[step]]
id = "again"
for_each = "t"
{body}
"#
        )
    };
    let good = ws.job(
        "good.toml",
        &job("get = \"/dap/query/{{ item.namespace }}/table/{{ item['table'] }}/schema\"\nsave = \"{{ item.table }}-{{ item.version }}-{{ index }}.json\""),
    );
    ws.run(&["check", good.to_str().unwrap()]).expect_code(0);
    let r = run_job(&ws, &good, &[]);
    r.expect_code(0);
    let files = files_under(&ws.path().join("out"));
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].starts_with("courses-") && files[0].ends_with("-1.json"),
        "{files:?}"
    );
    assert!(
        files[1].starts_with("users-") && files[1].ends_with("-0.json"),
        "{files:?}"
    );

    let bad = ws.job(
        "bad.toml",
        &job("get = \"/dap/query/canvas/table/{{ item.t.table }}/schema\""),
    );
    let r = ws.run(&["check", bad.to_str().unwrap()]);
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("error: `item` has no field `t` in step `again`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("its fields are `index`, `namespace`, `table`, `version`"),
        "{}",
        r.stderr
    );
}

/// Every job of a small generated language that passes `check` renders all its templates
/// when it runs against the sandbox, and the ones that cannot are refused by `check`: loops over
/// plain lists and lists of tables (fields every item has, or not), with and without `as`, and
/// a second loop over the first one's records, read by field, by subscript and nested.
#[test]
fn issue_13_every_generated_job_that_passes_check_renders_at_run_time() {
    let ws = Workspace::default_sandbox();
    let lists = [
        r#"names = ["accounts", "users"]"#,
        r#"names = [{ namespace = "canvas", table = "accounts", extra = 1 }, { namespace = "canvas", table = "users" }]"#,
    ];
    let first_reads = [
        "{{ V }}",
        "{{ V.table }}",
        "{{ V['table'] }}",
        "{{ V.extra }}",
        "{{ V.namespace ~ index }}",
        "{{ V.t.table }}",
        "{{ V.item }}",
    ];
    let second_reads = [
        "{{ r.table }}",
        "{{ r['namespace'] }}",
        "{{ r.item }}",
        "{{ r.t }}",
        "{{ r.first }}",
        "{{ r.index }}",
        "{{ r.extra }}",
        "{{ r.item.table }}",
        "{{ r.t.table }}",
        "{{ r.table.x }}",
    ];
    let (mut passed, mut refused) = (0, 0);
    for list in lists {
        for var in ["item", "t"] {
            for a in first_reads {
                for b in second_reads {
                    let a = a.replace('V', var);
                    let as_ = if var == "item" {
                        String::new()
                    } else {
                        format!("as = \"{var}\"\n")
                    };
                    let text = format!(
                        "[vars]\n{list}\n[[step]]\nid = \"a\"\nfor_each = \"names\"\n{as_}get = \"/dap/query/canvas/table\"\nquery = {{ p = \"{a}\" }}\noutputs = {{ first = \"$.tables[0]\" }}\nsave = \"a-{{{{ index }}}}-{a}.json\"\n[[step]]\nid = \"b\"\nfor_each = \"a\"\nas = \"r\"\nget = \"/dap/query/canvas/table\"\nquery = {{ p = \"{b}\" }}\n"
                    );
                    let checked =
                        dap_run::job::load_str(Path::new("gen.toml"), &text, &Default::default());
                    if checked.is_err() {
                        refused += 1;
                        continue;
                    }
                    passed += 1;
                    let path = ws.job("gen.toml", &text);
                    let out = format!("out-{passed}");
                    let r = ws.run(&["run", path.to_str().unwrap(), "--output-dir", &out]);
                    assert_eq!(
                        r.code, 0,
                        "passed check but failed at run time:\n{text}\n{}",
                        r.stderr
                    );
                }
            }
        }
    }
    // Neither side is vacuous: many jobs run, and the mistakes are refused.
    eprintln!("{passed} generated jobs passed check and ran; {refused} were refused");
    assert!(passed >= 30, "{passed}");
    assert!(refused >= 200, "{refused}");
}

/// Every example passes `check` and renders all its templates against the sandbox.
#[test]
fn issue_13_every_example_that_passes_check_runs_against_the_sandbox() {
    let ws = Workspace::default_sandbox();
    let names: Vec<String> = example_jobs()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in names {
        let job = ws.example(&name);
        ws.run(&["check", job.to_str().unwrap()]).expect_code(0);
        let r = ws.run(&[
            "run",
            job.to_str().unwrap(),
            "--output-dir",
            &format!("out-{name}"),
        ]);
        assert_eq!(r.code, 0, "{name}:\n{}", r.stderr);
        for bad in ["cannot render", "cannot evaluate", "missing at run time"] {
            assert!(!r.stderr.contains(bad), "{name}: {}", r.stderr);
        }
    }
}

/// `when` skips a step or a loop item; a step with `let` and no request computes values and
/// saves them, sending nothing.
#[test]
fn issue_13_when_and_steps_without_a_request() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "manifest.toml",
        r#"
[vars]
tables = ["accounts", "users", "courses"]
skip = ["users"]
[[step]]
id = "schema"
for_each = "tables"
as = "table"
when = "table not in skip"
get = "/dap/query/canvas/table/{{ table }}/schema"
outputs = { version = "$.version" }
[[step]]
id = "listing"
when = "skip | length == 0"
get = "/dap/query/canvas/table"
outputs = { listed = "$.tables" }
[[step]]
id = "manifest"
let = { manifest = "{{ {'run': run.id, 'tables': schema | map(attribute='table') | list, 'listed': listed} }}", count = "{{ schema | length }}" }
save = { to = "manifest.json", output = "manifest" }
check = "count == 2 and listed is none"
"#,
    );
    let r = run_job(
        &ws,
        &job,
        &["--report", "json=r.json", "--report", "junit=r.xml"],
    );
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("step `schema` (item `users`): skipped: `when` does not hold"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("step `listing`: skipped: `when` does not hold"),
        "{}",
        r.stderr
    );
    let manifest = read_json(&ws.path().join("out/manifest.json"));
    assert_eq!(
        manifest["tables"],
        serde_json::json!(["accounts", "courses"])
    );
    assert_eq!(manifest["listed"], serde_json::Value::Null);
    let report = read_json(&ws.path().join("r.json"));
    assert_eq!(report["run"]["id"], manifest["run"]);
    assert_eq!(report["steps"][0]["items"][1]["when_false"], true);
    assert_eq!(report["steps"][2]["items"][0]["outputs"]["count"], 2);
    let junit = ws.read("r.xml");
    assert!(junit.contains("skipped: `when` does not hold"), "{junit}");
    let c = ws.counters();
    assert_eq!(
        c.routes["GET /dap/query/{namespace}/table/{table}/schema"],
        2
    );
    assert!(
        !c.routes.contains_key("GET /dap/query/{namespace}/table"),
        "{:?}",
        c.routes
    );
    // Logins and requests only for the two schemas.
    assert_eq!(c.logins, 1);

    // A step without a request cannot have request parts, nor save a body.
    let bad = ws.job(
        "bad.toml",
        "[[step]]\nid = \"a\"\nlet = { x = \"{{ 1 + 1 }}\" }\nquery = { q = \"1\" }\nsave = \"x.json\"\n[[step]]\nid = \"b\"\n",
    );
    let r = ws.run(&["check", bad.to_str().unwrap()]);
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("step `a` sends no request, so it cannot have `query`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("step `a` sends no request, so it has no response body to save"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("step `b` has no request"), "{}", r.stderr);
}

/// What bash completes for the words of a command line, with the script `dap-run completions
/// bash` prints loaded as a user's shell would.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let quoted = quoted.join(" ");
    let program = format!(
        r#"source '{}'
COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
complete -p dap-run >/dev/null || exit 3
fn=$(complete -p dap-run | sed -E 's/.*-F ([^ ]+).*/\1/')
"$fn" dap-run "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display()
    );
    let out = std::process::Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(program)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn issue_13_bash_completes_subcommand_options() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        bare_cmd(dir.path())
            .args(["completions", "bash"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    let script = dir.path().join("dap-run.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    assert_eq!(
        bash_complete(&script, &["dap-run", "run", "--re"]),
        ["--report"]
    );
    assert_eq!(
        bash_complete(&script, &["dap-run", "check", "--v"]),
        ["--var", "--verbose"]
    );
    assert_eq!(
        bash_complete(&script, &["dap-run", "plan", "--fo"]),
        ["--format"]
    );
    assert_eq!(
        bash_complete(&script, &["dap-run", "plan", "--format", ""]),
        ["text", "json"]
    );
    assert_eq!(bash_complete(&script, &["dap-run", "--dry"]), ["--dry-run"]);
    assert_eq!(bash_complete(&script, &["dap-run", "pl"]), ["plan"]);
}

#[test]
fn issue_13_man_pages_for_every_subcommand_with_job_file_environment_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let top = Run::from(bare_cmd(dir.path()).arg("man").output().unwrap());
    top.expect_code(0);
    for section in [
        ".SH \"JOB FILE\"",
        ".SH ENVIRONMENT",
        ".SH \"EXIT STATUS\"",
        ".SH \"SEE ALSO\"",
    ] {
        assert!(top.stdout.contains(section), "{section}");
    }
    for code in dap_run::error::ExitCode::ALL.map(|c| c.code()) {
        assert!(
            top.stdout.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit {code}"
        );
    }
    for var in [
        "DAP_CLIENT_ID",
        "DAP_API_URL",
        "CANVAS_API_TOKEN",
        "NO_COLOR",
    ] {
        assert!(top.stdout.contains(var), "{var}");
    }
    let run = Run::from(bare_cmd(dir.path()).args(["man", "run"]).output().unwrap());
    run.expect_code(0);
    assert!(run.stdout.contains(".TH dap-run-run 1"), "{}", run.stdout);
    assert!(run.stdout.contains("\\-\\-report"));
    let bad = Run::from(bare_cmd(dir.path()).args(["man", "nope"]).output().unwrap());
    bad.expect_code(2);
    assert!(
        bad.stderr
            .contains("no man page `nope`; the pages are: run, check, plan"),
        "{}",
        bad.stderr
    );

    // Every page the top page points at exists, and renders without a roff warning.
    let pages = dir.path().join("man");
    let r = Run::from(
        bare_cmd(dir.path())
            .args(["man", "--dir", pages.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    let mut names: Vec<String> = files_under(&pages);
    names.sort();
    assert_eq!(
        names,
        [
            "dap-run-check.1",
            "dap-run-completions.1",
            "dap-run-man.1",
            "dap-run-plan.1",
            "dap-run-replica.1",
            "dap-run-run.1",
            "dap-run-sandbox.1",
            "dap-run.1"
        ]
    );
    for see in top
        .stdout
        .split("\\fB")
        .filter_map(|s| s.split_once("\\fR(1)"))
        .map(|(p, _)| p.replace("\\-", "-"))
    {
        assert!(
            pages.join(format!("{see}.1")).is_file(),
            "SEE ALSO {see}(1) has no page"
        );
    }
    if !tool_available("groff", "groff-base") {
        return;
    }
    for name in &names {
        let out = std::process::Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(pages.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// On a terminal (a pty from `script`), log lines are coloured unless NO_COLOR is set.
#[test]
fn issue_13_no_color_is_honoured_on_a_terminal() {
    if !tool_available("script", "bsdutils") {
        return;
    }
    let ws = Workspace::default_sandbox();
    let job = ws.example("tables.toml");
    let bin = assert_cmd::cargo::cargo_bin!("dap-run");
    let on_a_terminal = |no_color: Option<&str>| {
        let mut c = ws.cmd();
        c.env("TERM", "xterm");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let line = format!(
            "{} -v run {} --output-dir out",
            bin.display(),
            job.display()
        );
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .current_dir(ws.path());
        script.env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                script.env(k, v);
            }
        }
        String::from_utf8_lossy(&script.output().unwrap().stdout).into_owned()
    };
    let coloured = on_a_terminal(None);
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colours: {coloured}"
    );
    let plain = on_a_terminal(Some("1"));
    assert!(plain.contains("INFO step 1/1 `tables`"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR: {plain:?}");
}

/// Checks a JUnit document against the rules of `junit-10.xsd` (the schema pytest and Jenkins'
/// xunit plugin use), element by element: which elements may appear where, which attributes
/// each may have, which are required, and that `system-out`/`system-err` hold text only.
fn assert_junit_10(xml: &str) {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let root = doc.root_element();
    assert!(
        matches!(root.tag_name().name(), "testsuites" | "testsuite"),
        "root element `{}`",
        root.tag_name().name()
    );
    fn rules(
        name: &str,
    ) -> Option<(
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    )> {
        // (allowed attributes, required attributes, allowed child elements)
        Some(match name {
            "testsuites" => (
                &["name", "time", "tests", "failures", "disabled", "errors"],
                &[],
                &["testsuite"],
            ),
            "testsuite" => (
                &[
                    "name",
                    "tests",
                    "failures",
                    "errors",
                    "time",
                    "disabled",
                    "skipped",
                    "skips",
                    "timestamp",
                    "hostname",
                    "id",
                    "package",
                    "assertions",
                    "file",
                    "skip",
                    "log",
                    "url",
                ],
                &["tests"],
                &[
                    "testsuite",
                    "properties",
                    "testcase",
                    "system-out",
                    "system-err",
                ],
            ),
            "testcase" => (
                &[
                    "name",
                    "assertions",
                    "time",
                    "timestamp",
                    "classname",
                    "status",
                    "class",
                    "file",
                    "line",
                    "log",
                    "group",
                    "url",
                ],
                &["name"],
                &["skipped", "error", "failure", "system-out", "system-err"],
            ),
            "failure" | "error" | "skipped" => (&["type", "message"], &[], &[]),
            "properties" => (&[], &[], &["property"]),
            "property" => (&["name", "value"], &["name", "value"], &[]),
            "system-out" | "system-err" => (&[], &[], &[]),
            _ => return None,
        })
    }
    for node in root.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        let (allowed, required, children) =
            rules(name).unwrap_or_else(|| panic!("element `{name}` is not in junit-10.xsd"));
        for a in node.attributes() {
            assert!(
                allowed.contains(&a.name()),
                "attribute `{}` on <{name}> is not in junit-10.xsd",
                a.name()
            );
        }
        for r in required {
            assert!(
                node.attribute(*r).is_some(),
                "<{name}> lacks the required `{r}`"
            );
        }
        for child in node.children().filter(|c| c.is_element()) {
            assert!(
                children.contains(&child.tag_name().name()),
                "<{}> inside <{name}> is not allowed by junit-10.xsd",
                child.tag_name().name()
            );
        }
    }
}

#[test]
fn issue_13_junit_is_valid_junit_10_and_shows_dropped_items_as_skipped() {
    // The checker itself refuses what the issue found: `skipped` on <testsuites>.
    let bad = std::panic::catch_unwind(|| {
        assert_junit_10(
            r#"<testsuites tests="1" skipped="0"><testsuite tests="1" name="x"/></testsuites>"#,
        )
    });
    assert!(
        bad.is_err(),
        "the checker must refuse `skipped` on <testsuites>"
    );

    let ws = Workspace::with_faults(Faults {
        fail_tables: vec!["users".into()],
        ..Default::default()
    });
    let job = ws.example("nightly.toml");
    run_job(&ws, &job, &["--report", "junit=r.xml"]).expect_code(1);
    let xml = ws.read("r.xml");
    assert_junit_10(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no test case `{name}` in {xml}"))
    };
    assert!(
        case("wait[users]")
            .children()
            .any(|c| c.has_tag_name("failure"))
    );
    let dropped = case("download[users]");
    let skipped = dropped
        .children()
        .find(|c| c.has_tag_name("skipped"))
        .expect("skipped");
    assert_eq!(
        skipped.attribute("message"),
        Some("skipped: this item failed in an earlier step")
    );
    assert!(
        case("download[accounts]")
            .children()
            .all(|c| !c.has_tag_name("skipped"))
    );

    // A passing run's report is valid too.
    let ok = Workspace::default_sandbox();
    let job = ok.example("nightly.toml");
    run_job(&ok, &job, &["--report", "junit=r.xml"]).expect_code(0);
    assert_junit_10(&ok.read("r.xml"));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Saved files, downloads and reports follow the umask; the state file and the token cache
/// stay 0600 whatever the umask.
#[cfg(unix)]
#[test]
fn issue_13_outputs_follow_the_umask_and_state_and_token_cache_stay_private() {
    for (umask, expected) in [("022", 0o644), ("002", 0o664), ("077", 0o600)] {
        let ws = Workspace::default_sandbox();
        let job = nightly_variant(
            &ws,
            &[(
                "[vars]",
                "[gateway]\ntoken_cache = \"token.json\"\n\n[vars]",
            )],
        );
        let c = ws.cmd();
        let args = [
            "run",
            job.to_str().unwrap(),
            "--output-dir",
            "out",
            "--report",
            "json=reports/r.json",
            "--report",
            "junit=r.xml",
        ];
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(assert_cmd::cargo::cargo_bin!("dap-run"))
            .args(args)
            .current_dir(ws.path())
            .env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        Run::from(sh.output().unwrap()).expect_code(0);
        let out = ws.path().join("out");
        let files = files_under(&out);
        assert_eq!(files.len(), 10, "{files:?}");
        for f in &files {
            assert_eq!(mode(&out.join(f)), expected, "umask {umask}: {f}");
        }
        assert_eq!(
            mode(&ws.path().join("reports/r.json")),
            expected,
            "umask {umask}: report"
        );
        assert_eq!(
            mode(&ws.path().join("r.xml")),
            expected,
            "umask {umask}: report"
        );
        assert_eq!(
            mode(&ws.path().join("nightly.state.json")),
            0o600,
            "umask {umask}: state"
        );
        assert_eq!(
            mode(&ws.path().join("token.json")),
            0o600,
            "umask {umask}: token cache"
        );
    }
}

/// A value of the wrong type is reported with the file's other problems, not instead of them.
#[test]
fn issue_13_a_toml_type_error_does_not_hide_other_problems() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "typed.toml",
        r#"[defaults]
concurrency = "eight"

[vars]
namespace = "canvas"

[[step]]
id = "tables"
get = "/dap/query/{{ namespce }}/table"
poll = { until = "true", every = 5 }
"#,
    );
    let r = ws.run(&["check", job.to_str().unwrap()]);
    r.expect_code(2);
    for expected in [
        "typed.toml:2:15",
        "`concurrency` must be a whole number 1-256",
        "typed.toml:10:",
        "`every` must be a duration or a range in quotes",
        "undefined variable `namespce` in step `tables`",
        "did you mean `namespace`?",
        "3 problems found",
    ] {
        assert!(r.stderr.contains(expected), "`{expected}` in\n{}", r.stderr);
    }
    assert_eq!(ws.counters().requests, 0);
}
