//! How records are written in each output format, as the official client parses them.
//!
//! - `jsonl`: one JSON object a line, `{"key": ..., "value": ..., "meta": {"action", "ts"}}`,
//!   nulls omitted, a delete without `value`.
//! - `tsv`: PostgreSQL `COPY` text format, a header line of column names (`key.id`,
//!   `value.name`, ..., then `meta.action` for incrementals and `meta.ts`). `\N` is NULL;
//!   backslash, tab, newline and carriage return are escaped as `\\`, `\t`, `\n`, `\r`;
//!   timestamps are `YYYY-MM-DDThh:mm:ssZ`; nested objects are one JSON column. A snapshot has
//!   no `meta.action` column: the official client's `initdb` reads snapshots with a column map
//!   that has no place for it (`dap/replicator/sql_op_init.py`), `syncdb` requires it.
//! - `csv`: the same columns, RFC 4180 quoting; NULL is an unquoted `NULL`, a missing value (the
//!   value columns of a delete) an empty field, so an empty string or the text `NULL` is quoted.
//!
//! `mode = "condensed"` keeps a nested object as one JSON column; `expanded` (the default)
//! gives each of its properties a column (`value.settings.hide_final_grade`). JSON Lines is the
//! same in both modes.

use std::fmt::Write as _;

use super::data::{
    Action, Cell, Kind, Record, Table, write_clock, write_date, write_timestamp, write_uuid,
};

/// Output format of a query job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jsonl,
    Csv,
    Tsv,
}

impl Format {
    /// The format named in a query; `parquet` is refused by the caller.
    pub(crate) fn parse(text: &str) -> Option<Format> {
        match text {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            _ => None,
        }
    }

    /// File name suffix of an object in this format.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Format::Jsonl => "json.gz",
            Format::Csv => "csv.gz",
            Format::Tsv => "tsv.gz",
        }
    }
}

/// Where a tabular column's value comes from.
#[derive(Clone, Debug)]
struct Source {
    label: String,
    /// Index into the record's values; `None` for the key.
    column: Option<usize>,
    /// A property of a nested object (expanded mode).
    property: Option<&'static str>,
}

/// Writes records of one table in one format.
///
/// Arrays, objects and JSON documents are JSON text in a TSV or CSV cell; dates, UUIDs and
/// IPv4 addresses their usual text forms; decimals all their digits.
#[derive(Clone, Debug)]
pub(crate) struct Encoder {
    format: Format,
    table: Table,
    sources: Vec<Source>,
    incremental: bool,
}

impl Encoder {
    pub(crate) fn new(format: Format, condensed: bool, incremental: bool, table: Table) -> Encoder {
        let mut sources = vec![Source {
            label: format!("key.{}", table.key.name),
            column: None,
            property: None,
        }];
        for (index, column) in table.columns.iter().enumerate() {
            match column.kind {
                Kind::Object(fields) if !condensed => {
                    sources.extend(fields.iter().map(|field| Source {
                        label: format!("value.{}.{}", column.name, field.name),
                        column: Some(index),
                        property: Some(field.name),
                    }));
                }
                _ => sources.push(Source {
                    label: format!("value.{}", column.name),
                    column: Some(index),
                    property: None,
                }),
            }
        }
        Encoder {
            format,
            table,
            sources,
            incremental,
        }
    }

    /// The header line (newline included), if the format has one.
    pub(crate) fn header(&self) -> Option<String> {
        let separator = match self.format {
            Format::Jsonl => return None,
            Format::Csv => ",",
            Format::Tsv => "\t",
        };
        let mut labels: Vec<&str> = self.sources.iter().map(|s| s.label.as_str()).collect();
        if self.incremental {
            labels.push("meta.action");
        }
        labels.push("meta.ts");
        Some(labels.join(separator) + "\n")
    }

    /// Appends `record` as one line, newline included.
    pub(crate) fn write(&self, record: &Record, out: &mut String) {
        match self.format {
            Format::Jsonl => {
                let line = record.to_json(&self.table);
                let _ = writeln!(out, "{line}");
            }
            Format::Tsv | Format::Csv => self.write_tabular(record, out),
        }
    }

