//! A made-up gateway: it logs anyone in and serves the tables a test describes, each with the
//! schema the test wrote and, for each query, the next job the test queued (its answer and its
//! objects). The sandbox serves data that is right by construction; this serves what a hostile
//! or broken gateway could send: odd names, odd values, job answers that lie.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

/// An object's text that makes its download never end: the answer's headers come, its body
/// never does (a load in flight, for a test to interrupt).
pub const STALL: &str = "\u{0}stall";

/// One query's job: fields of its complete answer and its objects (TSV text, served gzipped).
#[derive(Debug, Clone)]
pub struct FakeJob {
    /// Fields set on (or, when `Json::Null`, removed from) the default complete answer.
    patch: Vec<(String, Json)>,
    /// The objects' TSV text.
    objects: Vec<String>,
}

impl FakeJob {
    /// A complete snapshot at `at` with these objects.
    pub fn snapshot(at: &str, objects: &[&str]) -> FakeJob {
        FakeJob {
            patch: vec![("at".into(), json!(at))],
            objects: objects.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    /// A complete incremental ending at `until` (its `since` is the request's).
    pub fn incremental(until: &str, objects: &[&str]) -> FakeJob {
        FakeJob {
            patch: vec![("until".into(), json!(until))],
            objects: objects.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    /// A job that fails with `SnapshotRequiredError`: the incremental is refused, and the
    /// loader asks for a snapshot (the next queued job).
    pub fn refusal() -> FakeJob {
        FakeJob {
            patch: vec![
                ("status".into(), json!("failed")),
                (
                    "error".into(),
                    json!({"type": "SnapshotRequiredError", "message": "take a snapshot"}),
                ),
            ],
            objects: vec![],
        }
    }

    /// Sets a field of the job's complete answer (`Json::Null` removes it).
    pub fn with(mut self, field: &str, value: Json) -> FakeJob {
        self.patch.push((field.to_owned(), value));
        self
    }
}

#[derive(Default)]
struct Table {
    schema: Json,
    jobs: VecDeque<FakeJob>,
}

#[derive(Default)]
struct State {
    tables: BTreeMap<(String, String), Table>,
    /// Jobs handed out, by id: the answer and the objects.
    started: BTreeMap<String, (Json, Vec<String>)>,
    /// Every request: method and path.
    requests: Vec<String>,
    /// The bodies of the query requests, in order.
    queries: Vec<Json>,
}

/// A running made-up gateway.
pub struct FakeGateway {
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// Serves the router `app` makes (given its address) on a port of loopback, on a thread of
/// its own for the rest of the test process: the address.
pub fn serve_on_loopback(
    app: impl FnOnce(std::net::SocketAddr) -> axum::Router + Send + 'static,
) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send(addr).unwrap();
            axum::serve(listener, app(addr)).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

impl FakeGateway {
    pub fn start() -> FakeGateway {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let addr = serve_on_loopback(move |addr| {
            axum::Router::new().fallback(move |req: Request<Body>| {
                let state = shared.clone();
                async move { answer(req, &state, addr).await }
            })
        });
        FakeGateway {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// A workspace whose runs talk to this gateway.
    pub fn workspace(&self) -> super::Workspace {
        super::Workspace::at(&self.url, "hostile", "hostile-secret")
    }

    /// Serves table `ns.table` with this schema (`{"type": "object", "properties": {...}}`) at
    /// version 1.
    pub fn table(&self, ns: &str, table: &str, schema: Json) -> &Self {
        self.state
            .lock()
            .unwrap()
            .tables
            .entry((ns.to_owned(), table.to_owned()))
            .or_default()
            .schema = json!({"schema": schema, "version": 1});
        self
    }

    /// Queues the job the next query of `ns.table` gets.
    pub fn job(&self, ns: &str, table: &str, job: FakeJob) -> &Self {
        self.state
            .lock()
            .unwrap()
            .tables
            .get_mut(&(ns.to_owned(), table.to_owned()))
            .expect("a table before its jobs")
            .jobs
            .push_back(job);
        self
    }

    /// The bodies of the queries so far.
    pub fn queries(&self) -> Vec<Json> {
        self.state.lock().unwrap().queries.clone()
    }

    /// Requests so far (`GET /path`).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// A schema with these key properties and value properties (all value properties required
/// when `required`).
pub fn schema(key: Json, value: Json) -> Json {
    let req = |o: &Json| -> Vec<String> { o.as_object().unwrap().keys().cloned().collect() };
    json!({
        "type": "object",
        "properties": {
            "key": {"type": "object", "properties": key, "required": req(&key)},
            "value": {"type": "object", "properties": value},
            "meta": {"type": "object", "properties": {"action": {"type": "string"}, "ts": {"type": "string", "format": "date-time"}}}
        }
    })
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn reply(status: StatusCode, v: Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": {"type": "ObjectNotFound", "message": format!("no {what}")}}),
    )
}

async fn answer(req: Request<Body>, state: &Mutex<State>, addr: std::net::SocketAddr) -> Response {
    let method = req.method().to_string();
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let mut st = state.lock().unwrap();
    st.requests.push(format!("{method} {path}"));
    if path == "/ids/auth/login" {
        return reply(
            StatusCode::OK,
            json!({"access_token": "tok-fake-gateway", "expires_in": 3600, "token_type": "bearer", "scope": "x"}),
        );
    }
    if let Some(rest) = path.strip_prefix("/dap/query/") {
        // `{ns}/table`, `{ns}/table/{t}/schema`, `{ns}/table/{t}/data`; names may hold `/`
        // only percent-encoded, decoded above, so split on the fixed words.
        if let Some(ns) = rest.strip_suffix("/table") {
            let tables: Vec<&String> = st
                .tables
                .keys()
                .filter(|(n, _)| n == ns)
                .map(|(_, t)| t)
                .collect();
            return reply(StatusCode::OK, json!({ "tables": tables }));
        }
        let Some((ns, rest)) = rest.split_once("/table/") else {
            return not_found("route");
        };
        let (table, what) = match rest.rsplit_once('/') {
            Some(p) => p,
            None => return not_found("route"),
        };
        let key = (ns.to_owned(), table.to_owned());
        match what {
            "schema" => {
                return match st.tables.get(&key) {
                    Some(t) => reply(StatusCode::OK, t.schema.clone()),
                    None => not_found("table"),
                };
            }
            "data" => {
                let query: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
                st.queries.push(query.clone());
                let Some(t) = st.tables.get_mut(&key) else {
                    return not_found("table");
                };
                let Some(job) = t.jobs.pop_front() else {
                    return reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"error": {"type": "TestError", "message": "the test queued no job for this query"}}),
                    );
                };
                let id = format!("job-{}", st.started.len() + 1);
                let objects: Vec<Json> = (0..job.objects.len())
                    .map(|i| json!({"id": format!("{id}/part-{i}")}))
                    .collect();
                let mut complete = json!({
                    "id": id,
                    "status": "complete",
                    "expires_at": "2099-01-01T00:00:00Z",
                    "objects": objects,
                    "schema_version": 1,
                });
                if let Some(since) = query.get("since") {
                    complete["since"] = since.clone();
                }
                for (k, v) in &job.patch {
                    match v {
                        Json::Null => {
                            complete.as_object_mut().unwrap().remove(k);
                        }
                        v => complete[k] = v.clone(),
                    }
                }
                let running = json!({"id": id, "status": "running"});
                st.started.insert(id, (complete, job.objects));
                return reply(StatusCode::ACCEPTED, running);
            }
            _ => return not_found("route"),
        }
    }
    if let Some(id) = path.strip_prefix("/dap/job/") {
        return match st.started.get(id) {
            Some((answer, _)) => reply(StatusCode::OK, answer.clone()),
            None => not_found("job"),
        };
    }
    if path == "/dap/object/url" {
        let asked: Vec<Json> = serde_json::from_slice(&body).unwrap_or_default();
        let mut urls = serde_json::Map::new();
        for o in asked {
            if let Some(id) = o.get("id").and_then(Json::as_str) {
                let encoded =
                    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
                urls.insert(
                    id.to_owned(),
                    json!({"url": format!("http://{addr}/obj/{encoded}?X-Amz-Signature=fake")}),
                );
            }
        }
        return reply(StatusCode::OK, json!({ "urls": urls }));
    }
    if let Some(id) = path.strip_prefix("/obj/") {
        let Some((job, part)) = id.rsplit_once("/part-") else {
            return not_found("object");
        };
        let text = st
            .started
            .get(job)
            .and_then(|(_, objects)| objects.get(part.parse::<usize>().ok()?).cloned());
        return match text {
            Some(t) if t == STALL => {
                let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
                (StatusCode::OK, Body::from_stream(never)).into_response()
            }
            Some(t) => (StatusCode::OK, gzip(&t)).into_response(),
            None => not_found("object"),
        };
    }
    not_found("route")
}
