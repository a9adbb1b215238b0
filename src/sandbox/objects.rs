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
use super::data::{self, Format};
use super::server::{hex, unix_now, uuid};

/// Pre-signed URLs are valid this long, like DAP's.
const URL_LIFETIME_SECONDS: i64 = 900;

/// Bytes of gzip output gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// What an object holds.
#[derive(Clone, Debug)]
pub(crate) struct ObjectSpec {
    pub(crate) table: String,
    pub(crate) part: u64,
    pub(crate) format: Format,
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
        let expire = state.faults.expire_object_urls > 0;
        if expire {
            state.faults.expire_object_urls -= 1;
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
    let generator = Generator::new(
        spec,
        shared.config.object_rows as u64,
        shared.config.large_object_bytes,
    );
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
    spec: ObjectSpec,
    encoder: Option<GzEncoder<Vec<u8>>>,
    next_id: u64,
    /// Last row id for a small object; `None` for a large one.
    last_id: Option<u64>,
    /// Uncompressed bytes to write for a large object.
    target: u64,
    written: u64,
    line: String,
}

impl Generator {
    /// A generator for `rows` rows, or for about `large_bytes` bytes when that is above zero.
    pub(crate) fn new(spec: ObjectSpec, rows: u64, large_bytes: u64) -> Generator {
        // Large objects are stored uncompressed inside gzip so their size is what was asked
        // for and generating them stays cheap.
        let level = if large_bytes > 0 {
            Compression::none()
        } else {
            Compression::default()
        };
        let mut encoder = GzEncoder::new(Vec::with_capacity(CHUNK_BYTES * 2), level);
        if let Some(header) = spec.format.header() {
            let _ = encoder.write_all(header.as_bytes());
        }
        let first = spec.part * rows.max(1) + 1;
        Generator {
            last_id: (large_bytes == 0).then(|| first + rows - 1),
            next_id: first,
            spec,
            encoder: Some(encoder),
            target: large_bytes,
            written: 0,
            line: String::with_capacity(256),
        }
    }

    /// The next chunk of gzip bytes, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        let mut encoder = self.encoder.take()?;
        loop {
            let finished = match self.last_id {
                Some(last) => self.next_id > last,
                None => self.written >= self.target,
            };
            if finished {
                let rest = encoder.finish().unwrap_or_default();
                return Some(Bytes::from(rest));
            }
            self.line.clear();
            data::row(
                &self.spec.table,
                self.next_id,
                self.spec.format,
                &mut self.line,
            );
            self.next_id += 1;
            self.written += self.line.len() as u64;
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(self.line.as_bytes());
            if encoder.get_ref().len() >= CHUNK_BYTES {
                let chunk = std::mem::take(encoder.get_mut());
                self.encoder = Some(encoder);
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

    fn spec(format: Format, part: u64) -> ObjectSpec {
        ObjectSpec {
            table: "accounts".to_owned(),
            part,
            format,
        }
    }

    #[test]
    fn small_objects_hold_the_rows_of_their_part() {
        let (_, text) = drain(Generator::new(spec(Format::Jsonl, 1), 3, 0));
        let ids: Vec<u64> = text
            .lines()
            .map(|line| {
                let row: serde_json::Value = serde_json::from_str(line).expect("json");
                row["key"]["id"].as_u64().expect("id")
            })
            .collect();
        assert_eq!(ids, [4, 5, 6]);
    }

    #[test]
    fn tsv_objects_start_with_a_header() {
        let (_, text) = drain(Generator::new(spec(Format::Tsv, 0), 2, 0));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("key.id\tvalue.name"));
        assert!(lines[1].starts_with("1\taccounts 1\t"));
    }

    #[test]
    fn large_objects_come_in_many_chunks() {
        let (chunks, text) = drain(Generator::new(spec(Format::Csv, 0), 20, 1 << 20));
        assert!(chunks > 4, "{chunks} chunks");
        assert!(text.len() >= 1 << 20);
        assert!(text.ends_with('\n'));
    }
}
