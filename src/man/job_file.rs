//! The man page's JOB FILE section, made from the job file's model: every table and key of
//! [`RawJob`](crate::job::raw::RawJob) with its `///` description, read from the JSON Schema
//! generated from it (the same one editors use). A key added to the model is in the man page
//! without anyone writing it there.

use serde_json::Value as Json;

/// One table of the job file: its heading (`[gateway]`, `[[step]]`, `step.poll`) and its keys,
/// each with its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// How the job file writes it.
    pub heading: String,
    /// What it is for.
    pub description: String,
    /// Its keys, in the model's order, each with what it does.
    pub keys: Vec<(String, String)>,
}

/// The job file's tables, the top level first, each followed by the tables inside it.
pub fn tables() -> Vec<Table> {
    let schema =
        serde_json::to_value(schemars::schema_for!(crate::job::raw::RawJob)).unwrap_or_default();
    let mut out = Vec::new();
    walk(&schema, &schema, "", false, &mut out);
    out
}

/// Adds the table `node` (and the tables inside it) to `out`; `path` is how the job file
/// names it (`""` for the top level), `array` whether it is an array of tables.
fn walk(root: &Json, node: &Json, path: &str, array: bool, out: &mut Vec<Table>) {
    let Some(properties) = node.get("properties").and_then(Json::as_object) else {
        return;
    };
    let heading = match (path, array) {
        ("", _) => "top level".to_owned(),
        (p, true) => format!("[[{p}]]"),
        (p, false) if p.contains('.') && !p.starts_with("gateway") => format!("`{p}`"),
        (p, false) => format!("[{p}]"),
    };
    let mut table = Table {
        heading,
        description: text(node.get("description")),
        keys: Vec::new(),
    };
    let mut inner = Vec::new();
    for (key, prop) in properties {
        let mut description = text(prop.get("description"));
        let named = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        if let Some((sub, is_array)) = table_of(root, prop) {
            if description.is_empty() {
                description = text(sub.get("description"));
            }
            inner.push((sub, named(key), is_array));
        } else if let Some(sub) = map_of_tables(root, prop) {
            // A map whose values may be tables (`outputs`: `name = { path, optional }`).
            inner.push((sub, format!("{}.NAME", named(key)), false));
        }
        table.keys.push((key.clone(), description));
    }
    out.push(table);
    for (sub, sub_path, is_array) in inner {
        walk(root, sub, &sub_path, is_array, out);
    }
}

/// The table a key holds (with whether it is an array of them), following `$ref`, `anyOf`
/// (an `Option`) and `items`; `None` for a value or a map of values (`[vars]`).
fn table_of<'a>(root: &'a Json, prop: &'a Json) -> Option<(&'a Json, bool)> {
    let resolved = resolve(root, prop);
    if resolved.get("properties").is_some() {
        return Some((resolved, false));
    }
    if let Some(items) = resolved.get("items") {
        let item = resolve(root, items);
        if item.get("properties").is_some() {
            return Some((item, true));
        }
    }
    if let Some(any) = resolved.get("anyOf").and_then(Json::as_array) {
        return any.iter().find_map(|alt| table_of(root, alt));
    }
    None
}

/// The table the values of a map may be (`outputs = { name = { path = … } }`), following
/// `additionalProperties`; `None` for a map of plain values (`[vars]`, `headers`).
fn map_of_tables<'a>(root: &'a Json, prop: &'a Json) -> Option<&'a Json> {
    let resolved = resolve(root, prop);
    let values = resolved.get("additionalProperties")?;
    table_of(root, values).map(|(table, _)| table).or_else(|| {
        resolved
            .get("anyOf")
            .and_then(Json::as_array)?
            .iter()
            .find_map(|alt| map_of_tables(root, alt))
    })
}

/// The schema a `$ref` points at (one level), or the schema itself.
fn resolve<'a>(root: &'a Json, schema: &'a Json) -> &'a Json {
    schema
        .get("$ref")
        .and_then(Json::as_str)
        .and_then(|r| r.strip_prefix("#/"))
        .and_then(|r| root.pointer(&format!("/{r}")))
        .unwrap_or(schema)
}

/// A description as one paragraph.
fn text(v: Option<&Json>) -> String {
    v.and_then(Json::as_str)
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of every raw struct is a key of its table, so the man page has them all;
    /// the field lists come from serde's derive, not from the schema.
    #[test]
    fn every_key_of_the_model_is_described() {
        use crate::job::raw::*;
        let tables = tables();
        let keys = |heading: &str| -> Vec<String> {
            let t = tables
                .iter()
                .find(|t| t.heading == heading)
                .unwrap_or_else(|| panic!("no table {heading}: {tables:#?}"));
            for (k, d) in &t.keys {
                assert!(!d.is_empty(), "{heading} {k} has no description");
            }
            t.keys.iter().map(|(k, _)| k.clone()).collect()
        };
        for (heading, fields) in [
            ("top level", crate::job::load::fields::<RawJob>()),
            ("[gateway]", crate::job::load::fields::<RawGateway>()),
            ("[gateway.retry]", crate::job::load::fields::<RawRetry>()),
            ("[database]", crate::job::load::fields::<RawDatabase>()),
            ("[defaults]", crate::job::load::fields::<RawDefaults>()),
            ("[[step]]", crate::job::load::fields::<RawStep>()),
            ("`step.load`", crate::job::load::fields::<RawLoad>()),
            ("`step.poll`", crate::job::load::fields::<RawPoll>()),
            ("`step.download`", crate::job::load::fields::<RawDownload>()),
        ] {
            let mut want: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            let mut have = keys(heading);
            want.sort();
            have.sort();
            assert_eq!(have, want, "{heading}");
        }
        // The inline tables a `check` or a `save` can be (schema-only shapes).
        assert_eq!(keys("`step.check`"), ["that", "message"]);
        assert_eq!(keys("`step.save`"), ["to", "output"]);
        // An output's table form, a value of the `outputs` map.
        assert_eq!(keys("`step.outputs.NAME`"), ["path", "optional"]);
        assert_eq!(tables.len(), 12, "{tables:#?}");
    }
}
