//! Columns as the sandbox's table schemas describe them: a name, a type ([`Kind`]), whether
//! it is required, and a title; with the columns every table shares.

/// How a column's values are typed, as the JSON Schema says it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// `integer`, `int64`.
    Int64,
    /// `integer`, `int32`.
    Int32,
    /// `number`, `float64`.
    Float64,
    /// `boolean`.
    Bool,
    /// `string` without `maxLength` (PostgreSQL `text`).
    Text,
    /// `string` with `maxLength`.
    Varchar(u32),
    /// `string` with `enum`.
    Enum(&'static [&'static str]),
    /// `string`, `date-time` (UTC, second precision here).
    Timestamp,
    /// A nested `object` with these properties: one JSON column in condensed mode, one column
    /// per property (`value.settings.x`) in expanded mode.
    Object(&'static [Field]),
}

/// A property of a nested object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// Property name.
    pub name: &'static str,
    /// Its type (never another object).
    pub kind: Kind,
}

/// A column of a table: `key.<name>` for the key, `value.<name>` for the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    /// Column (property) name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// In the schema's `required` list; otherwise the column is nullable.
    pub required: bool,
    /// The schema's `title`.
    pub title: &'static str,
}

pub(super) const fn col(
    name: &'static str,
    kind: Kind,
    required: bool,
    title: &'static str,
) -> Column {
    Column {
        name,
        kind,
        required,
        title,
    }
}

pub(super) const fn field(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

pub(super) const ID: Column = col(
    "id",
    Kind::Int64,
    true,
    "The unique identifier of the record. Primary key.",
);
pub(super) const CREATED: Column = col(
    "created_at",
    Kind::Timestamp,
    true,
    "Timestamp of when the record was created.",
);
pub(super) const UPDATED: Column = col(
    "updated_at",
    Kind::Timestamp,
    true,
    "Timestamp of when the record was last updated.",
);

/// The column a schema change adds (nullable, so it is additive).
pub(super) const ADDED: Column = col(
    "sandbox_added_note",
    Kind::Varchar(255),
    false,
    "A note added by a newer schema version (sandbox schema change).",
);
