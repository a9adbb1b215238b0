//! Validation: the raw model ([`RawJob`]) becomes the [`Job`] the runner executes, and every
//! problem is reported at once, each with its span.
//!
//! Problems are collected, not returned one by one: a job file with three mistakes gets three
//! diagnostics in one run of `dap-run check`. One file per section of the job file: the
//! `[gateway]`, a step's request, outputs, checks, saves and downloads, persist; and what they
//! share: the names in scope ([`scope`]), compiling templates ([`templates`]) and plain values
//! ([`values`]).

mod checks;
mod gateway;
mod outputs;
mod persist;
mod request;
mod saves;
mod scope;
mod step;
mod templates;
mod values;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde_json::Value as Json;

pub use crate::error::VarError;
pub use gateway::DEFAULT_RATE_LIMITS;
pub(crate) use persist::split_key;
pub use values::{parse_var, toml_to_json};

use super::LoadOptions;
use super::load::Misspelt;
use super::model::*;
use super::raw::*;
use crate::diagnostic::{Diagnostic, Diagnostics, Source};
use crate::error::Error;
use crate::template::{Escape, TemplatesBuilder};
use scope::{Later, Name, Names, Scope};

/// The gateway used when the job file names none.
pub const DEFAULT_GATEWAY: &str = "https://api-gateway.instructure.com";

/// Validates a parsed job; `found` are the problems loading found already (unknown keys,
/// wrong types) and the unknown keys that look like typos of known ones.
pub fn validate(
    path: &Path,
    src: Source,
    project: Option<crate::job::project::Project>,
    raw: RawJob,
    found: (Diagnostics, Vec<Misspelt>),
    opts: &LoadOptions,
) -> Result<Job, Error> {
    let (diags, misspelt) = found;
    let mut v = Validator {
        src,
        project,
        diags,
        misspelt,
        tb: TemplatesBuilder::new(),
        vars: BTreeMap::new(),
    };
    let job = v.job(path, raw, opts);
    match job {
        Some(job) if v.diags.is_empty() => Ok(job),
        _ => Err(Error::Invalid(v.diags)),
    }
}

pub use crate::suggest::suggest;

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Validator {
    src: Source,
    /// The project file whose `[gateway]` the job inherits: spans past the job's text are
    /// in it.
    project: Option<crate::job::project::Project>,
    diags: Diagnostics,
    /// Unknown keys close to known ones: what their absence causes is not reported again.
    misspelt: Vec<Misspelt>,
    tb: TemplatesBuilder,
    /// The job's variables (after `--var`), to know the shape of the lists loops go over.
    vars: BTreeMap<String, Json>,
}

impl Validator {
    /// The names an unknown key close to one of `meant` (in step `step`, or at the top level)
    /// would have defined, if there is such a key.
    fn misspelt(&self, step: Option<usize>, meant: &[&str]) -> Option<Vec<String>> {
        let mut found = None;
        for m in &self.misspelt {
            if m.step == step && meant.contains(&m.meant) {
                found
                    .get_or_insert_with(Vec::new)
                    .extend(m.names.iter().cloned());
            }
        }
        found
    }

    fn error(&mut self, mut d: Diagnostic) {
        if let Some(p) = &self.project
            && let Some(span) = d.span.as_ref().and_then(|s| p.locate(s))
        {
            d.span = Some(span);
            self.diags.push(&p.source, d);
            return;
        }
        self.diags.push(&self.src, d);
    }

    fn text(&self, span: &Range<usize>) -> &str {
        if let Some(p) = &self.project
            && let Some(span) = p.locate(span)
        {
            return p.source.text.get(span).unwrap_or("");
        }
        self.src.text.get(span.clone()).unwrap_or("")
    }

    /// The span of `needle` inside `within`, or `within` itself.
    fn find_in(&self, within: &Range<usize>, needle: &str) -> Range<usize> {
        if needle.is_empty() {
            return within.clone();
        }
        match self.text(within).find(needle) {
            Some(i) => within.start + i..within.start + i + needle.len(),
            None => within.clone(),
        }
    }

