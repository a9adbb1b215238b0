//! The manual's code blocks are tested files or parse as the program reads them:
//! - a block whose first line is `# examples/<file>` (or `# bench/...`) quotes that file: its
//!   other lines appear in the file, in order (lines may be left out, none added);
//! - any other `toml` block is valid TOML (a fragment to read, not a job to run);
//! - every `dap-run` command line of a shell block parses, names example job files and passes
//!   `dap-run check` with its `--var`s.

use super::markdown::{code_blocks, pages, read};
use super::shell::{check_invocation, invocations};

/// The file a block quotes, from its first line.
fn quoted_file(block: &str) -> Option<&str> {
    let first = block.lines().next()?.strip_prefix("# ")?.trim();
    (first.starts_with("examples/") || first.starts_with("bench/")).then_some(first)
}

/// Whether `quote`'s lines are lines of `file`, in order.
fn is_excerpt(quote: &str, file: &str) -> Result<(), String> {
    let mut lines = file.lines().map(str::trim_end);
    for want in quote.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if !lines.any(|l| l == want) {
            return Err(format!(
                "the line `{want}` is not there (or not in this order)"
            ));
        }
    }
    Ok(())
}

#[test]
fn every_quoted_block_is_in_the_file_it_names() {
    let mut problems = Vec::new();
    let mut quoted = 0;
    for page in pages() {
        for block in code_blocks(&read(&page)) {
            let Some(file) = quoted_file(&block.text) else {
                continue;
            };
            quoted += 1;
            let body = block.text.split_once('\n').map_or("", |(_, b)| b);
            let Ok(text) = std::fs::read_to_string(super::markdown::root().join(file)) else {
                problems.push(format!("{page}: quotes `{file}`, which does not exist"));
                continue;
            };
            if let Err(e) = is_excerpt(body, &text) {
                problems.push(format!("{page}: the block quoting `{file}`: {e}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(quoted >= 8, "only {quoted} quoted blocks");
}

#[test]
fn an_excerpt_keeps_the_files_order_and_adds_nothing() {
    let file = "a = 1\nb = 2\n\nc = 3\n";
    assert!(is_excerpt("a = 1\nc = 3", file).is_ok());
    assert!(is_excerpt("c = 3\na = 1", file).is_err());
    assert!(is_excerpt("a = 1\nd = 4", file).is_err());
}

#[test]
fn every_other_toml_block_is_valid_toml() {
    let mut problems = Vec::new();
    for page in pages() {
        for block in code_blocks(&read(&page)) {
            if block.lang != "toml" || quoted_file(&block.text).is_some() {
                continue;
            }
            if let Err(e) = block.text.parse::<toml::Table>() {
                problems.push(format!("{page}: {e}\n{}", block.text));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_dap_run_command_line_of_the_manual_is_one_the_program_takes() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        for block in code_blocks(&read(&page)) {
            if !["sh", "bash", "console", "cron"].contains(&block.lang.as_str()) {
                continue;
            }
            // A line ending in `\` goes on on the next.
            let text = block.text.replace("\\\n", " ");
            for line in text.lines() {
                for args in invocations(line.trim_start_matches("$ ")) {
                    checked += 1;
                    if let Err(e) = check_invocation(&args) {
                        problems.push(format!("{page}: {e}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(checked >= 20, "only {checked} command lines found");
}
