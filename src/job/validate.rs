//! Load and validate a job file: TOML → [`RawJob`] → [`Job`], reporting every problem at once.
//!
//! Problems are collected, not returned one by one: a job file with three mistakes gets three
//! diagnostics in one run of `dap-run check`. Serde stops at the first structural error, so
//! unknown keys are found by a loop that blanks the offending line and parses again.
//!
//! Scopes: each step sees `[vars]`, `env`, `state`, the outputs of earlier steps that do not
//! loop, and the ids of earlier looped steps (each a list of its successful items). A looped
//! step also sees its loop variable (default `item`) and `index`. Checks, saves, polling,
//! downloads and `persist` also see the step's own outputs; downloads see `part`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::model::*;
use super::raw::*;
use crate::diagnostic::{Diagnostic, Diagnostics, Source};
use crate::error::Error;
use crate::template::{BUILTIN_NAMES, Escape, Expr, TemplatesBuilder, Tmpl, lone_expression};

/// The gateway used when the job file names none.
pub const DEFAULT_GATEWAY: &str = "https://api-gateway.instructure.com";
/// Largest job file accepted.
const MAX_JOB_BYTES: u64 = 4 * 1024 * 1024;
/// Longest duration accepted anywhere in a job file.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The gateway's published per-endpoint limits (calls per minute), used unless the job says
/// otherwise.
pub const DEFAULT_RATE_LIMITS: &[(&str, &str, u32)] = &[
    ("POST", "/dap/query/*/table/*/data", 5),
    ("GET", "/dap/query/*/table", 5),
    ("GET", "/dap/query/*/table/*/schema", 500),
    ("GET", "/dap/job/*", 500),
    ("POST", "/dap/object/url", 200),
];

/// Options that change how a job is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--var NAME=VALUE` overrides, in order.
    pub vars: Vec<(String, Json)>,
    /// `--output-dir`.
    pub output_dir: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
}

