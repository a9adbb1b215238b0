//! JSONPath outputs: compiled once at validation, applied to each answer.
//!
//! One value or a list: a path made only of names and indexes (`$.id`, `$.objects[0].id`)
//! selects at most one value, and its output is that value. A path with a wildcard, slice,
//! filter, union or `..` can select several, and its output is always a list, even of one.
//! A path that matches nothing is an error unless the output is optional (then `none`, or
//! `[]` for a list path).
//!
//! An answer can be large (tens of MB), and an output can select most of it (`$.objects`).
//! So a path of names, indexes and wildcards is walked in the answer's text, and what it
//! selects is kept as that text ([`raw`]), shared when it is most of the answer, copied when
//! it is little of it; other paths are applied to a tree of the answer built only as far as
//! they read ([`parse`]). Every output is a [`SharedJson`]: the records, reports and templates
//! all read the same value.

use std::sync::Arc;

use bytes::Bytes;
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value as Json;

mod excerpt;
pub mod parse;
mod raw;
mod shared;

pub use excerpt::{excerpt, short_json};
use raw::RawNode;
pub use shared::{Route, SharedJson};

/// A named JSONPath extraction.
#[derive(Debug, Clone)]
pub struct Output {
    /// Variable name.
    pub name: String,
    /// The JSONPath as written.
    pub path: String,
    /// Compiled.
    pub query: JpQuery,
    /// Whether the path can select several values (then the output is a list).
    pub many: bool,
    /// Whether no match is allowed.
    pub optional: bool,
}

/// Why a JSONPath does not parse: where (0-based character offset, if known) and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// Character offset in the path.
    pub offset: Option<usize>,
    /// What the parser expected, in words.
    pub message: String,
}

/// Parses a JSONPath.
pub fn compile(path: &str) -> Result<JpQuery, PathError> {
    jsonpath_rust::parser::parse_json_path(path).map_err(|e| {
        // The parser's message is a pest report: " --> 1:COL" and "= expected RULES".
        let text = e.to_string();
        let offset = text
            .split("--> ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|pos| pos.split(':').nth(1))
            .and_then(|col| col.parse::<usize>().ok())
            .map(|col| col.saturating_sub(1));
        let expected = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("= expected "))
            .map(|rules| rules.replace("jp_query", "`$`").replace('_', " "));
        let message = match (expected, offset) {
            (Some(x), Some(o)) => format!("expected {x} at character {}", o + 1),
            (Some(x), None) => format!("expected {x}"),
            (None, _) => text
                .lines()
                .next()
                .unwrap_or("invalid JSONPath")
                .trim()
                .to_owned(),
        };
        PathError { offset, message }
    })
}

/// Whether a path can select more than one value.
pub fn selects_many(q: &JpQuery) -> bool {
    q.segments.iter().any(|s| match s {
        Segment::Descendant(_) | Segment::Selectors(_) => true,
        Segment::Selector(sel) => !matches!(sel, Selector::Name(_) | Selector::Index(_)),
    })
}

/// Every value a path selects.
pub fn select<'a>(q: &JpQuery, value: &'a Json) -> Vec<&'a Json> {
    if let Some(found) = select_plain(q, value) {
        return found;
    }
    match jsonpath_rust::query::js_path_process(q, value) {
        Ok(refs) => refs.into_iter().map(|r| r.val()).collect(),
        Err(_) => Vec::new(),
    }
}

