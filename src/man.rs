//! Man pages: `dap-run(1)` with the job file, environment and exit status sections, and one
//! page per subcommand (`dap-run-run(1)`, ...), generated from the clap definitions so the
//! options cannot drift from `--help`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::error::ExitCode;

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DAP_CLIENT_ID, DAP_CLIENT_SECRET",
        "the client credentials, as for the official client (the job file's [gateway] templates can read other variables). Never taken from a command-line flag.",
    ),
    (
        "DAP_API_URL",
        "the gateway URL; --gateway-url wins over it, and it wins over the job file.",
    ),
    (
        "CANVAS_API_TOKEN",
        "the Canvas API token for auth = \"inst_access\".",
    ),
    (
        "XDG_CACHE_HOME, HOME",
        "where token_cache = true keeps its file ($XDG_CACHE_HOME/dap-run/, else ~/.cache/dap-run/).",
    ),
    (
        "NO_COLOR",
        "when set (to anything), no colours on a terminal.",
    ),
];

const JOB_FILE: &str = r#"A job is a TOML file: optional name, description, output_dir and state_dir; the tables [gateway] (url, auth, client_id, client_secret, canvas_url, canvas_token, token_cache, timeout, retry, rate_limits), [vars] (variables for every template; --var overrides them), [state] (values carried from one successful run to the next, with their first-run values) and [defaults] (concurrency, headers); and the steps, [[step]], run in order. A project file, dap-run.toml in the job file's folder, holds a [gateway] that every job there inherits; the job's own keys win.

A step has an id and at most one request (get, post, put, patch or delete: a path under the gateway or an absolute URL), with query, headers, json or body. It can loop (for_each, as, concurrency, label: how logs and reports name each item), run only when an expression holds (when), extract outputs with JSONPath (outputs), compute values (let; a step with let and no request sends nothing), repeat until a condition holds (poll), check expressions (check), write files (save, download) and remember values for the next run (persist). A query step can require incremental queries where the job has state (incremental).

Templates and expressions are minijinja (Jinja2) with strict undefined. Every step sees [vars], env.NAME, state.KEY, job.name, run.id, run.started, the outputs of earlier steps and the records of earlier loops.

dap-run check validates a job file without network or credentials and reports every problem with file:line:col. The README describes every key; schemas/job.schema.json is the JSON Schema of the file."#;

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would be a request.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn extra_sections(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, ".SH \"JOB FILE\"")?;
    for para in JOB_FILE.split("\n\n") {
        writeln!(w, ".PP\n{}", roff(&para.replace('\n', " ")))?;
    }
    writeln!(w, ".SH ENVIRONMENT")?;
    for (name, text) in ENVIRONMENT {
        writeln!(w, ".TP\n\\fB{}\\fR\n{}", roff(name), roff(text))?;
    }
    exit_status(w)
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
    Cli::command()
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
    let mut cmd = Cli::command().disable_help_subcommand(true);
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
