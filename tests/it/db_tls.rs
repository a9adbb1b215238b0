//! TLS to the replica, through the binary: a PostgreSQL cluster started by the test with
//! `ssl = on` (initdb in a temporary folder, a free port, a CA, a server certificate and a
//! client certificate made here with rcgen; `hostssl … cert` for the client certificate's user,
//! `scram-sha-256` for the others, nothing without TLS); a MariaDB server started by the test
//! with the same kind of certificates and a user that `REQUIRE X509`; and the loopback
//! MariaDB, which has no TLS (a mode that requires TLS is refused clearly).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The password of the role that logs in with one (checked by the server: scram-sha-256).
const PASSWORD: &str = "Xq7#Zr8/Kp9?Lm1@Vn2:Wt3%Yb4";
const ENCODED: &str = "Xq7%23Zr8%2FKp9%3FLm1%40Vn2%3AWt3%25Yb4";
/// The only name the server's certificate holds; the tests connect to it with `hostaddr`.
const SERVER_NAME: &str = "db.dap-run.test";

/// PostgreSQL's programs: `DAP_RUN_TEST_PG_BIN`, else Debian's PostgreSQL 15.
fn pg_bin() -> PathBuf {
    std::env::var_os("DAP_RUN_TEST_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// The test's certificates: a CA, a server certificate for [`SERVER_NAME`] and a client
/// certificate for the user `dap_cert`, all signed by the CA, and a CA that signed nothing.
struct Pki {
    ca: String,
    other_ca: String,
    server: (String, String),
    client: (String, String),
    /// A server certificate for 127.0.0.1 (MySQL's driver checks the name it connects to).
    server_ip: (String, String),
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_params = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params("dap-run test CA").self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params("dap-run test CA"), ca_key);
    let other_key = KeyPair::generate().unwrap();
    let other = ca_params("another CA").self_signed(&other_key).unwrap();
    let leaf = |sans: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca_cert.pem(),
        other_ca: other.pem(),
        server: leaf(vec![SERVER_NAME.to_owned()], SERVER_NAME),
        client: leaf(vec![], "dap_cert"),
        server_ip: leaf(vec!["127.0.0.1".to_owned()], "127.0.0.1"),
    }
}

/// A PostgreSQL cluster of the test's own, stopped when this is dropped.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    /// Run PostgreSQL's programs as `postgres` (they refuse root).
    as_postgres: bool,
}

