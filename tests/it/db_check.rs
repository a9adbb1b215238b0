//! The replica checked before the first gateway request, through the binary against real
//! PostgreSQL, MariaDB and SQLite: a database that cannot take the loads fails the run (exit 6,
//! or 5 for an SQLite file) with no request sent, not even a login, and says what to do.

use std::path::Path;

use crate::common::*;
use crate::db_connection::{MyUser, PgRole};

/// Runs `t`: it fails with `code`, its stderr saying each of `says`, before sending anything,
/// naming the server once per line.
#[track_caller]
fn refused_before_any_request(
    ws: &Workspace,
    t: Test,
    code: i32,
    server: &str,
    says: &[&str],
) -> Outcome {
    let r = t.status(code).stderr_has(says).run();
    let c = ws.counters();
    assert_eq!(
        (c.requests, c.logins),
        (0, 0),
        "a request was sent before the database was checked:\n{}",
        r.stderr
    );
    for line in r.stderr.lines().filter(|l| l.contains(" ERROR ")) {
        assert!(
            line.matches(server).count() <= 1,
            "the server twice: {line}"
        );
    }
    r
}

fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

#[test]
fn an_unreachable_database_fails_the_run_before_any_request() {
    for url in [
        "postgresql://u:hunter2@127.0.0.1:1/db?sslmode=disable",
        "mysql://u:hunter2@127.0.0.1:1/db",
    ] {
        let ws = sandbox_with_rows(10);
        let r = refused_before_any_request(
            &ws,
            replicate(&ws, Some(url), r#"["users"]"#),
            6,
            "127.0.0.1:1",
            &["ERROR error: database ", ": cannot connect to "],
        );
        assert!(
            r.stderr
                .contains("and that the server is running and reachable from here"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    }
}

#[test]
fn a_postgres_database_that_does_not_exist_says_how_to_create_it() {
    let Some(pg) = PgDb::new("check_missing") else {
        return;
    };
    let mut url = url::Url::parse(&pg.url).unwrap();
    url.set_path("/dap_run_no_such_database");
    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&pg.url),
        &[
            &format!(
                "ERROR error: database {url}: the database `dap_run_no_such_database` does not exist"
            ),
            "= help: create it: in psql, as a role with CREATEDB: `CREATE DATABASE \"dap_run_no_such_database\" OWNER \"postgres\";`",
        ],
    );
}

#[test]
fn a_mysql_database_that_does_not_exist_says_how_to_create_it() {
    let Some(db) = MyDb::new("check_missing") else {
        return;
    };
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_path("/dap_run_no_such_database");
    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&db.url),
        &[
            "the database `dap_run_no_such_database` does not exist",
            "CREATE DATABASE `dap_run_no_such_database` CHARACTER SET utf8mb4; GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, CREATE TEMPORARY TABLES ON `dap_run_no_such_database`.*",
        ],
    );
}

/// A role without CREATE on the database is refused with the grant that fixes it; with it,
/// a schema of the namespace that the role may not use is named too; with every privilege
/// granted, the run loads. A read-only role is refused as such.
#[test]
fn a_postgres_role_without_a_privilege_is_told_which_and_how_to_grant_it() {
    let role = PgRole {
        name: format!("dap_nocreate_{}_{}", std::process::id(), fastrand::u32(..)),
    };
    let Some(pg) = PgDb::new("check_privileges") else {
        return;
    };
    pg.execute(&format!("CREATE ROLE {} LOGIN", role.name));
    let mut url = url::Url::parse(&pg.url).unwrap();
    url.set_username(&role.name).unwrap();
    url.set_query(Some("sslmode=disable"));
    let (db, user) = (pg.name().to_owned(), role.name.clone());

    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&pg.url),
        &[
            &format!(
                "ERROR error: database {url}: the user `{user}` lacks a privilege the replica needs: CREATE on database `{db}` (dap-run creates the schemas dap_run, instructure_dap and one per namespace)"
            ),
            &format!(
                "= help: as the database's owner or an administrator: GRANT CREATE ON DATABASE \"{db}\" TO \"{user}\";"
            ),
        ],
    );

    pg.execute(&format!(
        "GRANT CREATE ON DATABASE {db} TO {user}; CREATE SCHEMA canvas; REVOKE ALL ON SCHEMA canvas FROM PUBLIC"
    ));
    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&pg.url),
        &[
            "lacks a privilege the replica needs: USAGE and CREATE on schema `canvas` (dap-run creates and reads its tables there)\n",
            &format!("GRANT USAGE, CREATE ON SCHEMA \"canvas\" TO \"{user}\";"),
        ],
    );

    pg.execute(&format!("GRANT USAGE, CREATE ON SCHEMA canvas TO {user}"));
    let ws = sandbox_with_rows(10);
    replicate(&ws, Some(url.as_str()), r#"["users"]"#)
        .status(0)
        .run();

    pg.execute(&format!(
        "ALTER ROLE {user} SET default_transaction_read_only = on"
    ));
    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&pg.url),
        &[
            "the database takes no writes: default_transaction_read_only is on for this user or database",
        ],
    );
}

