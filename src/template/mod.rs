//! Templates and expressions: one minijinja environment per job, compiled once at validation.
//!
//! Undefined values are errors (strict mode), never `""`. Where a template's output lands
//! decides how inserted values are escaped, so a value can never change the shape of what it is
//! inserted into:
//! - URL paths: each value is percent-encoded as one path segment (`a/../b` → `a%2F..%2Fb`);
//! - file paths: each value is made a safe file name (`/`, `\`, NUL and control characters
//!   become `_`, `.` and `..` are not allowed as a whole), so a name that comes from the gateway
//!   cannot leave the output folder;
//! - everything else (query values, headers, bodies, messages): inserted as is.
//!
//! The escaping is minijinja's auto-escape mechanism with custom modes, chosen by the template's
//! name suffix; `|safe` opts a value out.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

mod scan;

use scan::{NameKind, code_blocks, filter_and_test_names, literal_subscripts_as_fields};
pub use scan::{lone_expression, pad_too_wide};

/// Where a template's output goes, which decides how values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Inserted as is.
    None,
    /// Each value is one percent-encoded URL path segment.
    UrlPath,
    /// Each value is one safe file-name segment.
    FilePath,
}

impl Escape {
    fn suffix(self) -> &'static str {
        match self {
            Escape::None => "",
            Escape::UrlPath => ".urlpath",
            Escape::FilePath => ".filepath",
        }
    }
}

/// A compiled template, by its name in the job's environment.
#[derive(Clone, Debug)]
pub struct Tmpl {
    name: String,
    /// The template text as written (shown by `plan`).
    pub source: String,
}

/// An expression (validated at load time; compiled when evaluated, which is cheap).
#[derive(Clone, Debug)]
pub struct Expr {
    /// The expression as written.
    pub source: String,
}

/// Names the template engine provides itself, never reported as undefined.
pub const BUILTIN_NAMES: &[&str] = &["range", "dict", "debug", "namespace", "loop", "self"];

/// The `run` of templates: values of this run, the same for every step and item.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    /// When the run started, RFC 3339 UTC to the second: `2026-11-24T02:15:01Z`.
    pub started: String,
    /// Unique per run: the start in basic format and a random suffix, `20261124T021501Z-3fa9c2`.
    pub id: String,
}

impl RunInfo {
    /// The values for a run starting now.
    pub fn now() -> RunInfo {
        let started = crate::timestamp::now_seconds();
        let id = format!(
            "{}-{:06x}",
            crate::timestamp::basic(&started).unwrap_or_default(),
            fastrand::u32(..0x100_0000)
        );
        RunInfo { started, id }
    }
}

/// The job's template environment.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// Builds the environment while a job is validated; [`TemplatesBuilder::finish`] freezes it.
pub struct TemplatesBuilder {
    env: Environment<'static>,
    count: usize,
}

