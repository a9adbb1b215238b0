//! PostgreSQL: tables like the official client's (`<namespace>.<table>`, enums as
//! `<namespace>.<table>__<column>` types), loaded with `COPY FROM STDIN` streamed from the
//! gzip objects, one transaction per table. The transaction also writes `dap_run.table_state`
//! (counts, duration) and the official client's `instructure_dap.table_sync`, so either tool can
//! continue a replica the other one filled.

use std::path::PathBuf;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt as _;
use tokio_postgres::{Client, GenericClient, NoTls, Transaction};

use super::layout::{ColType, Layout, pg_type, quote_ident as qi, quote_literal as ql};
use super::tsv::TsvFile;
use super::{Changes, DbColumn, DbError, LoadOutcome, LoadRequest, Mode, TableState};

/// Opens a connection. `sslmode` (or the official client's `ssl`) decides TLS: `disable`,
/// `prefer` (the default), `require`, `verify-ca`, `verify-full`; TLS is rustls with the
/// platform's certificate verifier, so any TLS connection verifies the server.
pub async fn connect(url: &str) -> Result<Client, DbError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| DbError::new(format!("invalid PostgreSQL connection string: {e}")))?;
    let mut ssl = None;
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "ssl" || k == "sslmode" {
                ssl = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    parsed.set_query(None);
    if !pairs.is_empty() {
        parsed.query_pairs_mut().extend_pairs(pairs);
    }
    let mut config: tokio_postgres::Config = parsed
        .as_str()
        .parse()
        .map_err(|e| DbError::new(format!("invalid PostgreSQL connection string: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("dap-run");
    }
    let ssl = ssl.unwrap_or_else(|| "prefer".to_owned());
    let mode = match ssl.as_str() {
        "disable" | "false" => tokio_postgres::config::SslMode::Disable,
        "allow" | "prefer" => tokio_postgres::config::SslMode::Prefer,
        "require" | "verify-ca" | "verify-full" | "true" => {
            tokio_postgres::config::SslMode::Require
        }
        other => {
            return Err(DbError::new(format!(
                "unknown sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    config.ssl_mode(mode);
    let what = super::mask(url);
    let fail = |e: tokio_postgres::Error| DbError {
        message: format!(
            "cannot connect to PostgreSQL at {what}: {}\n  = help: check the connection string (`[database] url`, DAP_CONNECTION_STRING or --database) and that the server is running",
            pg_message(&e)
        ),
        transient: e.as_db_error().is_none(),
    };
    if mode == tokio_postgres::config::SslMode::Disable {
        let (client, conn) = config.connect(NoTls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    } else {
        let tls = tls_config(&ssl)?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        let (client, conn) = config.connect(tls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

/// TLS as libpq does it: `prefer` and `require` encrypt without checking the certificate,
/// `verify-ca` checks the chain against the platform's roots, `verify-full` also the host name.
fn tls_config(mode: &str) -> Result<rustls::ClientConfig, DbError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let fail = |e: rustls::Error| DbError::new(format!("cannot set up TLS: {e}"));
    let verifier = rustls_platform_verifier::Verifier::new(
        rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())),
    )
    .map_err(fail)?;
    match mode {
        "verify-full" => Ok(rustls::ClientConfig::builder()
            .with_platform_verifier()
            .map_err(fail)?
            .with_no_client_auth()),
        _ => Ok(rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Libpq {
                inner: verifier,
                check_chain: mode == "verify-ca",
            }))
            .with_no_client_auth()),
    }
}

/// libpq's `require`/`verify-ca` certificate rules over the platform verifier.
#[derive(Debug)]
struct Libpq {
    inner: rustls_platform_verifier::Verifier,
    check_chain: bool,
}

impl rustls::client::danger::ServerCertVerifier for Libpq {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A PostgreSQL error's message with its detail and hint.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            m.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            m.push_str(&format!("\n  = hint: {h}"));
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        m.push_str(&format!(": {s}"));
        source = s.source();
    }
    m
}

fn db_err(what: &str) -> impl Fn(tokio_postgres::Error) -> DbError + '_ {
    move |e| DbError {
        message: format!("{what}: {}", pg_message(&e)),
        transient: is_transient(&e),
    }
}

/// Whether a failure may go away on a new connection: the connection closed or broke, the
/// server shut down or terminated the session (class 08, 57P01-57P03), a serialization
/// failure or deadlock.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            let c = c.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }
        None => e.as_db_error().is_none(),
    }
}

const META_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS instructure_dap;
CREATE TABLE IF NOT EXISTS instructure_dap.table_sync (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_namespace character varying(64) NOT NULL,
    source_table character varying(64) NOT NULL,
    "timestamp" timestamp without time zone NOT NULL,
    schema_version bigint NOT NULL,
    target_schema character varying(64),
    target_table character varying(64) NOT NULL,
    schema_description_format character varying(64) NOT NULL,
    schema_description text NOT NULL
);
CREATE TABLE IF NOT EXISTS instructure_dap.database_version (
    version bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY
);
INSERT INTO instructure_dap.database_version (version)
    SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM instructure_dap.database_version);
CREATE SCHEMA IF NOT EXISTS dap_run;
CREATE TABLE IF NOT EXISTS dap_run.table_state (
    namespace text NOT NULL,
    "table" text NOT NULL,
    until text NOT NULL,
    schema_version bigint NOT NULL,
    last_load text NOT NULL,
    reason text,
    upserted bigint NOT NULL,
    deleted bigint NOT NULL,
    duration_ms bigint NOT NULL,
    loaded_at timestamp with time zone NOT NULL DEFAULT now(),
    schema_description text NOT NULL,
    PRIMARY KEY (namespace, "table")
);
CREATE TABLE IF NOT EXISTS dap_run.load_history (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    namespace text NOT NULL,
    "table" text NOT NULL,
    job_id text NOT NULL,
    load text NOT NULL,
    since text,
    until text NOT NULL,
    reason text,
    schema_version bigint NOT NULL,
    upserted bigint NOT NULL,
    deleted bigint NOT NULL,
    duration_ms bigint NOT NULL,
    loaded_at timestamp with time zone NOT NULL DEFAULT now()
);
"#;

/// Where a table stands, read from the official client's `table_sync` (its `timestamp` is the
/// point to continue from, whoever wrote it last) and dap-run's `table_state`.
async fn state(
    client: &impl GenericClient,
    ns: &str,
    table: &str,
) -> Result<Option<TableState>, DbError> {
    let q = format!(
        r#"SELECT s."timestamp"::text, s.schema_version, s.schema_description,
                  d.until, d.schema_version, d.last_load, d.reason, d.upserted, d.deleted,
                  d.duration_ms, d.loaded_at::text, d.schema_description
           FROM (SELECT 1) one
           LEFT JOIN instructure_dap.table_sync s ON s.source_namespace = {0} AND s.source_table = {1}
           LEFT JOIN dap_run.table_state d ON d.namespace = {0} AND d."table" = {1}"#,
        ql(ns),
        ql(table)
    );
    let row = client
        .query_one(&q, &[])
        .await
        .map_err(db_err("cannot read the replica's state"))?;
    let sync_ts: Option<String> = row.get(0);
    let ours: Option<String> = row.get(3);
    if sync_ts.is_none() && ours.is_none() {
        return Ok(None);
    }
    let official_only = ours.is_none();
    // Whoever synced last: the official client's timestamp if it is newer than ours.
    let until = match (&sync_ts, &ours) {
        (Some(ts), Some(u)) if super::naive_utc(u) != *ts => super::rfc3339_from_naive(ts),
        (_, Some(u)) => u.clone(),
        (Some(ts), None) => super::rfc3339_from_naive(ts),
        (None, None) => unreachable!(),
    };
    Ok(Some(TableState {
        namespace: ns.to_owned(),
        table: table.to_owned(),
        until,
        schema_version: row
            .get::<_, Option<i64>>(1)
            .or(row.get::<_, Option<i64>>(4))
            .unwrap_or(0),
        last_load: if official_only {
            "official client".to_owned()
        } else {
            row.get(5)
        },
        reason: row.get(6),
        rows: None,
        upserted: row.get(7),
        deleted: row.get(8),
        duration_s: row.get::<_, Option<i64>>(9).map(|ms| ms as f64 / 1000.0),
        loaded_at: row.get(10),
        schema: row.get::<_, Option<String>>(2).or(row.get(11)),
    }))
}

async fn columns(
    client: &impl GenericClient,
    ns: &str,
    table: &str,
) -> Result<Option<Vec<DbColumn>>, DbError> {
    let rel = format!("{}.{}", qi(ns), qi(table));
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
             FROM pg_attribute a
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&rel],
        )
        .await
        .map_err(db_err("cannot read the table's columns"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .map(|r| DbColumn {
                name: r.get(0),
                ty: r.get(1),
                nullable: r.get(2),
            })
            .collect(),
    ))
}

