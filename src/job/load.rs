//! Loading: job file text → [`RawJob`], with every unknown key and every value of the wrong
//! type reported, not only the first.
//!
//! The text is parsed once into toml's spanned document. The raw model is deserialized from
//! that document through `serde_ignored`, which reports every key the model does not know in
//! one pass, with its path (the raw structs do not deny unknown fields for serde; the schema
//! still does, through `schemars(deny_unknown_fields)`). Serde stops at a value of the wrong
//! type: its entry is reported, taken out of the document, and the document is deserialized
//! again, so `concurrency = "eight"` does not hide the file's other problems. An unknown key is
//! one problem among the others: the job is validated as if it were absent, and when it is
//! close to a key the table has ([`Misspelt`]: `gett`, `outptus`), validation does not report
//! what its absence causes ("has no request", the outputs it would define). The project file
//! (`dap-run.toml`) is read the same way ([`parse_project`]), so a typo in its `[gateway]` is
//! reported too, not silently ignored.

use std::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw::RawProject;
use super::raw::{
    RawDatabase, RawDefaults, RawDownload, RawGateway, RawJob, RawLoad, RawPoll, RawRetry, RawStep,
};
use crate::diagnostic::{Diagnostic, Diagnostics, Source};
use crate::suggest::suggest;

/// Most values of the wrong type reported in one file (each costs one more deserialization of
/// the parsed document, never a parse of the text).
const MAX_TYPE_ERRORS: usize = 100;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Which file a document is: the model its keys are looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Job,
    Project,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Job => "job file",
            Kind::Project => "project file",
        }
    }
}

/// An unknown key close to one the model has (`gett`, `outptus`): what it surely meant, so
/// that validation, which goes on as if the key were absent, does not also report what its
/// absence causes (a step with no request, the outputs it would have defined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misspelt {
    /// The step it is in, by position; `None` at the top level.
    pub step: Option<usize>,
    /// The key it is close to.
    pub meant: &'static str,
    /// The keys of its value, when that is a table: the names a mistyped `outputs`, `let` or
    /// `[vars]` would have defined.
    pub names: Vec<String>,
}

/// Parses job file text into the raw model. `None` when the TOML is broken or the model cannot
/// be built (a required key is missing); the diagnostics say why. Unknown keys and values of
/// the wrong type are reported and left out, and the job without them is returned for
/// validation, with the unknown keys that look like typos of known ones.
pub fn parse(source: &Source) -> (Option<RawJob>, Diagnostics, Vec<Misspelt>) {
    parse_as(source, Kind::Job)
}

/// Parses project file text (`dap-run.toml`) into its raw model, with the same reporting as
/// [`parse`]: every unknown key and every value of the wrong type, each at its place.
pub fn parse_project(source: &Source) -> (Option<RawProject>, Diagnostics) {
    let (raw, diags, _) = parse_as(source, Kind::Project);
    (raw, diags)
}

fn parse_as<T: DeserializeOwned>(
    source: &Source,
    kind: Kind,
) -> (Option<T>, Diagnostics, Vec<Misspelt>) {
    let mut diags = Diagnostics::default();
    let mut doc = match DeTable::parse(&source.text) {
        Ok(doc) => doc,
        Err(e) => {
            diags.push(source, toml_diagnostic(&e, &source.text, kind));
            return (None, diags, Vec::new());
        }
    };
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let mut wrong_types = 0;
    let raw = loop {
        let mut found = Vec::new();
        let result = serde_ignored::deserialize(
            toml::de::Deserializer::from(doc.clone()),
            |path: serde_ignored::Path<'_>| found.push(segments(&path)),
        );
        for path in found {
            if !unknown.contains(&path) {
                unknown.push(path);
            }
        }
        match result {
            Ok(raw) => break Some(raw),
            Err(e) => {
                let message = e.message();
                let wrong_type = ["invalid type", "invalid value", "invalid length"]
                    .iter()
                    .any(|p| message.starts_with(p));
                // After a value was taken out, a structural error is one the removal made (a
                // table left without a required key): only a missing key is worth reporting.
                if wrong_type {
                    let d = e
                        .span()
                        .and_then(|span| in_its_words(&doc, &span, message, kind))
                        .unwrap_or_else(|| toml_diagnostic(&e, &source.text, kind));
                    diags.push(source, d);
                } else if wrong_types == 0 || message.starts_with("missing field") {
                    diags.push(source, toml_diagnostic(&e, &source.text, kind));
                }
                let removed = wrong_type
                    && wrong_types < MAX_TYPE_ERRORS
                    && e.span().is_some_and(|span| remove_at(&mut doc, &span));
                if !removed {
                    break None;
                }
                wrong_types += 1;
            }
        }
    };
    let mut misspelt = Vec::new();
    for path in &unknown {
        let (d, meant) = unknown_key(&doc, path, kind);
        diags.push(source, d);
        if let Some(meant) = meant {
            let step = match path.as_slice() {
                [Seg::Key(s), Seg::Index(i), Seg::Key(_)] if s == "step" => Some(*i),
                _ => None,
            };
            misspelt.push(Misspelt {
                step,
                meant,
                names: table_keys(&doc, path),
            });
        }
    }
    (raw, diags, misspelt)
}

