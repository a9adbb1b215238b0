//! The SQL of an incremental: the temporary staging table its rows go into, keyed as the
//! table is (rows are staged with `REPLACE`, so the last record of a repeated key is the one
//! kept, and a `D` after a `U` of the same key removes it), and the two statements that apply
//! them to the table (the deletions, then the upserts). Public so that the tests can
//! `EXPLAIN` exactly what a load runs.
//!
//! The deletion joins the staging table first, on purpose (`STRAIGHT_JOIN`): right after a
//! snapshot (or into a table just rebuilt for a schema change), the table's statistics still
//! say it has a row or two, and MariaDB 10.11 then chose to scan the table and, for each of its
//! rows, the whole staging table (which has no index on the key): a 200k-row incremental ran
//! for over 18 minutes in `DELETE`, where the staging table first and the table by primary
//! key takes seconds.

use super::col_def;
use crate::load::layout::{Column, Layout, mysql_ident as qi};

/// Drops and creates the temporary `dap_stage` for `l`'s rows: the columns, the action (`U`
/// or `D`), and the table's primary key. One record a key: a rewrite takes the staged rows as
/// they are, and the upsert needs no order.
pub fn stage_ddl(l: &Layout) -> [String; 2] {
    stage_of(l, l.columns.iter())
}

/// Drops and creates the temporary `dap_stage` of an incremental whose rows go apart (see
/// [`super::rewrite`]): the key columns and the action of each key's last record.
pub fn keys_ddl(l: &Layout) -> [String; 2] {
    stage_of(l, l.keys())
}

/// `dap_stage` of `columns`, the action, and the table's primary key.
fn stage_of<'a>(l: &Layout, columns: impl Iterator<Item = &'a Column>) -> [String; 2] {
    let defs: Vec<String> = columns.map(|c| col_def(c, false)).collect();
    let keys: Vec<String> = l.keys().map(|c| qi(&c.name)).collect();
    [
        "DROP TEMPORARY TABLE IF EXISTS dap_stage".to_owned(),
        format!(
            "CREATE TEMPORARY TABLE dap_stage ({}, {} char(1) NOT NULL, PRIMARY KEY ({})) DEFAULT CHARACTER SET utf8mb4",
            defs.join(", "),
            action(l),
            keys.join(", ")
        ),
    ]
}

/// The deletion and the upsert that apply `dap_stage` to the table `into`.
pub fn apply_sql(into: &str, l: &Layout) -> [String; 2] {
    apply_from(into, None, l)
}

/// The deletion and the upsert that apply `dap_stage` to the table `into`: with `rows`, the
/// stage has only keys and actions ([`keys_ddl`]) and the `U` rows are all the rows of the
/// table `rows` (the last `U` of each key, once [`d_after_u_sql`] has run).
pub(super) fn apply_from(into: &str, rows: Option<&str>, l: &Layout) -> [String; 2] {
    let on: Vec<String> = l
        .keys()
        .map(|c| format!("t.{0} = s.{0}", qi(&c.name)))
        .collect();
    let delete = format!(
        "DELETE t FROM dap_stage s STRAIGHT_JOIN {} t ON {} WHERE s.{} = 'D'",
        qi(into),
        on.join(" AND "),
        action(l)
    );
    let all: Vec<String> = l.columns.iter().map(|c| qi(&c.name)).collect();
    let alias = if rows.is_some() { "n" } else { "s" };
    let from_stage: Vec<String> = all.iter().map(|c| format!("{alias}.{c}")).collect();
    // `s.<column>` rather than `VALUES(<column>)`, which MySQL 8.0.20+ deprecates.
    let mut sets: Vec<String> = l
        .columns
        .iter()
        .filter(|c| !c.key)
        .map(|c| format!("{0} = {alias}.{0}", qi(&c.name)))
        .collect();
    if sets.is_empty() {
        sets = l
            .keys()
            .map(|c| format!("{0} = {alias}.{0}", qi(&c.name)))
            .collect();
    }
    let upsert = format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} ON DUPLICATE KEY UPDATE {}",
        qi(into),
        all.join(", "),
        from_stage.join(", "),
        match rows {
            None => format!("dap_stage s WHERE s.{} = 'U'", action(l)),
            Some(rows) => format!("{} n", qi(rows)),
        },
        sets.join(", ")
    );
    [delete, upsert]
}

/// The staged rows' action column (`U` or `D`), quoted: `dap_action`, unless the table has a
/// column of that name.
pub(super) fn action(l: &Layout) -> String {
    qi(&l.free_column("dap_action"))
}

/// Deletes from `rows` (the `U` rows of an incremental loaded apart, see [`keys_ddl`]) the
/// row of each key whose last record is a `D` (an earlier `U` of the key).
pub(super) fn d_after_u_sql(rows: &str, l: &Layout) -> String {
    let on: Vec<String> = l
        .keys()
        .map(|c| format!("n.{0} = s.{0}", qi(&c.name)))
        .collect();
    format!(
        "DELETE n FROM dap_stage s STRAIGHT_JOIN {} n ON {} WHERE s.{} = 'D'",
        qi(rows),
        on.join(" AND "),
        action(l)
    )
}
