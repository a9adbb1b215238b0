//! The errors of loading tables: reading a table's schema ([`LayoutError`]), reading a
//! downloaded object ([`TsvError`]) and a schema change that only a reload can apply
//! ([`Incompatible`]).
//!
//! Each keeps what went wrong as data (the path and line, the column, the value, the I/O error)
//! and renders it in one place, so a caller decides what a failure means (an exit code, a
//! retry) from its kind and never from its text.

use std::io;
use std::path::PathBuf;

/// A DAP table schema that cannot be turned into a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema of `{namespace}.{table}` cannot be loaded: {problem}")]
pub struct LayoutError {
    /// The table's namespace.
    pub namespace: String,
    /// The table.
    pub table: String,
    /// What the schema lacks or has that dap-run cannot map.
    pub problem: SchemaProblem,
}

/// What is wrong with a table schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaProblem {
    /// No `properties` at the top.
    #[error("the table schema has no `properties`")]
    NoProperties,
    /// No `key` among the properties.
    #[error("the table schema has no `key` property")]
    NoKey,
    /// A `key` without properties: the table would have no primary key.
    #[error("the table schema's `key` has no properties")]
    EmptyKey,
    /// An enum with a value that is not a string.
    #[error("column `{column}`: enum values must be strings")]
    EnumNotStrings {
        /// The column.
        column: String,
    },
}