/// A `serde_ignored` path as keys and indexes (toml's span wrapper is not a step).
fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, index } => {
            let mut out = segments(parent);
            out.push(Seg::Index(*index));
            out
        }
        Path::Map { parent, key } => {
            let mut out = segments(parent);
            if !key.starts_with("$__serde_spanned_private_") {
                out.push(Seg::Key(key.clone()));
            }
            out
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    };
    out.shrink_to_fit();
    out
}

/// The diagnostic for an unknown key: where it is, and the closest key the table has (also
/// returned, when there is one).
fn unknown_key(
    doc: &Spanned<DeTable<'_>>,
    path: &[Seg],
    kind: Kind,
) -> (Diagnostic, Option<&'static str>) {
    let (name, table) = match path.split_last() {
        Some((Seg::Key(name), table)) => (name.as_str(), table),
        _ => ("?", path),
    };
    let mut d = Diagnostic::nowhere(format!("unknown key `{name}`"));
    d.span = key_span(doc, path);
    let choices = keys_of(table, kind);
    let meant = suggest(name, choices.iter().copied());
    let d = match meant {
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
    };
    (d, meant)
}

/// The keys of the table at `path` in the document (none if it is not a table).
fn table_keys(doc: &Spanned<DeTable<'_>>, path: &[Seg]) -> Vec<String> {
    let root = DeValue::Table(doc.get_ref().clone());
    let mut at = &root;
    for seg in path {
        at = match (seg, at) {
            (Seg::Key(k), DeValue::Table(t)) => match t.get(k.as_str()) {
                Some(v) => v.get_ref(),
                None => return Vec::new(),
            },
            (Seg::Index(i), DeValue::Array(a)) => match a.get(*i) {
                Some(v) => v.get_ref(),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
    }
    match at {
        DeValue::Table(t) => t.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The keys of the raw table at `path` (indexes skipped: every step has the same keys).
fn keys_of(path: &[Seg], kind: Kind) -> &'static [&'static str] {
    let names: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    match names.as_slice() {
        [] if kind == Kind::Project => fields::<RawProject>(),
        _ if kind == Kind::Project && names[0] != "gateway" => &[],
        [] => fields::<RawJob>(),
        ["gateway"] => fields::<RawGateway>(),
        ["gateway", "retry"] => fields::<RawRetry>(),
        ["database"] => fields::<RawDatabase>(),
        ["defaults"] => fields::<RawDefaults>(),
        ["step"] => fields::<RawStep>(),
        ["step", "load"] => fields::<RawLoad>(),
        ["step", "poll"] => fields::<RawPoll>(),
        ["step", "download"] => fields::<RawDownload>(),
        _ => &[],
    }
}

/// The field names serde's derive gives a struct, asked of it by a deserializer that only
/// listens.
pub(crate) fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

struct FieldProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Listened;

impl std::fmt::Display for Listened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names listened for")
    }
}

impl std::error::Error for Listened {}

impl serde::de::Error for Listened {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Listened
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = Listened;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Listened> {
        Err(Listened)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Listened> {
        *self.0 = fields;
        Err(Listened)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The span of the key at `path`, if the document has it.
fn key_span(doc: &Spanned<DeTable<'_>>, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(last), parents) = path.split_last()? else {
        return None;
    };
    let root = DeValue::Table(doc.get_ref().clone());
    let mut at = &root;
    for seg in parents {
        at = match (seg, at) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?.get_ref(),
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?.get_ref(),
            _ => return None,
        };
    }
    match at {
        DeValue::Table(t) => t.get_key_value(last.as_str()).map(|(key, _)| key.span()),
        _ => None,
    }
}

/// A value of the wrong type, said in the job file's words: `` `concurrency` must be a whole
/// number 1-256 `` with what was found under it, rather than serde's `invalid type: string
/// "eight", expected i64`. `None` when the value cannot be placed or its key takes anything.
fn in_its_words(
    doc: &Spanned<DeTable<'_>>,
    span: &Range<usize>,
    message: &str,
    kind: Kind,
) -> Option<Diagnostic> {
    let path = path_at(doc.get_ref(), span)?;
    let keys: Vec<Option<&str>> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let words = super::expected::expected(&keys, kind == Kind::Project)?;
    let name = match path.as_slice() {
        [.., Seg::Key(k), Seg::Index(i)] => format!("{k}[{i}]"),
        [.., Seg::Key(k)] => k.clone(),
        _ => return None,
    };
    let found = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split(", expected").next())
        .map(|found| match found.split([' ', '`']).next().unwrap_or("") {
            "string" => "a string",
            "integer" => "a whole number",
            "floating" => "a decimal number",
            "boolean" => "`true` or `false`",
            "map" => "a table",
            "sequence" => "a list",
            _ => "something else",
        });
    let mut d = Diagnostic::at(span.clone(), format!("`{name}` must be {words}"));
    if let Some(found) = found {
        d = d.label(format!("this is {found}"));
    }
    Some(d)
}

/// The path of the value at `span`: the key that holds it (and its position, in a list).
fn path_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    for (key, value) in table.iter() {
        let here = Seg::Key(key.get_ref().to_string());
        if value.span() == *span {
            return Some(vec![here]);
        }
        let inner = match value.get_ref() {
            DeValue::Table(t) => path_at(t, span),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                if item.span() == *span {
                    return Some(vec![Seg::Index(i)]);
                }
                match item.get_ref() {
                    DeValue::Table(t) => path_at(t, span).map(|mut p| {
                        p.insert(0, Seg::Index(i));
                        p
                    }),
                    _ => None,
                }
            }),
            _ => None,
        };
        if let Some(mut rest) = inner {
            rest.insert(0, here);
            return Some(rest);
        }
    }
    None
}

