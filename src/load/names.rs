//! The names a load gives what it creates, and the gateway names it refuses.
//!
//! A gateway name is any string: a load must never create, fill or drop a table under a name
//! that another gateway table could have. So:
//! - the bookkeeping namespaces are reserved: a namespace starting with `dap_run` or
//!   `instructure_dap` (in any case) is refused, and everything dap-run builds on the side
//!   lives under them (PostgreSQL's `dap_run` schema; `dap_run__…` tables in MySQL and SQLite,
//!   which no `<namespace>__<table>` can be);
//! - a table's side tables are named after a hash of its namespace and name ([`tag`]), the same
//!   for every load of that table, so a killed load's leftover is the next load's to replace
//!   and nobody else's;
//! - a name a database would cut or cannot hold (PostgreSQL keeps 63 bytes of a name, MySQL 64
//!   characters; NUL fits nowhere) is refused before anything is created, instead of two
//!   tables meeting under one cut name.
//!
//! Names that one database cannot tell apart (`Users` and `users` in SQLite) are refused by the
//! database's own module, which knows how it compares names.

use sha2::Digest as _;

use super::layout::Layout;

/// Why a table's names cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A namespace dap-run keeps for its bookkeeping.
    #[error(
        "`{table}`: its namespace is reserved for the replica's bookkeeping (names starting with `dap_run` or `instructure_dap`); the table is not loaded"
    )]
    Reserved {
        /// The table, `namespace.table`.
        table: String,
    },
    /// A name with a NUL character.
    #[error(
        "`{table}`: the {what} `{}` has a NUL character, which no database keeps in a name; the table is not loaded",
        name.escape_default()
    )]
    Nul {
        /// The table, `namespace.table`.
        table: String,
        /// What the name is of (`table name`, `column name`).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A name longer than the database keeps.
    #[error(
        "`{table}`: the {what} `{name}` is {len} {unit}; {engine} keeps {limit} and would cut it, so two names could meet; the table is not loaded"
    )]
    TooLong {
        /// The table, `namespace.table`.
        table: String,
        /// What the name is of.
        what: &'static str,
        /// The name.
        name: String,
        /// Its length.
        len: usize,
        /// `bytes` or `characters`.
        unit: &'static str,
        /// The database.
        engine: &'static str,
        /// What it keeps.
        limit: usize,
    },
    /// A name the database cannot hold.
    #[error(
        "`{table}`: the {what} `{name}` cannot be a name in {engine} ({rule}); the table is not loaded"
    )]
    Unfit {
        /// The table, `namespace.table`.
        table: String,
        /// What the name is of.
        what: &'static str,
        /// The name.
        name: String,
        /// The database.
        engine: &'static str,
        /// Its rule.
        rule: &'static str,
    },
    /// Two gateway tables that the database cannot tell apart.
    #[error(
        "`{table}` and `{other}` are one table in {engine} ({why}): `{other}` was loaded first and keeps it; `{table}` is not loaded"
    )]
    Twin {
        /// The table refused, `namespace.table`.
        table: String,
        /// The table that has the name, `namespace.table`.
        other: String,
        /// The database.
        engine: &'static str,
        /// How it compares names.
        why: &'static str,
    },
}

/// 16 hex digits of a hash of a table's namespace and name: the tag of its side tables.
pub fn tag(namespace: &str, table: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(namespace.as_bytes());
    h.update([0]);
    h.update(table.as_bytes());
    let d = h.finalize();
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses reserved namespaces and names with NUL (every database).
pub fn check(layout: &Layout) -> Result<(), NameError> {
    let (ns, t) = (&layout.namespace, &layout.table);
    let lower = ns.to_ascii_lowercase();
    if lower.starts_with("dap_run") || lower.starts_with("instructure_dap") {
        return Err(NameError::Reserved {
            table: format!("{ns}.{t}"),
        });
    }
    let nul = |what, name: &str| NameError::Nul {
        table: format!("{ns}.{t}"),
        what,
        name: name.to_owned(),
    };
    for (what, name) in named(layout) {
        if name.contains('\0') {
            return Err(nul(what, &name));
        }
    }
    Ok(())
}

/// Refuses names over `limit` (`bytes`: in bytes, else in characters): `names` are what the
/// database will hold (its table name, columns, types).
pub fn check_lengths(
    layout: &Layout,
    names: impl IntoIterator<Item = (&'static str, String)>,
    engine: &'static str,
    limit: usize,
    bytes: bool,
) -> Result<(), NameError> {
    for (what, name) in names {
        let len = if bytes {
            name.len()
        } else {
            name.chars().count()
        };
        if len > limit {
            return Err(NameError::TooLong {
                table: format!("{}.{}", layout.namespace, layout.table),
                what,
                name,
                len,
                unit: if bytes { "bytes" } else { "characters" },
                engine,
                limit,
            });
        }
    }
    Ok(())
}

/// The gateway's names in a layout: namespace, table, columns and enum types.
pub fn named(layout: &Layout) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("namespace", layout.namespace.clone()),
        ("table name", layout.table.clone()),
    ];
    for c in &layout.columns {
        out.push(("column name", c.name.clone()));
        if let Some((name, _)) = c.ty.enum_type() {
            out.push(("enum type name", name.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::layout::{ColType, Column};

    fn layout(ns: &str, t: &str, col: &str) -> Layout {
        Layout {
            namespace: ns.into(),
            table: t.into(),
            columns: vec![Column {
                name: col.into(),
                label: format!("key.{col}"),
                ty: ColType::Int64,
                nullable: false,
                key: true,
            }],
        }
    }

    #[test]
    fn reserved_namespaces_and_nul_are_refused() {
        assert!(check(&layout("canvas", "users", "id")).is_ok());
        for ns in ["dap_run", "DAP_RUN_x", "dap_run_", "instructure_dap"] {
            assert!(
                matches!(
                    check(&layout(ns, "t", "id")),
                    Err(NameError::Reserved { .. })
                ),
                "{ns}"
            );
        }
        let e = check(&layout("canvas", "a\0b", "id")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`canvas.a\0b`: the table name `a\\u{0}b` has a NUL character, which no database keeps in a name; the table is not loaded"
        );
    }

    #[test]
    fn tags_differ_by_namespace_and_name() {
        assert_eq!(tag("canvas", "users").len(), 16);
        assert_eq!(tag("canvas", "users"), tag("canvas", "users"));
        assert_ne!(tag("canvas", "users"), tag("canvasu", "sers"));
        assert_ne!(tag("canvas", "users"), tag("canvas", "Users"));
    }

    #[test]
    fn a_name_past_the_limit_is_refused_in_its_unit() {
        let l = layout("canvas", &"é".repeat(40), "id");
        let e = check_lengths(&l, named(&l), "PostgreSQL", 63, true).unwrap_err();
        assert!(
            e.to_string().contains("is 80 bytes; PostgreSQL keeps 63"),
            "{e}"
        );
        assert!(check_lengths(&l, named(&l), "MySQL", 64, false).is_ok());
    }
}
