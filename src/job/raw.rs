//! The job file as written: a serde mirror of the TOML with spans, and nothing else.
//!
//! Every struct denies unknown keys in the schema (serde lets them through so that `load`
//! can report all of them at once, through `serde_ignored`), and every value a diagnostic may point at keeps its byte
//! span ([`Sp`]). Keys that accept several shapes (a string or a table) are read as a spanned
//! `toml::Value` and interpreted by `validate`; the `schemars(with = ...)` types beside them
//! describe those shapes for the JSON Schema. Nothing here is trusted: `validate` turns it into
//! the [`Job`](super::model::Job) the runner uses.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

/// A value with the byte range where the job file defines it.
#[derive(Clone, Debug)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Byte range in the source.
    pub span: Range<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Sp {
            value: spanned.into_inner(),
            span,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A dap-run job: authenticated steps against the Instructure API gateway.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(title = "dap-run job file")]
pub struct RawJob {
    /// Name of the job, used in logs and reports. Default: the file name without `.toml`.
    pub name: Option<Sp<String>>,
    /// What the job is for (shown by `dap-run plan`).
    pub description: Option<String>,
    /// Folder that every saved file and download is written under, relative to the job file.
    /// Default: `output/<name>` beside the job file. `--output-dir` overrides it.
    pub output_dir: Option<Sp<String>>,
    /// Folder for the state file (`<job>.state.json`) and the lock file (`<job>.lock`),
    /// relative to the job file. Default: the job file's folder. `--state-dir` overrides it.
    pub state_dir: Option<Sp<String>>,
    /// How to reach and authenticate with the gateway.
    pub gateway: Option<RawGateway>,
    /// Variables available to every template and expression. `--var NAME=VALUE` overrides them.
    #[schemars(transform = super::schema::identifier_keys)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub vars: Option<BTreeMap<String, Sp<toml::Value>>>,
    /// State carried from one successful run to the next, with its value for the first run.
    /// Templates read it as `state.<key>`; steps update it with `persist`.
    #[schemars(transform = super::schema::identifier_keys)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub state: Option<BTreeMap<String, Sp<toml::Value>>>,
    /// The replica database that `load` steps write to.
    pub database: Option<RawDatabase>,
    /// Defaults for every step.
    pub defaults: Option<RawDefaults>,
    /// The steps, run in order.
    pub step: Option<Vec<RawStep>>,
}

/// Gateway address, credentials and transport settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawGateway {
    /// Base URL of the API gateway. Default `https://api-gateway.instructure.com`;
    /// `DAP_API_URL` and `--gateway-url` override it. Plain `http://` only for loopback.
    pub url: Option<Sp<String>>,
    /// `client_credentials` (default: log in with a client id and secret) or `inst_access`
    /// (mint Canvas InstAccess tokens with a Canvas API token).
    #[schemars(transform = super::schema::auth)]
    pub auth: Option<Sp<String>>,
    /// Client id template. Default `{{ env.DAP_CLIENT_ID }}`.
    pub client_id: Option<Sp<String>>,
    /// Client secret template. Default `{{ env.DAP_CLIENT_SECRET }}`. A secret written in the
    /// file itself is refused.
    #[schemars(transform = super::schema::template)]
    pub client_secret: Option<Sp<String>>,
    /// Canvas base URL, for `auth = "inst_access"`.
    pub canvas_url: Option<Sp<String>>,
    /// Canvas API token template, for `auth = "inst_access"`. Default `{{ env.CANVAS_API_TOKEN }}`.
    /// A token written in the file itself is refused.
    #[schemars(transform = super::schema::template)]
    pub canvas_token: Option<Sp<String>>,
    /// Reuse a still-valid token across runs: `true` (in the user's cache folder) or a file path.
    #[schemars(with = "Option<TokenCacheSchema>")]
    pub token_cache: Option<Sp<toml::Value>>,
    /// Timeout of one request, e.g. `30s`. Default `60s`.
    #[schemars(transform = super::schema::duration)]
    pub timeout: Option<Sp<String>>,
    /// Retries on 429, 502, 503, 504 and connection errors.
    pub retry: Option<RawRetry>,
    /// Requests allowed per route, e.g. `"POST /dap/query/*/table/*/data" = "5/min"`
    /// (`N/s`, `N/min`, `N/h`, or `"unlimited"`). The gateway's published limits are the defaults.
    #[schemars(transform = super::schema::rate_limits)]
    pub rate_limits: Option<BTreeMap<String, Sp<String>>>,
}

/// Retry policy for transient failures.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, including the first. Default 5.
    #[schemars(transform = super::schema::attempts)]
    pub attempts: Option<Sp<i64>>,
    /// Backoff between attempts, growing from the first to the second bound with jitter,
    /// e.g. `"500ms..30s"`. `Retry-After` is honoured when the gateway sends it.
    #[schemars(transform = super::schema::duration_range)]
    pub backoff: Option<Sp<String>>,
}

