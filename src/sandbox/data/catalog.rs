//! Which namespaces and tables exist, with each table's JSON Schema and version, and how long a
//! namespace keeps its changes.
//!
//! The catalog is data, not code: `src/sandbox/catalog/<namespace>.json` holds, for every table,
//! the schema the gateway's `GET /dap/query/{namespace}/table/{table}/schema` returns and its
//! version (written from Instructure's public dataset documentation; see the files' history).
//! The files are compiled in and parsed once, on first use, into [`TableSpec`]s whose columns
//! the data model reads.

use std::sync::LazyLock;

use serde_json::Value;

use super::column::{Column, Kind, Role, leak, required};

/// The catalog files, by namespace, in the order the gateway lists namespaces.
const FILES: &[(&str, &str)] = &[
    ("canvas", include_str!("../catalog/canvas.json")),
    ("canvas_logs", include_str!("../catalog/canvas_logs.json")),
    ("catalog", include_str!("../catalog/catalog.json")),
    ("new_quizzes", include_str!("../catalog/new_quizzes.json")),
];

/// A table as the catalog describes it: first schema version, key, value columns, schema.
#[derive(Debug)]
pub struct TableSpec {
    /// Table name.
    pub name: &'static str,
    /// Schema version before any sandbox schema change.
    pub version: u64,
    /// The key column.
    pub key: Column,
    /// The value columns, in schema order.
    pub columns: Vec<Column>,
    /// The JSON Schema the gateway serves.
    pub schema: Value,
}

struct Namespace {
    name: &'static str,
    names: Vec<&'static str>,
    tables: Vec<TableSpec>,
}

static CATALOG: LazyLock<Vec<Namespace>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, text)| {
            // The files are compiled in and every one is parsed by the unit tests.
            parse(name, text).unwrap_or_else(|problem| {
                panic!("bug: the sandbox catalog `{name}.json` cannot be read: {problem}")
            })
        })
        .collect()
});

fn parse(namespace: &'static str, text: &str) -> Result<Namespace, String> {
    let document: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let tables = document
        .get("tables")
        .and_then(Value::as_object)
        .ok_or("no `tables` object")?;
    let tables = tables
        .iter()
        .map(|(name, entry)| table(name, entry).map_err(|problem| format!("`{name}`: {problem}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Namespace {
        name: namespace,
        names: tables.iter().map(|table| table.name).collect(),
        tables,
    })
}

fn table(name: &str, entry: &Value) -> Result<TableSpec, String> {
    let version = entry
        .get("version")
        .and_then(Value::as_u64)
        .ok_or("no `version`")?;
    let schema = entry.get("schema").ok_or("no `schema`")?.clone();
    let definitions = schema.get("definitions").cloned().unwrap_or(Value::Null);
    let part = |part: &str| -> Result<Vec<Column>, String> {
        let node = &schema["properties"][part];
        let required = required(node);
        node.get("properties")
            .and_then(Value::as_object)
            .ok_or(format!("no `{part}` properties"))?
            .iter()
            .map(|(column, property)| {
                let kind = Kind::from_schema(property, &definitions)
                    .map_err(|problem| format!("column `{column}`: {problem}"))?;
                let kind: &'static Kind = Box::leak(Box::new(kind));
                Ok(Column {
                    name: leak(column),
                    kind,
                    required: required.contains(&column.as_str()),
                    role: Role::of(column, kind),
                })
            })
            .collect()
    };
    let mut keys = part("key")?;
    let key = match (keys.pop(), keys.is_empty()) {
        (Some(key), true) => key,
        _ => return Err("the sandbox models exactly one key column".to_owned()),
    };
    Ok(TableSpec {
        name: leak(name),
        version,
        key,
        columns: part("value")?,
        schema,
    })
}

/// The tables of `namespace` in listing order, or `None` for an unknown namespace.
pub fn tables(namespace: &str) -> Option<&'static [&'static str]> {
    CATALOG
        .iter()
        .find(|ns| ns.name == namespace)
        .map(|ns| ns.names.as_slice())
}

/// The catalog's description of `namespace.table`.
pub fn spec(namespace: &str, table: &str) -> Option<&'static TableSpec> {
    CATALOG
        .iter()
        .find(|ns| ns.name == namespace)?
        .tables
        .iter()
        .find(|spec| spec.name == table)
}

/// The namespaces, in the order the gateway documents them.
pub fn namespaces() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|ns| ns.name)
}

/// How long a namespace keeps its changes: incrementals with an older `since` are refused with
/// `OutOfRangeError` (`canvas_logs` keeps 30 days; the others are not limited here).
pub fn retention_seconds(namespace: &str) -> Option<i64> {
    (namespace == "canvas_logs").then_some(30 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_file_reads_and_every_enum_has_the_unspecified_member() {
        for (name, text) in FILES {
            let namespace = parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!namespace.tables.is_empty(), "{name}");
            for table in &namespace.tables {
                for column in std::iter::once(&table.key).chain(&table.columns) {
                    if let Kind::Enum(values) = column.kind {
                        assert!(
                            values.contains(&"__dap_unspecified__"),
                            "{name}.{}.{}",
                            table.name,
                            column.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn keys_are_not_always_id() {
        assert_eq!(
            spec("canvas", "enrollment_states").map(|t| t.key.name),
            Some("enrollment_id")
        );
        assert_eq!(
            spec("canvas_logs", "web_logs").map(|t| t.key.kind),
            Some(&Kind::Uuid)
        );
        assert!(tables("canvas").is_some_and(|t| t.contains(&"wikis")));
        assert!(tables("nope").is_none());
    }
}