/// [`select`] for a path of names, indexes and wildcards (`$.objects[*].id`), walked directly:
/// the JSONPath engine builds a path string for every value it visits, which on a response of
/// 300,000 objects costs more than the parse. `None` for any other path.
fn select_plain<'a>(q: &JpQuery, value: &'a Json) -> Option<Vec<&'a Json>> {
    if !raw::plain(q) {
        return None;
    }
    let mut at = vec![value];
    for segment in &q.segments {
        let Segment::Selector(selector) = segment else {
            return None;
        };
        let mut next = Vec::with_capacity(at.len());
        for v in at {
            match (selector, v) {
                (Selector::Name(n), Json::Object(m)) => next.extend(m.get(n.as_str())),
                (Selector::Index(i), Json::Array(items)) => {
                    let i = if *i < 0 {
                        items.len().checked_sub(i.unsigned_abs() as usize)
                    } else {
                        Some(*i as usize)
                    };
                    next.extend(i.and_then(|i| items.get(i)));
                }
                (Selector::Wildcard, Json::Array(items)) => next.extend(items),
                (Selector::Wildcard, Json::Object(m)) => next.extend(m.values()),
                _ => {}
            }
        }
        at = next;
    }
    Some(at)
}

/// The outputs of one answer.
#[derive(Debug)]
pub struct Extracted {
    /// Each output's value, in the step's order; one that matched nothing is `null` (`[]` for
    /// an optional list path).
    pub values: Vec<(String, SharedJson)>,
    /// The first output that matched nothing and is not optional: an error once the answer
    /// is final, "not yet" while polling.
    pub missing: Option<NoMatch>,
}

/// The paths of `outputs` that are read from a tree ([`outputs`]): those with a filter, a
/// slice, a union or `..`. The answer's tree needs only their members.
pub fn tree_paths(outputs: &[Output]) -> impl Iterator<Item = &JpQuery> {
    outputs.iter().map(|o| &o.query).filter(|q| !raw::plain(q))
}

/// Applies every output of a step to its answer: `body`, already checked as JSON, and `tree`,
/// built of it as far as [`tree_paths`] read.
///
/// A path of names, indexes and wildcards is walked in the body's text ([`raw`]): an object
/// or a list it selects is kept as that text, not built, and a list path keeps where each
/// value it selected is; all of them share the body's buffer when one of them selects at
/// least half of it (the body is then held anyway), else each copies its few bytes and the
/// body is let go. Any other path is applied to the tree and what it selects copied. Every
/// value is scrubbed of registered secrets (a server that echoes the token must not get it
/// into files or reports): text that holds one, or an escape a secret could hide behind, is
/// built as a tree and scrubbed.
pub fn outputs(outputs: &[Output], body: &Bytes, tree: &Json) -> Extracted {
    enum Found {
        One(Option<Arc<RawNode>>),
        Many(Vec<(u32, u32)>),
        Copy(Option<Json>),
    }
    let root = RawNode::new(body.clone());
    let mut missing = None;
    let mut found = Vec::with_capacity(outputs.len());
    let mut largest = 0usize;
    for output in outputs {
        let got = match &root {
            Some(root) if raw::plain(&output.query) => {
                if output.many {
                    let mut at = Vec::new();
                    raw::select(&output.query, root, &mut |n| {
                        at.extend(raw::place_in(root, n));
                    });
                    largest = largest.max(at.iter().map(|&(_, l)| l as usize).sum());
                    Found::Many(at)
                } else {
                    let mut first = None;
                    raw::select(&output.query, root, &mut |n| {
                        first.get_or_insert_with(|| n.clone());
                    });
                    if let Some(n) = &first {
                        largest = largest.max(n.buffer().len());
                    }
                    Found::One(first)
                }
            }
            _ => Found::Copy(finish(output, select(&output.query, tree)).ok()),
        };
        let none = match &got {
            Found::One(n) => n.is_none(),
            Found::Many(at) => at.is_empty(),
            Found::Copy(v) => v.is_none(),
        };
        if none && !output.optional {
            missing.get_or_insert_with(|| NoMatch {
                name: output.name.clone(),
                path: output.path.clone(),
            });
            found.push(Found::Copy(None));
        } else {
            found.push(got);
        }
    }
    let share = largest >= body.len() / 2;
    // Checked once for the whole body; a value's own text only when the body is not clean.
    let secrets = crate::secret::Scanner::new();
    let body_clean = raw::clean(body, &secrets);
    let clean = |text: &[u8]| body_clean || raw::clean(text, &secrets);
    let values = outputs
        .iter()
        .zip(found)
        .map(|(o, got)| {
            let value = match (got, &root) {
                (Found::One(Some(n)), _) if clean(n.buffer()) => {
                    SharedJson::raw(raw::own(&n, share))
                }
                (Found::One(Some(n)), _) => scrubbed(n.to_json()),
                (Found::Many(at), Some(root)) => {
                    let list = raw::gather(root, &at, share);
                    let all_clean = body_clean
                        || at
                            .iter()
                            .all(|&(s, l)| clean(&body[s as usize..(s + l) as usize]));
                    if all_clean {
                        SharedJson::raw(list)
                    } else {
                        scrubbed(list.to_json())
                    }
                }
                (Found::One(None), _) => SharedJson::new(Json::Null),
                (Found::Many(_), None) => SharedJson::new(Json::Array(Vec::new())),
                (Found::Copy(v), _) => scrubbed(v.unwrap_or(if o.many && o.optional {
                    Json::Array(Vec::new())
                } else {
                    Json::Null
                })),
            };
            (o.name.clone(), value)
        })
        .collect();
    Extracted { values, missing }
}

