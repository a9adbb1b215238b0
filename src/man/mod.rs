//! Man pages: `dap-run(1)` with the job file, environment and exit status sections, and one
//! page per subcommand (`dap-run-run(1)`, ...), generated from the definitions in code so they
//! cannot drift: the options and the variables declared on them from clap, the other
//! variables from [`crate::cli::ENVIRONMENT`], the JOB FILE from the job model
//! ([`job_file`]), the EXIT STATUS from [`ExitCode`].

use std::io::Write;
use std::path::Path;

mod job_file;

pub use job_file::{Table, tables as job_file_tables};

use crate::error::ExitCode;

/// What the JOB FILE section says before the tables: what no single key says.
const JOB_FILE: &str = r#"A job is a TOML file: its top-level keys, the tables below, and the steps, [[step]], run in order. A project file, dap-run.toml in the job file's folder, holds a [gateway] that every job there inherits; the job's own keys win.

Templates and expressions are minijinja (Jinja2) with strict undefined. Every step sees [vars], env.NAME, state.KEY, job.name, run.id, run.started, the outputs of earlier steps and the records of earlier loops. A `load` step loads a DAP table into the replica database ([database], DAP_CONNECTION_STRING or --database; default the SQLite file replica.db under the output folder), one transaction per table.

dap-run check validates a job file without network or credentials and reports every problem with file:line:col. schemas/job.schema.json is the JSON Schema of the file, made from the same model as this section."#;

/// Escapes text for roff (backslashes, `-`, and a leading `.` or `'` that would be a
/// request); `code` in backticks is set in bold.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    let mut out = String::with_capacity(t.len());
    let mut parts = t.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    if rest.len().is_multiple_of(2) {
        for pair in rest.chunks(2) {
            out.push_str("\\fB");
            out.push_str(pair[0]);
            out.push_str("\\fR");
            out.push_str(pair[1]);
        }
    } else {
        // An odd backtick: left as written.
        out = t.clone();
    }
    if out.starts_with('.') || out.starts_with('\'') {
        format!("\\&{out}")
    } else {
        out
    }
}

fn extra_sections(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, ".SH \"JOB FILE\"")?;
    for para in JOB_FILE.split("\n\n") {
        writeln!(w, ".PP\n{}", roff(&para.replace('\n', " ")))?;
    }
    for table in job_file::tables() {
        writeln!(w, ".SS {}", roff(&table.heading))?;
        if !table.description.is_empty() {
            writeln!(w, ".PP\n{}", roff(&table.description))?;
        }
        for (key, text) in &table.keys {
            writeln!(w, ".TP\n\\fB{}\\fR\n{}", roff(key), roff(text))?;
        }
    }
    environment(w)?;
    exit_status(w)
}

/// ENVIRONMENT: the variables declared on flags, then those that are no flag's value.
fn environment(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, ".SH ENVIRONMENT")?;
    for (name, flag, help) in crate::cli::flag_environment() {
        let help = help.trim_end_matches('.');
        writeln!(
            w,
            ".TP\n\\fB{}\\fR\n{}",
            roff(&name),
            roff(&format!(
                "the value of `{flag}` when it is not given: {help}."
            ))
        )?;
    }
    for var in crate::cli::ENVIRONMENT {
        writeln!(
            w,
            ".TP\n\\fB{}\\fR\n{}",
            roff(&var.names.join(", ")),
            roff(var.text)
        )?;
    }
    Ok(())
}

/// EXIT STATUS: every code with its meaning, then the order that decides between several.
fn exit_status(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, ".SH \"EXIT STATUS\"")?;
    for code in ExitCode::ALL {
        writeln!(w, ".TP\n\\fB{}\\fR\n{}", code.code(), roff(code.meaning()))?;
    }
    writeln!(
        w,
        ".PP\n{}",
        roff(&format!(
            "When a run (or a command of several jobs) has several failures, the most serious decides, in the order {}.",
            ExitCode::severity_order()
        ))
    )
}

fn see_also(w: &mut dyn Write, except: &str) -> std::io::Result<()> {
    let pages: Vec<String> = std::iter::once("dap-run".to_owned())
        .chain(subcommands().into_iter().map(|s| format!("dap-run-{s}")))
        .filter(|p| p != except)
        .map(|p| format!("\\fB{}\\fR(1)", roff(&p)))
        .collect();
    writeln!(w, ".SH \"SEE ALSO\"\n{}", pages.join(", "))
}

/// The subcommands that get a page.
pub fn subcommands() -> Vec<String> {
    crate::cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_owned())
        .collect()
}

/// Why a man page cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ManError {
    /// No subcommand of that name.
    #[error("no man page `{name}`; the pages are: {}", pages.join(", "))]
    UnknownPage {
        /// The page asked for.
        name: String,
        /// The pages there are.
        pages: Vec<String>,
    },
    /// The page could not be written.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// Renders `dap-run(1)` (`page = None`) or `dap-run-<page>(1)`.
pub fn render(page: Option<&str>, w: &mut dyn Write) -> Result<(), ManError> {
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let Some(name) = page else {
        let man = clap_mangen::Man::new(cmd);
        man.render_title(w)?;
        man.render_name_section(w)?;
        man.render_synopsis_section(w)?;
        man.render_description_section(w)?;
        man.render_options_section(w)?;
        man.render_subcommands_section(w)?;
        extra_sections(w)?;
        see_also(w, "dap-run")?;
        man.render_version_section(w)?;
        return Ok(());
    };
    let sub = cmd
        .get_subcommands()
        .find(|s| s.get_name() == name)
        .cloned()
        .ok_or_else(|| ManError::UnknownPage {
            name: name.to_owned(),
            pages: subcommands(),
        })?;
    let man = clap_mangen::Man::new(sub);
    man.render(w)?;
    if name == "run" {
        exit_status(w)?;
    }
    see_also(w, &format!("dap-run-{name}"))?;
    Ok(())
}

/// Writes every page into `dir` (`dap-run.1`, `dap-run-run.1`, ...); returns the files.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let pages = std::iter::once(None).chain(subcommands().into_iter().map(Some));
    for page in pages {
        let file = dir.join(match &page {
            None => "dap-run.1".to_owned(),
            Some(p) => format!("dap-run-{p}.1"),
        });
        let mut text = Vec::new();
        render(page.as_deref(), &mut text).map_err(|e| match e {
            ManError::Write(e) => e,
            // Only the pages there are are rendered here.
            unknown @ ManError::UnknownPage { .. } => std::io::Error::other(unknown),
        })?;
        crate::fsio::write_atomic(&file, &text)?;
        written.push(file);
    }
    Ok(written)
}