impl Default for TemplatesBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplatesBuilder {
    /// A fresh environment with dap-run's settings and filters.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".urlpath") {
                AutoEscape::Custom("urlpath".into())
            } else if name.ends_with(".filepath") {
                AutoEscape::Custom("filepath".into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(format_value);
        env.add_filter("pad", pad);
        env.add_filter("stamp", stamp);
        TemplatesBuilder { env, count: 0 }
    }

    /// Compiles a template. `hint` names it in errors (e.g. `query.post`).
    pub fn template(&mut self, hint: &str, source: &str, escape: Escape) -> Result<Tmpl, Error> {
        self.count += 1;
        let name = format!("{hint}#{}{}", self.count, escape.suffix());
        self.env
            .add_template_owned(name.clone(), source.to_owned())?;
        Ok(Tmpl {
            name,
            source: source.to_owned(),
        })
    }

    /// Compiles an expression to check it.
    pub fn expr(&self, source: &str) -> Result<Expr, Error> {
        self.env.compile_expression(source)?;
        Ok(Expr {
            source: source.to_owned(),
        })
    }

    /// Variables (dotted paths) a template uses that it does not define itself. A subscript
    /// with a literal name counts as a field (`item['table']` is `item.table`), so it is
    /// checked like one rather than escaping validation.
    pub fn template_variables(&self, t: &Tmpl) -> HashSet<String> {
        let dotted = literal_subscripts_as_fields(&t.source);
        if let Ok(t) = self.env.template_from_str(&dotted) {
            return t.undeclared_variables(true);
        }
        self.env
            .get_template(&t.name)
            .map(|t| t.undeclared_variables(true))
            .unwrap_or_default()
    }

    /// Variables (dotted paths) an expression uses; literal subscripts count as fields.
    pub fn expr_variables(&self, e: &Expr) -> HashSet<String> {
        let dotted = literal_subscripts_as_fields(&e.source);
        self.env
            .compile_expression(&dotted)
            .or_else(|_| self.env.compile_expression(&e.source))
            .map(|e| e.undeclared_variables(true))
            .unwrap_or_default()
    }

    /// The first filter (`| name`) or test (`is name`) a template or expression uses that the
    /// environment does not have. minijinja looks these up only at render time, so without this
    /// check a typo in a filter name would pass validation and fail the run midway.
    pub fn unknown_filter_or_test(&self, source: &str, is_template: bool) -> Option<String> {
        for block in code_blocks(source, is_template) {
            for (kind, name) in filter_and_test_names(block) {
                let probe = match kind {
                    NameKind::Filter => format!("none | {name}"),
                    NameKind::Test => format!("none is {name}"),
                };
                let Ok(expr) = self.env.compile_expression(&probe) else {
                    continue;
                };
                if let Err(e) = expr.eval(())
                    && matches!(e.kind(), ErrorKind::UnknownFilter | ErrorKind::UnknownTest)
                {
                    return Some(name.to_owned());
                }
            }
        }
        None
    }

    /// Freezes the environment.
    pub fn finish(self) -> Templates {
        Templates {
            env: Arc::new(self.env),
        }
    }
}

impl Templates {
    /// Renders a template.
    pub fn render(&self, t: &Tmpl, ctx: &Value) -> Result<String, Error> {
        self.env.get_template(&t.name)?.render(ctx)
    }

    /// Evaluates an expression to a value.
    pub fn eval(&self, e: &Expr, ctx: &Value) -> Result<Value, Error> {
        self.env.compile_expression(&e.source)?.eval(ctx)
    }

    /// Variables (dotted paths) an expression uses, for failure messages.
    pub fn expr_variables(&self, e: &Expr) -> BTreeSet<String> {
        self.env
            .compile_expression(&e.source)
            .map(|e| e.undeclared_variables(true).into_iter().collect())
            .unwrap_or_default()
    }
}

/// Makes one value safe as a single file-name segment.
pub fn file_segment(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        out = out.replace('.', "_");
        if out.is_empty() {
            out.push('_');
        }
    }
    // File names are limited to 255 bytes on common file systems.
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

fn format_value(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    let mode = match state.auto_escape() {
        AutoEscape::Custom(name) if name == "urlpath" => Escape::UrlPath,
        AutoEscape::Custom(name) if name == "filepath" => Escape::FilePath,
        _ => return minijinja::escape_formatter(out, state, value),
    };
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    let raw = value.to_string();
    // URL parsers treat `%2E%2E` as `..` (WHATWG URL), so no encoding keeps these one segment.
    if mode == Escape::UrlPath && !value.is_safe() && (raw == "." || raw == "..") {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the value `{raw}` cannot be a URL path segment: it would change the path"),
        ));
    }
    let text = if value.is_safe() {
        raw
    } else if mode == Escape::UrlPath {
        crate::url_segment::url_segment(&raw)
    } else {
        file_segment(&raw)
    };
    out.write_str(&text)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write template output"))
}

/// The widest `pad`: a file name has at most 255 bytes on common file systems.
pub const MAX_PAD: usize = 255;