/// Takes the entry whose value is at `span` out of the document; false if none is. Every
/// table is searched: the span of a `[table]` does not cover its entries.
fn remove_at(doc: &mut Spanned<DeTable<'_>>, span: &Range<usize>) -> bool {
    remove_in_table(doc.get_mut(), span)
}

fn remove_in_table(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    // An element of the wrong type is not taken out of its array (the indexes of the others
    // would shift): the key that holds the array is.
    let at = |value: &Spanned<DeValue<'_>>| {
        value.span() == *span
            || matches!(value.get_ref(), DeValue::Array(a) if a.iter().any(|v| v.span() == *span))
    };
    let hit = table
        .iter()
        .find(|(_, value)| at(value))
        .map(|(key, _)| key.get_ref().clone());
    if let Some(key) = hit {
        return table.remove(key.as_ref()).is_some();
    }
    table
        .iter_mut()
        .any(|(_, value)| remove_in_value(value.get_mut(), span))
}

fn remove_in_value(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(t) => remove_in_table(t, span),
        DeValue::Array(a) => a.iter_mut().any(|v| remove_in_value(v.get_mut(), span)),
        _ => false,
    }
}

fn toml_diagnostic(e: &toml::de::Error, text: &str, kind: Kind) -> Diagnostic {
    let message = e.message().trim();
    let mut d = if let Some(rest) = message.strip_prefix("missing field `") {
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
                format!("invalid {}: {first}", kind.noun())
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
