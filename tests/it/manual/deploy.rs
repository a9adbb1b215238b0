//! The files under `examples/` for running dap-run unattended (cron, systemd, Kubernetes, CI)
//! parse as their programs read them, and every `dap-run` command line in them is one the
//! program takes, naming example job files that `dap-run check` accepts. What cannot be
//! checked here (a scheduler actually starting them) is not claimed.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::markdown::{read, root};
use super::shell::{check_invocation, invocations};
use crate::common::tool_available;

fn check_all(file: &str, lines: impl IntoIterator<Item = String>) -> usize {
    let mut n = 0;
    for line in lines {
        for args in invocations(&line) {
            n += 1;
            if let Err(e) = check_invocation(&args) {
                panic!("{file}: {e}");
            }
        }
    }
    n
}

/// A systemd unit file: its sections, each with its `Key=Value` lines (comments and blank lines
/// left out, `\` continuations joined). Panics on a line that is neither.
fn unit_sections(file: &str) -> Vec<(String, Vec<(String, String)>)> {
    let text = read(file).replace("\\\n", " ");
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((name.to_owned(), Vec::new()));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{file}:{}: not `Key=Value`: {line}", i + 1));
        let section = out
            .last_mut()
            .unwrap_or_else(|| panic!("{file}:{}: a key before any section", i + 1));
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric()),
            "{file}:{}: `{key}` is no key",
            i + 1
        );
        section.1.push((key.to_owned(), value.trim().to_owned()));
    }
    out
}

fn value<'a>(
    sections: &'a [(String, Vec<(String, String)>)],
    section: &str,
    key: &str,
) -> Option<&'a str> {
    sections
        .iter()
        .filter(|(s, _)| s == section)
        .flat_map(|(_, kv)| kv)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn files(dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
        .collect();
    out.sort();
    out
}

#[test]
fn the_systemd_units_parse_and_start_dap_run_with_a_valid_command() {
    let units = files("examples/systemd");
    let services: Vec<&String> = units.iter().filter(|u| u.ends_with(".service")).collect();
    assert!(!services.is_empty());
    for service in &services {
        let s = unit_sections(service);
        assert_eq!(value(&s, "Service", "Type"), Some("oneshot"), "{service}");
        let exec = value(&s, "Service", "ExecStart").expect("ExecStart");
        assert_eq!(
            check_all(service, [exec.to_owned()]),
            1,
            "{service}: `{exec}`"
        );
        // Its timer starts it.
        let timer = service.replace(".service", ".timer");
        let t = unit_sections(&timer);
        assert!(value(&t, "Timer", "OnCalendar").is_some(), "{timer}");
        assert_eq!(
            value(&t, "Install", "WantedBy"),
            Some("timers.target"),
            "{timer}"
        );
    }
    // systemd's own reading of them, with ExecStart pointing at this build.
    if !tool_available("systemd-analyze", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin!("dap-run");
    let mut copies = Vec::new();
    for unit in &units {
        let to = dir.path().join(Path::new(unit).file_name().unwrap());
        std::fs::write(
            &to,
            read(unit).replace("/usr/local/bin/dap-run", bin.to_str().unwrap()),
        )
        .unwrap();
        copies.push(to);
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&copies)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

#[test]
fn the_crontab_lines_parse_and_run_valid_commands() {
    let file = "examples/cron/crontab";
    let mut commands = Vec::new();
    for line in read(file).lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        for f in &fields[..5] {
            assert!(
                f.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c)),
                "{file}: `{f}` is no schedule field in `{line}`"
            );
        }
        commands.push(fields[5..].join(" "));
    }
    assert!(check_all(file, commands) >= 2);
}

fn yaml(file: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(docs.len(), 1, "{file}: one document");
    docs.remove(0)
}

/// Every string of a YAML document, its lines apart.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.extend(s.lines().map(str::to_owned)),
        Yaml::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn the_kubernetes_cronjob_parses_and_runs_a_valid_command() {
    for file in files("examples/kubernetes") {
        let doc = yaml(&file);
        assert_eq!(doc["apiVersion"].as_str(), Some("batch/v1"), "{file}");
        assert_eq!(doc["kind"].as_str(), Some("CronJob"), "{file}");
        let spec = &doc["spec"];
        let schedule = spec["schedule"].as_str().expect("spec.schedule");
        assert_eq!(
            schedule.split_whitespace().count(),
            5,
            "{file}: `{schedule}`"
        );
        assert_eq!(spec["concurrencyPolicy"].as_str(), Some("Forbid"), "{file}");
        let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
        assert!(
            matches!(pod["restartPolicy"].as_str(), Some("Never" | "OnFailure")),
            "{file}: a Job's pod needs restartPolicy Never or OnFailure"
        );
        let containers = pod["containers"].as_vec().expect("containers");
        let mut n = 0;
        for c in containers {
            let command: Vec<String> = c["command"]
                .as_vec()
                .into_iter()
                .flatten()
                .chain(c["args"].as_vec().into_iter().flatten())
                .map(|w| w.as_str().expect("a string").to_owned())
                .collect();
            assert!(command[0].ends_with("dap-run"), "{file}: {command:?}");
            check_invocation(&command[1..]).unwrap_or_else(|e| panic!("{file}: {e}"));
            n += 1;
            // The volumes it mounts are the pod's.
            let volumes: Vec<&str> = pod["volumes"]
                .as_vec()
                .into_iter()
                .flatten()
                .filter_map(|v| v["name"].as_str())
                .collect();
            for m in c["volumeMounts"].as_vec().into_iter().flatten() {
                let name = m["name"].as_str().unwrap();
                assert!(volumes.contains(&name), "{file}: no volume `{name}`");
            }
        }
        assert!(n > 0);
    }
}

#[test]
fn the_ci_files_parse_and_run_valid_commands() {
    for file in files("examples/ci") {
        let doc = yaml(&file);
        let mut lines = Vec::new();
        strings(&doc, &mut lines);
        assert!(
            check_all(&file, lines) >= 3,
            "{file}: too few dap-run lines"
        );
    }
}