/// `{{ n | pad(5) }}`: zero-pads a number (or string) to a width, at most [`MAX_PAD`] (a huge
/// width would try to allocate that many bytes and abort).
fn pad(value: Value, width: usize) -> Result<String, Error> {
    if width > MAX_PAD {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("pad({width}) is wider than {MAX_PAD}"),
        ));
    }
    Ok(format!("{:0>width$}", value.to_string()))
}

/// `{{ "2026-01-05T04:00:12Z" | stamp }}` → `20260105T040012Z`: a time in ISO 8601's basic
/// format, without `-` or `:`, so it is a folder name every tool and file system accepts. The
/// offset stays as given (`-05:00` → `-0500`); a value that is not an RFC 3339 time or date is
/// an error, not a name with its dashes removed.
fn stamp(value: Value) -> Result<String, Error> {
    crate::timestamp::basic(&value.to_string())
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("stamp: {e}")))
}

/// The `env` object of templates: environment variables, read when used.
#[derive(Debug)]
pub struct EnvVars;

impl Object for EnvVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        std::env::var(name).ok().map(Value::from)
    }
}

/// The `state` of templates: what the last successful run saved over the first-run values, in
/// which every level a `persist` key writes exists. `persist = { "until.{{ ns }}.{{ table }}" = ... }`
/// writes two levels under `until`, so on a first run `state.until[ns]` is an empty table (and
/// `state.until[ns][table]` is undefined, which leaves a `since` out) rather than an error.
#[derive(Debug)]
pub struct StateView {
    map: serde_json::Map<String, serde_json::Value>,
    /// Levels of tables below this one that persist keys write (1: this table's values are leaves).
    levels: usize,
}

impl StateView {
    /// The root `state` value: `levels` gives, per state key, how many levels of tables its
    /// persist keys write below it.
    pub fn root(
        state: &serde_json::Map<String, serde_json::Value>,
        levels: &std::collections::BTreeMap<String, usize>,
    ) -> Value {
        let mut m = std::collections::BTreeMap::new();
        for (k, v) in state {
            let depth = levels.get(k).copied().unwrap_or(0);
            m.insert(k.clone(), Self::node(v, depth));
        }
        Value::from(m)
    }

    fn node(v: &serde_json::Value, levels: usize) -> Value {
        match v {
            serde_json::Value::Object(map) if levels > 1 => Value::from_object(StateView {
                map: map.clone(),
                levels,
            }),
            other => to_value(other),
        }
    }
}

impl Object for StateView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.map.get(key) {
            Some(v) => Some(Self::node(v, self.levels - 1)),
            None if self.levels > 1 => Some(Self::node(
                &serde_json::Value::Object(Default::default()),
                self.levels - 1,
            )),
            None => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.map.keys().map(|k| Value::from(k.as_str())).collect(),
        )
    }
}

/// Converts a JSON value to a template value.
pub fn to_value(json: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(json))
}