/// A value built as a tree, scrubbed of registered secrets.
fn scrubbed(mut v: Json) -> SharedJson {
    crate::secret::redact_json_in_place(&mut v);
    SharedJson::new(v)
}

/// [`outputs`] of a whole answer's text: checks it as JSON, builds the tree the other paths
/// need, and takes the outputs.
pub fn from_answer(outputs_: &[Output], body: &Bytes) -> serde_json::Result<Extracted> {
    let members = parse::members(tree_paths(outputs_));
    let tree = parse::parse(body, members.as_ref())?;
    Ok(outputs(outputs_, body, &tree))
}

/// An output's value from what its path selected (copied).
fn finish(output: &Output, found: Vec<&Json>) -> Result<Json, NoMatch> {
    if output.many {
        if found.is_empty() && !output.optional {
            return Err(NoMatch {
                name: output.name.clone(),
                path: output.path.clone(),
            });
        }
        Ok(Json::Array(found.into_iter().cloned().collect()))
    } else {
        match found.first() {
            Some(v) => Ok((*v).clone()),
            None if output.optional => Ok(Json::Null),
            None => Err(NoMatch {
                name: output.name.clone(),
                path: output.path.clone(),
            }),
        }
    }
}

/// Why an output could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoMatch {
    /// The output's name.
    pub name: String,
    /// Its path.
    pub path: String,
}