/// A MariaDB user with no DROP or CREATE is refused with the grant of every privilege a load
/// uses; granted them, the run loads and the check leaves no table of its own behind.
#[test]
fn a_mysql_user_without_a_privilege_is_told_which_and_how_to_grant_it() {
    let Some(db) = MyDb::new("check_privileges") else {
        return;
    };
    let user = MyUser {
        name: format!("dap_nocreate_{}", fastrand::u32(..)),
    };
    let name = db.name().to_owned();
    db.execute(&format!(
        "CREATE USER '{0}'@'%'; GRANT SELECT, INSERT, UPDATE, DELETE, DROP ON `{name}`.* TO '{0}'@'%'",
        user.name
    ));
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&user.name).unwrap();
    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&db.url),
        &[
            &format!(
                "ERROR error: database {url}: the user `{}@%` lacks a privilege the replica needs: CREATE on database `{name}` (dap-run creates its tables and the bookkeeping tables)",
                user.name
            ),
            &format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, CREATE TEMPORARY TABLES ON `{name}`.* TO '{}'@'%';",
                user.name
            ),
        ],
    );
    db.execute(&format!(
        "GRANT CREATE, ALTER ON `{name}`.* TO '{}'@'%'",
        user.name
    ));
    let ws = sandbox_with_rows(10);
    refused_before_any_request(
        &ws,
        replicate(&ws, Some(url.as_str()), r#"["users"]"#),
        6,
        &host_port(&db.url),
        &[&format!(
            "lacks a privilege the replica needs: CREATE TEMPORARY TABLES on database `{name}` (an incremental stages its changes in a temporary table)"
        )],
    );
    assert!(
        !db.has_table("dap_run__access_check"),
        "the check cleaned up"
    );
    db.execute(&format!(
        "GRANT CREATE TEMPORARY TABLES ON `{name}`.* TO '{}'@'%'",
        user.name
    ));
    let ws = sandbox_with_rows(10);
    replicate(&ws, Some(url.as_str()), r#"["users"]"#)
        .status(0)
        .run();
    assert!(!db.has_table("dap_run__access_check") && !db.has_table("dap_run__access_check2"));
    assert!(db.has_table("canvas__users"));
}

/// The check's named lock is the database's, as a load's are: a session that holds the name
/// server-wide (as every check of every database on the server once did, waiting up to 600 s
/// for each other without reading the answer) does not hold this database's check up.
#[test]
fn a_mysql_check_does_not_wait_for_the_lock_of_another_database_on_the_server() {
    use mysql_async::prelude::Queryable as _;
    let Some(db) = MyDb::new("check_lock") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut holder = rt
        .block_on(mysql_async::Conn::from_url(db.url.as_str()))
        .unwrap();
    let got: Option<i64> = rt
        .block_on(holder.query_first("SELECT GET_LOCK('dap_run_access_check', 0)"))
        .unwrap();
    assert_eq!(got, Some(1), "the test holds the server-wide name");
    let ws = sandbox_with_rows(10);
    // Bounded so that a check that waits fails the test rather than hanging it.
    replicate(&ws, Some(&db.url), r#"["users"]"#)
        .status(0)
        .spawn()
        .wait(std::time::Duration::from_secs(300));
    assert!(db.has_table("canvas__users"));
    let _ = rt.block_on(holder.disconnect());
}

/// An SQLite replica in a folder the run may not write: exit 5 before any request. (Run as
/// `nobody` when the tests run as root, whom file modes do not stop.)
#[test]
fn an_sqlite_replica_that_cannot_be_written_fails_the_run_before_any_request() {
    let ws = sandbox_with_rows(10);
    ws.example("replicate.toml");
    let ro = ws.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let (t, _writable_again) = as_unprivileged(
        &ws,
        &ro,
        replicate(&ws, Some("sqlite:ro/replica.db"), r#"["users"]"#),
    );
    refused_before_any_request(
        &ws,
        t,
        5,
        "ro/replica.db",
        &[
            "ERROR error: database sqlite:./ro/replica.db: cannot write the SQLite database: its folder `./ro` takes no new file (permission denied)\n",
        ],
    );
}

/// `t` run as an unprivileged user when the tests run as root (whom file modes do not stop),
/// after making `read_only` (a folder under the workspace) and the files in it read-only and
/// the workspace writable to that user; the folder is writable again when the guard drops, so
/// that the workspace can be removed.
pub(crate) fn as_unprivileged(ws: &Workspace, read_only: &Path, t: Test) -> (Test, WritableAgain) {
    let root = rustix::process::geteuid().is_root();
    if root {
        set_mode(ws.path(), 0o777);
        for f in files_under(ws.path()) {
            let p = ws.path().join(f);
            if !p.starts_with(read_only) {
                set_mode(&p, 0o666);
            }
        }
    }
    for f in files_under(read_only) {
        set_mode(&read_only.join(f), 0o444);
    }
    set_mode(read_only, 0o555);
    let t = if root {
        t.wrap(|cmd| {
            through(
                "setpriv",
                &["--reuid=65534", "--regid=65534", "--clear-groups"],
                cmd,
            )
        })
    } else {
        t
    };
    (t, WritableAgain(read_only.to_owned()))
}

/// Makes a folder writable again when dropped.
pub(crate) struct WritableAgain(std::path::PathBuf);

impl Drop for WritableAgain {
    fn drop(&mut self) {
        set_mode(&self.0, 0o755);
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}
