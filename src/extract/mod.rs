//! JSONPath outputs: compiled once at validation, applied to each answer.
//!
//! One value or a list: a path made only of names and indexes (`$.id`, `$.objects[0].id`)
//! selects at most one value, and its output is that value. A path with a wildcard, slice,
//! filter, union or `..` can select several, and its output is always a list, even of one.
//! A path that matches nothing is an error unless the output is optional (then `none`, or
//! `[]` for a list path).
//!
//! An answer can be large (tens of MB), and an output can select most of it (`$.objects`).
//! So the answer is parsed once, only as far as the paths read ([`parse`]); [`outputs`] then
//! moves each value out of the parsed answer instead of copying it, and an output inside
//! another one (`$.objects[0].id` beside `$.objects`) is a view of it; only a list path copies
//! what it selects. Every output is a [`SharedJson`]: the records, reports and templates all
//! read the same tree.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value as Json;

mod excerpt;
pub mod parse;
mod shared;

pub use excerpt::{excerpt, short_json};
use shared::walk;
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
    let plain = q.segments.iter().all(|s| {
        matches!(
            s,
            Segment::Selector(Selector::Name(_) | Selector::Index(_) | Selector::Wildcard)
        )
    });
    if !plain {
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

/// Where a path made only of names and indexes leads in `body`, if it leads anywhere.
fn route(q: &JpQuery, body: &Json) -> Option<Vec<Route>> {
    let mut at = body;
    let mut route = Vec::with_capacity(q.segments.len());
    for segment in &q.segments {
        match segment {
            Segment::Selector(Selector::Name(n)) => {
                at = at.as_object()?.get(n.as_str())?;
                route.push(Route::Name(n.clone()));
            }
            Segment::Selector(Selector::Index(i)) => {
                let items = at.as_array()?;
                let i = if *i < 0 {
                    items.len().checked_sub(i.unsigned_abs() as usize)?
                } else {
                    *i as usize
                };
                at = items.get(i)?;
                route.push(Route::Index(i));
            }
            _ => return None,
        }
    }
    Some(route)
}

fn take(body: &mut Json, route: &[Route]) -> Json {
    let mut at = body;
    for step in route {
        let next = match step {
            Route::Name(n) => at.as_object_mut().and_then(|m| m.get_mut(n.as_str())),
            Route::Index(i) => at.as_array_mut().and_then(|a| a.get_mut(*i)),
        };
        match next {
            Some(v) => at = v,
            None => return Json::Null,
        }
    }
    at.take()
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

/// Applies every output of a step to its parsed answer, without copying what can be shared.
/// A single-value path's value is moved out of `body` (the outermost of those that contain
/// one another: an inner one is a view of it); a list path copies what it selects, before
/// anything is moved. Every value is scrubbed of registered secrets (a server that echoes the
/// token must not get it into files or reports).
pub fn outputs(outputs: &[Output], mut body: Json) -> Extracted {
    enum Plan {
        At(Vec<Route>),
        Copy(Json),
    }
    // First every copy and every check, while the body is whole.
    let mut missing = None;
    let mut plans = Vec::with_capacity(outputs.len());
    for output in outputs {
        let found = select(&output.query, &body);
        if found.is_empty() && !output.optional {
            missing.get_or_insert_with(|| NoMatch {
                name: output.name.clone(),
                path: output.path.clone(),
            });
            plans.push(Plan::Copy(Json::Null));
            continue;
        }
        let at = match found.first() {
            Some(first) if !output.many => route(&output.query, &body).filter(|r| {
                // The route must lead to what the JSONPath engine selected; if the two ever
                // disagree, copy what the engine selected.
                walk(&body, r).is_some_and(|v| std::ptr::eq(v, *first))
            }),
            _ => None,
        };
        plans.push(match at {
            Some(r) => Plan::At(r),
            None => Plan::Copy(finish(output, found).unwrap_or(Json::Null)),
        });
    }
    // Then the moves: a route that no other route contains is moved out (the first of equal
    // ones); the others are views of the one that contains them.
    let routes: Vec<Option<&Vec<Route>>> = plans
        .iter()
        .map(|p| match p {
            Plan::At(r) => Some(r),
            Plan::Copy(_) => None,
        })
        .collect();
    let owner = |i: usize| -> usize {
        let mine = routes[i].map_or(&[][..], Vec::as_slice);
        (0..routes.len())
            .filter_map(|j| routes[j].map(|r| (j, r)))
            .filter(|(_, r)| mine.starts_with(r))
            .min_by_key(|(j, r)| (r.len(), *j))
            .map_or(i, |(j, _)| j)
    };
    let mut shared: Vec<Option<SharedJson>> = vec![None; plans.len()];
    for i in 0..plans.len() {
        if routes[i].is_some() && owner(i) == i {
            let mut v = take(&mut body, routes[i].map_or(&[][..], Vec::as_slice));
            crate::secret::redact_json_in_place(&mut v);
            shared[i] = Some(SharedJson::new(v));
        }
    }
    for i in 0..plans.len() {
        if let (Some(mine), None) = (routes[i], &shared[i]) {
            let o = owner(i);
            let theirs = routes[o].map_or(0, Vec::len);
            shared[i] = shared[o].as_ref().and_then(|s| s.within(&mine[theirs..]));
        }
    }
    drop(body);
    let values = outputs
        .iter()
        .zip(plans)
        .zip(shared)
        .map(|((o, plan), shared)| {
            let value = match (shared, plan) {
                (Some(s), _) => s,
                (None, Plan::Copy(mut v)) => {
                    crate::secret::redact_json_in_place(&mut v);
                    SharedJson::new(v)
                }
                (None, Plan::At(_)) => SharedJson::new(Json::Null),
            };
            (o.name.clone(), value)
        })
        .collect();
    Extracted { values, missing }
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

    #[test]
    fn outputs_equal_copies_whatever_overlaps() {
        let body = json!({
            "id": "j1",
            "objects": [{"id": "a", "n": {"x": 1}}, {"id": "b", "n": {"x": 2}}],
            "meta": {"k": [1, 2, 3]},
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
            let got = outputs(&outs, body.clone());
            assert!(got.missing.is_none());
            for o in &outs {
                assert_eq!(
                    value(&got, &o.name).json(),
                    &apply(o, &body).unwrap(),
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
    fn an_output_inside_another_shares_its_value_instead_of_copying_it() {
        let body = json!({"status": "complete", "objects": [{"id": "a"}, {"id": "b"}]});
        let outs = [
            named("first", "$.objects[0]", false),
            named("ids", "$.objects[*].id", false),
            named("objects", "$.objects", false),
            named("again", "$.objects", false),
            named("status", "$.status", false),
        ];
        let got = outputs(&outs, body);
        let objects = value(&got, "objects");
        assert_eq!(objects.json(), &json!([{"id": "a"}, {"id": "b"}]));
        assert!(value(&got, "first").shares_tree_with(objects));
        assert!(value(&got, "again").shares_tree_with(objects));
        assert_eq!(value(&got, "first").json(), &json!({"id": "a"}));
        // A list path's values are its own (copied), the others' trees are not shared.
        assert_eq!(value(&got, "ids").json(), &json!(["a", "b"]));
        assert!(!value(&got, "ids").shares_tree_with(objects));
        assert!(!value(&got, "status").shares_tree_with(objects));
    }

    #[test]
    fn a_missing_output_is_named_and_null() {
        let outs = [
            named("objects", "$.objects", false),
            named("id", "$.id", false),
            named("maybe", "$.maybe[*]", true),
        ];
        let got = outputs(&outs, json!({"objects": [1, 2]}));
        assert_eq!(got.missing.as_ref().map(|m| m.name.as_str()), Some("id"));
        assert_eq!(value(&got, "objects").json(), &json!([1, 2]));
        assert_eq!(value(&got, "id").json(), &Json::Null);
        assert_eq!(value(&got, "maybe").json(), &json!([]));
    }

    #[test]
    fn outputs_are_scrubbed_of_secrets() {
        let _s = crate::secret::Secret::new("tok-output-5e6f");
        let outs = [
            named("all", "$.echo", false),
            named("inner", "$.echo.token", false),
            named("list", "$.echo.*", false),
        ];
        let got = outputs(&outs, json!({"echo": {"token": "tok-output-5e6f"}}));
        assert_eq!(value(&got, "all").json(), &json!({"token": "***"}));
        assert_eq!(value(&got, "inner").json(), &json!("***"));
        assert_eq!(value(&got, "list").json(), &json!(["***"]));
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
