//! The `replica` command: every table a replica knows, read through its [`super::replica`],
//! and the text table it prints.

use super::{DbError, TableState, Target};

/// Reads the state of every loaded table (and, for PostgreSQL and MySQL, tables only the
/// official client's bookkeeping knows), with row counts.
pub async fn status(target: &Target) -> Result<Vec<TableState>, DbError> {
    target.replica().status().await
}

/// The `replica` command's table.
pub fn status_text(target: &Target, tables: &[TableState]) -> String {
    use std::fmt::Write as _;
    let mut rows: Vec<[String; 8]> = vec![[
        "table".into(),
        "synced until".into(),
        "schema".into(),
        "rows".into(),
        "last load".into(),
        "upserted".into(),
        "deleted".into(),
        "took".into(),
    ]];
    let opt = |v: Option<i64>| v.map_or("-".to_owned(), |n| n.to_string());
    for t in tables {
        rows.push([
            format!("{}.{}", t.namespace, t.table),
            t.until.clone(),
            t.schema_version.to_string(),
            opt(t.rows),
            t.last_load.clone(),
            opt(t.upserted),
            opt(t.deleted),
            t.duration_s.map_or("-".to_owned(), |s| format!("{s:.2}s")),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("# replica {}\n", target.display());
    if tables.is_empty() {
        out.push_str("no tables loaded yet\n");
        return out;
    }
    for r in &rows {
        let mut line = String::new();
        for (i, (w, c)) in widths.iter().zip(r).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for t in tables.iter().filter(|t| t.reason.is_some()) {
        let _ = writeln!(
            out,
            "# {}.{}: last snapshot because {}",
            t.namespace,
            t.table,
            t.reason.as_deref().unwrap_or("")
        );
    }
    out
}
