//! Several job files in one command: run in turn, all validated before anything is sent, the
//! most serious exit code; `plan` and `check` take several and warn of jobs `run` refuses
//! together.

use serde_json::Value as Json;

use crate::common::*;

#[test]
fn several_jobs_run_in_turn_and_exit_with_the_most_serious_code() {
    let ws = Workspace::default_sandbox();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let b = tables_job(&ws, "b.toml", "b", &["nope"]);
    ws.dap()
        .args(&[
            "run",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--report",
            "json=r.json",
            "--report",
            "junit=r.xml",
        ])
        .status(1)
        // Each its own summary, and one closing line.
        .stderr_has(&[
            "INFO a: ok: 1 step",
            "ERROR b: failed (exit 1): 1 step",
            "ERROR 2 jobs: a ok, b failed (exit 1); exit 1",
        ])
        .run();
    // Each its own output folder and lock; one login each (a run each, in turn).
    assert!(ws.path().join("output/a/tables.json").is_file());
    assert!(ws.path().join("output/b/tables.json").is_file());
    assert!(ws.path().join("a.lock").exists() && ws.path().join("b.lock").exists());
    assert_eq!(ws.counters().logins, 2);
    // One report for the command: the jobs' reports inside.
    let report: Json = serde_json::from_str(&ws.read("r.json")).unwrap();
    assert_eq!(report["exit_code"], 1);
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (&jobs[0]["job"], &jobs[0]["exit_code"]),
        (&"a".into(), &0.into())
    );
    assert_eq!(
        (&jobs[1]["job"], &jobs[1]["exit_code"]),
        (&"b".into(), &1.into())
    );
    let xml = ws.read("r.xml");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(suites, ["a", "b"]);

    // A job whose previous run still holds its lock is skipped (75), but does not hide the
    // other job's failure; without a failure, 75 is the command's code.
    let held = dap_run::state::lock(&ws.path().join("a.lock")).unwrap();
    let r = ws
        .dap()
        .args(&[a.to_str().unwrap(), b.to_str().unwrap()])
        .status(1)
        .stderr_has(&[
            "ERROR error: job `a`: another run of this job is in progress",
            "2 jobs: a skipped (exit 75, its previous run holds the lock), b failed (exit 1); exit 1",
        ])
        .run();
    assert_every_line_stamped(&r.stderr);
    let c = tables_job(&ws, "c.toml", "c", &[]);
    ws.dap()
        .args(&[a.to_str().unwrap(), c.to_str().unwrap()])
        .status(75)
        .stderr_has(&["another run of this job is in progress"])
        .run();
    drop(held);
}

#[test]
fn several_jobs_are_all_validated_before_anything_is_sent() {
    let ws = Workspace::default_sandbox();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let bad1 = ws.job(
        "bad1.toml",
        "[[step]]\nid = \"x\"\nget = \"/dap/{{ namespce }}\"\n",
    );
    let bad2 = ws.job("bad2.toml", "[[step]]\nid = \"y\"\ngett = \"/x\"\n");
    ws.dap()
        .args(&[
            "run",
            a.to_str().unwrap(),
            bad1.to_str().unwrap(),
            bad2.to_str().unwrap(),
        ])
        .status(2)
        .stderr_has(&["bad1.toml:3:"])
        .stderr_has(&["bad2.toml:3:"])
        .stderr_has(&["error: 2 problems found; nothing was sent"])
        .run();
    assert_eq!(ws.counters().requests, 0);
    assert!(!ws.path().join("output").exists());

    // --output-dir would put two jobs' files in one folder; two jobs of one name likewise.
    let b = tables_job(&ws, "b.toml", "b", &[]);
    ws.dap()
        .args(&[
            "run",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--output-dir",
            "out",
        ])
        .status(2)
        .stderr_has(&["`--output-dir` with several jobs"])
        .run();
    let a2 = tables_job(&ws, "a2.toml", "a", &[]);
    ws.dap()
        .args(&["run", a.to_str().unwrap(), a2.to_str().unwrap()])
        .status(2)
        .stderr_has(&["are both named `a`"])
        .run();
    assert_eq!(ws.counters().requests, 0);
}

#[test]
fn plan_and_check_take_several_jobs() {
    let ws = Workspace::default_sandbox();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let b = tables_job(&ws, "b.toml", "b", &[]);
    let r = ws
        .dap()
        .args(&["plan", a.to_str().unwrap(), b.to_str().unwrap()])
        .status(0)
        .run();
    let single_a = ws
        .dap()
        .args(&["plan", a.to_str().unwrap()])
        .status(0)
        .run();
    let single_b = ws
        .dap()
        .args(&["plan", b.to_str().unwrap()])
        .status(0)
        .run();
    assert_eq!(
        r.stdout,
        format!("{}\n{}", single_a.stdout, single_b.stdout)
    );
    let r = ws
        .dap()
        .args(&[
            "plan",
            "--format",
            "json",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ])
        .status(0)
        .run();
    let plans: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plans.as_array().unwrap().len(), 2);
    assert_eq!(plans[1]["job"], "b");
    let r = ws
        .dap()
        .args(&["check", a.to_str().unwrap(), b.to_str().unwrap()])
        .status(0)
        .run();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

/// Jobs that share a state file: a plan sends nothing and writes nothing, so `plan` and
/// `check` warn and go on; `run` refuses them, with nothing sent and nothing written. The two state files are one through
/// `..` (`one/../state` and `two/../state`), which the comparison also caught only as text.
#[test]
fn plan_and_check_warn_of_jobs_that_run_refuses_together() {
    let job = |name: &str| format!("name = \"{name}\"\nstate_dir = \"../state\"\n{ONE_STEP}");
    let with_jobs = |words: &[&str]| {
        Test::new()
            .file("one/x.toml", &job("one"))
            .file("two/x.toml", &job("two"))
            .command(words)
    };
    let warning = " WARN `one/x.toml` and `two/x.toml` would share the state file `two/../state/x.state.json`; `dap-run run` refuses them in one command";
    let plan = with_jobs(&["plan", "one/x.toml", "two/x.toml"])
        .status(0)
        .stderr_has(&[
            warning,
            " WARN   = help: give the jobs different file names",
        ])
        .stdout_has(&["job: one", "job: two"])
        .run();
    plan.every_line_stamped();
    let check = with_jobs(&["check", "one/x.toml", "two/x.toml"])
        .status(0)
        .stderr_has(&[warning])
        .run();
    assert_eq!(check.stdout.lines().count(), 2, "{}", check.stdout);
    // One job alone: no warning.
    with_jobs(&["plan", "one/x.toml"])
        .status(0)
        .stderr("")
        .run();
    // Two jobs of one name: a warning too.
    Test::new()
        .file("a.toml", ONE_STEP)
        .file("b.toml", &format!("name = \"a\"\n{ONE_STEP}"))
        .command(&["plan", "a.toml", "b.toml"])
        .status(0)
        .stderr_has(&[" WARN `a.toml` and `b.toml` are both named `a`"])
        .run();

    let run = with_jobs(&["run", "one/x.toml", "two/x.toml"])
        .status(2)
        .stderr_has(&[
            " ERROR error: `one/x.toml` and `two/x.toml` would share the state file `two/../state/x.state.json`",
        ])
        .run();
    assert_eq!(run.ws.counters().requests, 0);
    assert!(!run.ws.path().join("state").exists());
}
