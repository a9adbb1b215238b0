//! Slowest work first: the order a loop of loads creates its query jobs in, from what each
//! table took last time ([`History`], the replica's bookkeeping).
//!
//! The gateway lets a client create a few jobs a minute, so a night of many tables is paced:
//! it cannot end before the last job is created (the pacing floor), and a table whose job
//! takes long ends its job time after its creation. Created last, the slowest table makes the
//! night the floor plus its job time; created first, the night approaches the larger of the
//! two. So the order is:
//!
//! 1. tables with no recorded job time (new, or loaded by an older dap-run or the official
//!    client), largest last row count first, then in the list's order: nothing is known, and
//!    a first load is a snapshot, the longest kind;
//! 2. then the others by their last job time, longest first, then by their last load time,
//!    longest first.
//!
//! Equal tables keep the list's order. The jobs are created in this order even though each
//! table first fetches its schema, many at once: each waits for its turn
//! ([`crate::net::Turns`]) before its job's request.

use std::cmp::Reverse;

use super::History;

/// Why an item is where it is: for the log line and `plan`.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// Nothing recorded; its last row count when known.
    Unknown { rows: Option<i64> },
    /// Its last job and load times, in milliseconds.
    Timed { job_ms: i64, load_ms: i64 },
}

/// The order of `tables` (namespace, table), as indexes into it, slowest first; with what was
/// known of each, in that order.
pub fn slowest_first(tables: &[(String, String)], history: &[History]) -> Vec<(usize, Known)> {
    let known: Vec<Known> = tables
        .iter()
        .map(|(ns, t)| {
            let h = history.iter().find(|h| &h.namespace == ns && &h.table == t);
            match h.and_then(|h| h.job_ms.map(|j| (j, h.load_ms.unwrap_or(0)))) {
                Some((job_ms, load_ms)) => Known::Timed { job_ms, load_ms },
                None => Known::Unknown {
                    rows: h.and_then(|h| h.rows),
                },
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..tables.len()).collect();
    // A stable sort: equal keys keep the list's order.
    order.sort_by_key(|&i| match &known[i] {
        Known::Unknown { rows } => (0, Reverse(rows.unwrap_or(-1)), Reverse(0)),
        Known::Timed { job_ms, load_ms } => (1, Reverse(*job_ms), Reverse(*load_ms)),
    });
    order.into_iter().map(|i| (i, known[i].clone())).collect()
}

/// One line: the order and why, e.g. `canvas.users (no history, 1200 rows), canvas.courses
/// (job 31.0s, load 0.4s), …`. At most `max` tables are named; the rest are counted.
pub fn describe(tables: &[(String, String)], order: &[(usize, Known)], max: usize) -> String {
    let mut parts: Vec<String> = order
        .iter()
        .take(max)
        .map(|(i, k)| {
            let (ns, t) = &tables[*i];
            let why = match k {
                Known::Unknown { rows: Some(r) } => format!("no history, {r} rows"),
                Known::Unknown { rows: None } => "no history".to_owned(),
                Known::Timed { job_ms, load_ms } => format!(
                    "job {:.1}s, load {:.1}s",
                    *job_ms as f64 / 1000.0,
                    *load_ms as f64 / 1000.0
                ),
            };
            format!("{ns}.{t} ({why})")
        })
        .collect();
    if order.len() > max {
        parts.push(format!("and {} more", order.len() - max));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> (String, String) {
        ("canvas".to_owned(), name.to_owned())
    }

    fn h(name: &str, job_ms: Option<i64>, load_ms: Option<i64>, rows: Option<i64>) -> History {
        History {
            namespace: "canvas".into(),
            table: name.into(),
            job_ms,
            load_ms,
            rows,
        }
    }

    #[test]
    fn unknown_tables_first_by_rows_then_by_job_time_then_load_time() {
        let tables = [t("a"), t("b"), t("c"), t("d"), t("e"), t("f")];
        let history = [
            h("a", Some(1_000), Some(5), Some(10)),
            h("b", Some(30_000), Some(1), Some(10)),
            h("c", None, None, Some(500)),
            h("e", Some(30_000), Some(900), Some(10)),
            h("f", None, Some(3), None),
        ];
        let order: Vec<usize> = slowest_first(&tables, &history)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        // c (no job time, 500 rows), d and f (nothing; list order), e and b (30 s; e loads
        // longer), a.
        assert_eq!(order, [2, 3, 5, 4, 1, 0]);
    }

    #[test]
    fn no_history_keeps_the_list_order_and_the_line_says_why() {
        let tables = [t("x"), t("y"), t("z")];
        let order = slowest_first(&tables, &[h("z", Some(2_500), Some(100), Some(3))]);
        assert_eq!(order.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(
            describe(&tables, &order, 2),
            "canvas.x (no history), canvas.y (no history), and 1 more"
        );
        assert_eq!(
            describe(&tables, &order[2..], 5),
            "canvas.z (job 2.5s, load 0.1s)"
        );
    }
}