async fn enum_values(
    client: &impl GenericClient,
    ns: &str,
    name: &str,
) -> Result<Option<Vec<String>>, DbError> {
    let rows = client
        .query(
            "SELECT e.enumlabel::text FROM pg_enum e
             JOIN pg_type t ON t.oid = e.enumtypid
             JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = $1 AND t.typname = $2 ORDER BY e.enumsortorder",
            &[&ns, &name],
        )
        .await
        .map_err(db_err("cannot read an enum type"))?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = $1 AND t.typname = $2",
            &[&ns, &name],
        )
        .await
        .map_err(db_err("cannot read an enum type"))?;
    Ok(exists.map(|_| rows.iter().map(|r| r.get(0)).collect()))
}

/// What the next load of a table is, decided from the database: a snapshot when the table is
/// new or a column changed type, else an incremental since the recorded point with the
/// additive changes it needs. Creates the bookkeeping tables, the namespace's schema and the
/// enum types, and adds new enum values (committed before any data, as PostgreSQL requires).
pub async fn prepare(
    url: &str,
    layout: &Layout,
) -> Result<(Mode, Changes, Option<TableState>), DbError> {
    let mut client = connect(url).await?;
    let ns = &layout.namespace;
    let tx = client
        .transaction()
        .await
        .map_err(db_err("cannot begin a transaction"))?;
    // One DDL writer at a time: parallel tables create the same schemas and types.
    tx.batch_execute("SELECT pg_advisory_xact_lock(7303010014)")
        .await
        .map_err(db_err("cannot lock the replica's DDL"))?;
    tx.batch_execute(META_DDL)
        .await
        .map_err(db_err("cannot create the bookkeeping tables"))?;
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", qi(ns)))
        .await
        .map_err(db_err("cannot create the schema"))?;
    let state = state(&tx, ns, &layout.table).await?;
    let existing = columns(&tx, ns, &layout.table).await?;
    // Enum types: created when missing, new values added.
    let mut known_enums = std::collections::HashMap::new();
    for c in &layout.columns {
        if let ColType::Enum(name, values) = &c.ty {
            match enum_values(&tx, ns, name).await? {
                None => {
                    let vals: Vec<String> = values.iter().map(|v| ql(v)).collect();
                    tx.batch_execute(&format!(
                        "CREATE TYPE {}.{} AS ENUM ({})",
                        qi(ns),
                        qi(name),
                        vals.join(", ")
                    ))
                    .await
                    .map_err(db_err("cannot create an enum type"))?;
                    known_enums.insert(name.clone(), values.clone());
                }
                Some(have) => {
                    known_enums.insert(name.clone(), have);
                }
            }
        }
    }
    let (mode, changes) = super::choose_mode(state.as_ref(), existing.as_deref(), |cols| {
        super::diff(
            layout,
            cols,
            |t| pg_type(ns, t),
            |n| known_enums.get(n).cloned(),
        )
    });
    for (name, values) in &changes.enum_values {
        for v in values {
            tx.batch_execute(&format!(
                "ALTER TYPE {}.{} ADD VALUE IF NOT EXISTS {}",
                qi(ns),
                qi(name),
                ql(v)
            ))
            .await
            .map_err(db_err("cannot add an enum value"))?;
        }
    }
    tx.commit()
        .await
        .map_err(db_err("cannot commit the schema preparation"))?;
    Ok((mode, changes, state))
}