    fn write_tabular(&self, record: &Record, out: &mut String) {
        let tsv = self.format == Format::Tsv;
        let separator = if tsv { '\t' } else { ',' };
        for (index, source) in self.sources.iter().enumerate() {
            if index > 0 {
                out.push(separator);
            }
            let cell = match source.column {
                None => Some(&record.key),
                Some(column) => record.values.get(column),
            };
            let Some(cell) = cell else {
                // A delete carries only its key: NULL in TSV, a missing (empty) value in CSV.
                if tsv {
                    out.push_str("\\N");
                }
                continue;
            };
            match (source.property, cell) {
                (Some(property), Cell::Json(object)) => {
                    let inner = object.get(property).map_or(Cell::Null, json_cell);
                    write_cell(&inner, tsv, out);
                }
                (Some(_), _) => write_cell(&Cell::Null, tsv, out),
                (None, cell) => write_cell(cell, tsv, out),
            }
        }
        out.push(separator);
        if self.incremental {
            out.push(match record.action {
                Action::Upsert => 'U',
                Action::Delete => 'D',
            });
            out.push(separator);
        }
        write_timestamp(out, record.ts);
        out.push('\n');
    }
}

/// A property of a nested object as a cell of its own.
fn json_cell(value: &serde_json::Value) -> Cell {
    match value {
        serde_json::Value::Null => Cell::Null,
        serde_json::Value::Bool(value) => Cell::Bool(*value),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(value) => Cell::Int(value),
            None => Cell::Float(number.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(text) => Cell::Text(text.clone().into()),
        other => Cell::Json(other.clone()),
    }
}

fn write_cell(cell: &Cell, tsv: bool, out: &mut String) {
    match cell {
        Cell::Null => out.push_str(if tsv { "\\N" } else { "NULL" }),
        Cell::Int(value) => {
            let _ = write!(out, "{value}");
        }
        Cell::Float(value) => {
            let _ = write!(out, "{value}");
        }
        Cell::Decimal { units, scale } => write_decimal(*units, *scale, out),
        Cell::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Cell::Time(value) => write_timestamp(out, *value),
        Cell::Date(days) => write_date(out, *days),
        Cell::Clock(seconds) => write_clock(out, *seconds),
        Cell::Uuid(bits) => write_uuid(out, *bits),
        Cell::Ipv4(address) => {
            let [a, b, c, d] = address.to_be_bytes();
            let _ = write!(out, "{a}.{b}.{c}.{d}");
        }
        Cell::Text(text) => write_text(text, tsv, out),
        Cell::Json(value) => write_text(&value.to_string(), tsv, out),
    }
}

/// `units` × 10^-`scale` with all `scale` digits after the point.
fn write_decimal(units: i64, scale: u8, out: &mut String) {
    if scale == 0 {
        let _ = write!(out, "{units}");
        return;
    }
    let factor = 10_u64.pow(u32::from(scale));
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    let _ = write!(
        out,
        "{sign}{}.{:0width$}",
        magnitude / factor,
        magnitude % factor,
        width = usize::from(scale)
    );
}

fn write_text(text: &str, tsv: bool, out: &mut String) {
    let plain = || {
        !text
            .bytes()
            .any(|byte| matches!(byte, b'\\' | b'\t' | b'\n' | b'\r'))
    };
    if tsv && plain() {
        out.push_str(text);
    } else if tsv {
        for character in text.chars() {
            match character {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                other => out.push(other),
            }
        }
    } else {
        // A lone `\.` is PostgreSQL's end-of-data line in CSV unless quoted.
        let quote = text.is_empty()
            || text == "NULL"
            || text == "\\."
            || text.contains([',', '"', '\n', '\r', '\t'])
            || text.starts_with(' ')
            || text.ends_with(' ');
        if quote {
            out.push('"');
            for character in text.chars() {
                if character == '"' {
                    out.push('"');
                }
                out.push(character);
            }
            out.push('"');
        } else {
            out.push_str(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::{EPOCH, Model};
    use super::*;

    fn record(values: Vec<Cell>) -> Record {
        Record {
            action: Action::Upsert,
            key: Cell::Int(7),
            values,
            ts: EPOCH,
        }
    }

    fn text(value: &str) -> Cell {
        Cell::Text(value.to_owned().into())
    }

    /// `canvas.wikis`: a truncatable text, a nullable boolean and a title besides the times.
    fn wikis() -> Table {
        Model::default()
            .table("canvas", "wikis", EPOCH)
            .expect("table")
    }

    #[test]
    fn tsv_is_copy_text_format() {
        let encoder = Encoder::new(Format::Tsv, true, true, wikis());
        assert_eq!(
            encoder.header().as_deref(),
            Some(
                "key.id\tvalue.created_at\tvalue.updated_at\tvalue.front_page_url\tvalue.has_no_front_page\tvalue.title\tmeta.action\tmeta.ts\n"
            )
        );
        let mut out = String::new();
        let values = vec![
            Cell::Time(EPOCH),
            Cell::Time(EPOCH),
            text("a\tb\\c\nd\re"),
            Cell::Null,
            text(""),
        ];
        encoder.write(&record(values), &mut out);
        assert_eq!(
            out,
            "7\t2025-01-01T00:00:00Z\t2025-01-01T00:00:00Z\ta\\tb\\\\c\\nd\\re\t\\N\t\tU\t2025-01-01T00:00:00Z\n"
        );
        out.clear();
        let delete = Record {
            action: Action::Delete,
            values: Vec::new(),
            ..record(Vec::new())
        };
        encoder.write(&delete, &mut out);
        assert_eq!(out, "7\t\\N\t\\N\t\\N\t\\N\t\\N\tD\t2025-01-01T00:00:00Z\n");
    }

    #[test]
    fn snapshots_have_no_action_column() {
        let encoder = Encoder::new(Format::Tsv, true, false, wikis());
        let header = encoder.header().expect("header");
        assert!(!header.contains("meta.action"), "{header}");
        let mut out = String::new();
        encoder.write(&record(vec![Cell::Null; 5]), &mut out);
        assert_eq!(out.matches('\t').count(), header.matches('\t').count());
    }

    #[test]
    fn csv_quotes_what_it_must_and_writes_null_bare() {
        let encoder = Encoder::new(Format::Csv, true, true, wikis());
        let mut out = String::new();
        let values = vec![
            Cell::Time(EPOCH),
            Cell::Null,
            text("say \"hi\", then\nleave"),
            text("NULL"),
            text("\\."),
        ];
        encoder.write(&record(values), &mut out);
        assert_eq!(
            out,
            "7,2025-01-01T00:00:00Z,NULL,\"say \"\"hi\"\", then\nleave\",\"NULL\",\"\\.\",U,2025-01-01T00:00:00Z\n"
        );
        out.clear();
        encoder.write(
            &record(vec![
                text("a\tb"),
                text(""),
                text("x"),
                Cell::Null,
                Cell::Null,
            ]),
            &mut out,
        );
        assert!(out.starts_with("7,\"a\tb\",\"\",x,"), "{out}");
        out.clear();
        let delete = Record {
            action: Action::Delete,
            ..record(Vec::new())
        };
        encoder.write(&delete, &mut out);
        assert_eq!(out, "7,,,,,,D,2025-01-01T00:00:00Z\n");
    }

    #[test]
    fn usual_text_forms_for_dates_uuids_addresses_and_decimals() {
        let encoder = Encoder::new(Format::Tsv, true, false, wikis());
        let mut out = String::new();
        let values = vec![
            Cell::Date(20_088),
            Cell::Clock(3_723),
            Cell::Uuid(0x0123_4567_89ab_4cde_8f01_2345_6789_abcd),
            Cell::Ipv4(0xCB00_7105),
            Cell::Decimal {
                units: -1_205,
                scale: 2,
            },
        ];
        encoder.write(&record(values), &mut out);
        assert_eq!(
            out,
            "7\t2024-12-31\t01:02:03Z\t01234567-89ab-4cde-8f01-23456789abcd\t203.0.113.5\t-12.05\t2025-01-01T00:00:00Z\n"
        );
        let mut json = String::new();
        write_cell(&Cell::Json(serde_json::json!([1, "a\tb"])), true, &mut json);
        assert_eq!(json, "[1,\"a\\\\tb\"]");
    }

    #[test]
    fn condensed_keeps_objects_whole_expanded_splits_them() {
        let table = Model::default()
            .table("canvas", "courses", EPOCH)
            .expect("table");
        let condensed = Encoder::new(Format::Tsv, true, false, table.clone())
            .header()
            .expect("header");
        let expanded = Encoder::new(Format::Tsv, false, false, table)
            .header()
            .expect("header");
        assert!(condensed.contains("\tvalue.settings\t"), "{condensed}");
        assert!(
            expanded.contains("\tvalue.settings.hide_final_grade\t"),
            "{expanded}"
        );
    }
}
