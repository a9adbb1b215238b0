//! MySQL's side of the check before a run ([`crate::load::check`]): the database exists and
//! the user may do to a table what a load does (create it, write and read its rows, alter it,
//! stage rows in a temporary table, rename it, drop it). MySQL's grants can come from roles and
//! wildcard database names, which no query answers simply, so the check does those things to a
//! table of its own, `dap_run__access_check`, and names the privilege of the statement the
//! server refused. Parallel checks take turns through a named lock.

use mysql_async::prelude::Queryable as _;

use super::conn::{connect, lock, unlock};
use super::error::{MyError, my_err};
use crate::load::DbError;
use crate::load::check::{CheckError, Missing};
use crate::load::target::MyServer;

/// Every privilege a load uses, granted together in the help.
const PRIVILEGES: &str =
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, CREATE TEMPORARY TABLES";

const PROBE: &str = "dap_run__access_check";
/// The named lock parallel checks of a database take turns with, and how long one waits.
const CHECK_LOCK: &str = "dap_run_access_check";
const CHECK_WAIT: u32 = 600;
const PROBE_RENAMED: &str = "dap_run__access_check2";

/// The statements, each with the privilege it needs and why a load needs it.
fn statements() -> Vec<(String, &'static str, &'static str)> {
    vec![
        (
            format!("DROP TABLE IF EXISTS {PROBE}, {PROBE_RENAMED}"),
            "DROP",
            "a snapshot drops the table it replaced",
        ),
        (
            format!("CREATE TABLE {PROBE} (id int NOT NULL PRIMARY KEY, v int) ENGINE = InnoDB"),
            "CREATE",
            "dap-run creates its tables and the bookkeeping tables",
        ),
        (
            format!("INSERT INTO {PROBE} (id, v) VALUES (1, 1)"),
            "INSERT",
            "a load inserts rows",
        ),
        (
            format!("SELECT COUNT(*) FROM {PROBE}"),
            "SELECT",
            "a load reads its tables",
        ),
        (
            format!("UPDATE {PROBE} SET v = 2 WHERE id = 1"),
            "UPDATE",
            "an incremental updates rows",
        ),
        (
            format!("DELETE FROM {PROBE} WHERE id = 1"),
            "DELETE",
            "an incremental deletes rows",
        ),
        (
            format!("ALTER TABLE {PROBE} ADD COLUMN w int NULL"),
            "ALTER",
            "a schema change adds columns",
        ),
        (
            format!("CREATE TEMPORARY TABLE {PROBE}_stage (id int)"),
            "CREATE TEMPORARY TABLES",
            "an incremental stages its changes in a temporary table",
        ),
        (
            format!("DROP TEMPORARY TABLE {PROBE}_stage"),
            "CREATE TEMPORARY TABLES",
            "an incremental stages its changes in a temporary table",
        ),
        (
            format!("RENAME TABLE {PROBE} TO {PROBE_RENAMED}"),
            "ALTER and DROP",
            "a snapshot swaps its new table in with RENAME TABLE",
        ),
        (
            format!("DROP TABLE {PROBE_RENAMED}"),
            "DROP",
            "a snapshot drops the table it replaced",
        ),
    ]
}

/// Checks the database (see the module docs).
pub async fn check(server: &MyServer) -> Result<(), CheckError> {
    let database = server.database.clone().unwrap_or_default();
    let mut conn = match connect(server).await {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.driver::<MyError>(),
                Some(MyError::Connect {
                    source: mysql_async::Error::Server(s),
                }) if s.code == 1049
            ) =>
        {
            let user = server.user.clone().unwrap_or_default();
            return Err(CheckError::NoDatabase {
                how: format!(
                    "as an administrator: CREATE DATABASE `{0}` CHARACTER SET utf8mb4; GRANT {PRIVILEGES} ON `{0}`.* TO '{1}'@'%'; (with the host the user connects from for %)",
                    database.replace('`', "``"),
                    user.replace('\'', "''")
                ),
                database,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let err = my_err("cannot check the replica's privileges");
    let user: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(err)?;
    let user = user.unwrap_or_default();
    // This database's lock, as a load's are: checks of other databases on the server do not
    // wait for this one.
    if !lock(&mut conn, CHECK_LOCK, CHECK_WAIT).await? {
        return Err(DbError::from(MyError::LockTimeout {
            name: CHECK_LOCK.into(),
            seconds: CHECK_WAIT,
        })
        .into());
    }
    let mut result = Ok(());
    for (sql, privilege, why) in statements() {
        if let Err(e) = conn.query_drop(&sql).await {
            result = Err(refused(e, privilege, why, &user, &database));
            // What the check made, if it may: a check refused halfway leaves nothing behind.
            let _ = conn
                .query_drop(format!("DROP TABLE IF EXISTS {PROBE}, {PROBE_RENAMED}"))
                .await;
            break;
        }
    }
    unlock(&mut conn, CHECK_LOCK).await;
    result
}

/// A refused statement as the check reports it.
fn refused(
    e: mysql_async::Error,
    privilege: &str,
    why: &'static str,
    user: &str,
    database: &str,
) -> CheckError {
    let code = match &e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    };
    match code {
        // Access denied: to the database, a table, a column, a statement.
        Some(1044 | 1142 | 1143 | 1227) => {
            let (name, host) = user.rsplit_once('@').unwrap_or((user, "%"));
            CheckError::Privileges {
                user: user.to_owned(),
                missing: vec![Missing {
                    what: format!("{privilege} on database `{database}`"),
                    why,
                    grant: format!(
                        "GRANT {PRIVILEGES} ON `{}`.* TO '{}'@'{}';",
                        database.replace('`', "``"),
                        name.replace('\'', "''"),
                        host.replace('\'', "''")
                    ),
                }],
            }
        }
        // --read-only, a read-only transaction, InnoDB read-only.
        Some(1290 | 1792 | 1836) => CheckError::ReadOnly {
            why: super::error::message(&e),
        },
        _ => DbError::from(MyError::Statement {
            what: "cannot check the replica's privileges",
            source: e,
        })
        .into(),
    }
}