/// Parses a `--var NAME=VALUE` argument: the value is JSON when it parses as JSON, else a string.
pub fn parse_var(arg: &str) -> Result<(String, Json), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not NAME=VALUE"))?;
    if !is_identifier(name) {
        return Err(format!("`{name}` is not a valid variable name"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

/// Reads, parses and validates a job file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Job, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::usage(format!("cannot read job file `{}`: {e}", path.display())))?;
    if meta.len() > MAX_JOB_BYTES {
        return Err(Error::usage(format!(
            "job file `{}` is {} bytes; job files are limited to {} bytes",
            path.display(),
            meta.len(),
            MAX_JOB_BYTES
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Error::usage(format!("cannot read job file `{}`: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::usage(format!(
            "job file `{}` is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    load_str(path, &text, opts)
}

/// Parses and validates job file text; `path` locates the file for relative paths and messages.
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Result<Job, Error> {
    let source = Source {
        name: path.display().to_string(),
        text: Arc::from(text),
    };
    let (raw, diags) = parse_raw(&source);
    let Some(raw) = raw else {
        return Err(Error::Invalid(diags));
    };
    let mut v = Validator {
        src: source,
        diags,
        tb: TemplatesBuilder::new(),
        vars: BTreeMap::new(),
    };
    let job = v.job(path, raw, opts);
    match job {
        Some(job) if v.diags.is_empty() => Ok(job),
        _ => Err(Error::Invalid(v.diags)),
    }
}

/// TOML → RawJob, collecting every unknown key and every value of the wrong type rather than
/// stopping at the first: each is reported, its entry blanked, and parsing goes on. The job
/// that remains after wrong types (`None` if the TOML itself is broken, or a key is unknown) is
/// still validated, so a type error does not hide the file's other problems.
fn parse_raw(source: &Source) -> (Option<RawJob>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut text = source.text.to_string();
    let mut unknown_seen = false;
    for _ in 0..64 {
        match toml::from_str::<RawJob>(&text) {
            // Unknown keys are typos of keys the rest of the job misses (`gett`): validating on
            // would add "has no request" noise, so only wrong types are validated past.
            Ok(_) if unknown_seen => return (None, diags),
            Ok(raw) => return (Some(raw), diags),
            Err(e) => {
                let message = e.message();
                let unknown = message.starts_with("unknown field");
                let wrong_type = ["invalid type", "invalid value", "invalid length"]
                    .iter()
                    .any(|p| message.starts_with(p));
                let recovered = !diags.is_empty();
                if !((unknown || wrong_type) && e.span().is_some()) {
                    // After a blanked entry, a structural error is one the blanking made
                    // (a table left without a required key): the real ones are reported.
                    if !recovered || message.starts_with("missing field") {
                        diags.push(source, toml_diagnostic(&e, &source.text));
                    }
                    return (None, diags);
                }
                diags.push(source, toml_diagnostic(&e, &source.text));
                let Some(span) = e.span() else {
                    return (None, diags);
                };
                if unknown {
                    unknown_seen = true;
                    blank_entry(&mut text, span);
                } else {
                    // The span is the value: blank its whole line, key included.
                    let line_start = text[..span.start.min(text.len())]
                        .rfind('\n')
                        .map_or(0, |i| i + 1);
                    blank_entry(&mut text, line_start..span.end);
                }
            }
        }
    }
    (None, diags)
}

/// Replaces a `key = value` entry on one line with spaces, so parsing can go on past it.
fn blank_entry(text: &mut String, span: Range<usize>) {
    let start = span.start.min(text.len());
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let blank: String = text[start..end]
        .chars()
        .map(|c| if c == '\n' { c } else { ' ' })
        .collect();
    text.replace_range(start..end, &blank);
}

fn toml_diagnostic(e: &toml::de::Error, text: &str) -> Diagnostic {
    let message = e.message().trim();
    let mut d = if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let choices: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let d = Diagnostic::nowhere(format!("unknown key `{name}`"));
        match suggest(name, choices.iter().copied()) {
            Some(s) => d.label(format!("did you mean `{s}`?")),
            None if !choices.is_empty() => d.help(format!(
                "expected one of {}",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => d,
        }
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        Diagnostic::nowhere(format!("missing required key `{name}`"))
    } else {
        let mut lines = message.lines();
        let first = lines.next().unwrap_or("invalid TOML").trim().to_owned();
        let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut d = Diagnostic::nowhere(
            if first.starts_with("invalid") || first.starts_with("unknown") {
                first
            } else {
                format!("invalid job file: {first}")
            },
        );
        if !rest.is_empty() {
            d = d.label(rest.join("; "));
        }
        d
    };
    if let Some(span) = e.span() {
        let span = if span.is_empty() && span.end < text.len() {
            span.start..span.start + 1
        } else {
            span
        };
        d.span = Some(span);
    }
    d
}

/// The closest of `choices` to `name`, if close enough to be a likely typo.
pub fn suggest<'a>(name: &str, choices: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    choices
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(name.len() / 4) && *d < c.len().max(name.len()))
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a name in scope stands for (for messages and field checks).
#[derive(Debug)]
enum Name {
    Builtin,
    Var,
    Output {
        step: String,
    },
    /// A looped step's id: the list of its records, each a table of these fields.
    Step {
        fields: BTreeMap<String, Shape>,
    },
    /// A loop variable (shared: the step's own names copy it a few times).
    Item {
        shape: Rc<Shape>,
    },
    State {
        keys: BTreeSet<String>,
    },
}

/// Written out so the tests can count copies: validation must copy a bounded number of names
/// per step, whatever the number of steps.
impl Clone for Name {
    fn clone(&self) -> Self {
        #[cfg(test)]
        tests::NAMES_COPIED.with(|n| n.set(n.get() + 1));
        match self {
            Name::Builtin => Name::Builtin,
            Name::Var => Name::Var,
            Name::Output { step } => Name::Output { step: step.clone() },
            Name::Step { fields } => Name::Step {
                fields: fields.clone(),
            },
            Name::Item { shape } => Name::Item {
                shape: shape.clone(),
            },
            Name::State { keys } => Name::State { keys: keys.clone() },
        }
    }
}

/// What validation knows of a value's shape, to check the fields a template reads from it.
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    /// Not known before the run (an output, an expression): any field passes.
    Unknown,
    /// A plain value (string, number, boolean): it has no fields.
    Scalar,
    /// A table with these fields.
    Table(BTreeMap<String, Shape>),
}

impl Shape {
    fn of(v: &Json) -> Shape {
        match v {
            Json::Object(m) => {
                Shape::Table(m.iter().map(|(k, v)| (k.clone(), Shape::of(v))).collect())
            }
            Json::Array(_) | Json::Null => Shape::Unknown,
            _ => Shape::Scalar,
        }
    }

    /// What two values surely share: the fields both have.
    fn common(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Table(a), Shape::Table(mut b)) => Shape::Table(
                a.into_iter()
                    .filter_map(|(k, v)| b.remove(&k).map(|w| (k, v.common(w))))
                    .collect(),
            ),
            (Shape::Scalar, Shape::Scalar) => Shape::Scalar,
            _ => Shape::Unknown,
        }
    }
}

/// The names every step sees: builtins, `[vars]`, `state`, and what earlier steps defined.
/// It grows by one step's names at a time and is never copied, so validation stays linear in
/// the number of steps (issue 12, defect 8).
#[derive(Debug, Default)]
struct Scope {
    names: BTreeMap<String, Name>,
}

/// Each name a step defines, with the position of the first step that defines it: at step `i`
/// the names first defined after `i` "run later".
type Later = BTreeMap<String, (usize, String)>;

/// What a template or expression may use, and what its messages name: the shared scope, the
/// few names of the step itself on top of it (loop variable, `index`, own outputs, `part`),
/// the names later steps define ("runs later" hints) and the step it belongs to.
#[derive(Clone, Copy)]
struct Names<'a> {
    scope: &'a Scope,
    local: &'a [(String, Name)],
    later: &'a Later,
    /// The position of the step these names are for.
    at: usize,
    step: Option<&'a str>,
}

impl<'a> Names<'a> {
    /// What `name` stands for here: the step's own names first, then the shared scope.
    fn get(&self, name: &str) -> Option<&'a Name> {
        match self.local.iter().rev().find(|(k, _)| k == name) {
            Some((_, n)) => Some(n),
            None => self.scope.names.get(name),
        }
    }

    /// Every name in scope, for "did you mean" suggestions.
    fn all(&self) -> impl Iterator<Item = &'a str> {
        let local = self.local.iter().map(|(k, _)| k.as_str());
        local.chain(self.scope.names.keys().map(String::as_str))
    }

    /// The step that defines `name`, if it runs after this one.
    fn later(&self, name: &str) -> Option<&'a str> {
        self.later
            .get(name)
            .filter(|(i, _)| *i > self.at)
            .map(|(_, step)| step.as_str())
    }
}

struct Validator {
    src: Source,
    diags: Diagnostics,
    tb: TemplatesBuilder,
    /// The job's variables (after `--var`), to know the shape of the lists loops go over.
    vars: BTreeMap<String, Json>,
}

impl Validator {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(&self.src, d);
    }

    fn text(&self, span: &Range<usize>) -> &str {
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

    fn template(
        &mut self,
        hint: &str,
        source: &str,
        span: &Range<usize>,
        escape: Escape,
    ) -> Option<Tmpl> {
        match self.tb.template(hint, source, escape) {
            Ok(t) => match self.tb.unknown_filter_or_test(source, true) {
                None if self.pad_width(source, true, span) => Some(t),
                None => None,
                Some(name) => {
                    self.unknown_filter(&name, span);
                    None
                }
            },
            Err(e) => {
                self.template_error(&e, source, span);
                None
            }
        }
    }

    /// Whether every literal `pad(N)` is at most [`crate::template::MAX_PAD`] wide; reports the
    /// first that is not.
    fn pad_width(&mut self, source: &str, is_template: bool, span: &Range<usize>) -> bool {
        let Some(call) = crate::template::pad_too_wide(source, is_template) else {
            return true;
        };
        let at = self.find_in(span, &call);
        self.error(
            Diagnostic::at(at, format!("`{call}` is wider than a file name can be")).help(format!(
                "pad to at most {} characters",
                crate::template::MAX_PAD
            )),
        );
        false
    }

    fn unknown_filter(&mut self, name: &str, span: &Range<usize>) {
        let at = self.find_in(span, name);
        self.error(
            Diagnostic::at(at, format!("unknown filter or test `{name}`"))
                .help("see the minijinja documentation for the built-in filters and tests; dap-run adds the filter `pad`"),
        );
    }

    fn template_error(&mut self, e: &minijinja::Error, source: &str, span: &Range<usize>) {
        let detail = e.detail().unwrap_or("syntax error").to_owned();
        // minijinja's range may end inside a multi-byte character: slice with `get`, never `[]`.
        let piece = e
            .range()
            .and_then(|r| source.get(r.start..r.end.min(source.len())));
        let at = match piece {
            Some(piece) if !piece.is_empty() => {
                let found = self.find_in(span, piece);
                if found == *span { span.clone() } else { found }
            }
            _ => span.clone(),
        };
        self.error(Diagnostic::at(
            at,
            format!("template syntax error: {detail}"),
        ));
    }

    fn expr(&mut self, sp: &Sp<String>) -> Option<Expr> {
        match self.tb.expr(&sp.value) {
            Ok(e) => match self.tb.unknown_filter_or_test(&sp.value, false) {
                None if self.pad_width(&sp.value, false, &sp.span) => Some(e),
                None => None,
                Some(name) => {
                    self.unknown_filter(&name, &sp.span);
                    None
                }
            },
            Err(e) => {
                let detail = e.detail().unwrap_or("syntax error").to_owned();
                self.error(Diagnostic::at(
                    sp.span.clone(),
                    format!("expression syntax error: {detail}"),
                ));
                None
            }
        }
    }

    /// A template whose variables must all be in `names.scope`.
    fn checked_template(
        &mut self,
        hint: &str,
        source: &str,
        span: &Range<usize>,
        escape: Escape,
        names: Names<'_>,
    ) -> Option<Tmpl> {
        let t = self.template(hint, source, span, escape)?;
        let used = self.tb.template_variables(&t);
        self.check_names(used, names, span);
        Some(t)
    }

    /// An expression whose variables must all be in `names.scope`.
    fn checked_expr(&mut self, sp: &Sp<String>, names: Names<'_>) -> Option<Expr> {
        let e = self.expr(sp)?;
        let used = self.tb.expr_variables(&e);
        self.check_names(used, names, &sp.span);
        Some(e)
    }

    fn duration(&mut self, sp: &Sp<String>, what: &str) -> Option<Duration> {
        match humantime::parse_duration(sp.value.trim()) {
            Ok(d) if d.is_zero() => {
                self.error(Diagnostic::at(
                    sp.span.clone(),
                    format!("{what} must be longer than zero"),
                ));
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("{what} `{}` is too long", sp.value),
                    )
                    .help("durations are limited to 7 days"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("invalid duration `{}`: {e}", sp.value),
                    )
                    .help("write durations like `500ms`, `30s`, `5m` or `2h`"),
                );
                None
            }
        }
    }

    /// `"500ms..30s"` or a single duration (min = max).
    fn duration_range(&mut self, sp: &Sp<String>, what: &str) -> Option<(Duration, Duration)> {
        match sp.value.split_once("..") {
            Some((a, b)) => {
                let a = self.duration(
                    &Sp {
                        value: a.to_owned(),
                        span: sp.span.clone(),
                    },
                    what,
                )?;
                let b = self.duration(
                    &Sp {
                        value: b.to_owned(),
                        span: sp.span.clone(),
                    },
                    what,
                )?;
                if a > b {
                    self.error(Diagnostic::at(
                        sp.span.clone(),
                        format!("{what} `{}` starts above its upper bound", sp.value),
                    ));
                    return None;
                }
                Some((a, b))
            }
            None => self.duration(sp, what).map(|d| (d, d)),
        }
    }

    fn count(&mut self, sp: &Sp<i64>, what: &str, max: i64) -> Option<usize> {
        if sp.value < 1 || sp.value > max {
            self.error(Diagnostic::at(
                sp.span.clone(),
                format!("{what} must be between 1 and {max}, not {}", sp.value),
            ));
            return None;
        }
        Some(sp.value as usize)
    }

    /// A header name the HTTP layer would refuse (CR, LF, spaces, `:`...) is refused here, so
    /// `check` passes nothing the run then refuses.
    fn header_name(&mut self, name: &str, value_span: &Range<usize>) {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            let shown = name.escape_debug();
            self.error(
                Diagnostic::at(
                    value_span.clone(),
                    format!("`{shown}` is not a valid header name"),
                )
                .help("header names are letters, digits and `-` (no spaces, `:`, CR or LF)"),
            );
        }
    }

    /// A gateway or Canvas URL written in the job file (not a template) gets the run's
    /// transport rule at check time: https, or plain http to a loopback address only.
    fn credentials_url(&mut self, sp: &Sp<String>, what: &str) {
        let text = sp.value.trim();
        if text.contains("{{") || text.contains("{%") {
            return;
        }
        let problem = match reqwest::Url::parse(text) {
            Err(e) => Some((format!("invalid {what} URL `{text}`: {e}"), None)),
            Ok(u) if u.scheme() == "https" => None,
            Ok(u) if u.scheme() == "http" && crate::net::is_loopback(&u) => None,
            Ok(u) if u.scheme() == "http" => Some((
                format!(
                    "refusing to send credentials to the {what} `{}` over plain http",
                    crate::net::display_url(&u)
                ),
                Some(
                    "use https:// (plain http is allowed only for loopback addresses such as 127.0.0.1)",
                ),
            )),
            Ok(u) => Some((
                format!("the {what} URL must be https://, not `{}://`", u.scheme()),
                None,
            )),
        };
        if let Some((message, help)) = problem {
            let mut d = Diagnostic::at(sp.span.clone(), message);
            if let Some(h) = help {
                d = d.help(h);
            }
            self.error(d);
        }
    }

    /// Reports every variable a template or expression uses that its scope does not define.
    fn check_names(&mut self, used: HashSet<String>, names: Names<'_>, span: &Range<usize>) {
        let step = names.step;
        let mut used: Vec<String> = used.into_iter().collect();
        used.sort();
        let mut reported = BTreeSet::new();
        for path in used {
            let mut parts = path.split('.');
            let first = parts.next().unwrap_or_default().to_owned();
            let second = parts.next();
            if BUILTIN_NAMES.contains(&first.as_str()) {
                continue;
            }
            let where_ = step.map(|s| format!(" in step `{s}`")).unwrap_or_default();
            match names.get(&first) {
                None => {
                    if !reported.insert(first.clone()) {
                        continue;
                    }
                    let at = self.find_word(span, &first);
                    let mut d = Diagnostic::at(at, format!("undefined variable `{first}`{where_}"));
                    if let Some(later_step) = names.later(&first) {
                        d = d
                            .label(format!(
                                "`{first}` comes from step `{later_step}`, which runs later"
                            ))
                            .help("a step can only use the outputs of steps before it");
                    } else if let Some(s) = suggest(&first, names.all()) {
                        d = d.label(format!("did you mean `{s}`?"));
                    } else {
                        d = d.help("define it in [vars], or as an output of an earlier step");
                    }
                    self.error(d);
                }
                Some(Name::Item { shape }) if second.is_some() => {
                    // Walk the path through what is known of the item.
                    let mut shape: &Shape = shape;
                    let mut at_path = first.clone();
                    for field in path.split('.').skip(1) {
                        let fields = match shape {
                            Shape::Unknown => break,
                            Shape::Scalar => None,
                            Shape::Table(f) => Some(f),
                        };
                        if let Some(next) = fields.and_then(|f| f.get(field)) {
                            shape = next;
                            at_path = format!("{at_path}.{field}");
                            continue;
                        }
                        if field.parse::<usize>().is_ok()
                            || !reported.insert(format!("{at_path}.{field}"))
                        {
                            break;
                        }
                        let at = self.find_word(span, field);
                        let mut d = Diagnostic::at(
                            at,
                            format!("`{at_path}` has no field `{field}`{where_}"),
                        );
                        d = match fields {
                            None => d.help(format!(
                                "`{at_path}` is a plain value (a string or number), not a table"
                            )),
                            Some(f) => match suggest(field, f.keys().map(String::as_str)) {
                                Some(s) => d.label(format!("did you mean `{s}`?")),
                                None if f.is_empty() => {
                                    d.help(format!("`{at_path}` has no fields"))
                                }
                                None => d.help(format!(
                                    "its fields are {}",
                                    f.keys()
                                        .map(|f| format!("`{f}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            },
                        };
                        self.error(d);
                        break;
                    }
                }
                Some(Name::State { keys }) if second.is_some() => {
                    let key = second.unwrap_or_default();
                    if keys.contains(key) || !reported.insert(path.clone()) {
                        continue;
                    }
                    let at = self.find_word(span, key);
                    let mut d = Diagnostic::at(at, format!("undefined state key `{key}`{where_}"));
                    d = match suggest(key, keys.iter().map(String::as_str)) {
                        Some(s) => d.label(format!("did you mean `{s}`?")),
                        None => d.help(format!("declare it in [state], e.g. `{key} = {{}}`")),
                    };
                    self.error(d);
                }
                Some(_) => {}
            }
        }
    }

    /// The span of `word` as a whole word inside `within`.
    fn find_word(&self, within: &Range<usize>, word: &str) -> Range<usize> {
        let text = self.text(within);
        let bytes = text.as_bytes();
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut from = 0;
        while let Some(i) = text[from..].find(word) {
            let start = from + i;
            let end = start + word.len();
            let before_ok = start == 0 || !is_ident(bytes[start - 1]);
            let after_ok = end >= bytes.len() || !is_ident(bytes[end]);
            if before_ok && after_ok {
                return within.start + start..within.start + end;
            }
            from = start + 1;
        }
        within.clone()
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
        let mut vars = BTreeMap::new();
        for (k, v) in raw.vars.iter().flatten() {
            if !is_identifier(k) {
                self.error(Diagnostic::at(
                    v.span.clone(),
                    format!("`{k}` is not a valid variable name"),
                ));
            }
            vars.insert(k.clone(), toml_to_json(&v.value));
        }
        for (k, v) in &opts.vars {
            if !vars.contains_key(k) {
                let mut d =
                    Diagnostic::nowhere(format!("--var `{k}` is not a variable of this job"));
                d = match suggest(k, vars.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("declare it in the job's [vars] table"),
                };
                self.error(d);
            }
            vars.insert(k.clone(), v.clone());
        }
        self.vars = vars.clone();
        let mut state_defaults = BTreeMap::new();
        for (k, v) in raw.state.iter().flatten() {
            if !is_identifier(k) {
                self.error(Diagnostic::at(
                    v.span.clone(),
                    format!("`{k}` is not a valid state key"),
                ));
            }
            state_defaults.insert(k.clone(), toml_to_json(&v.value));
        }

        let mut scope = Scope::default();
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
        let env_only = [("env".to_owned(), Name::Builtin)];
        let database = raw
            .database
            .as_ref()
            .and_then(|d| d.url.as_ref())
            .and_then(|u| {
                let names = Names {
                    scope: &scope,
                    local: &env_only,
                    later: &Later::new(),
                    at: 0,
                    step: None,
                };
                self.checked_template("database.url", &u.value, &u.span, Escape::None, names)
            });
        let defaults = raw.defaults;
        let default_concurrency = defaults
            .as_ref()
            .and_then(|d| d.concurrency.as_ref())
            .and_then(|c| self.count(c, "concurrency", 256))
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
            let names = Names {
                scope: &scope,
                local: &env_only,
                later: &Later::new(),
                at: 0,
                step: None,
            };
            if let Some(t) =
                self.checked_template("defaults.headers", &v.value, &v.span, Escape::None, names)
            {
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

    fn gateway(&mut self, g: RawGateway, _scope: &Scope) -> Option<Gateway> {
        let env_scope = Scope::default();
        let env_only = [("env".to_owned(), Name::Builtin)];
        let none = Later::new();
        let names = Names {
            scope: &env_scope,
            local: &env_only,
            later: &none,
            at: 0,
            step: None,
        };
        let tmpl =
            |v: &mut Self, key: &str, sp: Option<&Sp<String>>, default: &str| -> Option<Tmpl> {
                let (src, span) = match sp {
                    Some(sp) => (sp.value.clone(), sp.span.clone()),
                    None => (default.to_owned(), 0..0),
                };
                let t = v.template(&format!("gateway.{key}"), &src, &span, Escape::None)?;
                let used = v.tb.template_variables(&t);
                if sp.is_some() {
                    v.check_names(used, names, &span);
                }
                Some(t)
            };
        let url = tmpl(self, "url", g.url.as_ref(), DEFAULT_GATEWAY);
        if let Some(sp) = &g.url {
            self.credentials_url(sp, "gateway");
        }
        if let Some(sp) = &g.canvas_url {
            self.credentials_url(sp, "Canvas");
        }
        let auth_kind = g
            .auth
            .as_ref()
            .map_or("client_credentials", |a| a.value.as_str());
        let auth = match auth_kind {
            "client_credentials" => {
                for (key, sp) in [
                    ("canvas_url", &g.canvas_url),
                    ("canvas_token", &g.canvas_token),
                ] {
                    if let Some(sp) = sp {
                        self.error(Diagnostic::at(
                            sp.span.clone(),
                            format!("`{key}` is only used with `auth = \"inst_access\"`"),
                        ));
                    }
                }
                let client_id = tmpl(
                    self,
                    "client_id",
                    g.client_id.as_ref(),
                    "{{ env.DAP_CLIENT_ID }}",
                );
                let client_secret = tmpl(
                    self,
                    "client_secret",
                    g.client_secret.as_ref(),
                    "{{ env.DAP_CLIENT_SECRET }}",
                );
                if let Some(sp) = &g.client_secret
                    && !sp.value.contains("{{")
                {
                    self.error(
                            Diagnostic::at(sp.span.clone(), "the client secret is written in the job file")
                                .help("read it from the environment: `client_secret = \"{{ env.DAP_CLIENT_SECRET }}\"`"),
                        );
                }
                Some(Auth::ClientCredentials {
                    client_id: client_id?,
                    client_secret: client_secret?,
                })
            }
            "inst_access" => {
                let canvas_url = match &g.canvas_url {
                    Some(_) => tmpl(self, "canvas_url", g.canvas_url.as_ref(), ""),
                    None => {
                        let span = g.auth.as_ref().map(|a| a.span.clone()).unwrap_or(0..0);
                        self.error(
                            Diagnostic::at(span, "`auth = \"inst_access\"` needs `canvas_url`")
                                .help("add `canvas_url = \"https://<your institution>.instructure.com\"` to [gateway]"),
                        );
                        None
                    }
                };
                let canvas_token = tmpl(
                    self,
                    "canvas_token",
                    g.canvas_token.as_ref(),
                    "{{ env.CANVAS_API_TOKEN }}",
                );
                Some(Auth::InstAccess {
                    canvas_url: canvas_url?,
                    canvas_token: canvas_token?,
                })
            }
            other => {
                let span = g.auth.as_ref().map(|a| a.span.clone()).unwrap_or(0..0);
                let mut d = Diagnostic::at(span, format!("unknown auth `{other}`"));
                d = match suggest(other, ["client_credentials", "inst_access"]) {
                    Some(s) => d.label(format!("did you mean `{s}`?")),
                    None => d.help("use `client_credentials` or `inst_access`"),
                };
                self.error(d);
                None
            }
        };
        let token_cache = match g.token_cache.as_ref().map(|t| (&t.value, t.span.clone())) {
            None | Some((toml::Value::Boolean(false), _)) => TokenCache::Off,
            Some((toml::Value::Boolean(true), _)) => TokenCache::Default,
            Some((toml::Value::String(p), _)) => TokenCache::File(PathBuf::from(p)),
            Some((_, span)) => {
                self.error(Diagnostic::at(
                    span,
                    "`token_cache` must be `true`, `false` or a file path",
                ));
                TokenCache::Off
            }
        };
        let timeout = match &g.timeout {
            Some(t) => self.duration(t, "timeout"),
            None => Some(Duration::from_secs(60)),
        };
        let attempts = match g.retry.as_ref().and_then(|r| r.attempts.as_ref()) {
            Some(a) => self.count(a, "retry attempts", 100).map(|n| n as u32),
            None => Some(5),
        };
        let backoff = match g.retry.as_ref().and_then(|r| r.backoff.as_ref()) {
            Some(b) => self.duration_range(b, "retry backoff"),
            None => Some((Duration::from_millis(500), Duration::from_secs(30))),
        };
        let mut rate_limits: Vec<RateLimit> = DEFAULT_RATE_LIMITS
            .iter()
            .map(|(m, p, n)| RateLimit {
                method: (*m).into(),
                pattern: (*p).into(),
                limit: Some(*n),
                per: Duration::from_secs(60),
            })
            .collect();
        for (route, sp) in g.rate_limits.iter().flatten() {
            let Some((method, pattern)) = route.split_once(' ') else {
                self.error(
                    Diagnostic::at(sp.span.clone(), format!("rate limit route `{route}` is not `METHOD /path`"))
                        .help("write routes like `\"POST /dap/object/url\" = \"200/min\"`, `*` for one segment"),
                );
                continue;
            };
            let method = method.to_ascii_uppercase();
            let parsed = if sp.value.trim() == "unlimited" {
                Some((None, Duration::from_secs(60)))
            } else {
                sp.value.split_once('/').and_then(|(n, per)| {
                    let n: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
                    let per = match per.trim() {
                        "s" | "sec" | "second" => Duration::from_secs(1),
                        "min" | "minute" | "m" => Duration::from_secs(60),
                        "h" | "hour" => Duration::from_secs(3600),
                        _ => return None,
                    };
                    Some((Some(n), per))
                })
            };
            match parsed {
                Some((limit, per)) => {
                    rate_limits.retain(|r| !(r.method == method && r.pattern == pattern));
                    rate_limits.push(RateLimit {
                        method,
                        pattern: pattern.to_owned(),
                        limit,
                        per,
                    });
                }
                None => self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("invalid rate limit `{}`", sp.value),
                    )
                    .help("write `N/s`, `N/min`, `N/h` with N > 0, or `unlimited`"),
                ),
            }
        }
        Some(Gateway {
            url: url?,
            auth: auth?,
            token_cache,
            timeout: timeout?,
            attempts: attempts?,
            backoff: backoff?,
            rate_limits,
        })
    }

    /// The record of a loop's items, and what is known of the loop variable.
    fn loop_record(&self, scope: &Scope, over: &str) -> (LoopRecord, Shape) {
        match scope.names.get(over) {
            Some(Name::Step { fields }) => (LoopRecord::Fields, Shape::Table(fields.clone())),
            Some(Name::Var) => match self.vars.get(over) {
                Some(Json::Array(items)) if !items.is_empty() => {
                    // What every item has: a check-passing template never meets a missing field.
                    let shape = items
                        .iter()
                        .map(Shape::of)
                        .reduce(Shape::common)
                        .unwrap_or(Shape::Unknown);
                    match shape {
                        Shape::Table(_) if items.iter().all(Json::is_object) => {
                            (LoopRecord::Fields, shape)
                        }
                        shape => (LoopRecord::Nested, shape),
                    }
                }
                _ => (LoopRecord::Nested, Shape::Unknown),
            },
            _ => (LoopRecord::Nested, Shape::Unknown),
        }
    }

    /// Validates one step and adds what it defines to `scope`.
    fn step(
        &mut self,
        index: usize,
        rs: RawStep,
        scope: &mut Scope,
        later: &Later,
        default_concurrency: usize,
    ) -> Option<Step> {
        let id = rs.id.value.clone();
        let mut ok = true;
        if !is_identifier(&id) {
            self.error(
                Diagnostic::at(
                    rs.id.span.clone(),
                    format!("step id `{id}` is not a valid identifier"),
                )
                .help("use letters, digits and `_`, starting with a letter"),
            );
            ok = false;
        }
        let hint = |what: &str| format!("step.{id}.{what}");

        // Loop.
        let mut item_shape = Shape::Unknown;
        let mut loop_ = None;
        // The step's own names, on top of the shared scope: loop variable and `index`, then its
        // outputs.
        let mut local: Vec<(String, Name)> = Vec::new();
        if let Some(fe) = &rs.for_each {
            let var = rs
                .as_
                .as_ref()
                .map_or("item".to_owned(), |a| a.value.clone());
            if let Some(a) = &rs.as_
                && (!is_identifier(&a.value) || scope.names.contains_key(&a.value))
            {
                self.error(
                    Diagnostic::at(
                        a.span.clone(),
                        format!("`{}` cannot be used as the loop variable", a.value),
                    )
                    .help("choose a name that is not a variable, an output or a step id"),
                );
            }
            let names = Names {
                scope,
                local: &[],
                later,
                at: index,
                step: Some(&id),
            };
            if let Some(e) = self.checked_expr(fe, names) {
                let (record, shape) = self.loop_record(scope, fe.value.trim());
                item_shape = shape;
                let concurrency = match &rs.concurrency {
                    Some(c) => self.count(c, "concurrency", 256),
                    None => Some(default_concurrency),
                };
                loop_ = Some(Loop {
                    over: e,
                    var: var.clone(),
                    concurrency: concurrency.unwrap_or(1),
                    record,
                });
            } else {
                ok = false;
            }
            local.push((
                var.clone(),
                Name::Item {
                    shape: Rc::new(item_shape.clone()),
                },
            ));
            local.push(("index".into(), Name::Builtin));
        } else if let Some(a) = &rs.as_ {
            self.error(Diagnostic::at(
                a.span.clone(),
                "`as` names the loop variable, but the step has no `for_each`",
            ));
        } else if let Some(c) = &rs.concurrency {
            self.error(Diagnostic::at(
                c.span.clone(),
                "`concurrency` applies to loops, but the step has no `for_each`",
            ));
        }

        // The request sees the scope with the loop variable; what runs after the response
        // (checks, saves, polling, downloads, persist) also sees the step's own outputs.
        let request_names = Names {
            scope,
            local: &local,
            later,
            at: index,
            step: Some(&id),
        };

        // Method and target.
        let methods = [
            (Method::Get, &rs.get),
            (Method::Post, &rs.post),
            (Method::Put, &rs.put),
            (Method::Patch, &rs.patch),
            (Method::Delete, &rs.delete),
        ];
        let given: Vec<(Method, &Sp<String>)> = methods
            .iter()
            .filter_map(|(m, s)| s.as_ref().map(|s| (*m, s)))
            .collect();
        let mut target = None;
        let mut method = Method::Get;
        match given.as_slice() {
            [] if rs.load.is_some() => {}
            [] if rs.let_.is_some() => {
                // A step that only computes values: nothing of a request may be there.
                let request_keys = [
                    (
                        "query",
                        rs.query
                            .as_ref()
                            .map(|q| q.values().next().map(|v| v.span.clone())),
                    ),
                    (
                        "headers",
                        rs.headers
                            .as_ref()
                            .map(|q| q.values().next().map(|v| v.span.clone())),
                    ),
                    ("json", rs.json.as_ref().map(|j| Some(j.span.clone()))),
                    ("body", rs.body.as_ref().map(|b| Some(b.span.clone()))),
                    (
                        "outputs",
                        rs.outputs
                            .as_ref()
                            .map(|o| o.values().next().map(|v| v.span.clone())),
                    ),
                    ("poll", rs.poll.as_ref().map(|p| Some(p.until.span.clone()))),
                    (
                        "download",
                        rs.download.as_ref().map(|d| Some(d.urls.span.clone())),
                    ),
                ];
                for (key, span) in request_keys {
                    if let Some(span) = span {
                        self.error(
                            Diagnostic::at(
                                span.unwrap_or(rs.id.span.clone()),
                                format!("step `{id}` sends no request, so it cannot have `{key}`"),
                            )
                            .help("add `get = \"/path\"` (or `post`, ...), or compute the value in `let`"),
                        );
                    }
                }
            }
            [] => {
                self.error(
                    Diagnostic::at(rs.id.span.clone(), format!("step `{id}` has no request"))
                        .help("add `get = \"/path\"` (or `post`, `put`, `patch`, `delete`), or `let = { name = \"{{ expression }}\" }` for a step that only computes values"),
                );
                ok = false;
            }
            [(m, sp)] => {
                method = *m;
                let absolute = sp.value.starts_with("http://")
                    || sp.value.starts_with("https://")
                    || sp.value.trim_start().starts_with("{{");
                if !absolute && !sp.value.starts_with('/') {
                    self.error(
                        Diagnostic::at(
                            sp.span.clone(),
                            format!("`{}` is neither a path nor an absolute URL", sp.value),
                        )
                        .help("paths start with `/` and are joined to the gateway URL"),
                    );
                }
                target = self.checked_template(
                    &hint("target"),
                    &sp.value,
                    &sp.span,
                    Escape::UrlPath,
                    request_names,
                );
            }
            [_, (_, second), ..] => {
                self.error(
                    Diagnostic::at(second.span.clone(), format!("step `{id}` has more than one request method"))
                        .help("a step makes one request: keep one of `get`, `post`, `put`, `patch`, `delete`"),
                );
                ok = false;
            }
        }

        let load = match &rs.load {
            Some(l) => {
                let load = self.load_step(&rs, l, &id, request_names);
                ok &= load.is_some();
                load
            }
            None => None,
        };

        let pairs = |v: &mut Self,
                     what: &str,
                     map: &Option<BTreeMap<String, Sp<String>>>|
         -> Vec<(String, Tmpl)> {
            let mut out = Vec::new();
            for (k, sp) in map.iter().flatten() {
                if let Some(t) = v.checked_template(
                    &hint(what),
                    &sp.value,
                    &sp.span,
                    Escape::None,
                    request_names,
                ) {
                    out.push((k.clone(), t));
                }
            }
            out
        };
        let query = pairs(self, "query", &rs.query);
        let headers = pairs(self, "headers", &rs.headers);
        for (k, sp) in rs.headers.iter().flatten() {
            self.header_name(k, &sp.span);
        }
        for (k, _) in &headers {
            if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-instauth") {
                let span = rs
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(k))
                    .map(|s| s.span.clone())
                    .unwrap_or(0..0);
                self.error(
                    Diagnostic::at(span, format!("header `{k}` is set by dap-run"))
                        .help("dap-run logs in and attaches the token itself; remove this header"),
                );
            }
        }

        let body = match (&rs.json, &rs.body) {
            (Some(_j), Some(b)) => {
                self.error(Diagnostic::at(
                    b.span.clone(),
                    "a step has either `json` or `body`, not both",
                ));
                Body::None
            }
            (Some(j), None) => {
                match self.json_template(&hint("json"), &j.value, &j.span, request_names) {
                    Some(t) => Body::Json(t),
                    None => Body::None,
                }
            }
            (None, Some(b)) => {
                match self.checked_template(
                    &hint("body"),
                    &b.value,
                    &b.span,
                    Escape::None,
                    request_names,
                ) {
                    Some(t) => Body::Raw(t),
                    None => Body::None,
                }
            }
            (None, None) => Body::None,
        };

        let incremental = rs
            .incremental
            .as_ref()
            .and_then(|e| self.checked_expr(e, request_names));
        let when = rs
            .when
            .as_ref()
            .and_then(|e| self.checked_expr(e, request_names));

        // Outputs.
        let mut outputs = Vec::new();
        let mut own: Vec<(String, Name)> = Vec::new();
        for (name, sp) in rs.outputs.iter().flatten() {
            if !is_identifier(name) {
                self.error(Diagnostic::at(
                    sp.span.clone(),
                    format!("output name `{name}` is not a valid identifier"),
                ));
                continue;
            }
            if request_names.get(name).is_some()
                && !matches!(request_names.get(name), Some(Name::Item { .. }))
            {
                let what = match request_names.get(name) {
                    Some(Name::Var) => "a variable".to_owned(),
                    Some(Name::Output { step }) => format!("an output of step `{step}`"),
                    Some(Name::Step { .. }) => "a step id".to_owned(),
                    _ => "a reserved name".to_owned(),
                };
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("output `{name}` of step `{id}` has the name of {what}"),
                    )
                    .help("give the output another name"),
                );
                continue;
            }
            let (path, optional, path_span) = match &sp.value {
                toml::Value::String(p) => (p.clone(), false, sp.span.clone()),
                toml::Value::Table(t) => {
                    let mut bad = t
                        .keys()
                        .filter(|k| *k != "path" && *k != "optional")
                        .peekable();
                    if let Some(k) = bad.peek() {
                        self.error(
                            Diagnostic::at(
                                sp.span.clone(),
                                format!("unknown key `{k}` in output `{name}`"),
                            )
                            .help("an output has `path` and `optional`"),
                        );
                    }
                    let optional = match t.get("optional") {
                        None => false,
                        Some(toml::Value::Boolean(b)) => *b,
                        Some(_) => {
                            self.error(Diagnostic::at(
                                sp.span.clone(),
                                format!("`optional` of output `{name}` must be true or false"),
                            ));
                            false
                        }
                    };
                    match t.get("path") {
                        Some(toml::Value::String(p)) => {
                            (p.clone(), optional, self.find_in(&sp.span, p))
                        }
                        _ => {
                            self.error(Diagnostic::at(
                                sp.span.clone(),
                                format!("output `{name}` needs a `path` string"),
                            ));
                            continue;
                        }
                    }
                }
                _ => {
                    self.error(Diagnostic::at(
                        sp.span.clone(),
                        format!("output `{name}` must be a JSONPath string or a table with `path`"),
                    ));
                    continue;
                }
            };
            match crate::extract::compile(&path) {
                Ok(query) => {
                    let many = crate::extract::selects_many(&query);
                    own.push((name.clone(), Name::Output { step: id.clone() }));
                    outputs.push(Output {
                        name: name.clone(),
                        path,
                        query,
                        many,
                        optional,
                    });
                }
                Err(e) => self.error(
                    Diagnostic::at(
                        path_point(&path_span, &e),
                        format!("invalid JSONPath `{path}` for output `{name}`"),
                    )
                    .label(e.message)
                    .help("JSONPaths start with `$`, e.g. `$.tables` or `$.urls.*.url`"),
                ),
            }
        }
        // `let`: computed from what the request saw plus the step's outputs.
        let mut lets = Vec::new();
        {
            let with_outputs: Vec<(String, Name)> =
                local.iter().cloned().chain(own.clone()).collect();
            let let_names = Names {
                local: &with_outputs,
                ..request_names
            };
            let mut let_own = Vec::new();
            for (name, sp) in rs.let_.iter().flatten() {
                if !is_identifier(name) || let_names.get(name).is_some() {
                    self.error(
                        Diagnostic::at(
                            sp.span.clone(),
                            format!("`let` name `{name}` of step `{id}` is not a free identifier"),
                        )
                        .help("use letters, digits and `_`, and a name that is not a variable, an output or a step id"),
                    );
                    continue;
                }
                if let Some(t) = self.json_template(&hint("let"), &sp.value, &sp.span, let_names) {
                    lets.push((name.clone(), t));
                    let_own.push((name.clone(), Name::Output { step: id.clone() }));
                }
            }
            own.extend(let_own);
        }
        if load.is_some() {
            own.extend(
                crate::job::model::LOAD_OUTPUTS
                    .iter()
                    .map(|n| (n.to_string(), Name::Output { step: id.clone() })),
            );
        }
        let after: Vec<(String, Name)> = local.iter().cloned().chain(own.clone()).collect();
        let after_names = Names {
            local: &after,
            ..request_names
        };

        let poll = rs.poll.as_ref().and_then(|p| {
            let until = self.checked_expr(&p.until, after_names)?;
            let (min, max) = match &p.every {
                Some(e) => self.duration_range(e, "poll interval")?,
                None => (Duration::from_millis(500), Duration::from_secs(30)),
            };
            let timeout = match &p.timeout {
                Some(t) => self.duration(t, "poll timeout")?,
                None => Duration::from_secs(3600),
            };
            Some(Poll {
                until,
                min,
                max,
                timeout,
            })
        });

        let checks = match &rs.check {
            Some(c) => self.checks(c, after_names),
            None => Vec::new(),
        };

        let saves = match &rs.save {
            Some(s) => self.saves(s, after_names, &outputs, &lets),
            None => Vec::new(),
        };
        if given.is_empty()
            && let Some(sp) = &rs.save
            && saves.iter().any(|s| matches!(s.what, SaveWhat::Body))
        {
            self.error(
                Diagnostic::at(
                    sp.span.clone(),
                    format!("step `{id}` sends no request, so it has no response body to save"),
                )
                .help("save a value: `save = { to = \"path\", output = \"name\" }`"),
            );
        }

        let download = rs.download.as_ref().and_then(|d| {
            let query = match crate::extract::compile(&d.urls.value) {
                Ok(q) => q,
                Err(e) => {
                    self.error(
                        Diagnostic::at(
                            path_point(&d.urls.span, &e),
                            format!("invalid JSONPath `{}` for download urls", d.urls.value),
                        )
                        .label(e.message),
                    );
                    return None;
                }
            };
            self.check_save_path(&d.to);
            let with_part: Vec<(String, Name)> = after
                .iter()
                .cloned()
                .chain([("part".to_owned(), Name::Builtin)])
                .collect();
            let names = Names {
                local: &with_part,
                ..after_names
            };
            let to = self.checked_template(
                &hint("download"),
                &d.to.value,
                &d.to.span,
                Escape::FilePath,
                names,
            )?;
            let concurrency = match &d.concurrency {
                Some(c) => self.count(c, "download concurrency", 64)?,
                None => 4,
            };
            let max_ratio = match &d.max_ratio {
                Some(r) => self.count(r, "download max_ratio", 1_000_000)? as u32,
                None => crate::net::DEFAULT_MAX_RATIO,
            };
            Some(Download {
                urls: d.urls.value.clone(),
                query,
                to,
                decompress: d.decompress.unwrap_or(false),
                max_ratio,
                concurrency,
            })
        });

        let mut persist = Vec::new();
        for (key, sp) in rs.persist.iter().flatten() {
            let key_span = self.find_in(&sp.span, key);
            let segments = split_key(key);
            let first = segments[0];
            let no_keys = BTreeSet::new();
            let state_keys = match scope.names.get("state") {
                Some(Name::State { keys }) => keys,
                _ => &no_keys,
            };
            if !state_keys.contains(first) {
                let mut d = Diagnostic::at(
                    sp.span.clone(),
                    format!("`persist` key `{key}` is not declared in [state]"),
                );
                d = match suggest(first, state_keys.iter().map(String::as_str)) {
                    Some(s) => d.label(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "declare it with its first-run value, e.g. `[state]` `{first} = {{}}`"
                    )),
                };
                self.error(d);
                continue;
            }
            let mut key_tmpls = Vec::new();
            for seg in &segments {
                if let Some(t) = self.checked_template(
                    &hint("persist"),
                    seg,
                    &key_span,
                    Escape::None,
                    after_names,
                ) {
                    key_tmpls.push(t);
                }
            }
            let value = self.json_template(
                &hint("persist"),
                &toml::Value::String(sp.value.clone()),
                &sp.span,
                after_names,
            );
            if let (Some(value), true) = (value, key_tmpls.len() == segments.len()) {
                persist.push(Persist {
                    key: key_tmpls,
                    key_source: key.clone(),
                    value,
                });
            }
        }

        // What later steps see.
        if let Some(l) = &loop_ {
            // The same record the run builds (runner::run_item): the item's fields or the item
            // under its name, `index` unless the item has one, then the outputs.
            let mut fields: BTreeMap<String, Shape> = match (l.record, &item_shape) {
                (LoopRecord::Fields, Shape::Table(f)) => f.clone(),
                _ => [(l.var.clone(), item_shape.clone())].into_iter().collect(),
            };
            fields.entry("index".into()).or_insert(Shape::Scalar);
            fields.extend(outputs.iter().map(|o| (o.name.clone(), Shape::Unknown)));
            fields.extend(lets.iter().map(|(n, _)| (n.clone(), Shape::Unknown)));
            if load.is_some() {
                fields.extend(
                    crate::job::model::LOAD_OUTPUTS
                        .iter()
                        .map(|n| (n.to_string(), Shape::Unknown)),
                );
            }
            if scope.names.contains_key(&id) {
                self.error(Diagnostic::at(
                    rs.id.span.clone(),
                    format!("step id `{id}` is already the name of a variable or output"),
                ));
            }
            scope.names.insert(id.clone(), Name::Step { fields });
        } else {
            scope.names.extend(own);
        }

        if !ok {
            return None;
        }
        let request = match (given.is_empty(), target) {
            (true, _) => None,
            (false, Some(t)) => Some((method, t)),
            (false, None) => return None,
        };
        Some(Step {
            id,
            description: rs.description,
            request,
            when,
            lets,
            query,
            headers,
            body,
            incremental,
            for_each: loop_,
            outputs,
            poll,
            checks,
            saves,
            download,
            persist,
            load,
        })
    }

    /// A `load` step: its table templates. It sends no request of its own (`request` is
    /// `None`): the loader makes its requests.
    fn load_step(
        &mut self,
        rs: &RawStep,
        l: &crate::job::raw::RawLoad,
        id: &str,
        names: Names<'_>,
    ) -> Option<crate::job::model::Load> {
        let own_requests = [
            ("get", rs.get.as_ref().map(|s| s.span.clone())),
            ("post", rs.post.as_ref().map(|s| s.span.clone())),
            ("put", rs.put.as_ref().map(|s| s.span.clone())),
            ("patch", rs.patch.as_ref().map(|s| s.span.clone())),
            ("delete", rs.delete.as_ref().map(|s| s.span.clone())),
            ("json", rs.json.as_ref().map(|s| s.span.clone())),
            ("body", rs.body.as_ref().map(|s| s.span.clone())),
            ("poll", rs.poll.as_ref().map(|p| p.until.span.clone())),
            (
                "download",
                rs.download.as_ref().map(|d| d.urls.span.clone()),
            ),
            (
                "outputs",
                rs.outputs
                    .as_ref()
                    .and_then(|o| o.values().next().map(|v| v.span.clone())),
            ),
            (
                "query",
                rs.query
                    .as_ref()
                    .and_then(|o| o.values().next().map(|v| v.span.clone())),
            ),
        ];
        for (key, span) in own_requests {
            if let Some(span) = span {
                self.error(
                    Diagnostic::at(span, format!("step `{id}` has both `load` and `{key}`"))
                        .help("a `load` step makes its own requests (schema, query job, objects); move the request to a step of its own"),
                );
            }
        }
        let hint = |what: &str| format!("step.{id}.{what}");
        let ns = self.checked_template(
            &hint("load.namespace"),
            &l.namespace.value,
            &l.namespace.span,
            Escape::UrlPath,
            names,
        );
        let table = self.checked_template(
            &hint("load.table"),
            &l.table.value,
            &l.table.span,
            Escape::UrlPath,
            names,
        );
        match (ns, table) {
            (Some(namespace), Some(table)) => Some(crate::job::model::Load { namespace, table }),
            _ => None,
        }
    }

    fn json_template(
        &mut self,
        hint: &str,
        value: &toml::Value,
        span: &Range<usize>,
        names: Names<'_>,
    ) -> Option<JsonTemplate> {
        Some(match value {
            toml::Value::String(s) => {
                let at = self.find_in(span, s);
                if let Some(expr) = lone_expression(s) {
                    let e = self.checked_expr(
                        &Sp {
                            value: expr.to_owned(),
                            span: at,
                        },
                        names,
                    )?;
                    JsonTemplate::Expr(e)
                } else if s.contains("{{") || s.contains("{%") {
                    JsonTemplate::Text(self.checked_template(hint, s, &at, Escape::None, names)?)
                } else {
                    JsonTemplate::Literal(Json::String(s.clone()))
                }
            }
            toml::Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.json_template(hint, item, span, names)?);
                }
                JsonTemplate::Array(out)
            }
            toml::Value::Table(t) => {
                let mut out = Vec::new();
                for (k, v) in t {
                    out.push((k.clone(), self.json_template(hint, v, span, names)?));
                }
                JsonTemplate::Object(out)
            }
            other => JsonTemplate::Literal(toml_to_json(other)),
        })
    }

    fn checks(&mut self, c: &Sp<toml::Value>, names: Names<'_>) -> Vec<Check> {
        let step = names.step.unwrap_or_default();
        let items: Vec<&toml::Value> = match &c.value {
            toml::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            let (that, message) = match item {
                toml::Value::String(s) => (s.clone(), None),
                toml::Value::Table(t) => {
                    if let Some(k) = t.keys().find(|k| *k != "that" && *k != "message") {
                        self.error(
                            Diagnostic::at(c.span.clone(), format!("unknown key `{k}` in check"))
                                .help("a check has `that` and `message`"),
                        );
                    }
                    let Some(toml::Value::String(that)) = t.get("that") else {
                        self.error(Diagnostic::at(
                            c.span.clone(),
                            "a check table needs a `that` expression",
                        ));
                        continue;
                    };
                    let message = match t.get("message") {
                        Some(toml::Value::String(m)) => Some(m.clone()),
                        None => None,
                        Some(_) => {
                            self.error(Diagnostic::at(
                                c.span.clone(),
                                "a check's `message` must be a string",
                            ));
                            None
                        }
                    };
                    (that.clone(), message)
                }
                _ => {
                    self.error(Diagnostic::at(
                        c.span.clone(),
                        "a check is an expression string or a table with `that`",
                    ));
                    continue;
                }
            };
            let at = self.find_in(&c.span, &that);
            let that = Sp {
                value: that,
                span: at,
            };
            let Some(e) = self.checked_expr(&that, names) else {
                continue;
            };
            let message = message.and_then(|m| {
                let at = self.find_in(&c.span, &m);
                let hint = format!("step.{step}.check");
                self.checked_template(&hint, &m, &at, Escape::None, names)
            });
            out.push(Check { that: e, message });
        }
        out
    }

    fn saves(
        &mut self,
        s: &Sp<toml::Value>,
        names: Names<'_>,
        outputs: &[Output],
        lets: &[(String, JsonTemplate)],
    ) -> Vec<Save> {
        let step = names.step.unwrap_or_default();
        let items: Vec<&toml::Value> = match &s.value {
            toml::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            let (to, what) = match item {
                toml::Value::String(p) => (p.clone(), SaveWhat::Body),
                toml::Value::Table(t) => {
                    if let Some(k) = t.keys().find(|k| *k != "to" && *k != "output") {
                        self.error(
                            Diagnostic::at(s.span.clone(), format!("unknown key `{k}` in save"))
                                .help("a save has `to` and `output`"),
                        );
                    }
                    let Some(toml::Value::String(to)) = t.get("to") else {
                        self.error(Diagnostic::at(
                            s.span.clone(),
                            "a save table needs a `to` path",
                        ));
                        continue;
                    };
                    let what = match t.get("output") {
                        None => SaveWhat::Body,
                        Some(toml::Value::String(o)) => {
                            if !outputs.iter().any(|x| &x.name == o)
                                && !lets.iter().any(|(n, _)| n == o)
                            {
                                let at = self.find_in(&s.span, o);
                                let mut d = Diagnostic::at(
                                    at,
                                    format!("step `{step}` has no output `{o}` to save"),
                                );
                                if let Some(sug) =
                                    suggest(o, outputs.iter().map(|x| x.name.as_str()))
                                {
                                    d = d.label(format!("did you mean `{sug}`?"));
                                }
                                self.error(d);
                            }
                            SaveWhat::Output(o.clone())
                        }
                        Some(_) => {
                            self.error(Diagnostic::at(
                                s.span.clone(),
                                "a save's `output` must be an output name",
                            ));
                            continue;
                        }
                    };
                    (to.clone(), what)
                }
                _ => {
                    self.error(Diagnostic::at(
                        s.span.clone(),
                        "`save` is a path, a table with `to`, or a list of them",
                    ));
                    continue;
                }
            };
            let at = self.find_in(&s.span, &to);
            self.check_save_path(&Sp {
                value: to.clone(),
                span: at.clone(),
            });
            let hint = format!("step.{step}.save");
            if let Some(t) = self.checked_template(&hint, &to, &at, Escape::FilePath, names) {
                out.push(Save { to: t, what });
            }
        }
        out
    }

    /// Save paths stay under the output folder: no absolute paths, no `..`.
    fn check_save_path(&mut self, sp: &Sp<String>) {
        let p = sp.value.trim();
        if p.is_empty() {
            self.error(Diagnostic::at(sp.span.clone(), "the file path is empty"));
        } else if p.starts_with('/')
            || p.starts_with('\\')
            || p.starts_with('~')
            || (p.len() > 1 && p.as_bytes()[1] == b':')
        {
            self.error(
                Diagnostic::at(sp.span.clone(), format!("file path `{p}` is absolute"))
                    .help("file paths are relative to the output folder (`--output-dir`)"),
            );
        } else if p.split(['/', '\\']).any(|seg| seg.trim() == "..") {
            let at = self.find_in(&sp.span, "..");
            self.error(
                Diagnostic::at(at, format!("file path `{p}` leaves the output folder"))
                    .help("remove `..`: every file is written under the output folder"),
            );
        }
    }
}