fn col_def(ns: &str, c: &super::layout::Column, constraints: bool) -> String {
    let null = if constraints && !c.nullable {
        " NOT NULL"
    } else {
        ""
    };
    format!("{} {}{null}", qi(&c.name), pg_type(ns, &c.ty))
}

fn short(name: String) -> String {
    let mut n = name;
    while n.len() > 63 {
        n.pop();
    }
    n
}

enum Msg {
    Header(Vec<usize>),
    Chunk(Bytes),
    Done,
}

/// Streams the files' rows into `COPY <copy_target> (<columns>) FROM STDIN`, one COPY per
/// file, reading on a blocking thread and handing over 256 KiB chunks. With `action`, each
/// row gets its `meta.action` as a last column (and a `D` row NULLs for its values).
async fn copy_files(
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    files: &[PathBuf],
    action: Option<&str>,
) -> Result<(u64, u64), DbError> {
    let mut total = 0u64;
    let mut deletes = 0u64;
    for path in files {
        let (send, mut recv) = tokio::sync::mpsc::channel::<Result<Msg, String>>(8);
        let p = path.clone();
        let l = layout.clone();
        let with_action = action.is_some();
        let reader = tokio::task::spawn_blocking(move || -> u64 {
            let mut file = match TsvFile::open(&p, &l) {
                Ok(f) => f,
                Err(e) => {
                    let _ = send.blocking_send(Err(e));
                    return 0;
                }
            };
            let present: Vec<usize> = (0..l.columns.len())
                .filter(|i| file.fields[*i].is_some())
                .collect();
            let src: Vec<(usize, bool)> = present
                .iter()
                .map(|i| (file.fields[*i].unwrap_or(0), l.columns[*i].key))
                .collect();
            if send.blocking_send(Ok(Msg::Header(present))).is_err() {
                return 0;
            }
            let mut buf = BytesMut::with_capacity(300 * 1024);
            let mut row = Vec::new();
            let mut dels = 0u64;
            loop {
                match file.next_row(&mut row) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        let _ = send.blocking_send(Err(format!("`{}`: {e}", p.display())));
                        return dels;
                    }
                }
                let delete = file.is_delete(&row);
                if delete && !with_action {
                    // A deletion in a snapshot: nothing to load.
                    continue;
                }
                dels += u64::from(delete);
                for (n, (f, key)) in src.iter().enumerate() {
                    if n > 0 {
                        buf.put_u8(b'\t');
                    }
                    if delete && !key {
                        buf.put_slice(b"\\N");
                    } else {
                        buf.put_slice(file.field(&row, *f));
                    }
                }
                if with_action {
                    buf.put_slice(if delete { b"\tD" } else { b"\tU" });
                }
                buf.put_u8(b'\n');
                if buf.len() >= 256 * 1024 {
                    if send
                        .blocking_send(Ok(Msg::Chunk(buf.split().freeze())))
                        .is_err()
                    {
                        return dels;
                    }
                    buf.reserve(300 * 1024);
                }
            }
            if !buf.is_empty() {
                let _ = send.blocking_send(Ok(Msg::Chunk(buf.split().freeze())));
            }
            let _ = send.blocking_send(Ok(Msg::Done));
            dels
        });
        let present = match recv.recv().await {
            Some(Ok(Msg::Header(p))) => p,
            Some(Err(e)) => return Err(DbError::new(e)),
            _ => {
                return Err(DbError::new(format!(
                    "`{}`: could not be read",
                    path.display()
                )));
            }
        };
        let mut cols: Vec<String> = present
            .iter()
            .map(|i| qi(&layout.columns[*i].name))
            .collect();
        if let Some(a) = action {
            cols.push(a.to_owned());
        }
        let sql = format!("COPY {target} ({}) FROM STDIN", cols.join(", "));
        let sink = tx
            .copy_in::<_, Bytes>(&sql)
            .await
            .map_err(db_err("cannot start COPY"))?;
        futures_util::pin_mut!(sink);
        let mut failed = None;
        while let Some(msg) = recv.recv().await {
            match msg {
                Ok(Msg::Chunk(b)) => {
                    if let Err(e) = sink.send(b).await {
                        failed = Some(DbError {
                            message: format!(
                                "COPY of `{}` failed: {}",
                                path.display(),
                                pg_message(&e)
                            ),
                            transient: is_transient(&e),
                        });
                        break;
                    }
                }
                Ok(Msg::Done) => break,
                Ok(Msg::Header(_)) => {}
                Err(e) => {
                    failed = Some(DbError::new(e));
                    break;
                }
            }
        }
        drop(recv);
        if let Some(e) = failed {
            let _ = reader.await;
            return Err(e);
        }
        let n = sink.as_mut().finish().await.map_err(|e| DbError {
            message: format!("COPY of `{}` failed: {}", path.display(), pg_message(&e)),
            transient: is_transient(&e),
        })?;
        deletes += reader.await.unwrap_or(0);
        total += n;
    }
    Ok((total, deletes))
}

