//! The object store: pre-signed URLs and the second origin that serves them like S3.
//!
//! URLs carry an HMAC signature over the object key, the signing time and the lifetime, so the
//! store can tell a forged or expired URL from a good one without any shared session. Files are
//! generated on the fly from (table, part) through a streaming gzip encoder, a chunk at a time,
//! so a "large" object costs no memory and every object is still valid gzip.

use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::Shared;
use super::auth::mac;
use super::clock::unix_now;
use super::data::{Model, Table, Window};
use super::formats::{Encoder, Format};
use super::random::{hex, uuid};

/// Pre-signed URLs are valid this long, like DAP's.
const URL_LIFETIME_SECONDS: i64 = 900;

/// Bytes of gzip output gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// What an object holds.
#[derive(Clone, Debug)]
pub(crate) struct ObjectSpec {
    pub(crate) namespace: String,
    pub(crate) table: String,
    pub(crate) part: u64,
    pub(crate) parts: u64,
    pub(crate) format: Format,
    pub(crate) condensed: bool,
    /// Set when the job completes: the snapshot's `at` or the incremental's window.
    pub(crate) window: Option<Window>,
}

fn signature(shared: &Shared, key: &str, date: i64, expires: i64) -> String {
    let message = format!("GET\n/objects/{key}\n{date}\n{expires}");
    hex(&mac(&shared.key, message.as_bytes()))
}

/// A pre-signed URL for object `key`, valid for 15 minutes from now.
pub(crate) fn presign(shared: &Shared, key: &str) -> String {
    let date = unix_now() as i64;
    let signature = signature(shared, key, date, URL_LIFETIME_SECONDS);
    format!(
        "{}/objects/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-Expires={URL_LIFETIME_SECONDS}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
        shared.object_store_url
    )
}

/// The object store origin.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/objects/{*key}", get(download))
        .with_state(shared)
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId></Error>",
        uuid()
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

