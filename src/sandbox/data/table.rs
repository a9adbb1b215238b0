//! A table's layout at some time ([`Table`]: key, columns, schema version) and the schema
//! changes that add a column from a given time on; with the JSON Schema the gateway serves.

use super::column::{Column, Kind};

/// A schema change: from `at` (Unix seconds, sandbox clock) on, `namespace.table` has one more
/// schema version with one more nullable column, `sandbox_added_note`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaChange {
    /// Namespace of the table.
    pub namespace: String,
    /// The table that changes.
    pub table: String,
    /// When the new version takes effect (Unix seconds).
    pub at: i64,
}

/// The layout of a table at some time: its key, columns and schema version.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Namespace.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// The key column (`key.id`).
    pub key: Column,
    /// Value columns, in schema order.
    pub columns: Vec<Column>,
    /// Schema version.
    pub version: u64,
    /// When the schema change that added the last column took effect, if one did.
    pub changed_at: Option<i64>,
    pub(super) seed: u64,
}

impl Table {
    /// The JSON Schema of the table's records, shaped like DAP's (`$schema`, `key`, `value`,
    /// `meta`, `additionalProperties: false` everywhere), which the official client parses
    /// strictly.
    pub fn schema(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        fn kind_schema(kind: Kind, title: Option<&str>) -> Value {
            let mut node = match kind {
                Kind::Int64 => json!({"type": "integer", "format": "int64"}),
                Kind::Int32 => json!({"type": "integer", "format": "int32"}),
                Kind::Float64 => json!({"type": "number", "format": "float64"}),
                Kind::Bool => json!({"type": "boolean"}),
                Kind::Text => json!({"type": "string"}),
                Kind::Varchar(max) => json!({"type": "string", "maxLength": max}),
                Kind::Enum(values) => json!({"type": "string", "enum": values}),
                Kind::Timestamp => json!({"type": "string", "format": "date-time"}),
                Kind::Object(fields) => {
                    let properties: Map<String, Value> = fields
                        .iter()
                        .map(|field| (field.name.to_owned(), kind_schema(field.kind, None)))
                        .collect();
                    json!({"type": "object", "properties": properties, "additionalProperties": false})
                }
            };
            if let (Some(title), Some(fields)) = (title, node.as_object_mut()) {
                fields.insert("title".to_owned(), json!(title));
            }
            node
        }
        let object = |columns: &[Column]| {
            let properties: Map<String, Value> = columns
                .iter()
                .map(|column| {
                    (
                        column.name.to_owned(),
                        kind_schema(column.kind, Some(column.title)),
                    )
                })
                .collect();
            let required: Vec<&str> = columns
                .iter()
                .filter(|column| column.required)
                .map(|column| column.name)
                .collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        };
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": format!("The `{}` table of the `{}` namespace.", self.name, self.namespace),
            "properties": {
                "key": object(std::slice::from_ref(&self.key)),
                "value": object(&self.columns),
                "meta": {
                    "type": "object",
                    "properties": {
                        "action": {
                            "type": "string",
                            "enum": ["U", "D"],
                            "title": "`U` for an insert or update, `D` for a delete."
                        },
                        "ts": {
                            "type": "string",
                            "format": "date-time",
                            "title": "When the change was recorded."
                        }
                    },
                    "required": ["action", "ts"],
                    "additionalProperties": false
                }
            },
            "required": ["key", "meta"],
            "additionalProperties": false,
        })
    }
}