/// Loads one table in one transaction (see the module docs). On any error the transaction is
/// rolled back: the table and its recorded point stay where they were.
pub async fn load(url: &str, req: &LoadRequest, changes: &Changes) -> Result<LoadOutcome, DbError> {
    let started = Instant::now();
    let mut client = connect(url).await?;
    let layout = &req.layout;
    let ns = &layout.namespace;
    let t = &layout.table;
    let target = format!("{}.{}", qi(ns), qi(t));
    let keys: Vec<String> = layout.keys().map(|c| qi(&c.name)).collect();
    let all: Vec<String> = layout.columns.iter().map(|c| qi(&c.name)).collect();
    // `canvas_logs.web_logs` repeats keys: the last record of a key wins.
    let dedupe = ns == "canvas_logs";
    let tx = client
        .transaction()
        .await
        .map_err(db_err("cannot begin a transaction"))?;
    let mut out = LoadOutcome::default();
    match &req.mode {
        Mode::Snapshot { .. } => {
            let new = short(format!("{t}__dap_new"));
            let new_pk = short(format!("{t}__dap_new_pkey"));
            let new_target = format!("{}.{}", qi(ns), qi(&new));
            let defs: Vec<String> = layout
                .columns
                .iter()
                .map(|c| col_def(ns, c, true))
                .collect();
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {new_target};
                 CREATE TABLE {new_target} ({}, CONSTRAINT {} PRIMARY KEY ({}))",
                defs.join(", "),
                qi(&new_pk),
                keys.join(", ")
            ))
            .await
            .map_err(db_err("cannot create the new table"))?;
            if dedupe {
                stage(&tx, layout).await?;
                let (read, _) =
                    copy_files(&tx, "dap_stage", layout, &req.files, Some("dap_action")).await?;
                out.read = read;
                out.upserted = tx
                    .execute(
                        &format!(
                            "INSERT INTO {new_target} ({0}) SELECT DISTINCT ON ({1}) {0} FROM dap_stage WHERE dap_action <> 'D' ORDER BY {1}, ctid DESC",
                            all.join(", "),
                            keys.join(", ")
                        ),
                        &[],
                    )
                    .await
                    .map_err(db_err("cannot insert the snapshot"))?;
            } else {
                let (read, _) = copy_files(&tx, &new_target, layout, &req.files, None).await?;
                out.read = read;
                out.upserted = read;
            }
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {target};
                 ALTER TABLE {new_target} RENAME TO {};
                 ALTER TABLE {target} RENAME CONSTRAINT {} TO {}",
                qi(t),
                qi(&new_pk),
                qi(&short(format!("pk_{t}")))
            ))
            .await
            .map_err(db_err("cannot swap the new table in"))?;
        }
        Mode::Incremental { .. } => {
            for c in &changes.add {
                tx.batch_execute(&format!(
                    "ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {}",
                    col_def(ns, c, false)
                ))
                .await
                .map_err(db_err("cannot add a column"))?;
            }
            for c in &changes.drop_not_null {
                tx.batch_execute(&format!(
                    "ALTER TABLE {target} ALTER COLUMN {} DROP NOT NULL",
                    qi(c)
                ))
                .await
                .map_err(db_err("cannot drop NOT NULL"))?;
            }
            stage(&tx, layout).await?;
            let (read, _) =
                copy_files(&tx, "dap_stage", layout, &req.files, Some("dap_action")).await?;
            out.read = read;
            tx.batch_execute("ANALYZE dap_stage")
                .await
                .map_err(db_err("cannot analyze the staged changes"))?;
            let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
            out.deleted = tx
                .execute(
                    &format!(
                        "DELETE FROM {target} AS t USING dap_stage AS s WHERE s.dap_action = 'D' AND {}",
                        on.join(" AND ")
                    ),
                    &[],
                )
                .await
                .map_err(db_err("cannot apply the deletions"))?;
            let sets: Vec<String> = layout
                .columns
                .iter()
                .filter(|c| !c.key)
                .map(|c| format!("{0} = EXCLUDED.{0}", qi(&c.name)))
                .collect();
            let conflict = if sets.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                format!("DO UPDATE SET {}", sets.join(", "))
            };
            let select = if dedupe {
                format!(
                    "SELECT DISTINCT ON ({1}) {0} FROM dap_stage WHERE dap_action <> 'D' ORDER BY {1}, ctid DESC",
                    all.join(", "),
                    keys.join(", ")
                )
            } else {
                format!(
                    "SELECT {} FROM dap_stage WHERE dap_action <> 'D'",
                    all.join(", ")
                )
            };
            out.upserted = tx
                .execute(
                    &format!(
                        "INSERT INTO {target} ({}) {select} ON CONFLICT ({}) {conflict}",
                        all.join(", "),
                        keys.join(", ")
                    ),
                    &[],
                )
                .await
                .map_err(db_err("cannot apply the updates"))?;
        }
    }
    let rows: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {target}"), &[])
        .await
        .map_err(db_err("cannot count the rows"))?
        .get(0);
    out.rows = rows as u64;
    out.duration = started.elapsed();
    record(&tx, req, &out).await?;
    tx.commit()
        .await
        .map_err(db_err("cannot commit the load"))?;
    Ok(out)
}

