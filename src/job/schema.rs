//! The rules of a job file (and of the project file's `[gateway]`) that their JSON Schemas
//! state beyond types, so that an editor marks what `dap-run check` refuses: identifiers,
//! durations, bounds of counts, header names, rate limits, the `auth` kinds, secrets written
//! as templates, and one request per step. Each is a schemars transform that
//! [`raw`](super::raw) attaches to a key; the patterns mirror the checks in
//! [`validate`](super::validate), and `tests/it/schema.rs` runs every refused job through both.
//!
//! What a pattern cannot say (a duration of zero or over seven days, a variable that nothing
//! defines) is left to `check`: the schema refuses less than `check`, never more.

use schemars::Schema;
use serde_json::{Value as Json, json};

/// Step ids, variable, state, output and `let` names, loop variables (`validate::is_identifier`).
pub const IDENTIFIER: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// Header names as HTTP has them (RFC 9110 tokens): what `reqwest` accepts.
const HEADER_NAME: &str = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";

/// The units `humantime` knows, longest first.
const UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y";

/// One or more numbers with a unit: `30s`, `1m 30s`, `1.5h`.
fn duration_pattern() -> String {
    format!(r"([0-9]+(\.[0-9]+)?\s*({UNITS})\s*)+")
}

fn set(schema: &mut Schema, key: &str, value: Json) {
    schema.insert(key.to_owned(), value);
}

/// A duration: `30s`, `5m`, `2h`, `1m 30s`.
pub fn duration(schema: &mut Schema) {
    set(
        schema,
        "pattern",
        json!(format!(r"^\s*{}$", duration_pattern())),
    );
}

/// A duration or a growing range of them: `2s`, `500ms..30s`.
pub fn duration_range(schema: &mut Schema) {
    let d = duration_pattern();
    set(schema, "pattern", json!(format!(r"^\s*{d}(\.\.\s*{d})?$")));
}

/// An identifier.
pub fn identifier(schema: &mut Schema) {
    set(schema, "pattern", json!(IDENTIFIER));
}

/// A table whose keys are identifiers.
pub fn identifier_keys(schema: &mut Schema) {
    set(schema, "propertyNames", json!({ "pattern": IDENTIFIER }));
}

/// A table of headers.
pub fn header_keys(schema: &mut Schema) {
    set(schema, "propertyNames", json!({ "pattern": HEADER_NAME }));
}

/// `"METHOD /path" = "N/min"` (or `N/s`, `N/h`, `N/<duration>` such as `5/6s`, `unlimited`).
pub fn rate_limits(schema: &mut Schema) {
    set(schema, "propertyNames", json!({ "pattern": r"^\S+ " }));
    set(
        schema,
        "additionalProperties",
        json!({
            "type": "string",
            "pattern": r"^\s*(0*[1-9][0-9]*\s*/\s*(s|sec|second|min|minute|m|h|hour|[0-9]+\s*(ms|s|m|min|h))|unlimited)\s*$",
        }),
    );
}

/// The bounds of a count (`check` refuses a value outside them too).
pub type Bounds = (i64, i64);

/// Loop items at once.
pub const CONCURRENCY: Bounds = (1, 256);
/// Retry attempts in all.
pub const ATTEMPTS: Bounds = (1, 100);
/// Downloads at once for one item.
pub const DOWNLOAD_CONCURRENCY: Bounds = (1, 64);
/// Decompressed size over gzip size.
pub const MAX_RATIO: Bounds = (1, 1_000_000);

fn range(schema: &mut Schema, (min, max): Bounds) {
    set(schema, "minimum", json!(min));
    set(schema, "maximum", json!(max));
}

/// Loop items at once: [`CONCURRENCY`].
pub fn concurrency(schema: &mut Schema) {
    range(schema, CONCURRENCY);
}

/// Retry attempts in all: [`ATTEMPTS`].
pub fn attempts(schema: &mut Schema) {
    range(schema, ATTEMPTS);
}

/// Downloads at once for one item: [`DOWNLOAD_CONCURRENCY`].
pub fn download_concurrency(schema: &mut Schema) {
    range(schema, DOWNLOAD_CONCURRENCY);
}

/// Decompressed size over gzip size: [`MAX_RATIO`].
pub fn max_ratio(schema: &mut Schema) {
    range(schema, MAX_RATIO);
}

/// A secret's setting is a template (`{{ env.DAP_CLIENT_SECRET }}`): a literal secret in the
/// file is refused (`validate::gateway`).
pub fn template(schema: &mut Schema) {
    set(schema, "pattern", json!(r"\{\{"));
}

/// The ways to log in.
pub fn auth(schema: &mut Schema) {
    set(schema, "enum", json!(["client_credentials", "inst_access"]));
}

const ONE_REQUEST: &str =
    "a step makes one request: keep one of `get`, `post`, `put`, `patch`, `delete`, or `load`";

/// A schema nothing matches, with the reason an editor shows.
fn refused(why: &str) -> Json {
    json!({ "not": {}, "description": why })
}

/// A step makes at most one request (`get`, `post`, `put`, `patch`, `delete`, or `load`, which
/// makes its own), and has `json` or `body`, not both. Stated per key, so an editor marks the
/// second key where it stands.
pub fn one_request(schema: &mut Schema) {
    let requests = ["get", "post", "put", "patch", "delete", "load"];
    let mut dependent = serde_json::Map::new();
    for key in requests {
        let others: serde_json::Map<String, Json> = requests
            .iter()
            .filter(|other| **other != key)
            .map(|other| ((*other).to_owned(), refused(ONE_REQUEST)))
            .collect();
        dependent.insert(key.to_owned(), json!({ "properties": others }));
    }
    dependent.insert(
        "json".into(),
        json!({ "properties": { "body": refused("a step has either `json` or `body`, not both") } }),
    );
    set(schema, "dependentSchemas", Json::Object(dependent));
}
