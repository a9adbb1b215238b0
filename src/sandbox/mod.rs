//! An in-process emulator of Instructure's API gateway, its object store and Canvas.
//!
//! The sandbox answers like the real gateway (see `GATEWAY.md`): client-credential login with a
//! real HS256 JWT, the DAP query API with jobs that move through `waiting`/`running` to
//! `complete`, pre-signed object URLs on a second origin that refuses `Authorization`, and a
//! third origin that mints opaque InstAccess tokens. Every behaviour the runner must survive
//! (429, 503, dropped connections, failed jobs, expired URLs, revoked tokens, rate limits) is a
//! knob in [`Faults`] or [`SandboxConfig`], and every request is counted in [`Counters`] so tests
//! can assert on what a client did. It is shaped as three small axum routers served by one
//! hyper accept loop each, because dropping a connection without an answer needs control of the
//! connection itself.

mod args;
mod auth;
mod clock;
mod dap;
pub mod data;
mod faults;
mod formats;
mod objects;
mod query_body;
mod random;
mod reply;
mod server;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use args::{SandboxArgs, serve};

/// How a sandbox behaves: credentials, timing, data sizes and faults.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Client id accepted by `POST /ids/auth/login`.
    pub client_id: String,
    /// Client secret accepted by `POST /ids/auth/login`.
    pub client_secret: String,
    /// Lifetime of the JWTs the login issues (and the upper bound for InstAccess tokens).
    pub token_ttl: Duration,
    /// `GET /dap/job/{id}` answers `waiting`/`running` this many times, then `complete`
    /// (when `job_time` is `None`).
    pub polls_to_complete: u32,
    /// Jobs complete as they are created: the query's answer is already `complete` (as a
    /// repeated query's is), so a client never waits (the official client waits 5 s a poll),
    /// and every query gets a new job (no reuse of an identical query's), ending at the
    /// latest data.
    pub instant_jobs: bool,
    /// Jobs complete this long after they were created, as the real gateway's do (the first
    /// poll after that sees `complete`); `None`: after `polls_to_complete` polls.
    pub job_time: Option<Duration>,
    /// Adds up to this much to `job_time`, a fixed share per table, so tables finish at
    /// different moments.
    pub job_time_spread: Duration,
    /// Seed of the data: the same seed serves the same rows.
    pub seed: u64,
    /// Keys per table; `None`: `object_rows * objects_per_job`.
    pub table_rows: Option<u64>,
    /// Keys of the tables named here (by table name), instead of `table_rows`.
    pub rows_by_table: BTreeMap<String, u64>,
    /// Jobs for the tables named here (by table name) complete this long after they were
    /// created, whatever `job_time` says.
    pub table_job_times: BTreeMap<String, Duration>,
    /// Schema answers for the tables named here (by table name) come this much later, on top
    /// of `latency`: tables whose loads reach their job creation in another order than they
    /// started.
    pub table_schema_latency: BTreeMap<String, Duration>,
    /// Seconds per data tick: the data changes once a tick.
    pub change_tick: Duration,
    /// Ticks between two changes of the same key (each tick changes one key in this many).
    pub change_period: u64,
    /// Schema changes: from its `at` on, a table has one more version with one more nullable
    /// column.
    pub schema_changes: Vec<data::SchemaChange>,
    /// Starts the sandbox clock (data times, `at`, `until`) this far ahead of the real clock.
    pub clock_offset: Duration,
    /// This long after start, no new data arrives: jobs completing later report that time as
    /// their snapshot's `at` or incremental's `until` (at least the `since`), as the real
    /// gateway's `until` defaults to the commit time of the latest record. So runs after it get
    /// the same `until` again. `None`: the data keeps changing.
    pub no_new_data_after: Option<Duration>,
    /// Added to every gateway response.
    pub latency: Duration,
    /// Enforce the real per-endpoint rate limits (429 with `Retry-After`).
    pub rate_limits: bool,
    /// The window the rate limits count in: a minute, as the real gateway; shorter in tests.
    pub rate_limit_window: Duration,
    /// Rows in each (small) object of a snapshot: the table has `object_rows * objects_per_job`
    /// keys unless `table_rows` says otherwise (a few are deleted at any time).
    pub object_rows: usize,
    /// If above zero, every object is about this many bytes of gzip data, generated while
    /// streaming and never held in memory.
    pub large_object_bytes: u64,
    /// Objects each completed job lists.
    pub objects_per_job: usize,
    /// Canvas API token accepted by the InstAccess mint endpoint.
    pub canvas_token: String,
    /// Tables left out of the listings; their schema and data answer 404.
    pub hidden_tables: Vec<String>,
    /// Fault knobs in effect at start.
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            client_id: "sandbox".to_owned(),
            client_secret: "sandbox".to_owned(),
            token_ttl: Duration::from_secs(3600),
            polls_to_complete: 1,
            instant_jobs: false,
            job_time: None,
            job_time_spread: Duration::ZERO,
            seed: 0,
            table_rows: None,
            rows_by_table: BTreeMap::new(),
            table_job_times: BTreeMap::new(),
            table_schema_latency: BTreeMap::new(),
            change_tick: Duration::from_secs(1),
            change_period: 4,
            schema_changes: Vec::new(),
            clock_offset: Duration::ZERO,
            no_new_data_after: None,
            latency: Duration::ZERO,
            rate_limits: false,
            rate_limit_window: Duration::from_secs(60),
            object_rows: 20,
            large_object_bytes: 0,
            objects_per_job: 2,
            canvas_token: "canvas-sandbox".to_owned(),
            hidden_tables: Vec::new(),
            faults: Faults::default(),
        }
    }
}

