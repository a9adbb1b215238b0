//! The job language at run time: templates see the run's id and start time, loop items are
//! read the same by `check` and the run, every job `check` passes renders at run time, `when`
//! and steps without a request, and a template's limits fail cleanly.

use std::path::Path;

use crate::common::*;

#[test]
fn templates_see_the_runs_id_and_start_time() {
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
    let r = run_job(&ws, &job, &["--report", "json=r.json"])
        .status(0)
        .run();
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
    run_job(&ws, &job, &[]).status(0).run();
    let folders: Vec<String> = files_under(&ws.path().join("out"))
        .into_iter()
        .filter(|f| f.ends_with("/tables.json"))
        .collect();
    assert_eq!(folders.len(), 2, "{folders:?}");
}

/// The issue's example: TOML-table loop items read as `item.table` pass `check` and run; the
/// field `check` used to suggest (`item.t.table`) is refused with the real fields named.
#[test]
fn table_items_are_read_the_same_by_check_and_the_run() {
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
    ws.dap()
        .args(&["check", good.to_str().unwrap()])
        .status(0)
        .run();
    run_job(&ws, &good, &[]).status(0).run();
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
    ws.dap()
        .args(&["check", bad.to_str().unwrap()])
        .status(2)
        .stderr_has(&["error: `item` has no field `t` in step `again`"])
        .stderr_has(&["its fields are `index`, `namespace`, `table`, `version`"])
        .run();
}

/// Every job of a small generated language that passes `check` renders all its templates
/// when it runs against the sandbox, and the ones that cannot are refused by `check`: loops over
/// plain lists and lists of tables (fields every item has, or not), with and without `as`, and
/// a second loop over the first one's records, read by field, by subscript and nested.
#[test]
fn every_generated_job_that_passes_check_renders_at_run_time() {
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
                    // Passed check, so it runs.
                    ws.dap()
                        .args(&["run", path.to_str().unwrap(), "--output-dir", &out])
                        .status(0)
                        .run();
                }
            }
        }
    }
    // Neither side is vacuous: many jobs run, and the mistakes are refused.
    eprintln!("{passed} generated jobs passed check and ran; {refused} were refused");
    assert!(passed >= 30, "{passed}");
    assert!(refused >= 200, "{refused}");
}

/// `when` skips a step or a loop item; a step with `let` and no request computes values and
/// saves them, sending nothing.
#[test]
fn when_and_steps_without_a_request() {
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
    run_job(
        &ws,
        &job,
        &["--report", "json=r.json", "--report", "junit=r.xml"],
    )
    .status(0)
    .stderr_has(&["step `schema` (item `users`): skipped: `when` does not hold"])
    .stderr_has(&["step `listing`: skipped: `when` does not hold"])
    .run();
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
    ws.dap()
        .args(&["check", bad.to_str().unwrap()])
        .status(2)
        .stderr_has(&["step `a` sends no request, so it cannot have `query`"])
        .stderr_has(&["step `a` sends no request, so it has no response body to save"])
        .stderr_has(&["step `b` has no request"])
        .run();
}

/// A `pad` width that only the run knows (from a variable) fails the item
/// with a message instead of aborting the process.
#[test]
fn a_huge_pad_width_at_run_time_fails_without_a_panic() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "pad.toml",
        r#"
[vars]
width = 99999999999

[[step]]
id = "list"
get = "/dap/query/canvas/table"
save = "tables-{{ 1 | pad(width) }}.json"
"#,
    );
    ws.dap()
        .args(&["check", job.to_str().unwrap()])
        .status(0)
        .run();
    ws.dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .status(1)
        .stderr_lacks(&["panicked"])
        .stderr_has(&["pad(99999999999) is wider than 255"])
        .run();
}
