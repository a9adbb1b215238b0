//! The validated job: what the runner executes. Built only by [`validate`](super::validate);
//! every template, expression and JSONPath in it has been compiled and checked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value as Json;

pub use crate::extract::Output;
pub use crate::net::{Method, RateLimit};
use crate::template::{Expr, Templates, Tmpl};

/// A job ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The job file, as given on the command line.
    pub file: PathBuf,
    /// Folder every file is written under.
    pub output_dir: PathBuf,
    /// State carried between runs.
    pub state_file: PathBuf,
    /// Lock that keeps two runs of the job apart.
    pub lock_file: PathBuf,
    /// Gateway settings.
    pub gateway: Gateway,
    /// Variables, after `--var` overrides.
    pub vars: BTreeMap<String, Json>,
    /// State keys and their first-run values.
    pub state_defaults: BTreeMap<String, Json>,
    /// Per state key, the levels of tables its `persist` keys write (`until.{{ ns }}.{{ t }}`: 2).
    pub state_levels: BTreeMap<String, usize>,
    /// Headers added to every request.
    pub default_headers: Vec<(String, Tmpl)>,
    /// The replica database's connection string template (`[database] url`).
    pub database: Option<Tmpl>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The compiled templates.
    pub templates: Templates,
}

/// How to authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// OAuth client credentials against `/ids/auth/login`.
    ClientCredentials {
        /// Client id template.
        client_id: Tmpl,
        /// Client secret template.
        client_secret: Tmpl,
    },
    /// Canvas InstAccess tokens.
    InstAccess {
        /// Canvas base URL template.
        canvas_url: Tmpl,
        /// Canvas API token template.
        canvas_token: Tmpl,
    },
}

/// Where the token cache lives, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCache {
    /// No cache.
    Off,
    /// The default cache folder.
    Default,
    /// This file.
    File(PathBuf),
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Base URL template (an override from the environment or command line wins).
    pub url: Tmpl,
    /// Authentication.
    pub auth: Auth,
    /// Token cache.
    pub token_cache: TokenCache,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Attempts in all for transient failures.
    pub attempts: u32,
    /// Backoff bounds.
    pub backoff: (Duration, Duration),
    /// Request budgets per route.
    pub rate_limits: Vec<RateLimit>,
}

/// A JSON body template: literal parts kept, strings rendered, lone expressions typed.
#[derive(Debug, Clone)]
pub enum JsonTemplate {
    /// A value with no template in it.
    Literal(Json),
    /// A string template.
    Text(Tmpl),
    /// A lone `{{ expr }}`: keeps its type; undefined or none leaves its key out.
    Expr(Expr),
    /// An array.
    Array(Vec<JsonTemplate>),
    /// An object, in the file's order.
    Object(Vec<(String, JsonTemplate)>),
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// JSON.
    Json(JsonTemplate),
    /// Raw text.
    Raw(Tmpl),
}

/// A loop over a list.
#[derive(Debug, Clone)]
pub struct Loop {
    /// Expression whose value is the list.
    pub over: Expr,
    /// Name bound to each element.
    pub var: String,
    /// Items at once.
    pub concurrency: usize,
    /// What the record of each item (what later steps loop over) is made of.
    pub record: LoopRecord,
    /// How logs and reports name an item (`label`); default its value.
    pub label: Option<Tmpl>,
}

/// The one definition of a loop item's record, decided at validation and followed by the run:
/// `check` accepts exactly the fields the run will have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopRecord {
    /// Items are tables (a list of TOML tables in `[vars]`, or the records of an earlier looped
    /// step): the record is the item's own fields, then `index` and the outputs.
    Fields,
    /// Anything else: the record holds the item under the loop variable's name, then `index`
    /// and the outputs.
    Nested,
}

/// Polling settings.
#[derive(Debug, Clone)]
pub struct Poll {
    /// Condition that ends polling.
    pub until: Expr,
    /// First interval.
    pub min: Duration,
    /// Largest interval.
    pub max: Duration,
    /// Overall deadline.
    pub timeout: Duration,
}

/// A condition that must hold.
#[derive(Debug, Clone)]
pub struct Check {
    /// The expression.
    pub that: Expr,
    /// Message template for a failure.
    pub message: Option<Tmpl>,
}

/// What a save writes.
#[derive(Debug, Clone)]
pub enum SaveWhat {
    /// The response body.
    Body,
    /// One output, as pretty JSON.
    Output(String),
}

/// A file to write.
#[derive(Debug, Clone)]
pub struct Save {
    /// Path template under the output folder.
    pub to: Tmpl,
    /// What to write.
    pub what: SaveWhat,
}

/// Streamed downloads.
#[derive(Debug, Clone)]
pub struct Download {
    /// JSONPath to the URLs.
    pub urls: String,
    /// Compiled.
    pub query: JpQuery,
    /// Path template (`part` is the URL's position).
    pub to: Tmpl,
    /// Gunzip while streaming.
    pub decompress: bool,
    /// Largest expansion when decompressing.
    pub max_ratio: u32,
    /// Downloads at once.
    pub concurrency: usize,
}

/// A value to remember for the next run.
#[derive(Debug, Clone)]
pub struct Persist {
    /// Key path, one template per dotted segment.
    pub key: Vec<Tmpl>,
    /// The key as written.
    pub key_source: String,
    /// Value.
    pub value: JsonTemplate,
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Identifier.
    pub id: String,
    /// What it does.
    pub description: Option<String>,
    /// The request: method, and path under the gateway or absolute URL. `None` for a step that
    /// only computes values (`let`).
    pub request: Option<(Method, Tmpl)>,
    /// Runs (the step, or each loop item) only when this holds.
    pub when: Option<Expr>,
    /// Values computed after the response (or without one), seen like outputs.
    pub lets: Vec<(String, JsonTemplate)>,
    /// Query parameters.
    pub query: Vec<(String, Tmpl)>,
    /// Headers.
    pub headers: Vec<(String, Tmpl)>,
    /// Body.
    pub body: Body,
    /// Where this holds, the request must be an incremental DAP query (a `since` in its body);
    /// an item that would take a snapshot fails the step before any of its requests is sent.
    pub incremental: Option<Expr>,
    /// Loop.
    pub for_each: Option<Loop>,
    /// Outputs.
    pub outputs: Vec<Output>,
    /// Polling.
    pub poll: Option<Poll>,
    /// Checks.
    pub checks: Vec<Check>,
    /// Files.
    pub saves: Vec<Save>,
    /// Downloads.
    pub download: Option<Download>,
    /// State updates.
    pub persist: Vec<Persist>,
    /// A table to load into the replica database (the step then makes its own requests).
    pub load: Option<Load>,
}

/// A `load` step's table.
#[derive(Debug, Clone)]
pub struct Load {
    /// Namespace template.
    pub namespace: Tmpl,
    /// Table template.
    pub table: Tmpl,
    /// Keep the downloaded objects after the load (else removed once it has committed).
    pub keep_downloads: bool,
    /// The order a loop creates its tables' jobs in.
    pub order: LoadOrder,
}

pub use super::raw::LoadOrder;

/// The outputs of a `load` step's items, which later steps and checks can read.
pub const LOAD_OUTPUTS: &[&str] = &[
    "namespace",
    "table",
    "mode",
    "since",
    "until",
    "reason",
    "schema_version",
    "read",
    "upserted",
    "deleted",
    "rows",
    "load_s",
    "files",
];
