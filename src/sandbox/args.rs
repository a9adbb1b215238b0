//! `dap-run sandbox`: its flags (every knob of [`SandboxConfig`] and [`Faults`] on the command
//! line) and the loop that serves the sandbox until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Faults, Sandbox, SandboxConfig, clock, data};
use crate::error::SandboxError;

/// Flags of `dap-run sandbox`.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Address of the gateway; the object store and Canvas listen on other ports of the same IP.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Client id accepted by the login.
    #[arg(long, default_value = "sandbox")]
    pub client_id: String,
    /// Client secret accepted by the login.
    #[arg(long, default_value = "sandbox")]
    pub client_secret: String,
    /// Lifetime of issued tokens, e.g. `1h` or `30s`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// Job polls answered `waiting`/`running` before a job completes (without `--job-time`).
    #[arg(long, default_value_t = 1)]
    pub polls: u32,
    /// Jobs complete as they are created: the query's answer is `complete`, no poll needed;
    /// an identical query gets a new job, not the earlier one.
    #[arg(long)]
    pub instant_jobs: bool,
    /// Jobs complete this long after they were created, as the real gateway's do, e.g. `10s`.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub job_time: Option<Duration>,
    /// Adds up to this much to `--job-time`, a fixed share per table, e.g. `5s`.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub job_time_spread: Duration,
    /// `TABLE=DURATION`: jobs for this table complete this long after they were created,
    /// whatever `--job-time` says (repeatable), e.g. `submissions=30s`.
    #[arg(long = "table-job-time", value_name = "TABLE=DURATION", value_parser = parse_table_job_time)]
    pub table_job_times: Vec<(String, Duration)>,
    /// `TABLE=DURATION`: this table's schema answers come this much later (repeatable), e.g.
    /// `submissions=2s`.
    #[arg(long = "table-schema-latency", value_name = "TABLE=DURATION", value_parser = parse_table_job_time)]
    pub table_schema_latency: Vec<(String, Duration)>,
    /// `TABLE=N`: this table has N keys, whatever `--rows` says (repeatable), e.g.
    /// `submissions=100000`.
    #[arg(long = "table-rows", value_name = "TABLE=N", value_parser = parse_table_rows)]
    pub table_rows: Vec<(String, u64)>,
    /// Seed of the data: the same seed serves the same rows.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keys per table (default: `--object-rows` times `--objects-per-job`), e.g. 1000000.
    #[arg(long, value_name = "N")]
    pub rows: Option<u64>,
    /// The data changes once every this long (whole seconds).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub change_every: Duration,
    /// Changes between two changes of the same key: each change touches one key in N.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub change_period: u64,
    /// `NAMESPACE.TABLE@DURATION`: that long after start, the table gets a new schema version
    /// with one more nullable column (repeatable), e.g. `canvas.users@30s`.
    #[arg(long = "schema-change", value_name = "NS.TABLE@DURATION", value_parser = parse_schema_change)]
    pub schema_changes: Vec<(String, String, Duration)>,
    /// Runs the sandbox clock (data times, `at`, `until`) this far ahead of the real one.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub clock_offset: Duration,
    /// That long after start, no new data arrives: later jobs report the same `at`/`until`
    /// (the time of the last data), as the real gateway does when nothing changed, e.g. `0s`.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub no_new_data_after: Option<Duration>,
    /// Delay added to every gateway response, e.g. `200ms`.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Enforce the gateway's per-endpoint rate limits.
    #[arg(long)]
    pub rate_limits: bool,
    /// The window the rate limits count in (the real gateway's is a minute), e.g. `1s`.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub rate_limit_window: Duration,
    /// Rows in each object.
    #[arg(long, default_value_t = 20)]
    pub object_rows: usize,
    /// Make every object about this many bytes of gzip data, streamed.
    #[arg(long, default_value_t = 0)]
    pub large_object_bytes: u64,
    /// Objects listed by each completed job.
    #[arg(long, default_value_t = 2)]
    pub objects_per_job: usize,
    /// Canvas API token accepted by the InstAccess mint endpoint.
    #[arg(long, default_value = "canvas-sandbox")]
    pub canvas_token: String,
    /// Leave this table out of every namespace (repeatable).
    #[arg(long = "hide-table", value_name = "NAME")]
    pub hide_tables: Vec<String>,
    /// Answer the next N `/dap` requests with 429.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub fail_429: u32,
    /// `Retry-After` seconds sent with the injected 429s.
    #[arg(long, value_name = "S")]
    pub retry_after: Option<u64>,
    /// Answer the next N `/dap` requests with 503.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub fail_503: u32,
    /// Close the connection of the next N `/dap` requests without answering.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub drop_connections: u32,
    /// Make jobs for this table fail (repeatable).
    #[arg(long = "fail-table", value_name = "NAME")]
    pub fail_tables: Vec<String>,
    /// Answer the next N object downloads with 403 (expired URL).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub expire_object_urls: u32,
    /// Serve N object downloads before the expired answers of `--expire-object-urls` begin.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub expire_object_urls_after: u32,
    /// Refuse incremental queries for this table with `SnapshotRequiredError` (repeatable).
    #[arg(long = "snapshot-required", value_name = "TABLE")]
    pub snapshot_required: Vec<String>,
    /// Refuse incremental queries for this table with `OutOfRangeError` (repeatable).
    #[arg(long = "out-of-range", value_name = "TABLE")]
    pub out_of_range: Vec<String>,
}

