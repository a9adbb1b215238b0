//! Versioned migrations of the replica's bookkeeping, in the manner of sqlx's `Migrate`: each
//! database lists its migrations in order, records the ones it applied in a table of its own
//! (`dap_run.migrations`, `dap_run__migrations`), and applies the missing ones under its DDL
//! lock before a load. A replica that a newer dap-run migrated further is refused rather than
//! written in a shape this one does not know.

use super::DbError;

/// One change of the bookkeeping's shape.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number: 1, 2, … in order.
    pub version: i64,
    /// What it does, recorded with it.
    pub description: &'static str,
    /// Its statements, run in order.
    pub statements: &'static [&'static str],
}

/// The migrations still to apply after `applied` (the highest version the replica has), or
/// [`DbError::ReplicaNewer`] when the replica has one this dap-run does not know.
pub fn pending(
    all: &'static [Migration],
    applied: Option<i64>,
) -> Result<&'static [Migration], DbError> {
    let have = applied.unwrap_or(0);
    let known = all.last().map_or(0, |m| m.version);
    if have > known {
        return Err(DbError::ReplicaNewer { have, known });
    }
    Ok(&all[all.iter().take_while(|m| m.version <= have).count()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    static ALL: [Migration; 2] = [
        Migration {
            version: 1,
            description: "one",
            statements: &[],
        },
        Migration {
            version: 2,
            description: "two",
            statements: &[],
        },
    ];

    #[test]
    fn applies_what_is_missing_and_refuses_a_newer_replica() {
        assert_eq!(pending(&ALL, None).unwrap().len(), 2);
        assert_eq!(pending(&ALL, Some(1)).unwrap()[0].version, 2);
        assert!(pending(&ALL, Some(2)).unwrap().is_empty());
        let e = pending(&ALL, Some(3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the replica's bookkeeping is at version 3, newer than this dap-run knows (2): a newer dap-run wrote it"
        );
        assert_eq!(e.help().as_deref(), Some("upgrade dap-run"));
    }
}
