//! The README's quickstart runs as written: each `cargo run -- ARGS` line of its first shell
//! block, as the binary with ARGS, in a copy of the repository's `examples/`, in order; and
//! what the text after it promises holds (files under `examples/output/nightly/`, a second run
//! incremental, the replica in `examples/output/replicate/replica.db`).

use super::markdown::{code_blocks, read, root};
use super::shell::invocations;
use crate::common::Workspace;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "output" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(name));
        } else if p.extension().is_some_and(|x| x != "lock")
            && !name.to_string_lossy().ends_with(".state.json")
        {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let readme = read("README.md");
    let start = readme.find("## Quickstart").expect("a Quickstart section");
    let block = &code_blocks(&readme[start..])[0];
    let steps: Vec<Vec<String>> = block
        .text
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo run"))
        .flat_map(invocations)
        .collect();
    assert_eq!(steps.len(), 3, "the quickstart's commands: {steps:?}");

    let ws = Workspace::bare();
    let dir = ws.path();
    copy_dir(&root().join("examples"), &dir.join("examples"));
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ws.dap().args(&args).status(0).run()
    };
    let mut outputs = Vec::new();
    for args in &steps {
        outputs.push(run(args));
    }
    let out = dir.join("examples/output");
    for t in ["accounts", "courses", "enrollments", "users", "submissions"] {
        assert!(out.join("nightly").join(t).is_dir(), "no files of {t}");
        assert!(
            outputs[2].stdout.contains(&format!("canvas.{t}")),
            "{}",
            outputs[2].stdout
        );
    }
    assert!(out.join("replicate/replica.db").is_file());
    // "run it twice and the second run is incremental"
    run(&steps[0]).stderr_has(&["queries: 5 incremental, 0 snapshots"]);
}
