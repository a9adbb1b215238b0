//! PostgreSQL's names for a table and what a load builds beside it: the table is
//! `"<namespace>"."<table>"`, a snapshot's new table is built as `dap_run."new_<tag>"` (a schema
//! no gateway table goes to) and moved in at the swap, and every name must fit the 63 bytes
//! PostgreSQL keeps (it cuts longer ones, so two tables could meet under one name).

use crate::load::layout::{Layout, quote_ident as qi};
use crate::load::names::{self, NameError};

/// The longest name PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`).
const LIMIT: usize = 63;

/// Refuses a table whose names PostgreSQL cannot hold as they are (see [`names`]).
pub(super) fn check(layout: &Layout) -> Result<(), NameError> {
    names::check(layout)?;
    names::check_lengths(layout, names::named(layout), "PostgreSQL", LIMIT, true)
}

/// A table's names in a load.
pub(super) struct Names {
    /// `"ns"."table"`.
    pub target: String,
    /// The new table of a snapshot, `dap_run."new_<tag>"`.
    pub new: String,
    /// Its unquoted name, which it keeps in the namespace's schema until renamed.
    pub new_bare: String,
    /// The new table's primary key while it is built.
    pub new_pk: String,
    /// The primary key's name once swapped in: `pk_<table>` as the official client's, or a
    /// name with the tag when that is longer than PostgreSQL keeps.
    pub pk: String,
    /// The key of the table's load lock (`pg_try_advisory_xact_lock(int, int)`).
    pub lock: (i32, i32),
}

impl Names {
    pub(super) fn of(layout: &Layout) -> Names {
        let (ns, t) = (&layout.namespace, &layout.table);
        let tag = names::tag(ns, t);
        let pk = format!("pk_{t}");
        let pk = if pk.len() <= LIMIT {
            pk
        } else {
            format!("pk_{tag}")
        };
        let lock = u64::from_str_radix(&tag, 16).unwrap_or(0);
        Names {
            target: format!("{}.{}", qi(ns), qi(t)),
            new: format!("dap_run.{}", qi(&format!("new_{tag}"))),
            new_bare: format!("new_{tag}"),
            new_pk: format!("new_{tag}_pkey"),
            pk,
            lock: ((lock >> 32) as i32, lock as i32),
        }
    }
}