    fn job(&mut self, path: &Path, raw: RawJob, opts: &LoadOptions) -> Option<Job> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "job".into());
        let name = raw.name.as_ref().map_or(stem.clone(), |n| n.value.clone());
        if name.trim().is_empty()
            && let Some(n) = &raw.name
        {
            self.error(Diagnostic::at(n.span.clone(), "the job's name is empty"));
        }

        // Variables, with overrides.
        let mut vars = self.named_values(raw.vars.as_ref(), "variable name");
        for (k, text) in &opts.vars {
            if !vars.contains_key(k) {
                let mut d =
                    Diagnostic::nowhere(format!("--var `{k}` is not a variable of this job"));
                d = match suggest(k, vars.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("declare it in the job's [vars] table"),
                };
                self.error(d);
            }
            let declared = raw.vars.as_ref().and_then(|m| m.get(k));
            if let Some(value) = self.var_override(k, text, declared) {
                vars.insert(k.clone(), value);
            }
        }
        self.vars = vars.clone();
        let mut state_defaults = self.named_values(raw.state.as_ref(), "state key");

        // A mistyped `[vars]` or `[state]` table still defines its names: its typo is reported,
        // the templates that use them are not.
        let mut typo_vars = self.misspelt(None, &["vars"]).unwrap_or_default();
        typo_vars.retain(|k| !vars.contains_key(k));
        for k in self.misspelt(None, &["state"]).unwrap_or_default() {
            state_defaults.entry(k).or_insert(Json::Null);
        }
        let mut scope = Scope::default();
        for k in typo_vars {
            scope.names.insert(k, Name::Var);
        }
        for reserved in ["env", "job", "run"] {
            scope.names.insert(reserved.into(), Name::Builtin);
        }
        scope.names.insert(
            "state".into(),
            Name::State {
                keys: state_defaults.keys().cloned().collect(),
            },
        );
        for k in vars.keys() {
            if matches!(
                k.as_str(),
                "env" | "state" | "job" | "run" | "item" | "index" | "part"
            ) {
                let span = raw
                    .vars
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .map(|v| v.span.clone());
                let d =
                    Diagnostic::nowhere(format!("`{k}` is reserved and cannot be a variable name"));
                self.error(Diagnostic { span, ..d });
            }
            scope.names.entry(k.clone()).or_insert(Name::Var);
        }

        let gateway = self.gateway(raw.gateway.unwrap_or_default(), &scope);
        // What the job-level templates (database URL, default headers) may use.
        let env_only = [("env".to_owned(), Name::Builtin)];
        let no_later = Later::new();
        let job_names = Names {
            scope: &scope,
            local: &env_only,
            later: &no_later,
            at: 0,
            step: None,
        };
        let database = raw
            .database
            .as_ref()
            .and_then(|d| d.url.as_ref())
            .and_then(|u| {
                self.checked_template("database.url", &u.value, &u.span, Escape::None, job_names)
            });
        if let (Some(read), Some(u)) = (
            opts.database_url,
            raw.database.as_ref().and_then(|d| d.url.as_ref()),
        ) && !u.value.contains("{{")
            && !u.value.contains("{%")
            && let Err((message, help)) = read(&u.value)
        {
            // The string may hold a password: the caret shows `***`, the message only the
            // part that is wrong.
            self.error(Diagnostic {
                span: Some(u.span.clone()),
                help,
                secret: true,
                ..Diagnostic::nowhere(format!("`[database] url`: {message}"))
            });
        }
        let defaults = raw.defaults;
        let default_concurrency = defaults
            .as_ref()
            .and_then(|d| d.concurrency.as_ref())
            .and_then(|c| self.count(c, "concurrency", crate::job::schema::CONCURRENCY))
            .unwrap_or(4);
        let mut default_headers = Vec::new();
        for (k, v) in defaults
            .as_ref()
            .and_then(|d| d.headers.as_ref())
            .into_iter()
            .flatten()
        {
            if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-instauth") {
                self.error(
                    Diagnostic::at(v.span.clone(), format!("header `{k}` is set by dap-run"))
                        .help("dap-run logs in and attaches the token itself; remove this header"),
                );
                continue;
            }
            self.header_name(k, &v.span);
            if let Some(t) = self.checked_template(
                "defaults.headers",
                &v.value,
                &v.span,
                Escape::None,
                job_names,
            ) {
                default_headers.push((k.clone(), t));
            }
        }

        // Names defined by later steps, for "runs later" messages.
        let raw_steps = raw.step.unwrap_or_default();
        if raw_steps.is_empty() {
            self.error(
                Diagnostic::nowhere("the job has no steps").help("add at least one [[step]] table"),
            );
        }
        let mut later = Later::new();
        for (i, s) in raw_steps.iter().enumerate() {
            let id = &s.id.value;
            if s.for_each.is_some() {
                later.entry(id.clone()).or_insert_with(|| (i, id.clone()));
            } else {
                for k in s
                    .outputs
                    .iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .chain(s.let_.iter().flatten().map(|(k, _)| k))
                {
                    later.entry(k.clone()).or_insert_with(|| (i, id.clone()));
                }
            }
        }

        let mut steps = Vec::new();
        let mut seen_ids: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for (i, rs) in raw_steps.into_iter().enumerate() {
            if let Some(first) = seen_ids.get(&rs.id.value) {
                let (line, _) = crate::diagnostic::line_col(&self.src.text, first.start);
                self.error(
                    Diagnostic::at(
                        rs.id.span.clone(),
                        format!("duplicate step id `{}`", rs.id.value),
                    )
                    .label(format!("first used on line {line}"))
                    .help("give every step a unique id"),
                );
            }
            seen_ids.insert(rs.id.value.clone(), rs.id.span.clone());
            if let Some(step) = self.step(i, rs, &mut scope, &later, default_concurrency) {
                steps.push(step);
            }
        }

        let output_dir = match &opts.output_dir {
            Some(d) => d.clone(),
            None => match &raw.output_dir {
                Some(d) => base.join(&d.value),
                None => base
                    .join("output")
                    .join(crate::template::file_segment(&name)),
            },
        };
        let state_dir = match &opts.state_dir {
            Some(d) => d.clone(),
            None => match &raw.state_dir {
                Some(d) => base.join(&d.value),
                None => base.clone(),
            },
        };
        let gateway = gateway?;
        if !self.diags.is_empty() {
            return None;
        }
        let mut state_levels: BTreeMap<String, usize> = BTreeMap::new();
        for p in steps.iter().flat_map(|s: &Step| s.persist.iter()) {
            let first = split_key(&p.key_source)[0].to_owned();
            let levels = state_levels.entry(first).or_default();
            *levels = (*levels).max(p.key.len() - 1);
        }
        Some(Job {
            name,
            description: raw.description,
            file: path.to_path_buf(),
            output_dir,
            state_file: state_dir.join(format!("{stem}.state.json")),
            lock_file: state_dir.join(format!("{stem}.lock")),
            gateway,
            vars,
            state_defaults,
            state_levels,
            default_headers,
            database,
            steps,
            templates: std::mem::take(&mut self.tb).finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::values::parse_var;
    use super::*;
    use crate::job::{LoadOptions, load_str};

    thread_local! {
        pub(super) static NAMES_COPIED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Names copied while validating a generated job of `n` steps.
    fn names_copied(n: usize, step: impl Fn(usize) -> String) -> usize {
        let mut src = String::from("[vars]\nx = 1\n");
        for i in 0..n {
            src.push_str(&step(i));
        }
        NAMES_COPIED.with(|c| c.set(0));
        let job = load_str(Path::new("job.toml"), &src, &LoadOptions::default());
        if let Err(e) = job {
            let text = e.to_string();
            panic!("{}", &text[..text.len().min(2000)]);
        }
        NAMES_COPIED.with(|c| c.get())
    }

    /// Issue 12, defect 8: `check` took 32 s for 10,000 steps because every step copied the
    /// names of all steps before it. Doubling the steps must at most double the copies, for
    /// independent steps and for steps that each use the one before.
    #[test]
    fn check_is_linear_in_the_number_of_steps() {
        let independent = |i: usize| {
            format!("[[step]]\nid = \"s{i}\"\nget = \"/x\"\noutputs = {{ o{i} = \"$.x\" }}\n")
        };
        let chained = |i: usize| {
            let prev = if i == 0 {
                "x".to_owned()
            } else {
                format!("o{}", i - 1)
            };
            format!(
                "[[step]]\nid = \"s{i}\"\nget = \"/x/{{{{ {prev} }}}}\"\noutputs = {{ o{i} = \"$.x\" }}\ncheck = \"o{i} != {prev}\"\nsave = \"{{{{ {prev} }}}}.json\"\n"
            )
        };
        for (what, small, large) in [
            (
                "independent",
                names_copied(300, independent),
                names_copied(600, independent),
            ),
            (
                "chained",
                names_copied(300, chained),
                names_copied(600, chained),
            ),
        ] {
            assert!(
                large <= 2 * small + 10,
                "{what} steps: {small} names copied for 300 steps, {large} for 600"
            );
        }
    }

    fn check(src: &str) -> Vec<String> {
        match load_str(Path::new("job.toml"), src, &LoadOptions::default()) {
            Ok(_) => vec![],
            Err(Error::Invalid(d)) => d.messages(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn a_valid_job_loads() {
        let src = r#"
[vars]
namespace = "canvas"
[[step]]
id = "tables"
get = "/dap/query/{{ namespace }}/table"
outputs = { tables = "$.tables" }
check = "'accounts' in tables"
"#;
        assert_eq!(check(src), Vec::<String>::new());
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let src = "nme = 1\n[[step]]\nid = \"a\"\nget = \"/x\"\ngett = 2\n";
        assert_eq!(check(src), vec!["unknown key `nme`", "unknown key `gett`"]);
    }

    #[test]
    fn later_outputs_are_named() {
        let src = r#"
[[step]]
id = "a"
get = "/x/{{ tables }}"
[[step]]
id = "b"
get = "/y"
outputs = { tables = "$.tables" }
"#;
        assert_eq!(check(src), vec!["undefined variable `tables` in step `a`"]);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("namespce", ["namespace", "tables"]),
            Some("namespace")
        );
        assert_eq!(suggest("zzz", ["namespace"]), None);
    }

    #[test]
    fn a_var_is_a_name_and_its_text() {
        assert_eq!(
            parse_var("a=[1,2]").unwrap(),
            ("a".to_owned(), "[1,2]".to_owned())
        );
        assert_eq!(parse_var("a=b=c").unwrap().1, "b=c");
        assert!(parse_var("nothing").is_err());
    }

    fn with_var(vars: &str, arg: &str) -> Result<serde_json::Value, Vec<String>> {
        let src = format!("[vars]\n{vars}\n[[step]]\nid = \"a\"\nget = \"/x\"\n");
        let opts = LoadOptions {
            vars: vec![parse_var(arg).unwrap()],
            ..Default::default()
        };
        match load_str(Path::new("job.toml"), &src, &opts) {
            Ok(job) => Ok(job.vars[&parse_var(arg).unwrap().0].clone()),
            Err(Error::Invalid(d)) => Err(d.messages()),
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    #[test]
    fn a_var_takes_the_type_its_declaration_has() {
        use serde_json::json;
        assert_eq!(
            with_var("t = [\"a\"]", "t=[\"b\",\"c\"]"),
            Ok(json!(["b", "c"]))
        );
        assert_eq!(with_var("n = \"canvas\"", "n=123"), Ok(json!("123")));
        assert_eq!(with_var("n = \"canvas\"", "n=\"x\""), Ok(json!("x")));
        assert_eq!(
            with_var("n = \"canvas\"", "n=[users]"),
            Ok(json!("[users]"))
        );
        assert_eq!(with_var("n = 4", "n=8"), Ok(json!(8)));
        assert_eq!(with_var("f = 1.5", "f=2"), Ok(json!(2)));
        assert_eq!(with_var("b = false", "b=true"), Ok(json!(true)));
        assert_eq!(
            with_var("o = { a = 1 }", "o={\"a\": 2}"),
            Ok(json!({"a": 2}))
        );
        for (vars, arg) in [
            ("t = [\"a\"]", "t=users"),
            ("t = [\"a\"]", "t=[users]"),
            ("n = 4", "n=four"),
            ("n = 4", "n=4.5"),
            ("b = false", "b=yes"),
            ("o = { a = 1 }", "o=a"),
        ] {
            assert!(with_var(vars, arg).is_err(), "{vars} {arg}");
        }
    }

    #[test]
    fn the_hint_is_the_json_to_write() {
        use super::values::as_json_hint;
        let list = toml::Value::Array(vec![]);
        assert_eq!(
            as_json_hint("tables", "users", &list),
            "--var 'tables=[\"users\"]'"
        );
        assert_eq!(
            as_json_hint("tables", "[users, courses]", &list),
            "--var 'tables=[\"users\",\"courses\"]'"
        );
        assert_eq!(as_json_hint("ids", "1,2", &list), "--var 'ids=[1,2]'");
        assert_eq!(
            as_json_hint("n", "four", &toml::Value::Integer(4)),
            "--var 'n=4'"
        );
        assert_eq!(
            as_json_hint("who", "it's", &list),
            "--var 'who=[\"it'\\''s\"]'"
        );
    }
}
