//! JSONPath outputs: compiled once at validation, applied to each response.
//!
//! One value or a list: a path made only of names and indexes (`$.id`, `$.objects[0].id`)
//! selects at most one value, and its output is that value. A path with a wildcard, slice,
//! filter, union or `..` can select several, and its output is always a list, even of one.
//! A path that matches nothing is an error unless the output is optional (then `none`, or
//! `[]` for a list path).

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value as Json;

use crate::job::model::Output;

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
    match jsonpath_rust::query::js_path_process(q, value) {
        Ok(refs) => refs.into_iter().map(|r| r.val()).collect(),
        Err(_) => Vec::new(),
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

/// Applies one output to a response body.
pub fn apply(output: &Output, body: &Json) -> Result<Json, NoMatch> {
    let found = select(&output.query, body);
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

    #[test]
    fn bad_paths_do_not_compile() {
        assert!(compile("$.[").is_err());
        assert!(compile("tables").is_err());
    }
}