async fn stage(tx: &Transaction<'_>, layout: &Layout) -> Result<(), DbError> {
    let defs: Vec<String> = layout
        .columns
        .iter()
        .map(|c| col_def(&layout.namespace, c, false))
        .collect();
    tx.batch_execute(&format!(
        "CREATE TEMPORARY TABLE dap_stage ({}, dap_action text NOT NULL) ON COMMIT DROP",
        defs.join(", ")
    ))
    .await
    .map_err(db_err("cannot create the staging table"))
}

/// Writes the table's new point into `dap_run.table_state` and `instructure_dap.table_sync`.
async fn record(tx: &Transaction<'_>, req: &LoadRequest, out: &LoadOutcome) -> Result<(), DbError> {
    let l = &req.layout;
    let (kind, reason, since) = match &req.mode {
        Mode::Snapshot { reason } => ("snapshot", ql(reason), "NULL".to_owned()),
        Mode::Incremental { since } => ("incremental", "NULL".to_owned(), ql(since)),
    };
    let schema_text = serde_json::to_string(&req.schema).unwrap_or_default();
    let ts = ql(&super::naive_utc(&req.until));
    tx.batch_execute(&format!(
        r#"INSERT INTO dap_run.table_state (namespace, "table", until, schema_version, last_load, reason, upserted, deleted, duration_ms, loaded_at, schema_description)
           VALUES ({ns}, {t}, {until}, {v}, '{kind}', {reason}, {up}, {del}, {ms}, now(), {schema})
           ON CONFLICT (namespace, "table") DO UPDATE SET until = EXCLUDED.until,
             schema_version = EXCLUDED.schema_version, last_load = EXCLUDED.last_load,
             reason = EXCLUDED.reason, upserted = EXCLUDED.upserted, deleted = EXCLUDED.deleted,
             duration_ms = EXCLUDED.duration_ms, loaded_at = EXCLUDED.loaded_at,
             schema_description = EXCLUDED.schema_description;
           UPDATE instructure_dap.table_sync SET "timestamp" = {ts}, schema_version = {v},
             target_schema = {ns}, target_table = {t}, schema_description_format = 'json',
             schema_description = {schema}
             WHERE source_namespace = {ns} AND source_table = {t};
           INSERT INTO instructure_dap.table_sync (source_namespace, source_table, "timestamp", schema_version, target_schema, target_table, schema_description_format, schema_description)
             SELECT {ns}, {t}, {ts}, {v}, {ns}, {t}, 'json', {schema}
             WHERE NOT EXISTS (SELECT 1 FROM instructure_dap.table_sync WHERE source_namespace = {ns} AND source_table = {t});
           INSERT INTO dap_run.load_history (namespace, "table", job_id, load, since, until, reason, schema_version, upserted, deleted, duration_ms)
             VALUES ({ns}, {t}, {job}, '{kind}', {since}, {until}, {reason}, {v}, {up}, {del}, {ms});"#,
        job = ql(&req.job_id),
        ns = ql(&l.namespace),
        t = ql(&l.table),
        until = ql(&req.until),
        v = req.schema_version,
        up = out.upserted,
        del = out.deleted,
        ms = out.duration.as_millis() as i64,
        schema = ql(&schema_text),
    ))
    .await
    .map_err(db_err("cannot record the table's new point"))
}