/// Faults injected into the next gateway `/dap/...` requests and object downloads.
///
/// Request faults are consumed in the order 429, 503, dropped connection.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The next N `/dap` requests answer 429.
    pub fail_429: u32,
    /// `Retry-After` seconds on those 429s (`None`: no header).
    pub retry_after: Option<u64>,
    /// The next N `/dap` requests answer 503.
    pub fail_503: u32,
    /// The next N `/dap` requests have their connection closed with no response.
    pub drop_connections: u32,
    /// Jobs for these tables end `failed`.
    pub fail_tables: Vec<String>,
    /// The next N object downloads answer 403 like an expired pre-signed URL.
    pub expire_object_urls: u32,
    /// Downloads served before those 403s begin (URLs that expire in the middle of a job).
    pub expire_object_urls_after: u32,
    /// After this many further `/dap` requests, every token issued so far is revoked.
    pub revoke_after: Option<u32>,
    /// Incremental queries for these tables are refused with `SnapshotRequiredError`.
    pub snapshot_required: Vec<String>,
    /// Incremental queries for these tables are refused with `OutOfRangeError`.
    pub out_of_range: Vec<String>,
}

/// A snapshot of what the sandbox has seen.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counters {
    /// Successful logins.
    pub logins: u64,
    /// Logins answered 400 or 403.
    pub login_failures: u64,
    /// All gateway requests, login included.
    pub requests: u64,
    /// Gateway requests per route, keyed like `POST /dap/query/{namespace}/table/{table}/data`.
    pub routes: BTreeMap<String, u64>,
    /// 401 answers sent.
    pub unauthorized: u64,
    /// Requests that carried the deprecated `x-instauth` header.
    pub x_instauth: u64,
    /// Object downloads answered 200.
    pub object_downloads: u64,
    /// Object requests that carried `Authorization` (answered 400).
    pub object_auth_rejected: u64,
    /// InstAccess tokens minted by the Canvas origin.
    pub canvas_mints: u64,
    /// 429 answers sent, from faults and rate limits.
    pub rate_limited: u64,
    /// Bodies of `POST .../data` requests, in order.
    pub job_queries: Vec<serde_json::Value>,
    /// The `{namespace}/{table}` of each entry of `job_queries`, in the same order.
    pub job_query_tables: Vec<String>,
}

/// [`Shared::last_data`] while the data keeps changing.
const NO_LAST_DATA: i64 = i64::MIN;

