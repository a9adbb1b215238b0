//! What a key of the job file takes, said in the job file's words (`` `concurrency` must be a
//! whole number 1-256 ``) rather than serde's (`invalid type: string "eight", expected i64`).
//!
//! The words are read from the file's JSON Schema, generated from the raw model
//! ([`raw`](super::raw)) with the bounds and patterns of [`schema`](super::schema): the same
//! source as the schema editors use and the man page, so a key's bounds are written once.

use serde_json::Value as Json;

use super::schema;

/// What the value at `path` (keys, and `None` for a position in a list) must be, from the
/// schema of the job file (or of the project file, when `project`); `None` when the schema
/// says nothing more precise than serde (a value of `[vars]` can be anything).
pub fn expected(path: &[Option<&str>], project: bool) -> Option<String> {
    let root = serde_json::to_value(if project {
        schemars::schema_for!(super::raw::RawProject)
    } else {
        schemars::schema_for!(super::raw::RawJob)
    })
    .ok()?;
    let mut at = &root;
    for seg in path {
        let node = resolve(&root, at);
        at = match seg {
            Some(key) => node
                .get("properties")
                .and_then(|p| p.get(*key))
                .or_else(|| node.get("additionalProperties"))?,
            None => node.get("items")?,
        };
    }
    describe(&root, at)
}

/// What a value described by `schema` is, in words.
fn describe(root: &Json, schema: &Json) -> Option<String> {
    let s = resolve(root, schema);
    if let Some(alternatives) = s.get("anyOf").or_else(|| s.get("oneOf")) {
        let words: Vec<String> = alternatives
            .as_array()?
            .iter()
            .filter(|a| !is_null(a))
            .map(|a| describe(root, a))
            .collect::<Option<_>>()?;
        return (!words.is_empty()).then(|| words.join(" or "));
    }
    if s.get("properties").is_some() {
        return Some("a table".to_owned());
    }
    let kind = match s.get("type") {
        Some(Json::String(t)) => t.as_str(),
        Some(Json::Array(types)) => types
            .iter()
            .filter_map(Json::as_str)
            .find(|t| *t != "null")?,
        _ => return None,
    };
    Some(match kind {
        "integer" => {
            let min = s.get("minimum").and_then(Json::as_i64);
            let max = s.get("maximum").and_then(Json::as_i64);
            match (min, max) {
                (Some(a), Some(b)) => format!("a whole number {a}-{b}"),
                (Some(a), None) => format!("a whole number of at least {a}"),
                _ => "a whole number".to_owned(),
            }
        }
        "number" => "a number".to_owned(),
        "boolean" => "`true` or `false`".to_owned(),
        "string" => string(s),
        "array" => match s.get("items").map(|i| describe(root, i)) {
            Some(Some(item)) if item == "a table" => "a list of tables".to_owned(),
            Some(Some(item)) if item.starts_with("a string") => "a list of strings".to_owned(),
            _ => "a list".to_owned(),
        },
        "object" => "a table".to_owned(),
        _ => return None,
    })
}

/// A string key in words: its choices, or the shape its pattern asks for.
fn string(s: &Json) -> String {
    if let Some(choices) = s.get("enum").and_then(Json::as_array) {
        let choices: Vec<String> = choices
            .iter()
            .filter_map(Json::as_str)
            .map(|c| format!("`\"{c}\"`"))
            .collect();
        return format!("one of {}", choices.join(", "));
    }
    let pattern = s.get("pattern").and_then(Json::as_str);
    let of = |transform: fn(&mut schemars::Schema)| {
        let mut probe = schemars::Schema::default();
        transform(&mut probe);
        probe
            .get("pattern")
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    if pattern.is_some() && pattern.map(str::to_owned) == of(schema::duration) {
        return "a duration in quotes, such as `\"30s\"` or `\"2h\"`".to_owned();
    }
    if pattern.is_some() && pattern.map(str::to_owned) == of(schema::duration_range) {
        return "a duration or a range in quotes, such as `\"2s\"` or `\"500ms..30s\"`".to_owned();
    }
    if pattern == Some(schema::IDENTIFIER) {
        return "a name in quotes (letters, digits and `_`)".to_owned();
    }
    "a string in quotes".to_owned()
}

fn is_null(schema: &Json) -> bool {
    schema.get("type").and_then(Json::as_str) == Some("null")
}

/// The schema a `$ref` points at, or an `Option`'s one alternative (`anyOf` it and `null`),
/// or the schema itself.
fn resolve<'a>(root: &'a Json, schema: &'a Json) -> &'a Json {
    let mut at = schema;
    loop {
        if let Some(target) = at
            .get("$ref")
            .and_then(Json::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|r| root.pointer(r))
        {
            at = target;
            continue;
        }
        let alternatives: Vec<&Json> = at
            .get("anyOf")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter(|s| !is_null(s)).collect())
            .unwrap_or_default();
        match alternatives.as_slice() {
            [only] if at.get("anyOf").and_then(Json::as_array).map(Vec::len) == Some(2) => {
                at = only;
            }
            _ => return at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(path: &[Option<&str>]) -> Option<String> {
        expected(path, false)
    }

    #[test]
    fn keys_in_the_job_files_words() {
        let step = |key| job(&[Some("step"), None, Some(key)]);
        assert_eq!(step("concurrency").unwrap(), "a whole number 1-256");
        assert_eq!(
            job(&[Some("defaults"), Some("concurrency")]).unwrap(),
            "a whole number 1-256"
        );
        assert_eq!(
            job(&[Some("step"), None, Some("download"), Some("concurrency")]).unwrap(),
            "a whole number 1-64"
        );
        assert_eq!(
            job(&[Some("gateway"), Some("retry"), Some("attempts")]).unwrap(),
            "a whole number 1-100"
        );
        assert_eq!(
            job(&[Some("gateway"), Some("timeout")]).unwrap(),
            "a duration in quotes, such as `\"30s\"` or `\"2h\"`"
        );
        assert_eq!(
            job(&[Some("gateway"), Some("token_cache")]).unwrap(),
            "`true` or `false` or a string in quotes"
        );
        assert_eq!(
            job(&[Some("gateway"), Some("auth")]).unwrap(),
            "one of `\"client_credentials\"`, `\"inst_access\"`"
        );
        assert_eq!(job(&[Some("gateway")]).unwrap(), "a table");
        assert_eq!(job(&[Some("step")]).unwrap(), "a list of tables");
        assert_eq!(step("get").unwrap(), "a string in quotes");
        assert_eq!(
            step("id").unwrap(),
            "a name in quotes (letters, digits and `_`)"
        );
        assert_eq!(
            job(&[Some("step"), None, Some("download"), Some("decompress")]).unwrap(),
            "`true` or `false`"
        );
        // A variable's value can be anything.
        assert_eq!(job(&[Some("vars"), Some("x")]), None);
        assert_eq!(
            expected(&[Some("gateway"), Some("timeout")], true).unwrap(),
            "a duration in quotes, such as `\"30s\"` or `\"2h\"`"
        );
    }
}
