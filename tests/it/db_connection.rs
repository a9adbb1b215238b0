//! The replica's connection, through the binary against the sandbox and real PostgreSQL and
//! MariaDB: a password never reaches any output, whichever command prints and wherever the
//! connection string comes from; a string two readers would split differently is refused; the
//! database is checked before the first gateway request; `replica` shows one time format.

use crate::common::*;

/// A password with each of `#`, `/`, `?`, `@`, `:` and `%` in it. Its pieces between them are
/// distinct, so that no piece of it may show anywhere.
const PASSWORD: &str = "Xq7#Zr8/Kp9?Lm1@Vn2:Wt3%Yb4";
const PIECES: [&str; 7] = ["Xq7", "Zr8", "Kp9", "Lm1", "Vn2", "Wt3", "Yb4"];

/// The password percent-encoded, as a connection string must carry it.
const ENCODED: &str = "Xq7%23Zr8%2FKp9%3FLm1%40Vn2%3AWt3%25Yb4";

#[track_caller]
fn assert_no_password(what: &str, text: &str) {
    for p in PIECES {
        assert!(
            !text.contains(p),
            "{what}: a piece of the password (`{p}`) is shown:\n{text}"
        );
    }
}

/// A job loading `canvas.users`, with `[database] url` when given.
fn job_text(url: Option<&str>) -> String {
    let database = url
        .map(|u| format!("[database]\nurl = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"name = "replicate"
{database}
[vars]
namespace = "canvas"
tables = ["users"]

[[step]]
id = "replicate"
for_each = "tables"
as = "table"
load = {{ namespace = "{{{{ namespace }}}}", table = "{{{{ table }}}}" }}
"#
    )
}

/// Where the connection string is given.
#[derive(Debug, Clone, Copy)]
enum From {
    Flag,
    Env,
    JobFile,
}

/// One command of the binary with the connection string given `from`, ending with `code` and
/// `says` in its stderr, and every output it made: stdout, stderr and the report files.
fn dap(
    ws: &Workspace,
    from: From,
    url: &str,
    args: &[&str],
    code: i32,
    says: &[&str],
) -> (Outcome, String) {
    ws.job(
        "replicate.toml",
        &job_text(matches!(from, From::JobFile).then_some(url)),
    );
    let mut t = ws.dap().args(args).args(&["replicate.toml"]);
    if matches!(args[0], "run" | "replica") {
        t = t.args(&["--output-dir", "out"]);
    }
    match from {
        From::Flag if args[0] != "plan" && args[0] != "check" => {
            t = t.args(&["--database", url]);
        }
        From::Env => {
            t = t.env("DAP_CONNECTION_STRING", url);
        }
        _ => {}
    }
    let t = t.status(code);
    let run = if says.is_empty() {
        t.run()
    } else {
        t.stderr_has(says).run()
    };
    let mut all = format!("{}\n{}", run.stdout, run.stderr);
    for report in ["report.xml", "report.json"] {
        if let Ok(text) = std::fs::read_to_string(ws.path().join(report)) {
            all.push_str(&text);
            std::fs::remove_file(ws.path().join(report)).unwrap();
        }
    }
    (run, all)
}

/// Every command, for a connection string given `from` that reaches the database (`url`, the
/// password percent-encoded) and one that is refused (`literal`, the password as it is).
fn every_output_without_the_password(ws: &Workspace, from: From, url: &str, literal: &str) {
    let what = |cmd: &str| format!("{from:?} {cmd}");
    for (args, code) in [
        (
            &[
                "run",
                "-vv",
                "--report",
                "junit=report.xml",
                "--report",
                "json=report.json",
            ][..],
            0,
        ),
        (
            &[
                "run",
                "-vv",
                "--log-format",
                "json",
                "--report",
                "json=report.json",
            ][..],
            0,
        ),
        (&["replica"][..], 0),
        (&["replica", "--format", "json"][..], 0),
        (&["plan"][..], 0),
        (&["plan", "--format", "json"][..], 0),
        (&["check"][..], 0),
    ] {
        let (_, all) = dap(ws, from, url, args, code, &[]);
        assert_no_password(&what(&args.join(" ")), &all);
        if args[0] == "replica" {
            assert!(
                all.contains(":***@"),
                "{}: the user and a masked password: {all}",
                what("replica")
            );
            assert!(all.contains("canvas"), "{}: {all}", what("replica"));
        }
    }
    // Refused: exit 2, nothing sent, no piece of it shown.
    for args in [
        &["run", "-vv"][..],
        &["run", "--log-format", "json"][..],
        &["replica", "--format", "json"][..],
    ] {
        let before = ws.counters().requests;
        let (_, all) = dap(ws, from, literal, args, 2, &["percent-encode"]);
        assert_no_password(&what(&format!("refused {}", args.join(" "))), &all);
        assert!(all.contains("percent-encode"), "{}: {all}", what("refused"));
        assert_eq!(
            ws.counters().requests,
            before,
            "{}: a request was sent",
            what("refused")
        );
    }
    for args in [
        &["plan"][..],
        &["plan", "--format", "json"][..],
        &["check"][..],
    ] {
        // `plan` and `check` send nothing and connect to nothing. A string of the job file
        // they read as `run` does: refused where it is written, with every other problem.
        // One from the environment they do not read: they pass, and the plan notes that `run`
        // refuses it.
        if matches!(from, From::JobFile) {
            let (_, all) = dap(ws, from, literal, args, 2, &["percent-encode"]);
            assert_no_password(&what(&format!("refused {}", args.join(" "))), &all);
            if args.len() == 1 {
                assert!(
                    all.contains("replicate.toml:3:7") && all.contains("`[database] url`"),
                    "{}: where the string is written: {all}",
                    what("refused")
                );
            }
        } else {
            let (_, all) = dap(ws, from, literal, args, 0, &[]);
            assert_no_password(&what(&format!("refused {}", args.join(" "))), &all);
        }
    }
}

/// The load fails after the check (a trigger of the user's refuses every change): the ERROR
/// lines and both reports name the database, masked.
fn a_failed_load_names_the_database_masked(ws: &Workspace, url: &str) {
    let (_, all) = dap(
        ws,
        From::Flag,
        url,
        &[
            "run",
            "-vv",
            "--report",
            "junit=report.xml",
            "--report",
            "json=report.json",
        ],
        6,
        &[":***@"],
    );
    assert_no_password("a failed load", &all);
    assert!(
        all.contains(":***@"),
        "the database is named, masked: {all}"
    );
}

/// A role with the password, the owner of its database, dropped at the end.
pub(crate) struct PgRole {
    pub(crate) name: String,
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = rt().block_on(async move {
            let c = pg_client(&pg_base()).await?;
            c.batch_execute(&format!("DROP ROLE IF EXISTS {name}"))
                .await
        });
    }
}

