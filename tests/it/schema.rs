//! The JSON Schemas of the job file and of the project file `dap-run.toml`:
//! generated from the serde mirrors, committed in `schemas/`, complete with descriptions, and
//! satisfied by every example.
//!
//! Regenerate the committed files with `UPDATE_SCHEMA=1 cargo test --test it schema::`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

fn schema_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name)
}

/// A schema as committed: pretty JSON and a trailing newline. TOML has no null, so optional
/// keys are simply not required (no `"null"` type).
fn committed_form(schema: schemars::Schema) -> String {
    let mut schema = serde_json::to_value(&schema).expect("schema serializes");
    drop_null(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}

/// The job file's schema, generated from `RawJob`.
fn generated() -> String {
    committed_form(schemars::schema_for!(dap_run::job::raw::RawJob))
}

/// The project file's schema, generated from `RawProject`.
fn generated_project() -> String {
    committed_form(schemars::schema_for!(dap_run::job::project::RawProject))
}

/// Removes the `null` alternative schemars adds for `Option` fields.
fn drop_null(v: &mut Json) {
    match v {
        Json::Object(m) => {
            if let Some(Json::Array(types)) = m.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    m.insert("type".into(), only);
                }
            }
            if let Some(Json::Array(any)) = m.get_mut("anyOf") {
                any.retain(|s| *s != serde_json::json!({ "type": "null" }));
                if any.len() == 1 {
                    let Some(Json::Object(only)) = any.pop() else {
                        unreachable!("anyOf holds schemas")
                    };
                    m.remove("anyOf");
                    m.extend(only);
                }
            }
            m.values_mut().for_each(drop_null);
        }
        Json::Array(a) => a.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// `schemas/<name>` is `want`, or is written with it under `UPDATE_SCHEMA`.
fn assert_committed(name: &str, want: &str) {
    let path = schema_file(name);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale or missing; regenerate it with `UPDATE_SCHEMA=1 cargo test --test it schema::` and commit it",
        path.display()
    );
}

#[test]
fn committed_schema_is_up_to_date() {
    assert_committed("job.schema.json", &generated());
}

#[test]
fn committed_project_schema_is_up_to_date() {
    assert_committed("project.schema.json", &generated_project());
}