impl Cluster {
    /// `None` (and a "skipped" line) when PostgreSQL's programs are missing, except under CI.
    fn start(pki: &Pki) -> Option<Cluster> {
        if !pg_bin().join("initdb").exists() {
            missing(&format!("PostgreSQL's initdb in {}", pg_bin().display()));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = rustix::process::geteuid().is_root();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).unwrap();
        let cluster = Cluster {
            port: free_port(),
            dir,
            as_postgres,
        };
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout)
                    .unwrap()
                    .trim()
                    .parse()
                    .expect("a postgres user")
            };
            let (uid, gid) = (id("-u"), id("-g"));
            for p in [cluster.dir.path(), sock.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        cluster.pg(&[
            "initdb",
            "-D",
            path(&data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        let write = |name: &str, text: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt as _;
            let p = data.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            if cluster.as_postgres {
                let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
                let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&data).unwrap());
                std::os::unix::fs::chown(&p, Some(meta), Some(gid)).unwrap();
            }
        };
        write("server.crt", &pki.server.0, 0o644);
        write("server.key", &pki.server.1, 0o600);
        write("root.crt", &pki.ca, 0o644);
        write(
            "pg_hba.conf",
            "local all all trust\nhostssl all dap_cert 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            0o600,
        );
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=root.crt -c fsync=off",
            cluster.port,
            sock.display()
        );
        let log = data.join("server.log");
        cluster.pg(&[
            "pg_ctl",
            "-D",
            path(&data),
            "-l",
            path(&log),
            "-w",
            "-o",
            &options,
            "start",
        ]);
        cluster.sql(&format!(
            "CREATE ROLE dap_pw LOGIN PASSWORD '{PASSWORD}';
                 CREATE DATABASE replica_pw OWNER dap_pw;
                 CREATE ROLE dap_cert LOGIN;
                 CREATE DATABASE replica_cert OWNER dap_cert;"
        ));
        Some(cluster)
    }

    /// Runs one of PostgreSQL's programs; panics with its output when it fails.
    fn pg(&self, args: &[&str]) {
        let program = pg_bin().join(args[0]);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(&args[1..])
            .output()
            .expect("PostgreSQL's programs run");
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs statements as `postgres` over the Unix socket.
    fn sql(&self, statements: &str) {
        let mut c = tokio_postgres::Config::new();
        c.host_path(self.dir.path().join("sock"))
            .port(self.port)
            .user("postgres")
            .dbname("postgres");
        rt().block_on(async {
            let (client, conn) = c.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            for s in statements.split(';').filter(|s| !s.trim().is_empty()) {
                client
                    .batch_execute(s)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let program = pg_bin().join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let _ = cmd
            .args(["-D", path(&data), "-m", "immediate", "stop"])
            .output();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `t`: it fails with exit 6 before any gateway request, `says` in its stderr.
#[track_caller]
fn refused(ws: &Workspace, t: Test, says: &str) -> Outcome {
    let r = t.status(6).stderr_has(&[says]).run();
    for p in ["Xq7", "Zr8", "Kp9", "Lm1", "Vn2", "Wt3", "Yb4"] {
        assert!(
            !r.stderr.contains(p),
            "a piece of the password shows:\n{}",
            r.stderr
        );
    }
    assert_eq!(
        ws.counters().requests,
        0,
        "the gateway was asked:\n{}",
        r.stderr
    );
    r
}

/// `verify-full` with the CA file connects (and the percent-encoded password logs in with
/// scram-sha-256); without the CA file, or under another host name, it fails before any
/// request and says why; `verify-ca` checks the chain whatever the name; a CA file given
/// without a mode is checked; a client certificate logs in where the server asks for one.
#[test]
fn tls_to_a_postgres_started_with_ssl_on() {
    let pki = pki();
    let Some(cluster) = Cluster::start(&pki) else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = certs.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let ca = file("ca.pem", &pki.ca);
    let other_ca = file("other-ca.pem", &pki.other_ca);
    let cert = file("client.pem", &pki.client.0);
    let key = file("client.key", &pki.client.1);
    let port = cluster.port;
    let by_name =
        format!("postgresql://dap_pw:{ENCODED}@{SERVER_NAME}:{port}/replica_pw?hostaddr=127.0.0.1");
    let by_address = format!("postgresql://dap_pw:{ENCODED}@127.0.0.1:{port}/replica_pw?");

    let ws = sandbox_with_rows(10);
    let ok = format!("{by_name}&sslmode=verify-full&sslrootcert={ca}");
    replicate(&ws, Some(&ok), r#"["users"]"#).status(0).run();
    // The official client's `ssl` says the same.
    let ok = format!("{by_name}&ssl=verify-full&sslrootcert={ca}");
    replicate(&ws, Some(&ok), r#"["users"]"#).status(0).run();
    let r = ws
        .dap()
        .args(&[
            "replica",
            "replicate.toml",
            "--output-dir",
            "out",
            "--format",
            "json",
            "--database",
            &ok,
        ])
        .status(0)
        .run();
    assert!(r.stdout.contains("\"rows\": "), "{}", r.stdout);

    let fresh = || sandbox_with_rows(10);
    let ws = fresh();
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{by_name}&sslmode=verify-full")),
            r#"["users"]"#,
        ),
        "the server's certificate is not signed by a CA dap-run trusts: give the server's CA bundle (your provider publishes it, e.g. Amazon RDS's global-bundle.pem) with `sslrootcert=/path/to/ca.pem`",
    );
    let ws = fresh();
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{by_name}&sslrootcert={other_ca}")),
            r#"["users"]"#,
        ),
        "not signed by a CA dap-run trusts",
    );
    let ws = fresh();
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{by_address}sslmode=verify-full&sslrootcert={ca}")),
            r#"["users"]"#,
        ),
        "the server's certificate is for another host name: connect with a name the certificate holds, or use `sslmode=verify-ca` to check its chain only",
    );
    let ws = fresh();
    replicate(
        &ws,
        Some(&format!("{by_address}sslmode=verify-ca&sslrootcert={ca}")),
        r#"["users"]"#,
    )
    .status(0)
    .run();
    let ws = fresh();
    replicate(
        &ws,
        Some(&format!("{by_address}sslmode=require")),
        r#"["users"]"#,
    )
    .status(0)
    .run();
    // The server takes no connection without TLS.
    let ws = fresh();
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{by_address}sslmode=disable")),
            r#"["users"]"#,
        ),
        "no encryption",
    );
    let ws = fresh();
    let wrong = format!(
        "postgresql://dap_pw:wrong-password@{SERVER_NAME}:{port}/replica_pw?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"
    );
    let r = refused(
        &ws,
        replicate(&ws, Some(&wrong), r#"["users"]"#),
        "password authentication failed for user \"dap_pw\"",
    );
    assert!(
        r.stderr
            .contains("= help: check the user name and password"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wrong-password"), "{}", r.stderr);

    // The client certificate's user: `hostssl … cert`.
    let as_cert = format!(
        "postgresql://dap_cert@{SERVER_NAME}:{port}/replica_cert?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"
    );
    let ws = fresh();
    replicate(
        &ws,
        Some(&format!("{as_cert}&sslcert={cert}&sslkey={key}")),
        r#"["users"]"#,
    )
    .status(0)
    .run();
    let ws = fresh();
    let r = refused(
        &ws,
        replicate(&ws, Some(&as_cert), r#"["users"]"#),
        "connection requires a valid client certificate",
    );
    assert!(r.stderr.contains("`sslcert` and `sslkey`"), "{}", r.stderr);
    let ws = fresh();
    replicate(
        &ws,
        Some(&format!("{as_cert}&sslcert={cert}")),
        r#"["users"]"#,
    )
    .status(2)
    .stderr_has(&["`sslcert` without `sslkey`: give both"])
    .run();
    replicate(
        &ws,
        Some(&format!("{as_cert}&sslrootcert={ca}.missing")),
        r#"["users"]"#,
    )
    .status(2)
    .stderr_has(&["`sslrootcert`: cannot read `"])
    .run();
    assert_eq!(ws.counters().requests, 0);
}

/// The loopback MariaDB has no TLS (`have_ssl = DISABLED`): a mode that requires TLS fails
/// before any request and says so; `PREFERRED` falls back to a plain connection; a CA file
/// that cannot be read, or a certificate without its key, is a refused connection string.
#[test]
fn tls_modes_against_a_mariadb_without_tls() {
    let Some(db) = MyDb::new("tls") else {
        return;
    };
    for mode in [
        "ssl-mode=REQUIRED",
        "ssl_mode=VERIFY_IDENTITY",
        "ssl=verify-full",
        "ssl-mode=VERIFY_CA",
    ] {
        let ws = sandbox_with_rows(10);
        refused(
            &ws,
            replicate(&ws, Some(&format!("{}?{mode}", db.url)), r#"["users"]"#),
            "the server does not offer TLS: enable it on the server (`ssl_cert` and `ssl_key` in its configuration), or use `ssl-mode=PREFERRED` (or `DISABLED`) where the network is trusted",
        );
    }
    let ws = sandbox_with_rows(10);
    replicate(
        &ws,
        Some(&format!("{}?ssl-mode=PREFERRED", db.url)),
        r#"["users"]"#,
    )
    .status(0)
    .run();
    let ws = sandbox_with_rows(10);
    replicate(
        &ws,
        Some(&format!(
            "{}?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem",
            db.url
        )),
        r#"["users"]"#,
    )
    .status(2)
    .stderr_has(&["invalid MySQL connection string from --database: `ssl-ca`: cannot read `/nonexistent/ca.pem`"]).run();
    replicate(
        &ws,
        Some(&format!(
            "{}?ssl-mode=REQUIRED&ssl-key=/nonexistent/k.pem",
            db.url
        )),
        r#"["users"]"#,
    )
    .status(2)
    .stderr_has(&["`ssl-key` without `ssl-cert`: give both"])
    .run();
    replicate(
        &ws,
        Some(&format!("{}?ssl-mode=SOMETIMES", db.url)),
        r#"["users"]"#,
    )
    .status(2)
    .stderr_has(&[
        "`ssl-mode=SOMETIMES`: use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY",
    ])
    .run();
    assert_eq!(ws.counters().requests, 0);
}

/// A MariaDB server of the test's own with TLS, stopped when this is dropped.
struct TlsMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl TlsMariaDb {
    /// `None` (and a "skipped" line) when MariaDB's programs are missing, except under CI.
    fn start(pki: &Pki) -> Option<TlsMariaDb> {
        let found = ["mariadb-install-db", "mariadbd"].iter().all(|p| {
            Command::new("sh")
                .args(["-c", &format!("command -v {p} || test -x /usr/sbin/{p}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !found {
            missing("mariadb-install-db and mariadbd (Debian package mariadb-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = rustix::process::geteuid().is_root();
        let user: &[&str] = if root { &["--user=mysql"] } else { &[] };
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let ca = file("ca.pem", &pki.ca);
        let cert = file("server.pem", &pki.server_ip.0);
        let key = file("server.key", &pki.server_ip.1);
        if root {
            let out = Command::new("chown")
                .args(["-R", "mysql:", path(dir.path())])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let data = dir.path().join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(user)
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let sock = dir.path().join("sock");
        let mariadbd = if Path::new("/usr/sbin/mariadbd").exists() {
            PathBuf::from("/usr/sbin/mariadbd")
        } else {
            PathBuf::from("mariadbd")
        };
        let child = Command::new(mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(user)
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--ssl-ca={ca}"))
            .arg(format!("--ssl-cert={cert}"))
            .arg(format!("--ssl-key={key}"))
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("log"))
                    .map(Into::into)
                    .unwrap_or(std::process::Stdio::null()),
            )
            .spawn()
            .expect("mariadbd starts");
        let db = TlsMariaDb { dir, port, child };
        // Ready when its socket answers (bounded: 300 tries of 100 ms).
        let mut ready = false;
        for _ in 0..300 {
            let ok = Command::new("mariadb")
                .arg(format!("--socket={}", sock.display()))
                .args(["-uroot", "-e", "SELECT 1"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                ready = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            ready,
            "mariadbd did not start: {}",
            std::fs::read_to_string(db.dir.path().join("log")).unwrap_or_default()
        );
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", sock.display()))
            .args([
                "-uroot",
                "-e",
                "CREATE DATABASE replica; CREATE USER 'dap_x509'@'%' REQUIRE X509; GRANT ALL ON replica.* TO 'dap_x509'@'%';",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(db)
    }
}

impl Drop for TlsMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MariaDB server with TLS and a user that must show a client certificate: `VERIFY_IDENTITY`
/// with `ssl-ca`, `ssl-cert` and `ssl-key` loads; without the CA file, with another CA, or
/// without the client certificate, the run fails before any request and says why.
#[test]
fn tls_to_a_mariadb_started_with_certificates() {
    let pki = pki();
    let Some(server) = TlsMariaDb::start(&pki) else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = certs.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let ca = file("ca.pem", &pki.ca);
    let other_ca = file("other-ca.pem", &pki.other_ca);
    let cert = file("client.pem", &pki.client.0);
    let key = file("client.key", &pki.client.1);
    let base = format!("mysql://dap_x509@127.0.0.1:{}/replica", server.port);
    let client = format!("ssl-cert={cert}&ssl-key={key}");

    let ws = sandbox_with_rows(10);
    replicate(
        &ws,
        Some(&format!(
            "{base}?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}&{client}"
        )),
        r#"["users"]"#,
    )
    .status(0)
    .run();
    // A CA file without a mode: checked.
    let ws = sandbox_with_rows(10);
    replicate(
        &ws,
        Some(&format!("{base}?ssl-ca={ca}&{client}")),
        r#"["users"]"#,
    )
    .status(0)
    .run();

    let ws = sandbox_with_rows(10);
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{base}?ssl-mode=VERIFY_IDENTITY&{client}")),
            r#"["users"]"#,
        ),
        "the server's certificate is not signed by a CA dap-run trusts: give the server's CA bundle (your provider publishes it, e.g. Amazon RDS's global-bundle.pem) with `ssl-ca=/path/to/ca.pem`",
    );
    let ws = sandbox_with_rows(10);
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{base}?ssl-ca={other_ca}&{client}")),
            r#"["users"]"#,
        ),
        "not signed by a CA dap-run trusts",
    );
    let ws = sandbox_with_rows(10);
    refused(
        &ws,
        replicate(
            &ws,
            Some(&format!("{base}?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}")),
            r#"["users"]"#,
        ),
        "Access denied for user 'dap_x509'",
    );
    // Not checked: connects to any server certificate.
    let ws = sandbox_with_rows(10);
    replicate(
        &ws,
        Some(&format!("{base}?ssl-mode=REQUIRED&{client}")),
        r#"["users"]"#,
    )
    .status(0)
    .run();
}