/// The replica database.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDatabase {
    /// Connection string template: `postgresql://user:password@host:port/database?sslmode=…`,
    /// `mysql://user:password@host:port/database` (MySQL 8 or MariaDB 10.11+) or `sqlite:PATH`
    /// (relative to the job file). `DAP_CONNECTION_STRING` and `--database`
    /// override it. Default: the SQLite file `replica.db` under the output folder.
    pub url: Option<Sp<String>>,
}

/// Settings every step inherits unless it sets its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDefaults {
    /// Loop items run at once. Default 4.
    #[schemars(transform = super::schema::concurrency)]
    pub concurrency: Option<Sp<i64>>,
    /// Headers added to every gateway request (templates).
    #[schemars(transform = super::schema::header_keys)]
    pub headers: Option<BTreeMap<String, Sp<String>>>,
}

/// One step: a request, what to extract from its response, and what to do with it.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = super::schema::one_request)]
#[schemars(deny_unknown_fields)]
pub struct RawStep {
    /// Identifier of the step (letters, digits, `_`), unique in the job.
    #[schemars(transform = super::schema::identifier)]
    pub id: Sp<String>,
    /// What the step does (shown by `dap-run plan`).
    pub description: Option<String>,
    /// GET this path (under the gateway URL) or absolute URL. A template.
    pub get: Option<Sp<String>>,
    /// POST to this path or URL. A template.
    pub post: Option<Sp<String>>,
    /// PUT to this path or URL. A template.
    pub put: Option<Sp<String>>,
    /// PATCH this path or URL. A template.
    pub patch: Option<Sp<String>>,
    /// DELETE this path or URL. A template.
    pub delete: Option<Sp<String>>,
    /// Query parameters (templates).
    pub query: Option<BTreeMap<String, Sp<String>>>,
    /// Request headers (templates).
    #[schemars(transform = super::schema::header_keys)]
    pub headers: Option<BTreeMap<String, Sp<String>>>,
    /// JSON body. Strings are templates; a string that is a lone `{{ expression }}` keeps the
    /// expression's type (a list stays a list), and a key whose lone expression is undefined or
    /// `none` is left out.
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Sp<toml::Value>>,
    /// Raw body (a template), sent as is.
    pub body: Option<Sp<String>>,
    /// An expression, e.g. `table in state.until`: where it holds, the request must be an
    /// incremental DAP query (its JSON body has a `since`). An item that would take a snapshot
    /// instead fails the step before any of the step's requests is sent.
    pub incremental: Option<Sp<String>>,
    /// Run the step (or, in a loop, the item) only when this expression holds; otherwise it is
    /// skipped: no request, no files, no state, and for a step that does not loop its outputs
    /// are `none`. Looped items that are skipped are left out of the step's list.
    pub when: Option<Sp<String>>,
    /// Values computed from what the step sees (a template, or a lone `{{ expression }}` that
    /// keeps its type), available like outputs: to checks, saves, persist and later steps. A
    /// step with `let` and no request sends nothing.
    #[serde(rename = "let")]
    #[schemars(transform = super::schema::identifier_keys)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub let_: Option<BTreeMap<String, Sp<toml::Value>>>,
    /// Run the step once per element of this expression's value (a list): a variable, an
    /// output, or the id of an earlier looped step (its successful items).
    pub for_each: Option<Sp<String>>,
    /// Name of the loop variable. Default `item`; the position is `index`.
    #[serde(rename = "as")]
    #[schemars(transform = super::schema::identifier)]
    pub as_: Option<Sp<String>>,
    /// How logs and reports name each loop item (a template over the loop variable and
    /// `index`), e.g. `"{{ item.namespace }}.{{ item.table }}"`. Default: the item's value.
    pub label: Option<Sp<String>>,
    /// Loop items run at once. Default from `[defaults]`, else 4.
    #[schemars(transform = super::schema::concurrency)]
    pub concurrency: Option<Sp<i64>>,
    /// Named JSONPath extractions from the JSON response: `name = "$.path"` or
    /// `name = { path = "$.path", optional = true }`.
    #[schemars(transform = super::schema::identifier_keys)]
    #[schemars(with = "Option<BTreeMap<String, OutputSchema>>")]
    pub outputs: Option<BTreeMap<String, Sp<toml::Value>>>,
    /// Repeat the request until a condition over its outputs holds.
    pub poll: Option<RawPoll>,
    /// Expressions that must hold after the step: `"expr"`, `{ that = "expr", message = "..." }`,
    /// or a list of them.
    #[schemars(with = "Option<CheckSchema>")]
    pub check: Option<Sp<toml::Value>>,
    /// Save the response body (`"path"`) or an output (`{ to = "path", output = "name" }`), or a
    /// list of them. Paths are templates under the output folder.
    #[schemars(with = "Option<SaveSchema>")]
    pub save: Option<Sp<toml::Value>>,
    /// Download the URLs a JSONPath finds in the response, streamed to files.
    pub download: Option<RawDownload>,
    /// Values to remember for the next run, saved only when the whole run succeeds:
    /// `"key.{{ subkey }}" = "{{ value }}"`.
    pub persist: Option<BTreeMap<String, Sp<String>>>,
    /// Load a DAP table into the replica database: the step makes its own requests (schema,
    /// query job, objects) and takes a snapshot or the changes since the table's last load.
    pub load: Option<RawLoad>,
}

