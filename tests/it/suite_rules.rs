//! The rules the test suite keeps, checked on its own text: modules are named for the feature
//! they protect and functions for the behaviour, never for an issue or a day in the project's
//! history; and no test waits on the wall clock longer than 200 ms where the sandbox's clock
//! can be moved. (That every test `docs/guarantees.md` names exists is checked with the
//! manual, in `manual::reference`.)

use std::path::Path;

use crate::common::rust_files;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names after `fn ` in `text`.
fn fn_names(text: &str) -> Vec<&str> {
    text.match_indices("fn ")
        .filter(|(i, _)| *i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric())
        .map(|(i, _)| {
            let rest = &text[i + 3..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// A name that records history instead of behaviour: an issue number, a defect, a day.
fn historical(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("issue_")
        || name
            .split('_')
            .any(|w| w == "issue" || w == "defect" || w == "defects")
        || name.starts_with("day_")
        || name.contains("_day_")
        || name.contains("regression")
}

#[test]
fn no_function_of_the_code_or_the_tests_is_named_after_history() {
    let mut found = Vec::new();
    for dir in ["src", "tests", "benches"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for name in fn_names(&text) {
                if historical(name) {
                    found.push(format!("{}: fn {name}", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "name tests for the behaviour they protect, not an issue:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_test_module_is_named_after_history() {
    let mut found = Vec::new();
    for file in rust_files(&root().join("tests")) {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let historical_module = historical(&stem)
            || stem.chars().any(|c| c.is_ascii_digit())
            || ["run_defects", "run_edges", "nightly_refused", "day_one"].contains(&&*stem);
        if historical_module {
            found.push(file.display().to_string());
        }
    }
    assert!(
        found.is_empty(),
        "name test modules for the feature they protect:\n{}",
        found.join("\n")
    );
}

/// A wait of the test itself: `sleep(Duration::from_millis(N))` or `from_secs(N)` with a
/// literal N.
fn fixed_sleep_ms(line: &str) -> Option<u64> {
    let at = line.find("sleep(")?;
    let rest = &line[at..];
    let (unit, scale) = if let Some(i) = rest.find("from_millis(") {
        (i + "from_millis(".len(), 1)
    } else if let Some(i) = rest.find("from_secs(") {
        (i + "from_secs(".len(), 1000)
    } else {
        return None;
    };
    let digits: String = rest[unit..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    digits.parse::<u64>().ok().map(|n| n * scale)
}

#[test]
fn no_test_sleeps_longer_than_200_ms() {
    let mut found = Vec::new();
    for file in rust_files(&root().join("tests")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if let Some(ms) = fixed_sleep_ms(line)
                && ms > 200
            {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "move the sandbox's clock (Sandbox::advance_clock) or wait for an event instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_sleep_rule_reads_the_waits_a_test_can_write() {
    // What the rule must catch, and what it must let through (written in two pieces so that
    // the rule, which reads this file too, does not find them here).
    assert_eq!(
        fixed_sleep_ms(concat!(
            "std::thread::sleep",
            "(Duration::from_millis(1_100));"
        )),
        Some(1100)
    );
    assert_eq!(
        fixed_sleep_ms(concat!(
            "tokio::time::sleep",
            "(Duration::from_secs(2)).await;"
        )),
        Some(2000)
    );
    assert_eq!(
        fixed_sleep_ms("std::thread::sleep(Duration::from_millis(10));"),
        Some(10)
    );
    // A wait computed at run time is not a fixed sleep.
    assert_eq!(
        fixed_sleep_ms("std::thread::sleep(full.mul_f64(0.5));"),
        None
    );
    assert_eq!(fixed_sleep_ms("let t = Duration::from_secs(5);"), None);
    assert!(historical("issue_14_load") && historical("run_defects"));
    assert!(!historical("a_lone_backslash_dot_line_never_ends_a_copy"));
}
