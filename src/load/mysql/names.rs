//! MySQL's names for a table and what a load builds beside it. MySQL has no schema per
//! namespace here: a table is `<namespace>__<table>` as the official client names it, so the
//! new and old tables of a swap are `dap_run__new__<tag>` and `dap_run__old__<tag>`, names no
//! gateway table can have (its namespace would start with `dap_run`, which is reserved). Every
//! name must fit MySQL's 64 characters, hold only characters of the Basic Multilingual Plane
//! and not end with a space; and two gateway tables whose names the server compares as one
//! (`lower_case_table_names`, or `__` inside a name) cannot both be loaded: the first keeps
//! the name (`dap_run__names`).

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::error::my_err;
use crate::load::DbError;
use crate::load::layout::{Layout, mysql_literal as ql};
use crate::load::names::{self, NameError};

/// The table's name in the database: `<namespace>__<table>`, as the official client's.
pub fn table_name(ns: &str, table: &str) -> String {
    format!("{ns}__{table}")
}

/// The longest name MySQL takes, in characters.
const LIMIT: usize = 64;

/// A table's names in a load.
pub(super) struct Names {
    /// `<namespace>__<table>`.
    pub table: String,
    /// The new table of a swap.
    pub new: String,
    /// The old table of a swap, until it is dropped.
    pub old: String,
    /// The named lock a load of the table holds (`GET_LOCK`).
    pub lock: String,
}

impl Names {
    pub(super) fn of(layout: &Layout) -> Names {
        Names::of_names(&layout.namespace, &layout.table)
    }

    pub(super) fn of_names(ns: &str, t: &str) -> Names {
        let tag = names::tag(ns, t);
        Names {
            table: table_name(ns, t),
            new: format!("dap_run__new__{tag}"),
            old: format!("dap_run__old__{tag}"),
            lock: format!("dap_run load {tag}"),
        }
    }
}

/// Refuses a table whose names MySQL cannot hold as they are.
pub(super) fn check(layout: &Layout) -> Result<(), NameError> {
    names::check(layout)?;
    let mut all = vec![("table name", table_name(&layout.namespace, &layout.table))];
    all.extend(
        layout
            .columns
            .iter()
            .map(|c| ("column name", c.name.clone())),
    );
    for (what, name) in &all {
        if name.chars().any(|c| c as u32 > 0xFFFF) || name.ends_with(' ') || name.is_empty() {
            return Err(NameError::Unfit {
                table: format!("{}.{}", layout.namespace, layout.table),
                what,
                name: name.clone(),
                engine: "MySQL",
                rule: "its names are 1-64 characters of the Basic Multilingual Plane, not ending in a space",
            });
        }
    }
    // MySQL strips trailing spaces from an ENUM's values, so `on ` would be stored as `on`;
    // and an enum is ASCII, as the official client declares it, where `é` would become `?`.
    for c in &layout.columns {
        let Some((_, labels)) = c.ty.enum_type() else {
            continue;
        };
        let unfit = |l: &String, rule| NameError::Unfit {
            table: format!("{}.{}", layout.namespace, layout.table),
            what: "enum value",
            name: l.clone(),
            engine: "MySQL",
            rule,
        };
        if let Some(l) = labels.iter().find(|l| l.ends_with(' ')) {
            return Err(unfit(l, "it drops the trailing spaces of an ENUM's values"));
        }
        if let Some(l) = labels.iter().find(|l| !l.is_ascii()) {
            return Err(unfit(
                l,
                "an enum column is ASCII, as the official client declares it",
            ));
        }
    }
    names::check_lengths(layout, all, "MySQL", LIMIT, false)
}

/// Claims the table's name for its gateway table (see the module docs), in the caller's DDL
/// lock.
pub(super) async fn claim(conn: &mut Conn, layout: &Layout) -> Result<(), DbError> {
    let (ns, t) = (&layout.namespace, &layout.table);
    let fail = my_err("cannot claim the table's name");
    let fold: i64 = conn
        .query_first("SELECT @@lower_case_table_names")
        .await
        .map_err(fail)?
        .unwrap_or(0);
    let name = table_name(ns, t);
    let folded = if fold == 0 { name } else { name.to_lowercase() };
    conn.query_drop(format!(
        "INSERT IGNORE INTO dap_run__names (folded, namespace, `table`) VALUES ({}, {}, {})",
        ql(&folded),
        ql(ns),
        ql(t)
    ))
    .await
    .map_err(fail)?;
    let owner: Option<(String, String)> = conn
        .query_first(format!(
            "SELECT namespace, `table` FROM dap_run__names WHERE folded = {}",
            ql(&folded)
        ))
        .await
        .map_err(fail)?;
    match owner {
        Some((o_ns, o_t)) if (&o_ns, &o_t) != (ns, t) => Err(NameError::Twin {
            table: format!("{ns}.{t}"),
            other: format!("{o_ns}.{o_t}"),
            engine: "MySQL",
            why: if fold == 0 {
                "`<namespace>__<table>` is one name for both"
            } else {
                "the server's lower_case_table_names makes its table names ignore case"
            },
        }
        .into()),
        _ => Ok(()),
    }
}