/// Converts a template value to JSON (`undefined` becomes `null`). An output's value (a view
/// of its JSON) is cloned as JSON directly, not walked through the template value.
pub fn to_json(value: &Value) -> serde_json::Value {
    if let Some(shared) = value.downcast_object_ref::<crate::extract::SharedJson>() {
        return shared.to_json();
    }
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// A template error at run time as users read it: the detail, and a hint when a value was
/// missing.
pub fn run_error_text(e: &Error) -> String {
    let mut msg = e
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| e.kind().to_string());
    if e.kind() == ErrorKind::UndefinedError {
        msg = format!("{msg} (a value is missing at run time)");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn unknown_filters_and_tests_are_found_before_rendering() {
        let tb = TemplatesBuilder::new();
        let unknown = |s: &str, t: bool| tb.unknown_filter_or_test(s, t);
        assert_eq!(unknown("/a/{{ x | nope }}", true), Some("nope".into()));
        assert_eq!(unknown("x is not nope2", false), Some("nope2".into()));
        assert_eq!(unknown("/a|b/{{ x | pad(5) | upper }}", true), None);
        assert_eq!(
            unknown("{{ 'a | nope' }} {% if x is defined %}{% endif %}", true),
            None
        );
        assert_eq!(
            unknown("required | reject('in', tables) | list", false),
            None
        );
    }

    #[test]
    fn dot_segments_cannot_enter_a_url_path() {
        let mut tb = TemplatesBuilder::new();
        let t = tb.template("t", "/a/{{ v }}/b", Escape::UrlPath).unwrap();
        let env = tb.finish();
        assert!(env.render(&t, &context! { v => ".." }).is_err());
        assert_eq!(
            env.render(&t, &context! { v => "../x" }).unwrap(),
            "/a/..%2Fx/b"
        );
    }

    #[test]
    fn path_values_are_one_segment() {
        let mut b = TemplatesBuilder::new();
        let t = b
            .template("t", "/dap/{{ a }}/x/{{ b|safe }}", Escape::UrlPath)
            .unwrap();
        let ts = b.finish();
        let out = ts
            .render(&t, &context! { a => "a/../b", b => "c/d" })
            .unwrap();
        assert_eq!(out, "/dap/a%2F..%2Fb/x/c/d");
    }

    #[test]
    fn file_values_cannot_leave_the_folder() {
        let mut b = TemplatesBuilder::new();
        let t = b
            .template("t", "{{ a }}/part-{{ n|pad(5) }}.gz", Escape::FilePath)
            .unwrap();
        let ts = b.finish();
        let out = ts
            .render(&t, &context! { a => "../../etc", n => 7 })
            .unwrap();
        assert_eq!(out, ".._.._etc/part-00007.gz");
        assert_eq!(file_segment(".."), "__");
        assert_eq!(file_segment("a\0b"), "a_b");
    }

    #[test]
    fn stamp_keeps_a_negative_offset_and_refuses_what_is_not_a_time() {
        let mut b = TemplatesBuilder::new();
        let t = b
            .template("t", "{{ at | stamp }}", Escape::FilePath)
            .unwrap();
        let ts = b.finish();
        let stamp = |at: &str| ts.render(&t, &context! { at => at });
        assert_eq!(stamp("2026-01-05T04:00:12Z").unwrap(), "20260105T040012Z");
        // Dashes and colons stripped as text made this `20260105T04001205`.
        assert_eq!(
            stamp("2026-01-05T04:00:12-05:00").unwrap(),
            "20260105T040012-0500"
        );
        let e = stamp("not-a-time").unwrap_err();
        assert!(
            e.to_string()
                .contains("stamp: `not-a-time` is not an RFC 3339 time"),
            "{e}"
        );
    }

    #[test]
    fn undefined_is_an_error() {
        let mut b = TemplatesBuilder::new();
        let t = b.template("t", "{{ missing }}", Escape::None).unwrap();
        let u = b.template("u", "/{{ missing }}", Escape::UrlPath).unwrap();
        let ts = b.finish();
        assert!(ts.render(&t, &context! {}).is_err());
        assert!(ts.render(&u, &context! {}).is_err());
    }

    #[test]
    fn literal_subscripts_are_fields_for_the_analysis() {
        assert_eq!(literal_subscripts_as_fields("item['table']"), "item.table");
        assert_eq!(
            literal_subscripts_as_fields("a[\"b\"]['c'] ~ x[y]"),
            "a.b.c ~ x[y]"
        );
        assert_eq!(
            literal_subscripts_as_fields("'a[\\'b\\']' ~ l['1x']"),
            "'a[\\'b\\']' ~ l['1x']"
        );
        assert_eq!(literal_subscripts_as_fields("['a']"), "['a']");
    }

    #[test]
    fn lone_expressions() {
        assert_eq!(lone_expression("{{ item.objects }}"), Some("item.objects"));
        assert_eq!(lone_expression(" {{ a }} "), Some("a"));
        assert_eq!(lone_expression("x{{ a }}"), None);
        assert_eq!(lone_expression("{{ a }}{{ b }}"), None);
    }
}