/// Walks every property of every object in the schema and returns those without a description.
fn undocumented(v: &Json, at: &str, out: &mut Vec<String>) {
    match v {
        Json::Object(m) => {
            if let Some(Json::Object(props)) = m.get("properties") {
                for (k, p) in props {
                    let has = p
                        .get("description")
                        .and_then(Json::as_str)
                        .is_some_and(|d| !d.trim().is_empty());
                    if !has {
                        out.push(format!("{at}.{k}"));
                    }
                }
            }
            for (k, x) in m {
                undocumented(x, &format!("{at}/{k}"), out);
            }
        }
        Json::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                undocumented(x, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_has_a_description() {
    for text in [generated(), generated_project()] {
        let schema: Json = serde_json::from_str(&text).unwrap();
        let mut missing = Vec::new();
        undocumented(&schema, "#", &mut missing);
        assert!(
            missing.is_empty(),
            "keys without a description in `{}`: {missing:#?}",
            schema["title"]
        );
        assert!(schema.get("description").is_some(), "{}", schema["title"]);
        // Every definition documents itself too, so hovering a table in an editor explains it.
        for (name, def) in schema["$defs"].as_object().expect("$defs") {
            assert!(
                def.get("description").is_some(),
                "definition `{name}` has no description"
            );
        }
    }
}

/// The TOML file as the JSON value a schema-aware editor (Taplo) checks.
fn toml_as_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap();
    let value: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(value).unwrap()
}

fn compile_schema() -> (boon::Schemas, boon::SchemaIndex) {
    compile(&generated())
}

fn compile(text: &str) -> (boon::Schemas, boon::SchemaIndex) {
    let schema: Json = serde_json::from_str(text).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let url = "file:///schema.json";
    compiler.add_resource(url, schema).expect("schema resource");
    let index = compiler
        .compile(url, &mut schemas)
        .expect("the schema compiles");
    (schemas, index)
}

#[test]
fn every_example_is_valid_against_the_schema() {
    let (schemas, index) = compile_schema();
    for path in crate::common::example_jobs() {
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(
            first.starts_with("#:schema ../schemas/job.schema.json\n"),
            "{} must start with the Taplo directive `#:schema ../schemas/job.schema.json`",
            path.display()
        );
        let job = toml_as_json(&path);
        if let Err(e) = schemas.validate(&job, index) {
            panic!("{} does not match the schema:\n{e:#}", path.display());
        }
    }
}

#[test]
fn schema_rejects_unknown_keys_and_wrong_types() {
    let (schemas, index) = compile_schema();
    let bad = [
        r#"nmae = "typo""#,
        "[[step]]\nid = \"a\"\nget = \"/x\"\nretries = 3",
        "[[step]]\nid = \"a\"\nget = \"/x\"\nconcurrency = \"four\"",
        "[gateway]\ntoken_cache = 5",
        "[[step]]\nget = \"/x\"",
        "[[step]]\nid = \"a\"\nget = \"/x\"\noutputs = { a = { path = \"$.a\", opt = true } }",
    ];
    for text in bad {
        let value: toml::Value = toml::from_str(text).unwrap();
        let job = serde_json::to_value(value).unwrap();
        assert!(
            schemas.validate(&job, index).is_err(),
            "the schema accepts:\n{text}"
        );
    }
}

/// The schema refuses what `check` refuses: each of these jobs fails the schema (so an editor marks it) and `check` (exit 2, nothing sent).
#[test]
fn the_schema_refuses_what_check_refuses() {
    let (schemas, index) = compile_schema();
    let step = "[[step]]\nid = \"a\"\nget = \"/x\"\n";
    let bad = [
        ("unknown auth", "[gateway]\nauth = \"oauth\"\n".to_owned() + step),
        ("concurrency 0", format!("{step}for_each = \"[1]\"\nconcurrency = 0\n")),
        ("concurrency too high", format!("[defaults]\nconcurrency = 257\n{step}")),
        ("no retry attempts", format!("[gateway.retry]\nattempts = 0\n{step}")),
        ("download concurrency 0", format!("{step}download = {{ urls = \"$.u\", to = \"f\", concurrency = 0 }}\n")),
        ("id with a dash", "[[step]]\nid = \"list-tables\"\nget = \"/x\"\n".to_owned()),
        ("id with a digit first", "[[step]]\nid = \"1st\"\nget = \"/x\"\n".to_owned()),
        ("malformed timeout", format!("[gateway]\ntimeout = \"5 parsecs\"\n{step}")),
        ("malformed backoff", format!("[gateway.retry]\nbackoff = \"fast\"\n{step}")),
        ("malformed poll interval", format!("{step}poll = {{ until = \"true\", every = \"1s-30s\" }}\n")),
        ("malformed poll timeout", format!("{step}poll = {{ until = \"true\", timeout = \"2\" }}\n")),
        ("get and post", "[[step]]\nid = \"a\"\nget = \"/x\"\npost = \"/y\"\n".to_owned()),
        ("post and delete", "[[step]]\nid = \"a\"\npost = \"/x\"\ndelete = \"/y\"\n".to_owned()),
        ("load and get", "[[step]]\nid = \"a\"\nget = \"/x\"\nload = { namespace = \"canvas\", table = \"users\" }\n".to_owned()),
        ("json and body", format!("{step}json = {{ a = 1 }}\nbody = \"x\"\n")),
        ("variable name", format!("[vars]\n\"my-var\" = 1\n{step}")),
        ("output name", format!("{step}outputs = {{ \"my-out\" = \"$.x\" }}\n")),
        ("header name", format!("{step}headers = {{ \"X Team\" = \"a\" }}\n")),
        ("rate limit", format!("[gateway.rate_limits]\n\"GET /x\" = \"lots\"\n{step}")),
        ("literal client secret", format!("[gateway]\nclient_secret = \"s3cret-in-the-file\"\n{step}")),
        ("literal Canvas token", format!("[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\ncanvas_token = \"tok-in-the-file\"\n{step}")),
    ];
    let ws = crate::common::Workspace::default_sandbox();
    let job = ws.path().join("bad.toml");
    let judge = |what: &str, text: &str, valid| {
        both_judge(&ws, (&schemas, index), "bad.toml", &job, what, text, valid)
    };
    for (what, text) in &bad {
        judge(what, text, false);
    }
    assert_eq!(ws.counters().requests, 0);

    // What both accept still passes the schema: the edges of each rule.
    let good = [
        format!("[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\n{step}"),
        format!("[defaults]\nconcurrency = 256\n{step}"),
        format!(
            "[gateway]\ntimeout = \"1m 30s\"\n[gateway.retry]\nbackoff = \"500ms..1h\"\nattempts = 1\n{step}"
        ),
        format!("{step}poll = {{ until = \"true\", every = \"2s\", timeout = \"2 hours\" }}\n"),
        "[[step]]\nid = \"_a1\"\nlet = { x = \"1\" }\n".to_owned(),
        format!(
            "[gateway.rate_limits]\n\"GET /x/*\" = \"10/min\"\n\"POST /y\" = \"unlimited\"\n\"GET /z\" = \"5/6s\"\n{step}"
        ),
        format!("{step}headers = {{ \"X-Team\" = \"a\" }}\n"),
    ];
    let job = ws.path().join("good.toml");
    let judge = |what: &str, text: &str, valid| {
        both_judge(&ws, (&schemas, index), "good.toml", &job, what, text, valid)
    };
    for text in &good {
        judge("an edge", text, true);
    }
}

/// `file` in `ws` written with `text`, and `job` checked: both the schema and `check` refuse
/// it (`check` with exit 2 and a place in `file`), or both accept it.
#[track_caller]
fn both_judge(
    ws: &crate::common::Workspace,
    (schemas, index): (&boon::Schemas, boon::SchemaIndex),
    file: &str,
    job: &Path,
    what: &str,
    text: &str,
    valid: bool,
) {
    let value = serde_json::to_value(toml::from_str::<toml::Value>(text).unwrap()).unwrap();
    let verdict = schemas.validate(&value, index);
    match (&verdict, valid) {
        (Ok(()), false) => panic!("{what}: the schema accepts\n{text}"),
        (Err(e), true) => panic!("{what}: the schema refuses\n{text}\n{e:#}"),
        _ => {}
    }
    std::fs::write(ws.path().join(file), text).unwrap();
    eprintln!("{what}: `check` of\n{text}");
    let t = ws.dap().args(&["check", job.to_str().unwrap()]);
    if valid {
        t.status(0).run();
    } else {
        // Refused and located in `file`.
        t.status(2).stderr_has(&[&format!("{file}:")]).run();
    }
}

/// The example project file (`examples/project/dap-run.toml`, docs/job-file.md's) is valid against
/// the project schema, and `check` and `plan` of a job beside it accept it and show what the
/// job inherits.
#[test]
fn the_example_project_file_is_valid_against_its_schema() {
    let (schemas, index) = compile(&generated_project());
    let path = crate::common::examples_dir().join("project/dap-run.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("#:schema ../../schemas/project.schema.json\n"),
        "{} must start with the Taplo directive `#:schema ../../schemas/project.schema.json`",
        path.display()
    );
    if let Err(e) = schemas.validate(&toml_as_json(&path), index) {
        panic!("{} does not match the schema:\n{e:#}", path.display());
    }
    for (command, shows) in [
        ("check", &["tables.toml: ok"][..]),
        ("plan", &["attempts: 8", "ACME_DAP_CLIENT_ID"]),
    ] {
        crate::common::Test::new()
            .file("dap-run.toml", &text)
            .example("tables.toml")
            .command(&[command, "{job}"])
            .status(0)
            .stdout_has(shows)
            .run();
    }
}

/// Each of these project files fails the project schema (so an editor marks it) and `check` of
/// a job beside it (exit 2, the problem located in `dap-run.toml`, nothing sent); what both
/// accept passes the schema.
#[test]
fn the_project_schema_refuses_what_check_refuses() {
    let (schemas, index) = compile(&generated_project());
    let bad = [
        (
            "a table other than [gateway]",
            "[vars]\nnamespace = \"canvas\"\n",
        ),
        (
            "an unknown gateway key",
            "[gateway]\nurll = \"https://x.example\"\n",
        ),
        ("an unknown auth", "[gateway]\nauth = \"oauth\"\n"),
        (
            "a literal client secret",
            "[gateway]\nclient_secret = \"s3cret-in-the-file\"\n",
        ),
        (
            "a literal Canvas token",
            "[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\ncanvas_token = \"tok-in-the-file\"\n",
        ),
        ("a malformed timeout", "[gateway]\ntimeout = \"soon\"\n"),
        ("no retry attempts", "[gateway.retry]\nattempts = 0\n"),
        (
            "a malformed rate limit",
            "[gateway.rate_limits]\n\"GET /x\" = \"lots\"\n",
        ),
        (
            "a token cache of the wrong type",
            "[gateway]\ntoken_cache = 5\n",
        ),
    ];
    let ws = crate::common::Workspace::default_sandbox();
    let job = ws.job("job.toml", "[[step]]\nid = \"a\"\nget = \"/x\"\n");
    let judge = |what: &str, text: &str, valid| {
        both_judge(
            &ws,
            (&schemas, index),
            "dap-run.toml",
            &job,
            what,
            text,
            valid,
        )
    };
    for (what, text) in bad {
        judge(what, text, false);
    }
    assert_eq!(ws.counters().requests, 0);

    let good = [
        "[gateway]\nclient_id = \"{{ env.ACME_ID }}\"\nclient_secret = \"{{ env.ACME_SECRET }}\"\n",
        "[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\ncanvas_token = \"{{ env.ACME_CANVAS }}\"\n",
        "[gateway]\ntimeout = \"1m 30s\"\ntoken_cache = \"private/token.json\"\n[gateway.retry]\nattempts = 1\nbackoff = \"500ms..1h\"\n[gateway.rate_limits]\n\"GET /x/*\" = \"10/min\"\n",
        "# nothing shared yet\n",
    ];
    for text in good {
        judge("an edge", text, true);
    }
}