/// A table to load into the replica database.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawLoad {
    /// Namespace (a template), e.g. `canvas`.
    pub namespace: Sp<String>,
    /// Table (a template), e.g. `{{ table }}`.
    pub table: Sp<String>,
    /// Keep the downloaded objects, for an archive: each load's stay in
    /// `<output>/<namespace>/<table>/<job id>/part-NNNNN.tsv.gz`, and they are yours to prune.
    /// Default false: a load's objects are removed once its transaction has committed.
    pub keep_downloads: Option<bool>,
    /// In a `for_each` step, the order the loop creates its tables' query jobs in.
    /// `"listed"` (the default): the list's order. `"slowest-first"`: by what each table took
    /// last time, from the replica's bookkeeping: tables with no history first (largest last
    /// row count first), then the longest job time, then the longest load time, so that a
    /// paced night ends near the larger of the pacing floor and the slowest table's own time.
    pub order: Option<LoadOrder>,
}

/// The order a loop of loads creates its query jobs in (`load.order`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadOrder {
    /// The list's order.
    #[default]
    Listed,
    /// Slowest first, from the replica's record of each table's last load.
    SlowestFirst,
}

/// Polling: the request is repeated until `until` holds.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawPoll {
    /// Expression over the step's outputs, e.g. `status in ['complete', 'failed']`.
    pub until: Sp<String>,
    /// Interval: fixed (`"2s"`) or growing (`"500ms..1m"`: a tenth of the time polled so far,
    /// within the two bounds). Default `500ms..30s`.
    #[schemars(transform = super::schema::duration_range)]
    pub every: Option<Sp<String>>,
    /// Give up after this long, e.g. `"2h"`. Default `1h`.
    #[schemars(transform = super::schema::duration)]
    pub timeout: Option<Sp<String>>,
}

/// Streamed downloads of URLs found in the response (pre-signed object URLs).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDownload {
    /// JSONPath to the URLs in the response, e.g. `$.urls.*.url`.
    pub urls: Sp<String>,
    /// File path template under the output folder; `part` is the URL's position (use
    /// `{{ part | pad(5) }}` for `00000`).
    pub to: Sp<String>,
    /// Decompress gzip while streaming (write `.jsonl` rather than `.jsonl.gz`). Default false.
    pub decompress: Option<bool>,
    /// With `decompress`: the most times larger the decompressed file may be than its gzip
    /// (checked past the first 16 MiB); a part that expands more fails. Default 200.
    #[schemars(transform = super::schema::max_ratio)]
    pub max_ratio: Option<Sp<i64>>,
    /// Downloads at once for one item. Default 4.
    #[schemars(transform = super::schema::download_concurrency)]
    pub concurrency: Option<Sp<i64>>,
}

// ---- Schema-only shapes of polymorphic keys ----

/// `true`/`false`, or the path of the cache file.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TokenCacheSchema {
    /// Use the default cache file (or none).
    Enabled(bool),
    /// Path of the cache file.
    Path(String),
}

/// A JSONPath, or a table with the path and whether it may match nothing.
#[derive(JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
#[allow(dead_code)]
pub enum OutputSchema {
    /// A JSONPath such as `$.tables` (one value) or `$.urls.*.url` (a list).
    Path(String),
    /// A JSONPath with options.
    Spec {
        /// The JSONPath.
        path: String,
        /// When true, no match gives `none` (or `[]` for a list path) instead of an error.
        optional: Option<bool>,
    },
}

/// One check or a list of checks.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CheckSchema {
    /// One check.
    One(OneCheckSchema),
    /// Several checks.
    Many(Vec<OneCheckSchema>),
}

/// An expression that must hold, optionally with a message template.
#[derive(JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
#[allow(dead_code)]
pub enum OneCheckSchema {
    /// The expression alone.
    Expr(String),
    /// The expression and a message.
    Spec {
        /// Expression that must be true.
        that: String,
        /// Message template shown when it is false.
        message: Option<String>,
    },
}

/// One save or a list of saves.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SaveSchema {
    /// One save.
    One(OneSaveSchema),
    /// Several saves.
    Many(Vec<OneSaveSchema>),
}

/// Where to save, and what.
#[derive(JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
#[allow(dead_code)]
pub enum OneSaveSchema {
    /// Save the response body to this path.
    Body(String),
    /// Save the response body, or one output as JSON, to a path.
    Spec {
        /// Path template under the output folder.
        to: String,
        /// Name of an output of this step to save as JSON instead of the body.
        output: Option<String>,
    },
}

/// A dap-run project file (`dap-run.toml`): the `[gateway]` settings every job file in its
/// folder inherits; a job's own `[gateway]` keys win over them.
// Unknown keys are reported by `load::parse_project` (every one, at its place), so serde lets
// them through; the schema denies them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(title = "dap-run project file")]
pub struct RawProject {
    /// Gateway settings every job in the folder inherits, key by key (`retry` and
    /// `rate_limits` entry by entry).
    pub gateway: Option<RawGateway>,
}
