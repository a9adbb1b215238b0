//! The body of a query job request (`POST /dap/query/{namespace}/table/{table}/data`) as the
//! gateway validates it: JSON, only `format`, `mode`, `since` and `until`, and a
//! `ValidationError` that says where, by line, column and character, as the real one does.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::clock::parse_rfc3339;
use super::formats::Format;
use super::reply::ApiError;

/// A validated query body.
pub(super) struct Query {
    pub(super) format: Format,
    pub(super) condensed: bool,
    pub(super) since: Option<i64>,
    pub(super) until: Option<i64>,
}

pub(super) fn validation_error(body: &[u8], key: Option<&str>, message: String) -> ApiError {
    let character = key
        .and_then(|key| {
            let needle = format!("\"{key}\"");
            body.windows(needle.len())
                .position(|window| window == needle.as_bytes())
        })
        .unwrap_or(0);
    let before = &body[..character];
    let line = 1 + before.iter().filter(|byte| **byte == b'\n').count();
    let column = 1 + before
        .iter()
        .rev()
        .take_while(|byte| **byte != b'\n')
        .count();
    location_error(message, line, column, character + 1)
}

pub(super) fn location_error(
    message: String,
    line: usize,
    column: usize,
    character: usize,
) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        kind: "ValidationError",
        message,
        extra: json!({"location": {"line": line, "column": column, "character": character}}),
    }
}

pub(super) fn parse_query(body: &[u8]) -> Result<Query, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        location_error(
            format!("the request body is not valid JSON: {err}"),
            err.line().max(1),
            err.column().max(1),
            1,
        )
    })?;
    let Value::Object(fields) = value else {
        return Err(validation_error(
            body,
            None,
            "the request body must be a JSON object".to_owned(),
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !["format", "mode", "since", "until"].contains(&key.as_str()))
    {
        return Err(validation_error(
            body,
            Some(unknown),
            format!("unknown field `{unknown}`; expected `format`, `mode`, `since` or `until`"),
        ));
    }
    let format = match fields.get("format") {
        None => {
            return Err(validation_error(
                body,
                None,
                "missing required field `format`".to_owned(),
            ));
        }
        // The real gateway also writes Parquet; the sandbox cannot, and says so rather than
        // serving something else under that name.
        Some(format) if format.as_str() == Some("parquet") => {
            return Err(validation_error(
                body,
                Some("format"),
                "`format` `parquet` is not supported by the sandbox gateway; use `jsonl`, `csv` or `tsv`".to_owned(),
            ));
        }
        Some(format) => format.as_str().and_then(Format::parse).ok_or_else(|| {
            validation_error(
                body,
                Some("format"),
                "`format` must be one of `jsonl`, `csv`, `tsv`, `parquet`".to_owned(),
            )
        })?,
    };
    if let Some(mode) = fields.get("mode")
        && !matches!(mode.as_str(), Some("expanded" | "condensed"))
    {
        return Err(validation_error(
            body,
            Some("mode"),
            "`mode` must be `expanded` or `condensed`".to_owned(),
        ));
    }
    let timestamp = |key: &str| -> Result<Option<i64>, ApiError> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_str()
                .and_then(parse_rfc3339)
                .map(Some)
                .ok_or_else(|| {
                    validation_error(
                        body,
                        Some(key),
                        format!("`{key}` must be an RFC 3339 date-time with a time zone"),
                    )
                }),
        }
    };
    let since = timestamp("since")?;
    let until = timestamp("until")?;
    match (since, until) {
        (None, Some(_)) => {
            return Err(validation_error(
                body,
                Some("until"),
                "`until` needs `since`".to_owned(),
            ));
        }
        (Some(since), Some(until)) if until <= since => {
            return Err(validation_error(
                body,
                Some("until"),
                "`until` must be later than `since`".to_owned(),
            ));
        }
        _ => {}
    }
    let condensed = fields.get("mode").and_then(Value::as_str) == Some("condensed");
    Ok(Query {
        format,
        condensed,
        since,
        until,
    })
}