/// Every table the replica knows, with its row count.
pub async fn status(url: &str) -> Result<Vec<TableState>, DbError> {
    let client = connect(url).await?;
    let exists: Option<String> = client
        .query_one(
            "SELECT to_regclass('instructure_dap.table_sync')::text",
            &[],
        )
        .await
        .map_err(db_err("cannot read the replica"))?
        .get(0);
    if exists.is_none() {
        return Ok(vec![]);
    }
    let ours: Option<String> = client
        .query_one("SELECT to_regclass('dap_run.table_state')::text", &[])
        .await
        .map_err(db_err("cannot read the replica"))?
        .get(0);
    let q = if ours.is_some() {
        r#"SELECT source_namespace::text, source_table::text FROM instructure_dap.table_sync
           UNION SELECT namespace, "table" FROM dap_run.table_state ORDER BY 1, 2"#
    } else {
        "SELECT source_namespace::text, source_table::text FROM instructure_dap.table_sync ORDER BY 1, 2"
    };
    let names = client
        .query(q, &[])
        .await
        .map_err(db_err("cannot read the replica"))?;
    let mut out = Vec::new();
    for r in names {
        let (ns, t): (String, String) = (r.get(0), r.get(1));
        let st = if ours.is_some() {
            state(&client, &ns, &t).await?
        } else {
            // Only the official client's bookkeeping: read it alone.
            let row = client
                .query_opt(
                    r#"SELECT "timestamp"::text, schema_version FROM instructure_dap.table_sync WHERE source_namespace = $1 AND source_table = $2"#,
                    &[&ns, &t],
                )
                .await
                .map_err(db_err("cannot read the replica"))?;
            row.map(|row| TableState {
                namespace: ns.clone(),
                table: t.clone(),
                until: super::rfc3339_from_naive(&row.get::<_, String>(0)),
                schema_version: row.get(1),
                last_load: "official client".into(),
                reason: None,
                rows: None,
                upserted: None,
                deleted: None,
                duration_s: None,
                loaded_at: None,
                schema: None,
            })
        };
        if let Some(mut st) = st {
            let rel = format!("{}.{}", qi(&ns), qi(&t));
            let exists: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[&rel])
                .await
                .map_err(db_err("cannot read the replica"))?
                .get(0);
            if exists.is_some() {
                let n = client
                    .query_one(&format!("SELECT count(*) FROM {rel}"), &[])
                    .await
                    .map_err(db_err("cannot count the rows"))?;
                st.rows = Some(n.get(0));
            }
            out.push(st);
        }
    }
    Ok(out)
}
