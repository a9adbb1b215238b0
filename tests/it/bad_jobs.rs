//! Bad job files: every broken file of the corpus (`tests/bad_jobs/`) and generated ones (huge,
//! binary, deeply nested) exit 2 with a located message and send nothing; loading never panics
//! on arbitrary or mutated text.

use std::path::{Path, PathBuf};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Bad input.

fn bad_jobs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_jobs")
}

/// Runs a bad job against a sandbox: exit 2, a located message, no panic, no request.
fn assert_rejected(ws: &Workspace, job: &Path) {
    let name = job.file_name().unwrap().to_str().unwrap();
    // The message names the file.
    let run = ws
        .dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .status(2)
        .stderr_has(&[name])
        .run();
    let located = run.stderr.contains("-->")
        && (run.stderr.lines().any(|l| {
            l.trim_start().strip_prefix("--> ").is_some_and(|loc| {
                let mut parts = loc.rsplitn(3, ':');
                let col = parts.next().unwrap_or("");
                let line = parts.next().unwrap_or("");
                col.parse::<u32>().is_ok() && line.parse::<u32>().is_ok()
            })
        }) || run.stderr.contains("no steps"));
    // Problems with no place in the file: its size, its encoding, nesting past the parser's limit.
    let whole_file = run.stderr.contains("bytes; job files are limited")
        || run.stderr.contains("recursion limit")
        || run
            .stderr
            .contains("is not UTF-8 text (invalid byte at offset");
    assert!(
        located || whole_file,
        "{name}: no location in {}",
        run.stderr
    );
    assert_eq!(
        ws.counters().requests,
        0,
        "{name}: the gateway saw a request"
    );
}

#[test]
fn every_bad_job_in_the_corpus_exits_2_with_a_located_message_and_no_request() {
    let ws = Workspace::default_sandbox();
    let mut n = 0;
    for entry in std::fs::read_dir(bad_jobs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let to = ws.job(
                path.file_name().unwrap().to_str().unwrap(),
                &std::fs::read_to_string(&path).unwrap(),
            );
            assert_rejected(&ws, &to);
            n += 1;
        }
    }
    assert!(n >= 15, "corpus has {n} files");
}

#[test]
fn generated_bad_jobs_exit_2_with_a_located_message_and_no_request() {
    let ws = Workspace::default_sandbox();
    // Huge: 5 MB of comments before a valid job.
    let mut huge = String::from("name = \"huge\"\n");
    while huge.len() < 5 * 1024 * 1024 {
        huge.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    huge.push_str("[[step]]\nid = \"a\"\nget = \"/x\"\n");
    assert_rejected(&ws, &ws.job("huge.toml", &huge));
    // Just under the size limit, but one enormous string value with a bad template at its end.
    let long = format!(
        "name = \"long\"\n[[step]]\nid = \"a\"\nget = \"/{}{{{{ nope }}}}\"\n",
        "a".repeat(3 * 1024 * 1024)
    );
    assert_rejected(&ws, &ws.job("long_line.toml", &long));
    // Binary garbage.
    let mut rng = fastrand::Rng::with_seed(8);
    let garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.u8(..)).collect();
    let path = ws.path().join("garbage.toml");
    std::fs::write(&path, &garbage).unwrap();
    assert_rejected(&ws, &path);
    // Valid UTF-8 but control characters and NULs.
    let ctrl: String = (0..4096).map(|i| char::from((i % 32) as u8)).collect();
    assert_rejected(&ws, &ws.job("control.toml", &ctrl));
    // Deep nesting: arrays, inline tables, dotted keys, table headers.
    let deep = 100_000;
    assert_rejected(
        &ws,
        &ws.job(
            "deep_arrays.toml",
            &format!(
                "name = \"d\"\nx = {}{}\n",
                "[".repeat(deep),
                "]".repeat(deep)
            ),
        ),
    );
    assert_rejected(
        &ws,
        &ws.job(
            "deep_tables.toml",
            &format!(
                "name = \"d\"\nx = {}1{}\n",
                "{a = ".repeat(deep),
                "}".repeat(deep)
            ),
        ),
    );
    let dotted = vec!["a"; 50_000].join(".");
    assert_rejected(
        &ws,
        &ws.job("deep_dotted.toml", &format!("name = \"d\"\n{dotted} = 1\n")),
    );
    assert_rejected(
        &ws,
        &ws.job("deep_header.toml", &format!("name = \"d\"\n[{dotted}]\n")),
    );
    // A template nested thousands deep.
    let tmpl = format!(
        "name = \"t\"\n[[step]]\nid = \"a\"\nget = \"/{{{{ {}1{} }}}}\"\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_rejected(&ws, &ws.job("deep_template.toml", &tmpl));
    let jp = format!(
        "name = \"j\"\n[[step]]\nid = \"a\"\nget = \"/x\"\noutputs = {{ o = \"$.{}\" }}\n",
        "[0]".repeat(50_000)
    );
    ws.dap()
        .args(&["check", ws.job("deep_jsonpath.toml", &jp).to_str().unwrap()])
        .status(2)
        .stderr_has(&["invalid JSONPath"])
        .run();
}

mod properties {
    use dap_run::job::{LoadOptions, load_str};
    use proptest::prelude::*;
    use std::path::Path;

    fn examples() -> Vec<String> {
        ["nightly.toml", "tables.toml", "schemas.toml"]
            .iter()
            .map(|n| std::fs::read_to_string(super::examples_dir().join(n)).unwrap())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn load_str_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
            let _ = load_str(Path::new("fuzz.toml"), &text, &LoadOptions::default());
        }

        #[test]
        fn load_str_never_panics_on_mutated_examples(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, "[\\PC\\n\\[\\]{}\"'=.$|]{0,6}"), 1..6),
        ) {
            let mut text = examples()[which].clone();
            for (at, kind, piece) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) { i -= 1; }
                match kind {
                    0 => text.insert_str(i, &piece),
                    1 => text.truncate(i),
                    2 => { let mut j = (i + piece.len() + 1).min(text.len()); while !text.is_char_boundary(j) { j += 1; } text.replace_range(i..j, &piece) }
                    _ => { let mut j = (i + 20).min(text.len()); while !text.is_char_boundary(j) { j += 1; } text.replace_range(i..j, "") }
                }
            }
            let _ = load_str(Path::new("fuzz.toml"), &text, &LoadOptions::default());
        }
    }
}
