//! What a query job's data is made of: records ([`Record`], a `U` upsert or a `D` delete,
//! each of [`Cell`]s) and the window a job covers ([`Window`]: a snapshot or a range of
//! changes).

use std::borrow::Cow;

use super::table::Table;
use super::time::{clock, date, timestamp};

/// Insert/update or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `U`: the row with these values (an insert or an update).
    Upsert,
    /// `D`: the key no longer exists; only the key is given.
    Delete,
}

/// One value of a record.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// No value (`NULL`; omitted in JSON Lines).
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number (always finite).
    Float(f64),
    /// An exact decimal: `units` × 10^-`scale`.
    Decimal {
        /// The value in units of the last digit.
        units: i64,
        /// Digits after the point.
        scale: u8,
    },
    /// A boolean.
    Bool(bool),
    /// A string (enums included); borrowed when it comes from a fixed pool.
    Text(Cow<'static, str>),
    /// A `date-time`, in Unix seconds (UTC).
    Time(i64),
    /// A `date`, in days since 1970-01-01.
    Date(i64),
    /// A `time` of day, in seconds since midnight (UTC).
    Clock(u32),
    /// A `uuid`.
    Uuid(u128),
    /// An `ipv4` address.
    Ipv4(u32),
    /// A nested object or an array.
    Json(serde_json::Value),
}

impl Cell {
    /// The value as JSON (`null` for [`Cell::Null`], RFC 3339 for times, the usual text forms
    /// for dates, UUIDs and addresses).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Int(value) => (*value).into(),
            Cell::Float(value) => (*value).into(),
            Cell::Decimal { units, scale } => {
                (*units as f64 / 10_f64.powi(i32::from(*scale))).into()
            }
            Cell::Bool(value) => (*value).into(),
            Cell::Text(value) => value.as_ref().into(),
            Cell::Time(value) => timestamp(*value).into(),
            Cell::Date(days) => date(*days).into(),
            Cell::Clock(seconds) => clock(*seconds).into(),
            Cell::Uuid(bits) => uuid_text(*bits).into(),
            Cell::Ipv4(address) => ipv4_text(*address).into(),
            Cell::Json(value) => value.clone(),
        }
    }
}

/// A row (or a delete) as the gateway sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// `U` or `D`.
    pub action: Action,
    /// The key (`key.<name>`).
    pub key: Cell,
    /// The value columns in the table's order; empty for a delete.
    pub values: Vec<Cell>,
    /// When the change happened (`meta.ts`).
    pub ts: i64,
}

impl Record {
    /// The record as one JSON Lines object: `{"key": ..., "value": ..., "meta": ...}`, nulls
    /// omitted, no `value` for a delete.
    pub fn to_json(&self, table: &Table) -> serde_json::Value {
        let mut line = serde_json::Map::new();
        line.insert(
            "key".to_owned(),
            serde_json::json!({ table.key.name: self.key.to_json() }),
        );
        if self.action == Action::Upsert {
            let value: serde_json::Map<String, serde_json::Value> = table
                .columns
                .iter()
                .zip(&self.values)
                .filter(|(_, cell)| **cell != Cell::Null)
                .map(|(column, cell)| (column.name.to_owned(), cell.to_json()))
                .collect();
            line.insert("value".to_owned(), value.into());
        }
        let action = match self.action {
            Action::Upsert => "U",
            Action::Delete => "D",
        };
        line.insert(
            "meta".to_owned(),
            serde_json::json!({"action": action, "ts": timestamp(self.ts)}),
        );
        line.into()
    }
}

/// What a query job covers: a snapshot at a time, or the changes in `[since, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The table as it is at this time.
    Snapshot(i64),
    /// The changes with `since <= time < until`.
    Changes(i64, i64),
}

impl Window {
    /// The time whose schema the job's data follows: the snapshot's `at` or the `until`.
    pub fn end(self) -> i64 {
        match self {
            Window::Snapshot(at) | Window::Changes(_, at) => at,
        }
    }
}

/// Hyphenated lowercase hex.
pub(crate) fn uuid_text(bits: u128) -> String {
    let mut text = String::with_capacity(36);
    write_uuid(&mut text, bits);
    text
}

/// Appends `bits` as a hyphenated lowercase UUID.
pub(crate) fn write_uuid(out: &mut String, bits: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (index, byte) in bits.to_be_bytes().iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
}

/// Dotted quad.
pub(crate) fn ipv4_text(address: u32) -> String {
    std::net::Ipv4Addr::from(address).to_string()
}