#[test]
fn a_postgres_password_never_shows_in_any_output() {
    let role = PgRole {
        name: format!("dap_pw_{}_{}", std::process::id(), fastrand::u32(..)),
    };
    let Some(db) = PgDb::new("password") else {
        return;
    };
    db.execute(&format!(
        "CREATE ROLE {0} LOGIN PASSWORD '{PASSWORD}'; ALTER DATABASE {1} OWNER TO {0}",
        role.name,
        db.name()
    ));
    let base = url::Url::parse(&db.url).unwrap();
    let server = format!(
        "{}:{}",
        base.host_str().unwrap(),
        base.port().unwrap_or(5432)
    );
    let url = format!(
        "postgresql://{}:{ENCODED}@{server}/{}?sslmode=disable",
        role.name,
        db.name()
    );
    let literal = format!(
        "postgresql://{}:{PASSWORD}@{server}/{}?sslmode=disable",
        role.name,
        db.name()
    );
    let ws = sandbox_with_rows(20);
    for from in [From::Flag, From::Env, From::JobFile] {
        every_output_without_the_password(&ws, from, &url, &literal);
    }
    // libpq's `password` parameter is masked too.
    let in_query = format!(
        "postgresql://{}@{server}/{}?password={ENCODED}&sslmode=disable",
        role.name,
        db.name()
    );
    let (_, all) = dap(
        &ws,
        From::Flag,
        &in_query,
        &["replica", "--format", "json"],
        0,
        &[],
    );
    assert_no_password("password=", &all);
    db.execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON canvas.users FOR EACH ROW EXECUTE FUNCTION public.refuse()",
    );
    a_failed_load_names_the_database_masked(&ws, &url);
}

/// A MariaDB user with the password: the server checks it, so the load proves that the
/// percent-encoded password reaches the server whole.
pub(crate) struct MyUser {
    pub(crate) name: String,
}

impl Drop for MyUser {
    fn drop(&mut self) {
        use mysql_async::prelude::Queryable as _;
        let name = self.name.clone();
        let _ = rt().block_on(async move {
            let mut c = my_conn(&my_base()).await?;
            c.query_drop(format!("DROP USER IF EXISTS '{name}'@'%'"))
                .await
        });
    }
}

#[test]
fn a_mysql_password_never_shows_in_any_output() {
    let Some(db) = MyDb::new("password") else {
        return;
    };
    let user = MyUser {
        name: format!("dap_pw_{}", fastrand::u32(..)),
    };
    db.execute(&format!(
        "CREATE USER '{0}'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL PRIVILEGES ON `{1}`.* TO '{0}'@'%'",
        user.name,
        db.name()
    ));
    let base = url::Url::parse(&db.url).unwrap();
    let server = format!(
        "{}:{}",
        base.host_str().unwrap(),
        base.port().unwrap_or(3306)
    );
    let url = format!("mysql://{}:{ENCODED}@{server}/{}", user.name, db.name());
    let literal = format!("mysql://{}:{PASSWORD}@{server}/{}", user.name, db.name());
    let ws = sandbox_with_rows(20);
    for from in [From::Flag, From::Env, From::JobFile] {
        every_output_without_the_password(&ws, from, &url, &literal);
    }
    // A wrong password: refused by the server, and neither shown.
    let wrong = format!(
        "mysql://{}:{}@{server}/{}",
        user.name,
        ENCODED.replace("Yb4", "Yb5"),
        db.name()
    );
    let (_, all) = dap(
        &ws,
        From::Flag,
        &wrong,
        &["run", "-vv"],
        6,
        &["check the user name and password"],
    );
    assert_no_password("a wrong password", &all.replace("Yb5", ""));
    for event in ["INSERT", "UPDATE", "DELETE"] {
        db.execute(&format!(
            "CREATE TRIGGER refuse_{event} BEFORE {event} ON canvas__users FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a trigger'"
        ));
    }
    a_failed_load_names_the_database_masked(&ws, &url);
}
