//! JSONPath outputs: compiled once at validation, applied to each response.
//!
//! One value or a list: a path made only of names and indexes (`$.id`, `$.objects[0].id`)
//! selects at most one value, and its output is that value. A path with a wildcard, slice,
//! filter, union or `..` can select several, and its output is always a list, even of one.
//! A path that matches nothing is an error unless the output is optional (then `none`, or
//! `[]` for a list path).
//!
//! A response can be large (tens of MB), and an output can select most of it (`$.objects`).
//! [`outputs`] therefore moves a single-value output out of the parsed response instead of
//! copying it, whenever nothing else still needs that part; everything else is copied from
//! the (borrowed) response first. The response is consumed in the process.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value as Json;

/// A JSON value for a message, cut at 300 characters.
pub fn short_json(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    } else {
        s
    }
}

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

/// One step from the root towards a value: an object member or an array position.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Name(String),
    Index(usize),
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

fn take(body: &mut Json, route: &[Route]) -> Option<Json> {
    let mut at = body;
    for step in route {
        at = match step {
            Route::Name(n) => at.as_object_mut()?.get_mut(n.as_str())?,
            Route::Index(i) => at.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(at.take())
}

/// Applies every output of a step to its response, in order, without copying what can be
/// moved: a single-value output is taken out of `body` (leaving `null` there) unless another
/// output selects inside it or the same value; the others are copied. On an error nothing has
/// been taken, so `body` is whole for the message. After success `body` has holes: do not
/// read it again.
pub fn outputs(
    outputs: &[Output],
    body: &mut Json,
) -> Result<serde_json::Map<String, Json>, NoMatch> {
    // First every copy and every check, while the body is whole.
    let mut values: Vec<Option<Json>> = Vec::with_capacity(outputs.len());
    let mut routes: Vec<Option<Vec<Route>>> = Vec::with_capacity(outputs.len());
    for output in outputs {
        let found = select(&output.query, body);
        let movable = match found.first() {
            Some(first) if !output.many => route(&output.query, body).filter(|r| {
                // The route must lead to what the JSONPath engine selected; if the two ever
                // disagree, copy what the engine selected.
                take_ref(body, r).is_some_and(|v| std::ptr::eq(v, *first))
            }),
            _ => None,
        };
        if movable.is_some() {
            values.push(None);
            routes.push(movable);
            continue;
        }
        values.push(Some(finish(output, found)?));
        routes.push(None);
    }
    // Then the moves, deepest first: a value is moved only when no output still to be taken
    // selects the same value or one that contains it (that one copies instead).
    let mut order: Vec<usize> = (0..outputs.len())
        .filter(|&i| routes[i].is_some())
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(routes[i].as_ref().map_or(0, Vec::len)));
    for (n, &i) in order.iter().enumerate() {
        let mine = routes[i].as_deref().unwrap_or_default();
        let shared = order[n + 1..].iter().any(|&j| {
            let theirs = routes[j].as_deref().unwrap_or_default();
            mine.starts_with(theirs)
        });
        values[i] = if shared {
            take_ref(body, mine).cloned()
        } else {
            take(body, mine)
        };
    }
    Ok(outputs
        .iter()
        .zip(values)
        .map(|(o, v)| (o.name.clone(), v.unwrap_or(Json::Null)))
        .collect())
}

fn take_ref<'a>(body: &'a Json, route: &[Route]) -> Option<&'a Json> {
    let mut at = body;
    for step in route {
        at = match step {
            Route::Name(n) => at.as_object()?.get(n.as_str())?,
            Route::Index(i) => at.as_array()?.get(*i)?,
        };
    }
    Some(at)
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

    #[test]
    fn issue_15_outputs_equal_copies_whatever_overlaps() {
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
            let mut taken = body.clone();
            let got = outputs(&outs, &mut taken).unwrap();
            for o in &outs {
                assert_eq!(got[&o.name], apply(o, &body).unwrap(), "{}", o.path);
            }
            assert_eq!(
                got.keys().cloned().collect::<Vec<_>>(),
                outs.iter().map(|o| o.name.clone()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn issue_15_an_output_used_once_is_moved_not_copied() {
        let mut body = json!({"status": "complete", "objects": [{"id": "a"}, {"id": "b"}]});
        let outs = [
            named("ids", "$.objects[*].id", false),
            named("objects", "$.objects", false),
            named("status", "$.status", false),
        ];
        let got = outputs(&outs, &mut body).unwrap();
        assert_eq!(got["objects"], json!([{"id": "a"}, {"id": "b"}]));
        assert_eq!(got["ids"], json!(["a", "b"]));
        // Taken out of the response, not copied: the response is left with holes.
        assert_eq!(body, json!({"status": null, "objects": null}));
    }

    #[test]
    fn issue_15_a_missing_output_fails_before_anything_is_taken() {
        let mut body = json!({"objects": [1, 2]});
        let outs = [
            named("objects", "$.objects", false),
            named("id", "$.id", false),
        ];
        let err = outputs(&outs, &mut body).unwrap_err();
        assert_eq!(err.name, "id");
        assert_eq!(body, json!({"objects": [1, 2]}));
    }

    #[test]
    fn issue_15_plain_paths_select_what_the_jsonpath_engine_selects() {
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