/// A downloaded object (condensed TSV) that cannot be read or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TsvError {
    /// The file cannot be opened.
    #[error("cannot read `{}`: {source}", path.display())]
    Open {
        /// The object.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A line cannot be read: the disk failed, or the gzip stream is corrupt or cut short.
    #[error("`{}`: cannot read line {line}: {source}", path.display())]
    Read {
        /// The object.
        path: PathBuf,
        /// The line (1 is the header).
        line: u64,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The header lacks one of the table's key columns.
    #[error("`{}`: the header has no key column `{column}` (header: {})", path.display(), header.join(", "))]
    NoKeyColumn {
        /// The object.
        path: PathBuf,
        /// The missing column's label (`key.id`).
        column: String,
        /// The header's labels.
        header: Vec<String>,
    },
    /// A row with more or fewer fields than the header.
    #[error("`{}`: line {line}: {found} fields where the header has {expected}", path.display())]
    Width {
        /// The object.
        path: PathBuf,
        /// The line.
        line: u64,
        /// Fields in the row.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// A field that is not a value of its column's type.
    #[error("`{}`: line {line}: column `{column}`: {problem}", path.display())]
    Value {
        /// The object.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// What is wrong with the value.
        problem: ValueError,
    },
}

impl TsvError {
    /// Whether the local file system failed (the file is missing or unreadable, the disk
    /// failed): exit 5. A corrupt or truncated gzip stream, or a row that does not fit the
    /// table, is the object's content, not the disk.
    pub fn is_local_io(&self) -> bool {
        match self {
            TsvError::Open { source, .. } | TsvError::Read { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::UnexpectedEof
            ),
            TsvError::NoKeyColumn { .. } | TsvError::Width { .. } | TsvError::Value { .. } => false,
        }
    }
}

/// A TSV field that is not a value of its column's type (checked where the loader converts
/// values itself: SQLite).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Bytes that are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// An integer column's field.
    #[error("`{text}` is not an integer")]
    NotInteger {
        /// The field.
        text: String,
    },
    /// A float column's field.
    #[error("`{text}` is not a number")]
    NotNumber {
        /// The field.
        text: String,
    },
    /// A boolean column's field.
    #[error("`{text}` is not a boolean")]
    NotBoolean {
        /// The field.
        text: String,
    },
    /// NULL in a key or a required column.
    #[error("NULL in a column that must have a value")]
    Null,
    /// A NUL character, which PostgreSQL's text cannot hold.
    #[error("a NUL character, which no text column can hold")]
    Nul,
    /// A number outside its column's range.
    #[error("`{text}` is out of the column's range")]
    OutOfRange {
        /// The field.
        text: String,
    },
    /// A string longer than its `varchar(n)`.
    #[error("a value of {len} characters in a column of at most {max}")]
    TooLong {
        /// Its length in characters.
        len: usize,
        /// The column's.
        max: u64,
    },
    /// A timestamp that is none, or a time that does not exist.
    #[error("`{text}` is not a timestamp")]
    NotTimestamp {
        /// The field.
        text: String,
    },
    /// A date that is none.
    #[error("`{text}` is not a date")]
    NotDate {
        /// The field.
        text: String,
    },
    /// A time of day that is none.
    #[error("`{text}` is not a time of day")]
    NotTime {
        /// The field.
        text: String,
    },
    /// A UUID that is none.
    #[error("`{text}` is not a UUID")]
    NotUuid {
        /// The field.
        text: String,
    },
    /// A label that is not among the enum's.
    #[error("`{text}` is not one of the column's enum values")]
    NotInEnum {
        /// The field.
        text: String,
    },
    /// A list's text that is no JSON array.
    #[error("`{text}` is not a JSON array")]
    NotJsonArray {
        /// The field.
        text: String,
    },
    /// An IP address that is none (or of the other version).
    #[error("`{text}` is not an IP address of the column's version")]
    NotIp {
        /// The field.
        text: String,
    },
    /// JSON that does not parse.
    #[error("`{text}` is not JSON")]
    NotJson {
        /// The field.
        text: String,
    },
}

/// A change between the table in the database and its schema that no incremental can apply:
/// the table is reloaded from a snapshot, and this is the reason given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatible {
    /// A key column the table does not have.
    #[error("the key column `{column}` is new")]
    NewKey {
        /// The column.
        column: String,
    },
    /// A column whose type changed.
    #[error("column `{column}` changed type from {from} to {to}")]
    TypeChanged {
        /// The column.
        column: String,
        /// Its type in the database.
        from: String,
        /// Its type in the schema.
        to: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_errors_say_where_and_what() {
        let path = PathBuf::from("out/canvas/users/j1/part-00000.tsv.gz");
        let width = TsvError::Width {
            path: path.clone(),
            line: 7,
            found: 2,
            expected: 3,
        };
        assert_eq!(
            width.to_string(),
            "`out/canvas/users/j1/part-00000.tsv.gz`: line 7: 2 fields where the header has 3"
        );
        let value = TsvError::Value {
            path: path.clone(),
            line: 3,
            column: "id".into(),
            problem: ValueError::NotInteger { text: "x".into() },
        };
        assert_eq!(
            value.to_string(),
            "`out/canvas/users/j1/part-00000.tsv.gz`: line 3: column `id`: `x` is not an integer"
        );
        let key = TsvError::NoKeyColumn {
            path: path.clone(),
            column: "key.id".into(),
            header: vec!["value.name".into(), "meta.action".into()],
        };
        assert_eq!(
            key.to_string(),
            "`out/canvas/users/j1/part-00000.tsv.gz`: the header has no key column `key.id` (header: value.name, meta.action)"
        );
        assert!(!width.is_local_io() && !value.is_local_io() && !key.is_local_io());
    }

    #[test]
    fn only_a_failing_file_system_is_local_io() {
        let path = PathBuf::from("part-00000.tsv.gz");
        let open = |kind| TsvError::Open {
            path: path.clone(),
            source: io::Error::from(kind),
        };
        let read = |kind| TsvError::Read {
            path: path.clone(),
            line: 2,
            source: io::Error::from(kind),
        };
        assert!(open(io::ErrorKind::NotFound).is_local_io());
        assert!(open(io::ErrorKind::PermissionDenied).is_local_io());
        assert!(read(io::ErrorKind::Other).is_local_io());
        // A corrupt or cut gzip stream: the object, not the disk.
        assert!(!read(io::ErrorKind::InvalidInput).is_local_io());
        assert!(!read(io::ErrorKind::UnexpectedEof).is_local_io());
        assert!(!read(io::ErrorKind::InvalidData).is_local_io());
        assert!(
            read(io::ErrorKind::UnexpectedEof)
                .to_string()
                .starts_with("`part-00000.tsv.gz`: cannot read line 2: ")
        );
    }
}