/// The caret for a JSONPath error: the offending character inside the quoted string, when
/// the parser says where (assumes no escapes before it, which holds for JSONPaths in practice).
fn path_point(span: &Range<usize>, e: &crate::extract::PathError) -> Range<usize> {
    match e.offset {
        Some(o) if span.start + 1 + o < span.end => {
            let at = span.start + 1 + o;
            at..at + 1
        }
        _ => span.clone(),
    }
}

/// Splits a persist key on the dots outside `{{ ... }}`.
fn split_key(key: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let b = key.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            depth += 1;
            i += 2;
            continue;
        }
        if b[i..].starts_with(b"}}") {
            depth = depth.saturating_sub(1);
            i += 2;
            continue;
        }
        if b[i] == b'.' && depth == 0 {
            out.push(&key[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&key[start..]);
    out
}

/// Converts a TOML value to JSON (dates become RFC 3339 strings).
pub fn toml_to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn issue_12_check_is_linear_in_the_number_of_steps() {
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
    fn vars_parse_as_json_or_string() {
        assert_eq!(parse_var("a=[1,2]").unwrap().1, serde_json::json!([1, 2]));
        assert_eq!(
            parse_var("a=canvas").unwrap().1,
            serde_json::json!("canvas")
        );
        assert!(parse_var("nothing").is_err());
    }
}
