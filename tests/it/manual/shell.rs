//! Command lines as a shell splits them, and the check that a `dap-run` command line the
//! manual or an example file shows is one the program takes: its flags parse, its job files
//! are example files, and `dap-run check` accepts them with its `--var`s.

use std::path::PathBuf;

use super::markdown::root;
use crate::common::Workspace;

/// The words of a command line, as a POSIX shell splits them (quotes and backslashes), cut at
/// the first unquoted operator (`|`, `;`, `&`, `>`, `<`) or comment.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            '|' | ';' | '&' | '>' | '<' => {
                // `2>&1`: the `2` is the redirect's, not a word.
                if word == "2" || word == "1" {
                    word.clear();
                    in_word = false;
                }
                break;
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The commands of a line of shell: the line split at `&&`, `||`, `;` and `|`.
pub fn commands(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        let w = words(rest);
        if !w.is_empty() {
            out.push(w);
        }
        // Find the operator that ended these words, outside quotes.
        let mut quote = None;
        let mut cut = None;
        for (i, c) in rest.char_indices() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '#') if i == 0 || rest[..i].ends_with(char::is_whitespace) => break,
                (None, '|' | ';' | '&') => {
                    cut = Some(i);
                    break;
                }
                _ => {}
            }
        }
        match cut {
            Some(i) => rest = rest[i..].trim_start_matches(['|', ';', '&']),
            None => return out,
        }
    }
}

/// The arguments of the `dap-run` invocations of a line (a word that is `dap-run` or ends in
/// `/dap-run`; `cargo run --` counts as `dap-run`).
pub fn invocations(line: &str) -> Vec<Vec<String>> {
    commands(line)
        .into_iter()
        .filter_map(|words| {
            if let Some(i) = words
                .iter()
                .position(|w| w == "dap-run" || w.ends_with("/dap-run"))
            {
                return Some(words[i + 1..].to_vec());
            }
            let i = words.windows(3).position(|w| w == ["cargo", "run", "--"])?;
            Some(words[i + 3..].to_vec())
        })
        .collect()
}

/// A job file a command line names, as a file of the repository: the path itself when it is
/// one (`examples/nightly.toml`), else the example of that file name (`jobs/nightly.toml`,
/// `/etc/dap-run/jobs/replicate.toml` are copies of the examples).
fn example_for(arg: &str) -> Option<PathBuf> {
    let direct = root().join(arg);
    if direct.is_file() {
        return Some(direct);
    }
    let name = std::path::Path::new(arg).file_name()?;
    let example = root().join("examples").join(name);
    example.is_file().then_some(example)
}

/// Checks one `dap-run` command line (its arguments): clap takes it; every `.toml` argument
/// (a glob like `jobs/*.toml` aside) is an example file; and for `run`, `check` and `plan`,
/// `dap-run check` passes on those files with the line's `--var`s. Returns what is wrong.
pub fn check_invocation(args: &[String]) -> Result<(), String> {
    let line = args.join(" ");
    let matches = match dap_run::cli::command()
        .try_get_matches_from(std::iter::once("dap-run".to_owned()).chain(args.iter().cloned()))
    {
        Ok(m) => m,
        // `--help` and `--version` are "errors" to clap that print and exit 0.
        Err(e) if e.exit_code() == 0 => return Ok(()),
        Err(e) => return Err(format!("`dap-run {line}`: {}", e.render())),
    };
    let sub = matches.subcommand_name().unwrap_or("run");
    let mut jobs = Vec::new();
    let mut vars = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--var" {
            vars.extend(it.next().cloned());
        } else if let Some(v) = a.strip_prefix("--var=") {
            vars.push(v.to_owned());
        } else if a.ends_with(".toml") && !a.contains('*') {
            jobs.push(
                example_for(a)
                    .ok_or_else(|| format!("`dap-run {line}`: `{a}` is no file under examples/"))?,
            );
        }
    }
    if !["run", "check", "plan"].contains(&sub) || jobs.is_empty() {
        return Ok(());
    }
    let mut t = Workspace::bare().dap().args(&["check"]);
    for job in &jobs {
        t = t.args(&[job.to_str().unwrap()]);
    }
    for v in &vars {
        t = t.args(&["--var", v]);
    }
    // The line is the input: `check` passes it (0) or refuses it (2), and the caller decides.
    let run = t.status_one_of(&[0, 2]).run();
    if run.code != 0 {
        return Err(format!(
            "`dap-run {line}`: `check` exits {}:\n{}",
            run.code, run.stderr
        ));
    }
    Ok(())
}

#[test]
fn command_lines_split_as_a_shell_splits_them() {
    assert_eq!(
        words(r#"dap-run x.toml --var 'tables=["users"]' >>log 2>&1"#),
        ["dap-run", "x.toml", "--var", r#"tables=["users"]"#]
    );
    assert_eq!(
        invocations("cd /srv && set -a && . ./e && /usr/local/bin/dap-run jobs/a.toml -q >>l 2>&1"),
        [["jobs/a.toml", "-q"]]
    );
    assert_eq!(
        invocations("cargo run -- run --sandbox examples/nightly.toml   # sync"),
        [["run", "--sandbox", "examples/nightly.toml"]]
    );
    assert!(check_invocation(&["check".into(), "examples/nightly.toml".into()]).is_ok());
    assert!(check_invocation(&["chek".into(), "--bogus".into()]).is_err());
    assert!(check_invocation(&["jobs/no-such-example.toml".into()]).is_err());
    assert!(
        check_invocation(&[
            "examples/nightly.toml".into(),
            "--var".into(),
            "tables=users".into()
        ])
        .is_err(),
        "a --var of another type than declared"
    );
}
