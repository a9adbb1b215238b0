//! What the attempt loop does with a 2xx response: buffer it (with a size limit) or stream it
//! into a file. An exchange says whether a failure is worth another attempt ([`Taken::Retry`])
//! or final ([`Taken::Fail`]); the loop does the rest.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use super::Stats;
use super::error::{Cause, DataProblem, HttpError, Peer};
use crate::fsio::FileSink;

/// How an exchange failed.
pub enum Taken {
    /// Worth another attempt (the body was cut short or stalled).
    Retry(Cause),
    /// Final.
    Fail(HttpError),
}

/// Takes a 2xx response.
pub trait Exchange: Send {
    /// What a successful exchange yields.
    type Output: Send;
    /// Reads the response. `what` is the request's printable name, for errors.
    fn take(
        &mut self,
        resp: reqwest::Response,
        what: &str,
    ) -> impl Future<Output = Result<Self::Output, Taken>> + Send;
}

/// A buffered response.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: Bytes,
}

/// Buffers the body, refusing one larger than `limit` whole (never truncated), within
/// `timeout` for the whole body.
pub struct Buffered {
    /// Largest body accepted.
    pub limit: u64,
    /// Time allowed for the body.
    pub timeout: Duration,
    /// Who answers (for the wording of errors).
    pub peer: Peer,
}

impl Exchange for Buffered {
    type Output = Response;

    async fn take(&mut self, resp: reqwest::Response, what: &str) -> Result<Response, Taken> {
        let status = resp.status();
        match tokio::time::timeout(self.timeout, read_limited(resp, self.limit)).await {
            Ok(Ok(body)) => Ok(Response { status, body }),
            Ok(Err(ReadError::Transport(e))) => Err(Taken::Retry(Cause::transport(e))),
            Ok(Err(ReadError::TooLarge(seen))) => Err(Taken::Fail(HttpError::TooLarge {
                what: what.to_owned(),
                peer: self.peer,
                status,
                limit: self.limit,
                seen,
            })),
            Err(_) => Err(Taken::Retry(Cause::Stalled(self.timeout))),
        }
    }
}

/// Why a buffered body could not be had.
pub enum ReadError {
    /// The connection failed while reading.
    Transport(reqwest::Error),
    /// Larger than the limit (declared or read).
    TooLarge(u64),
}

/// Reads a body of at most `limit` bytes.
pub async fn read_limited(mut resp: reqwest::Response, limit: u64) -> Result<Bytes, ReadError> {
    if let Some(len) = resp.content_length()
        && len > limit
    {
        return Err(ReadError::TooLarge(len));
    }
    // Sized once from the declared length: grown by doubling, a 50 MB body took 64 MiB and
    // held the old and the new buffer at once while it grew.
    let declared = resp.content_length().map_or(0, |len| len.min(limit));
    let mut buf = bytes::BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::TooLarge((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Bytes per `timeout` a download must average (see [`ToFile`]).
pub const MIN_BYTES_PER_TIMEOUT: u64 = 1024 * 1024;

/// Decompressed bytes written before the expansion ratio is checked: small files that
/// compress extremely well (a column of zeros) are no bomb.
pub const RATIO_GRACE_BYTES: u64 = 16 * 1024 * 1024;

/// Streams the body into a file, gunzipping if asked; yields the bytes written.
///
/// The timeout model of one attempt (`timeout` is the job's `[gateway] timeout`): the headers
/// must arrive within `timeout` (the loop's rule); then no gap between two chunks may exceed
/// `timeout`, and the attempt must average at least [`MIN_BYTES_PER_TIMEOUT`] per `timeout`:
/// it fails once it has run `timeout × (2 + MiB received)`. A store sending one byte a second
/// to a job with `timeout = "5s"` fails the attempt after about 10 s, not hours later.
pub struct ToFile {
    /// The (temporary) file written; truncated at each attempt.
    pub path: PathBuf,
    /// Gunzip on the way.
    pub decompress: bool,
    /// Largest expansion allowed when decompressing.
    pub max_ratio: u32,
    /// Largest body accepted, declared or received (`None`: no limit).
    pub limit: Option<u64>,
    /// Who answers (for the wording of errors).
    pub peer: Peer,
    /// The job's timeout.
    pub timeout: Duration,
    /// Progress.
    pub bar: indicatif::ProgressBar,
    /// Where the bytes are counted.
    pub stats: Arc<Stats>,
}

impl ToFile {
    fn local(&self, source: std::io::Error) -> Taken {
        Taken::Fail(HttpError::LocalIo {
            path: self.path.clone(),
            source,
        })
    }

    /// A write error: the decoder's complaint about the data, or the disk.
    fn write_error(&self, what: &str, e: std::io::Error) -> Taken {
        use std::io::ErrorKind::*;
        if self.decompress && matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof) {
            Taken::Fail(HttpError::BadData {
                what: what.to_owned(),
                problem: DataProblem::NotGzip(e),
            })
        } else {
            self.local(e)
        }
    }
}

impl Exchange for ToFile {
    type Output = u64;

    async fn take(&mut self, mut resp: reqwest::Response, what: &str) -> Result<u64, Taken> {
        let status = resp.status();
        let too_large = |seen: u64| {
            Taken::Fail(HttpError::TooLarge {
                what: what.to_owned(),
                peer: self.peer,
                status,
                limit: self.limit.unwrap_or(u64::MAX),
                seen,
            })
        };
        if let (Some(limit), Some(len)) = (self.limit, resp.content_length())
            && len > limit
        {
            return Err(too_large(len));
        }
        let mut sink = FileSink::create(&self.path, self.decompress).map_err(|e| self.local(e))?;
        self.bar.reset();
        if let Some(len) = resp.content_length() {
            self.bar.set_length(len);
        }
        let started = Instant::now();
        let mut received = 0u64;
        loop {
            let allowed = self
                .timeout
                .saturating_mul(2 + (received / MIN_BYTES_PER_TIMEOUT).min(u32::MAX as u64) as u32);
            let left = allowed.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Taken::Retry(Cause::TooSlow {
                    limit: allowed,
                    bytes: received,
                }));
            }
            let wait = left.min(self.timeout);
            let chunk = match tokio::time::timeout(wait, resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(Taken::Retry(Cause::transport(e))),
                Err(_) if wait == self.timeout => {
                    return Err(Taken::Retry(Cause::Stalled(self.timeout)));
                }
                Err(_) => continue,
            };
            received += chunk.len() as u64;
            if self.limit.is_some_and(|limit| received > limit) {
                return Err(too_large(received));
            }
            self.bar.inc(chunk.len() as u64);
            // Small slices: one write of a gzip bomb's chunk could expand a thousandfold.
            for piece in chunk.chunks(16 * 1024) {
                tokio::task::block_in_place(|| sink.write(piece))
                    .map_err(|e| self.write_error(what, e))?;
                if self.decompress {
                    let expanded = sink.written();
                    if expanded > RATIO_GRACE_BYTES
                        && expanded > received.saturating_mul(self.max_ratio as u64)
                    {
                        return Err(Taken::Fail(HttpError::BadData {
                            what: what.to_owned(),
                            problem: DataProblem::Expansion {
                                ratio: self.max_ratio,
                                compressed: received,
                                expanded,
                            },
                        }));
                    }
                }
            }
        }
        let n =
            tokio::task::block_in_place(|| sink.finish()).map_err(|e| self.write_error(what, e))?;
        self.stats.downloaded.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}