/// Why a `--schema-change` value is refused.
#[derive(Debug, thiserror::Error)]
enum SchemaChangeError {
    /// No `@`.
    #[error("expected NAMESPACE.TABLE@DURATION, got `{text}`")]
    NoAt { text: String },
    /// No `.` before the `@`.
    #[error("expected NAMESPACE.TABLE before `@`, got `{table}`")]
    NoNamespace { table: String },
    /// The part after `@` is not a duration.
    #[error(transparent)]
    Duration(#[from] humantime::DurationError),
}

/// Why a `--table-job-time` or `--table-rows` value is refused.
#[derive(Debug, thiserror::Error)]
enum TableValueError {
    /// No `=`, or nothing before it.
    #[error("expected TABLE={what}, got `{text}`")]
    NoTable { text: String, what: &'static str },
    /// The part after `=` is not a duration.
    #[error(transparent)]
    Duration(#[from] humantime::DurationError),
    /// The part after `=` is not a count.
    #[error("`{text}` is not a count of rows")]
    Count { text: String },
}

fn split_table<'a>(
    text: &'a str,
    what: &'static str,
) -> Result<(&'a str, &'a str), TableValueError> {
    text.split_once('=')
        .filter(|(table, _)| !table.trim().is_empty())
        .map(|(table, value)| (table.trim(), value.trim()))
        .ok_or_else(|| TableValueError::NoTable {
            text: text.to_owned(),
            what,
        })
}

fn parse_table_job_time(text: &str) -> Result<(String, Duration), TableValueError> {
    let (table, value) = split_table(text, "DURATION")?;
    Ok((table.to_owned(), humantime::parse_duration(value)?))
}

fn parse_table_rows(text: &str) -> Result<(String, u64), TableValueError> {
    let (table, value) = split_table(text, "N")?;
    let n = value.parse().map_err(|_| TableValueError::Count {
        text: value.to_owned(),
    })?;
    Ok((table.to_owned(), n))
}

fn parse_schema_change(text: &str) -> Result<(String, String, Duration), SchemaChangeError> {
    let (table, after) = text
        .split_once('@')
        .ok_or_else(|| SchemaChangeError::NoAt {
            text: text.to_owned(),
        })?;
    let (namespace, table) =
        table
            .split_once('.')
            .ok_or_else(|| SchemaChangeError::NoNamespace {
                table: table.to_owned(),
            })?;
    let after = humantime::parse_duration(after)?;
    Ok((namespace.to_owned(), table.to_owned(), after))
}

impl From<SandboxArgs> for SandboxConfig {
    fn from(args: SandboxArgs) -> Self {
        let start = clock::unix_now() as i64 + args.clock_offset.as_secs() as i64;
        let schema_changes = args
            .schema_changes
            .into_iter()
            .map(|(namespace, table, after)| data::SchemaChange {
                namespace,
                table,
                at: start + after.as_secs() as i64,
            })
            .collect();
        SandboxConfig {
            job_time: args.job_time,
            job_time_spread: args.job_time_spread,
            seed: args.seed,
            table_rows: args.rows,
            rows_by_table: args.table_rows.into_iter().collect(),
            table_job_times: args.table_job_times.into_iter().collect(),
            table_schema_latency: args.table_schema_latency.into_iter().collect(),
            change_tick: args.change_every,
            change_period: args.change_period,
            schema_changes,
            clock_offset: args.clock_offset,
            no_new_data_after: args.no_new_data_after,
            client_id: args.client_id,
            client_secret: args.client_secret,
            token_ttl: args.token_ttl,
            polls_to_complete: args.polls,
            instant_jobs: args.instant_jobs,
            latency: args.latency,
            rate_limits: args.rate_limits,
            rate_limit_window: args.rate_limit_window,
            object_rows: args.object_rows,
            large_object_bytes: args.large_object_bytes,
            objects_per_job: args.objects_per_job,
            canvas_token: args.canvas_token,
            hidden_tables: args.hide_tables,
            faults: Faults {
                fail_429: args.fail_429,
                retry_after: args.retry_after,
                fail_503: args.fail_503,
                drop_connections: args.drop_connections,
                fail_tables: args.fail_tables,
                expire_object_urls: args.expire_object_urls,
                expire_object_urls_after: args.expire_object_urls_after,
                revoke_after: None,
                snapshot_required: args.snapshot_required,
                out_of_range: args.out_of_range,
            },
        }
    }
}

/// Runs a sandbox until ctrl-c: prints the gateway base URL as the first line on stdout, and
/// the other origins on stderr; on ctrl-c (SIGINT), its request, 429 and job counts on stderr.
pub async fn serve(args: SandboxArgs) -> Result<(), SandboxError> {
    use std::io::Write as _;
    let addr = args.addr;
    let sandbox = Sandbox::start_async(args.into(), addr)
        .await
        .map_err(|source| SandboxError::Start { addr, source })?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", sandbox.url())
            .and_then(|()| stdout.flush())
            .map_err(|source| SandboxError::Stdout { source })?;
    }
    eprintln!("object store: {}", sandbox.object_store_url());
    eprintln!("canvas: {}", sandbox.canvas_url());
    tokio::signal::ctrl_c()
        .await
        .map_err(|source| SandboxError::Signal { source })?;
    // What a benchmark reads after stopping it with SIGINT.
    let c = sandbox.counters();
    eprintln!(
        "sandbox: {} requests, {} answered 429, {} jobs created",
        c.requests,
        c.rate_limited,
        c.job_queries.len()
    );
    sandbox.stop();
    Ok(())
}