async fn download(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        shared.lock().counters.object_auth_rejected += 1;
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        );
    }
    let expired = {
        let mut state = shared.lock();
        let f = &mut state.faults;
        let expire = f.expire_object_urls > 0 && f.expire_object_urls_after == 0;
        if expire {
            f.expire_object_urls -= 1;
        } else if f.expire_object_urls > 0 {
            f.expire_object_urls_after -= 1;
        }
        expire
    };
    if expired {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then_some(value)
        })
    };
    let date = param("X-Amz-Date").and_then(|value| value.parse::<i64>().ok());
    let expires = param("X-Amz-Expires").and_then(|value| value.parse::<i64>().ok());
    let (Some(date), Some(expires), Some(given)) = (date, expires, param("X-Amz-Signature")) else {
        return s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the X-Amz-Date, X-Amz-Expires and X-Amz-Signature parameters",
        );
    };
    if given != signature(&shared, &key, date, expires) {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if unix_now() as i64 > date.saturating_add(expires) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let spec = {
        let mut state = shared.lock();
        let spec = state.objects.get(&key).cloned();
        if spec.is_some() {
            state.counters.object_downloads += 1;
        }
        spec
    };
    let Some(spec) = spec else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let model = shared.lock().model.clone();
    let Some(generator) = Generator::new(&spec, &model, shared.config.large_object_bytes) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let stream = futures_util::stream::unfold(generator, |mut generator| async move {
        let chunk = generator.next_chunk()?;
        Some((Ok::<Bytes, std::io::Error>(chunk), generator))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("binary/octet-stream"),
    );
    response
}

/// Produces an object's gzip bytes a chunk at a time.
pub(crate) struct Generator {
    model: Model,
    table: Table,
    window: Window,
    encoder: Encoder,
    gzip: Option<GzEncoder<Vec<u8>>>,
    next_key: u64,
    /// End of the part's keys (exclusive); `None` for a large object.
    end_key: Option<u64>,
    /// Uncompressed bytes to write for a large object.
    target: u64,
    written: u64,
    line: String,
}

impl Generator {
    /// A generator for the part's rows, or for about `large_bytes` bytes of rows (consistent
    /// in content, not in count) when that is above zero; `None` before the job completed or
    /// for an unknown table.
    pub(crate) fn new(spec: &ObjectSpec, model: &Model, large_bytes: u64) -> Option<Generator> {
        let window = spec.window?;
        let table = model.table(&spec.namespace, &spec.table, window.end())?;
        let incremental = matches!(window, Window::Changes(..));
        let encoder = Encoder::new(spec.format, spec.condensed, incremental, table.clone());
        // Large objects are stored uncompressed inside gzip so their size is what was asked
        // for and generating them stays cheap; the others use the fastest level.
        let level = if large_bytes > 0 {
            Compression::none()
        } else {
            Compression::fast()
        };
        let mut gzip = GzEncoder::new(Vec::with_capacity(CHUNK_BYTES * 2), level);
        if let Some(header) = encoder.header() {
            let _ = gzip.write_all(header.as_bytes());
        }
        let (first, end) = model.part_keys(&table.name, spec.part, spec.parts);
        Some(Generator {
            model: model.clone(),
            table,
            window,
            encoder,
            gzip: Some(gzip),
            next_key: first,
            end_key: (large_bytes == 0).then_some(end),
            target: large_bytes,
            written: 0,
            line: String::with_capacity(512),
        })
    }

    /// The next chunk of gzip bytes, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        let mut gzip = self.gzip.take()?;
        loop {
            let finished = match self.end_key {
                Some(end) => self.next_key >= end,
                None => self.written >= self.target,
            };
            if finished {
                let rest = gzip.finish().unwrap_or_default();
                return Some(Bytes::from(rest));
            }
            let key = self.next_key;
            self.next_key += 1;
            let record = match self.end_key {
                Some(_) => self.model.record(&self.table, key, self.window),
                None => {
                    let version = self.model.version_at(key, self.window.end());
                    Some(self.model.row(&self.table, key, version))
                }
            };
            let Some(record) = record else {
                continue;
            };
            self.line.clear();
            self.encoder.write(&record, &mut self.line);
            self.written += self.line.len() as u64;
            // Writing into a Vec cannot fail.
            let _ = gzip.write_all(self.line.as_bytes());
            if gzip.get_ref().len() >= CHUNK_BYTES {
                let chunk = std::mem::take(gzip.get_mut());
                self.gzip = Some(gzip);
                return Some(Bytes::from(chunk));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn drain(mut generator: Generator) -> (usize, String) {
        let mut bytes = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = generator.next_chunk() {
            chunks += 1;
            bytes.extend_from_slice(&chunk);
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("valid gzip");
        (chunks, text)
    }

    const AT: i64 = 1_790_000_000;

    fn spec(format: Format, part: u64, window: Window) -> ObjectSpec {
        ObjectSpec {
            namespace: "canvas".to_owned(),
            table: "accounts".to_owned(),
            part,
            parts: 2,
            format,
            condensed: true,
            window: Some(window),
        }
    }

    fn generator(spec: ObjectSpec, large: u64) -> Generator {
        Generator::new(&spec, &Model::default(), large).expect("generator")
    }

    #[test]
    fn objects_hold_the_oracle_s_rows_of_their_part() {
        let model = Model::default();
        let window = Window::Snapshot(AT);
        let (_, text) = drain(generator(spec(Format::Jsonl, 1, window), 0));
        let table = model.table("canvas", "accounts", AT).expect("table");
        let expected: Vec<serde_json::Value> = model
            .snapshot_rows("canvas", "accounts", AT)
            .iter()
            .filter(|row| matches!(row.key, super::super::data::Cell::Int(21..)))
            .map(|row| row.to_json(&table))
            .collect();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("json"))
            .collect();
        assert!(rows.len() > 10, "{}", rows.len());
        assert_eq!(rows, expected);
    }

    #[test]
    fn tsv_objects_start_with_a_header() {
        let (_, text) = drain(generator(
            spec(Format::Tsv, 0, Window::Changes(AT, AT + 3)),
            0,
        ));
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert!(header.starts_with("key.id\tvalue.name\t"), "{header}");
        assert!(header.ends_with("\tmeta.action\tmeta.ts"), "{header}");
        let actions: Vec<&str> = lines
            .map(|line| line.split('\t').rev().nth(1).expect("action"))
            .collect();
        assert!(actions.contains(&"U"), "{actions:?}");
    }

    #[test]
    fn no_object_before_its_job_completes() {
        let mut pending = spec(Format::Csv, 0, Window::Snapshot(AT));
        pending.window = None;
        assert!(Generator::new(&pending, &Model::default(), 0).is_none());
    }

    #[test]
    fn large_objects_come_in_many_chunks() {
        let (chunks, text) = drain(generator(
            spec(Format::Csv, 0, Window::Snapshot(AT)),
            1 << 20,
        ));
        assert!(chunks > 4, "{chunks} chunks");
        assert!(text.len() >= 1 << 20);
        assert!(text.ends_with('\n'));
    }
}
