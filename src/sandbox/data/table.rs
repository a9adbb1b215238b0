//! A table's layout at some time ([`Table`]: key, columns, schema version) and the schema
//! changes that add a column from a given time on; with the JSON Schema the gateway serves.

use super::catalog::TableSpec;
use super::column::{ADDED, Column, added_schema};

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
#[derive(Clone, Debug)]
pub struct Table {
    /// Namespace.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// The key column (`key.<name>`).
    pub key: Column,
    /// Value columns, in schema order.
    pub columns: Vec<Column>,
    /// Schema version.
    pub version: u64,
    /// When the schema change that added the last column took effect, if one did.
    pub changed_at: Option<i64>,
    pub(super) seed: u64,
    pub(super) spec: &'static TableSpec,
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        (&self.namespace, &self.name, &self.key, &self.columns)
            == (&other.namespace, &other.name, &other.key, &other.columns)
            && (self.version, self.changed_at, self.seed)
                == (other.version, other.changed_at, other.seed)
    }
}

impl Table {
    /// The JSON Schema of the table's records, as the gateway serves it: the catalog's schema,
    /// with the column a schema change added.
    pub fn schema(&self) -> serde_json::Value {
        let mut schema = self.spec.schema.clone();
        if self.columns.iter().any(|column| column.name == ADDED.name) {
            let value = &mut schema["properties"]["value"]["properties"];
            if let Some(properties) = value.as_object_mut() {
                properties.insert(ADDED.name.to_owned(), added_schema());
            }
        }
        schema
    }
}