/// State shared by the three origins.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    /// Seconds the sandbox clock is ahead of the real one.
    pub(crate) clock_offset: AtomicI64,
    /// Sandbox time of the last data, when it stops changing (`no_new_data_after` or
    /// `POST /sandbox/freeze`); [`NO_LAST_DATA`] while it keeps changing.
    pub(crate) last_data: AtomicI64,
    pub(crate) key: [u8; 32],
    pub(crate) object_store_url: String,
    pub(crate) state: Mutex<State>,
}

/// Everything that changes while the sandbox runs, behind one lock.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) counters: Counters,
    pub(crate) faults: Faults,
    /// JWT ids issued and not revoked, with their expiry.
    pub(crate) jwts: HashMap<String, Instant>,
    /// InstAccess tokens minted and not revoked, with their expiry.
    pub(crate) inst_access: HashMap<String, Instant>,
    pub(crate) revoked: HashSet<String>,
    pub(crate) jobs: HashMap<String, dap::Job>,
    /// Query fingerprint to job id, so an identical query returns the existing job.
    pub(crate) job_index: HashMap<String, String>,
    pub(crate) objects: HashMap<String, objects::ObjectSpec>,
    /// The data every table serves (schema changes can be added while running).
    pub(crate) model: data::Model,
    /// Per-endpoint request times inside the current rate-limit window.
    pub(crate) windows: HashMap<&'static str, VecDeque<Instant>>,
}

impl Shared {
    /// The sandbox clock, Unix seconds: real time plus the offset.
    pub(crate) fn now(&self) -> i64 {
        clock::unix_now() as i64 + self.clock_offset.load(Ordering::Relaxed)
    }

    /// The sandbox clock as an `Instant` (real time plus the offset), for the expiry of the
    /// tokens it issues: advancing the clock expires them as waiting would.
    /// Sandbox time of the last data, if it has been set to stop changing.
    pub(crate) fn last_data(&self) -> Option<i64> {
        Some(self.last_data.load(Ordering::SeqCst)).filter(|&last| last != NO_LAST_DATA)
    }

