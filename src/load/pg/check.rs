//! PostgreSQL's side of the check before a run ([`crate::load::check`]): the database exists,
//! the server takes writes, and the user holds what the loads use, read from the server's own
//! privilege functions: CREATE and TEMPORARY on the database (a load runs `CREATE SCHEMA IF NOT
//! EXISTS`, which needs CREATE even when the schema exists, and stages rows in temporary
//! tables), USAGE and CREATE on each existing schema it writes, the rows of the bookkeeping
//! tables, and the ownership of the tables it loaded before (a snapshot replaces or truncates
//! them).

use super::conn::connect;
use super::error::db_err;
use crate::load::check::{CheckError, Missing};
use crate::load::target::PgServer;

/// The bookkeeping tables and the privileges the loads use on them.
const BOOKKEEPING: &[(&str, &str, &str)] = &[
    ("instructure_dap", "table_sync", "SELECT, INSERT, UPDATE"),
    ("instructure_dap", "database_version", "SELECT, INSERT"),
    ("dap_run", "table_state", "SELECT, INSERT, UPDATE"),
    ("dap_run", "load_history", "SELECT, INSERT"),
];

/// An identifier in double quotes, for the statements the help shows.
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks the database (see the module docs).
pub async fn check(server: &PgServer, namespaces: &[String]) -> Result<(), CheckError> {
    let client = match connect(server).await {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.driver::<super::error::PgError>(),
                Some(super::error::PgError::Connect { source })
                    if source.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
            ) =>
        {
            let database = server
                .database
                .clone()
                .or_else(|| server.user.clone())
                .unwrap_or_default();
            let user = server.user.clone().unwrap_or_default();
            return Err(CheckError::NoDatabase {
                how: format!(
                    "in psql, as a role with CREATEDB: `CREATE DATABASE {} OWNER {};` (the owner holds every privilege the replica needs)",
                    q(&database),
                    q(&user)
                ),
                database,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let err = db_err("cannot check the replica's privileges");
    let row = client
        .query_one(
            "SELECT current_user::text, current_database()::text,
                    has_database_privilege(current_database(), 'CREATE'),
                    has_database_privilege(current_database(), 'TEMPORARY'),
                    pg_is_in_recovery(), current_setting('transaction_read_only')",
            &[],
        )
        .await
        .map_err(err)?;
    let (user, database): (String, String) = (row.get(0), row.get(1));
    if row.get::<_, bool>(4) {
        return Err(CheckError::ReadOnly {
            why: "the server is a standby (in recovery)".into(),
        });
    }
    if row.get::<_, String>(5) == "on" {
        return Err(CheckError::ReadOnly {
            why: "default_transaction_read_only is on for this user or database".into(),
        });
    }
    let mut missing = Vec::new();
    for (i, privilege, why) in [
        (
            2,
            "CREATE",
            "dap-run creates the schemas dap_run, instructure_dap and one per namespace",
        ),
        (
            3,
            "TEMPORARY",
            "an incremental stages its changes in temporary tables",
        ),
    ] {
        if !row.get::<_, bool>(i) {
            missing.push(Missing {
                what: format!("{privilege} on database `{database}`"),
                why,
                grant: format!(
                    "GRANT {privilege} ON DATABASE {} TO {};",
                    q(&database),
                    q(&user)
                ),
            });
        }
    }
    let mut schemas: Vec<String> = vec!["instructure_dap".into(), "dap_run".into()];
    schemas.extend(namespaces.iter().cloned());
    let rows = client
        .query(
            "SELECT n.nspname::text, has_schema_privilege(n.oid, 'USAGE'), has_schema_privilege(n.oid, 'CREATE')
             FROM pg_namespace n WHERE n.nspname = ANY($1) ORDER BY array_position($1, n.nspname::text)",
            &[&schemas],
        )
        .await
        .map_err(err)?;
    for r in rows {
        let schema: String = r.get(0);
        let lacks: Vec<&str> = [("USAGE", r.get::<_, bool>(1)), ("CREATE", r.get(2))]
            .into_iter()
            .filter(|(_, has)| !has)
            .map(|(p, _)| p)
            .collect();
        if !lacks.is_empty() {
            missing.push(Missing {
                what: format!("{} on schema `{schema}`", lacks.join(" and ")),
                why: "dap-run creates and reads its tables there",
                grant: format!(
                    "GRANT {} ON SCHEMA {} TO {};",
                    lacks.join(", "),
                    q(&schema),
                    q(&user)
                ),
            });
        }
    }
    // One privilege at a time: `has_table_privilege` with a list is true when any one is held.
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, string_agg(p.priv, ', ' ORDER BY p.ord)
             FROM unnest($1::text[], $2::text[], $3::text[]) b(s, t, privs)
             JOIN pg_namespace n ON n.nspname = b.s
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = b.t
             CROSS JOIN LATERAL unnest(string_to_array(b.privs, ', ')) WITH ORDINALITY p(priv, ord)
             WHERE NOT has_table_privilege(c.oid, p.priv)
             GROUP BY 1, 2 ORDER BY 1, 2",
            &[
                &BOOKKEEPING.iter().map(|b| b.0).collect::<Vec<_>>(),
                &BOOKKEEPING.iter().map(|b| b.1).collect::<Vec<_>>(),
                &BOOKKEEPING.iter().map(|b| b.2).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(err)?;
    for r in rows {
        let (schema, table, privileges): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        missing.push(Missing {
            what: format!("{privileges} on table `{schema}.{table}`"),
            why: "dap-run records there where each table stands",
            grant: format!(
                "GRANT {privileges} ON {}.{} TO {};",
                q(&schema),
                q(&table),
                q(&user)
            ),
        });
    }
    // The tables loaded before, as the bookkeeping names them: a load alters, truncates or
    // replaces them, which only their owner may.
    let owned = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), s.target_schema::text, s.target_table::text, pg_get_userbyid(c.relowner)::text
             FROM instructure_dap.table_sync s
             JOIN pg_namespace n ON n.nspname = s.target_schema
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.target_table
             WHERE NOT pg_has_role(c.relowner, 'USAGE')
             ORDER BY 1 LIMIT 5",
            &[],
        )
        .await;
    match owned {
        Ok(rows) => {
            for r in rows {
                let (rel, schema, table, owner): (String, String, String, String) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                missing.push(Missing {
                    what: format!("ownership of table `{schema}.{table}` (owned by `{owner}`)"),
                    why: "a load alters, truncates or replaces the tables it loads",
                    grant: format!("ALTER TABLE {rel} OWNER TO {};", q(&user)),
                });
            }
        }
        // No bookkeeping yet, or none this user may read (already named above).
        Err(e) if e.as_db_error().is_some() => {}
        Err(e) => return Err(err(e).into()),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Privileges { user, missing })
    }
}