/// Applies one output to a response body (a copy of what it selects).
pub fn apply(output: &Output, body: &Json) -> Result<Json, NoMatch> {
    finish(output, select(&output.query, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(path: &str, optional: bool) -> Output {
        let query = compile(path).unwrap();
        Output {
            name: "x".into(),
            path: path.into(),
            many: selects_many(&query),
            query,
            optional,
        }
    }

    #[test]
    fn single_and_list_results() {
        let body = json!({"id": "j1", "urls": {"a/b": {"url": "u1"}, "c": {"url": "u2"}}});
        assert_eq!(apply(&out("$.id", false), &body), Ok(json!("j1")));
        assert_eq!(
            apply(&out("$.urls.*.url", false), &body),
            Ok(json!(["u1", "u2"]))
        );
        assert_eq!(apply(&out("$['id']", false), &body), Ok(json!("j1")));
    }

    #[test]
    fn no_match_is_an_error_unless_optional() {
        let body = json!({"status": "running"});
        assert!(apply(&out("$.objects", false), &body).is_err());
        assert_eq!(apply(&out("$.objects", true), &body), Ok(Json::Null));
        assert_eq!(apply(&out("$.objects[*].id", true), &body), Ok(json!([])));
    }

    fn named(name: &str, path: &str, optional: bool) -> Output {
        Output {
            name: name.into(),
            ..out(path, optional)
        }
    }

    fn value<'a>(got: &'a Extracted, name: &str) -> &'a SharedJson {
        &got.values.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// The outputs of `body` sent as compact JSON, or pretty-printed.
    fn take(outs: &[Output], body: &Json, pretty: bool) -> Extracted {
        let text = if pretty {
            serde_json::to_vec_pretty(body)
        } else {
            serde_json::to_vec(body)
        };
        from_answer(outs, &Bytes::from(text.unwrap())).unwrap()
    }

    #[test]
    fn outputs_equal_copies_whatever_overlaps() {
        let body = json!({
            "id": "j1",
            "objects": [{"id": "a", "n": {"x": 1}}, {"id": "b", "n": {"x": 2, "s": "q\"é\n"}}],
            "meta": {"k": [1, 2.5, -3, 18446744073709551615u64], "dup": null},
        });
        let paths = [
            "$.objects[0].id",
            "$.objects",
            "$.objects[*].id",
            "$.objects",
            "$.objects[-1].n",
            "$.objects[1]",
            "$['meta']",
            "$.meta.k[0]",
            "$.id",
            "$.missing",
            "$..x",
            "$.objects[*]",
            "$.objects[*].n.*",
            "$.*",
            "$",
            "$.meta.*[1]",
            "$.objects[?@.id == 'b'].n",
        ];
        let outs: Vec<Output> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| named(&format!("o{i}"), p, true))
            .collect();
        // Every order of the outputs gives what copying each one gives.
        for rotate in 0..outs.len() {
            let mut outs = outs.clone();
            outs.rotate_left(rotate);
            let got = take(&outs, &body, rotate % 2 == 1);
            assert!(got.missing.is_none());
            for o in &outs {
                let copy = apply(o, &body).unwrap();
                let v = value(&got, &o.name);
                assert_eq!(v.to_json(), copy, "{}", o.path);
                assert_eq!(serde_json::to_value(v).unwrap(), copy, "{}", o.path);
                assert_eq!(
                    serde_json::to_string_pretty(v).unwrap(),
                    serde_json::to_string_pretty(&copy).unwrap(),
                    "{}",
                    o.path
                );
            }
            assert_eq!(
                got.values
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
                outs.iter().map(|o| o.name.clone()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_large_selection_shares_the_answers_text_a_small_one_copies_it() {
        let outs = [
            named("first", "$.objects[0]", false),
            named("ids", "$.objects[*].id", false),
            named("objects", "$.objects", false),
            named("again", "$.objects", false),
            named("status", "$.status", false),
        ];
        // `objects` is most of the answer: every object or list output shares its text.
        let body =
            json!({"status": "complete", "objects": [{"id": "a"}, {"id": "b"}, {"id": "c"}]});
        let got = take(&outs, &body, false);
        let objects = value(&got, "objects");
        assert!(objects.is_text(), "kept as text, not built");
        assert_eq!(objects.to_json(), body["objects"]);
        for name in ["first", "again", "ids"] {
            assert!(value(&got, name).shares_tree_with(objects), "{name}");
        }
        assert_eq!(value(&got, "first").to_json(), json!({"id": "a"}));
        assert_eq!(value(&got, "ids").to_json(), json!(["a", "b", "c"]));
        assert!(
            !value(&got, "status").is_text(),
            "a scalar is a value of its own"
        );

        // Beside a large member no output selects, each copies its few bytes.
        let padded = json!({"status": "complete", "objects": [{"id": "a"}, {"id": "b"}], "pad": "x".repeat(1000)});
        let got = take(&outs, &padded, false);
        let objects = value(&got, "objects");
        assert!(objects.is_text());
        assert!(!value(&got, "first").shares_tree_with(objects));
        assert!(!value(&got, "ids").shares_tree_with(objects));
        assert_eq!(value(&got, "ids").to_json(), json!(["a", "b"]));
        assert_eq!(value(&got, "first").to_json(), json!({"id": "a"}));
    }

    #[test]
    fn a_missing_output_is_named_and_null() {
        let outs = [
            named("objects", "$.objects", false),
            named("id", "$.id", false),
            named("maybe", "$.maybe[*]", true),
        ];
        let got = take(&outs, &json!({"objects": [1, 2]}), false);
        assert_eq!(got.missing.as_ref().map(|m| m.name.as_str()), Some("id"));
        assert_eq!(value(&got, "objects").to_json(), json!([1, 2]));
        assert_eq!(value(&got, "id").to_json(), Json::Null);
        assert_eq!(value(&got, "maybe").to_json(), json!([]));
        let list = [named("ids", "$.objects[*].id", false)];
        let got = take(&list, &json!({"objects": [1, 2]}), false);
        assert_eq!(got.missing.as_ref().map(|m| m.name.as_str()), Some("ids"));
        assert_eq!(value(&got, "ids").to_json(), Json::Null);
    }

    #[test]
    fn outputs_are_scrubbed_of_secrets() {
        let _s = crate::secret::Secret::new("tok-output-5e6f");
        let outs = [
            named("all", "$.echo", false),
            named("inner", "$.echo.token", false),
            named("list", "$.echo.*", false),
        ];
        let answers = [
            r#"{"echo": {"token": "tok-output-5e6f"}, "other": "x"}"#,
            // Escaped, as a server may send it.
            r#"{"echo": {"token": "tok\u002doutput\/5e6f"}, "other": "x"}"#,
        ];
        let _t = crate::secret::Secret::new("tok-output/5e6f");
        for answer in answers {
            let got = from_answer(&outs, &Bytes::from(answer)).unwrap();
            assert_eq!(
                value(&got, "all").to_json(),
                json!({"token": "***"}),
                "{answer}"
            );
            assert_eq!(value(&got, "inner").to_json(), json!("***"));
            assert_eq!(value(&got, "list").to_json(), json!(["***"]));
            for (name, v) in &got.values {
                let written = serde_json::to_string(v).unwrap();
                assert!(!written.contains("5e6f"), "{name}: {written}");
            }
        }
    }

    #[test]
    fn plain_paths_select_what_the_jsonpath_engine_selects() {
        let body = json!({
            "a": {"b": [1, {"c": 2}, [3, 4]], "d": {"e": 5, "f": {"c": 6}}},
            "list": [{"id": "x", "k": [7]}, {"id": "y"}, {"k": [8, 9]}, 10, "s"],
            "weird key": {"it's": 11},
            "": 12,
        });
        for path in [
            "$",
            "$.a",
            "$.a.b",
            "$.a.b[1].c",
            "$.a.b[-1][0]",
            "$.a.b[-4]",
            "$.a.b[9]",
            "$.a.*",
            "$.a.*.*",
            "$.*",
            "$.*.*.c",
            "$.list[*].id",
            "$.list[*].k[0]",
            "$.list[*].k[*]",
            "$.list[-1]",
            "$['weird key']",
            "$['weird key'][\"it's\"]",
            "$['']",
            "$.list.id",
            "$.a.b.c",
            "$.nothing.*",
            "$.a.b[*].c",
            "$[0]",
            "$.*[1]",
        ] {
            let q = compile(path).unwrap();
            assert!(select_plain(&q, &body).is_some(), "{path} is plain");
            let engine: Vec<&Json> = jsonpath_rust::query::js_path_process(&q, &body)
                .unwrap()
                .into_iter()
                .map(|r| r.val())
                .collect();
            assert_eq!(select(&q, &body), engine, "{path}");
        }
        assert!(select_plain(&compile("$..c").unwrap(), &body).is_none());
        assert!(select_plain(&compile("$.list[0:2]").unwrap(), &body).is_none());
    }

    #[test]
    fn bad_paths_do_not_compile() {
        assert!(compile("$.[").is_err());
        assert!(compile("tables").is_err());
    }
}