    /// Stops the data changing now (sandbox time), unless it already stops earlier; returns
    /// the time of the last data.
    pub(crate) fn freeze(&self) -> i64 {
        let now = self.now();
        let previous = self
            .last_data
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                (last == NO_LAST_DATA || last > now).then_some(now)
            });
        match previous {
            Ok(_) => now,
            Err(last) => last,
        }
    }

    pub(crate) fn instant(&self) -> Instant {
        let ahead = self.clock_offset.load(Ordering::Relaxed).max(0);
        Instant::now() + Duration::from_secs(ahead as u64)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running sandbox: gateway, object store and Canvas origins.
pub struct Sandbox {
    shared: Arc<Shared>,
    gateway: SocketAddr,
    object_store: SocketAddr,
    canvas: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox on its own tokio runtime in a background thread, every origin on
    /// `127.0.0.1` port 0.
    pub fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dap-sandbox".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
                    match Sandbox::start_async(config, addr).await {
                        Ok(mut sandbox) => {
                            let Some(shutdown) = sandbox.shutdown.take() else {
                                return;
                            };
                            let mut stopped = shutdown.subscribe();
                            let parts = Sandbox {
                                shared: sandbox.shared.clone(),
                                gateway: sandbox.gateway,
                                object_store: sandbox.object_store,
                                canvas: sandbox.canvas,
                                shutdown: Some(shutdown),
                                thread: None,
                            };
                            if tx.send(Ok(parts)).is_err() {
                                return;
                            }
                            let _ = stopped.wait_for(|stop| *stop).await;
                        }
                        Err(error) => {
                            let _ = tx.send(Err(error));
                        }
                    }
                });
            })?;
        let mut sandbox = rx
            .recv()
            .map_err(|_| std::io::Error::other("sandbox thread ended before starting"))??;
        sandbox.thread = Some(thread);
        Ok(sandbox)
    }

    /// Starts a sandbox on the caller's runtime: the gateway on `addr`, the object store and
    /// Canvas on port 0 of the same IP.
    pub async fn start_async(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<Sandbox> {
        let gateway_listener = tokio::net::TcpListener::bind(addr).await?;
        let other = SocketAddr::new(addr.ip(), 0);
        let store_listener = tokio::net::TcpListener::bind(other).await?;
        let canvas_listener = tokio::net::TcpListener::bind(other).await?;
        let gateway = gateway_listener.local_addr()?;
        let object_store = store_listener.local_addr()?;
        let canvas = canvas_listener.local_addr()?;

        let mut key = [0u8; 32];
        key.iter_mut().for_each(|byte| *byte = fastrand::u8(..));
        let faults = config.faults.clone();
        let model = data::Model {
            seed: config.seed,
            rows: config
                .table_rows
                .unwrap_or((config.object_rows * config.objects_per_job) as u64),
            table_rows: config.rows_by_table.clone(),
            tick: config.change_tick.as_secs().max(1) as i64,
            period: config.change_period.max(1),
            schema_changes: config.schema_changes.clone(),
        };
        let clock_offset = config.clock_offset.as_secs() as i64;
        let last_data = config
            .no_new_data_after
            .map(|after| clock::unix_now() as i64 + clock_offset + after.as_secs() as i64);
        let shared = Arc::new(Shared {
            clock_offset: AtomicI64::new(clock_offset),
            last_data: AtomicI64::new(last_data.unwrap_or(NO_LAST_DATA)),
            config,
            key,
            object_store_url: format!("http://{object_store}"),
            state: Mutex::new(State {
                faults,
                model,
                ..State::default()
            }),
        });

        let (shutdown, stopped) = watch::channel(false);
        server::spawn(
            gateway_listener,
            server::gateway_router(shared.clone()),
            stopped.clone(),
        );
        server::spawn(
            store_listener,
            objects::router(shared.clone()),
            stopped.clone(),
        );
        server::spawn(
            canvas_listener,
            auth::canvas_router(shared.clone()),
            stopped,
        );
        Ok(Sandbox {
            shared,
            gateway,
            object_store,
            canvas,
            shutdown: Some(shutdown),
            thread: None,
        })
    }

    /// Gateway base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.gateway)
    }

    /// Object store base URL (pre-signed URLs point here).
    pub fn object_store_url(&self) -> String {
        format!("http://{}", self.object_store)
    }

    /// Canvas base URL, serving `POST /api/v1/inst_access_tokens`.
    pub fn canvas_url(&self) -> String {
        format!("http://{}", self.canvas)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    /// Replaces the fault knobs.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// The data model the sandbox serves: the tests' oracle
    /// ([`data::Model::snapshot_rows`], [`data::Model::incremental_rows`]).
    pub fn data(&self) -> data::Model {
        self.shared.lock().model.clone()
    }

    /// The sandbox clock in Unix seconds (what a job completing now reports as `at`/`until`).
    pub fn now(&self) -> i64 {
        self.shared.now()
    }

    /// Moves the sandbox clock forward, so the data changes and the tokens it issued expire
    /// without waiting.
    pub fn advance_clock(&self, by: Duration) {
        self.shared
            .clock_offset
            .fetch_add(by.as_secs() as i64, Ordering::Relaxed);
    }

    /// From now on (sandbox clock), `namespace.table` has a new schema version with one more
    /// nullable column, `sandbox_added_note`.
    pub fn change_schema(&self, namespace: &str, table: &str) {
        let at = self.now();
        self.shared
            .lock()
            .model
            .schema_changes
            .push(data::SchemaChange {
                namespace: namespace.to_owned(),
                table: table.to_owned(),
                at,
            });
    }

    /// Revokes every token issued so far: they now get 401.
    pub fn revoke_tokens(&self) {
        self.shared.lock().revoke_all();
    }

    /// Stops serving; also happens on drop.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

impl State {
    pub(crate) fn revoke_all(&mut self) {
        let jwts = self.jwts.drain().map(|(jti, _)| jti);
        let minted = self.inst_access.drain().map(|(token, _)| token);
        let revoked: Vec<String> = jwts.chain(minted).collect();
        self.revoked.extend(revoked);
    }
}
