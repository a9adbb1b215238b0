//! A hostile gateway: a small server on loopback that logs anyone in and answers other routes
//! badly (not JSON, huge, nested thousands deep, redirects, echoed credentials, expired or
//! endless tokens, decompression bombs, trickling downloads). Whatever it sends, the run ends
//! with a clear error and the right exit code, both reports, no partial file, and no secret in
//! any output.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

/// The token source fed arbitrary login answers (status, headers, `expires_in`, JWT `exp`,
/// body): it never panics, and its logins stay bounded (one run of attempts, then the source
/// either holds a token it uses or has failed for good).
mod login_properties {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
    use dap_run::auth::{Credentials, Provenance, TokenSource};
    use dap_run::net::{Clients, RetryPolicy, Stats, Transport};
    use dap_run::secret::Secret;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    struct Server {
        url: String,
        answer: Arc<Mutex<Option<Answer>>>,
        hits: Arc<AtomicUsize>,
    }

    fn server() -> &'static Server {
        static SERVER: OnceLock<Server> = OnceLock::new();
        SERVER.get_or_init(|| {
            let answer: Arc<Mutex<Option<Answer>>> = Default::default();
            let hits = Arc::new(AtomicUsize::new(0));
            let (a, h) = (answer.clone(), hits.clone());
            let addr = crate::common::serve_on_loopback(move |_| {
                axum::Router::new().fallback(move || {
                    let (a, h) = (a.clone(), h.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let answer = a.lock().unwrap().clone().unwrap();
                        let mut r = Response::new(Body::from(answer.body));
                        *r.status_mut() = StatusCode::from_u16(answer.status).unwrap();
                        for (k, v) in answer.headers {
                            if let (Ok(k), Ok(v)) = (
                                HeaderName::from_bytes(k.as_bytes()),
                                HeaderValue::from_str(&v),
                            ) {
                                r.headers_mut().insert(k, v);
                            }
                        }
                        r
                    }
                })
            });
            Server {
                url: format!("http://{addr}"),
                answer,
                hits,
            }
        })
    }

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(claims))
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            Just("0".to_owned()),
            Just("18446744073709551615".to_owned()),
            Just("1e30".to_owned()),
            Just("\"3600\"".to_owned()),
            Just("null".to_owned()),
        ]
    }

    fn body() -> impl Strategy<Value = String> {
        prop_oneof![
            (number(), number(), any::<bool>()).prop_map(|(expires_in, exp, as_jwt)| {
                let token = if as_jwt {
                    jwt(&format!("{{\"exp\":{exp}}}"))
                } else {
                    "tok-prop-opaque-token".to_owned()
                };
                format!("{{\"access_token\":\"{token}\",\"expires_in\":{expires_in},\"token\":\"{token}\"}}")
            }),
            "\\PC{0,200}",
            Just(String::new()),
            Just("{\"access_token\":\"\"}".to_owned()),
            Just("{\"access_token\":7}".to_owned()),
        ]
    }

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(
            prop_oneof![
                "[a-zA-Z0-9:/._?=-]{0,40}".prop_map(|v| ("location".to_owned(), v)),
                Just(("retry-after".to_owned(), "0".to_owned())),
                Just(("retry-after".to_owned(), "nonsense".to_owned())),
                Just(("content-type".to_owned(), "application/json".to_owned())),
                Just(("content-length".to_owned(), "99999999999".to_owned())),
            ],
            0..3,
        )
    }

    fn status() -> impl Strategy<Value = u16> {
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(204),
            Just(301),
            Just(302),
            Just(307),
            Just(400),
            Just(401),
            Just(403),
            Just(429),
            Just(500),
            Just(502),
            Just(503),
            Just(504),
            200u16..600,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_token_source_never_panics_and_logs_in_a_bounded_number_of_times(
            status in status(),
            headers in headers(),
            body in body(),
            inst_access in any::<bool>(),
        ) {
            let s = server();
            *s.answer.lock().unwrap() = Some(Answer { status, headers, body });
            let before = s.hits.load(Ordering::SeqCst);
            let url = reqwest::Url::parse(&s.url).unwrap();
            let creds = if inst_access {
                Credentials::InstAccess {
                    canvas: url,
                    canvas_token: Secret::new("canvas-prop-token"),
                    canvas_token_from: Provenance("test".into()),
                }
            } else {
                Credentials::Client {
                    gateway: url,
                    client_id: "client-prop".into(),
                    client_id_from: Provenance("test".into()),
                    client_secret: Secret::new("secret-prop-value"),
                    client_secret_from: Provenance("test".into()),
                }
            };
            let transport = Transport::new(
                Clients::new().unwrap(),
                RetryPolicy {
                    attempts: 3,
                    min: Duration::from_millis(1),
                    max: Duration::from_millis(5),
                    timeout: Duration::from_secs(2),
                },
                Arc::new(Stats::default()),
            );
            let source = TokenSource::new(creds, transport, None);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let results: Vec<bool> = rt.block_on(async {
                let mut out = Vec::new();
                for _ in 0..4 {
                    out.push(source.current().await.is_ok());
                }
                out
            });
            let hits = s.hits.load(Ordering::SeqCst) - before;
            // One login's attempts at most: a token fresh from a login is used, a failure is
            // kept for every later caller.
            prop_assert!(hits <= 3, "{hits} login requests for 4 calls");
            prop_assert!(dap_run::net::TokenProvider::logins(&source) <= 1);
            // The same answer gives the same verdict to every caller.
            prop_assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile responses: a tiny server that logs anyone in and answers other routes badly.

pub(crate) mod hostile {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::response::{IntoResponse, Response};

    /// The access token the hostile server hands out.
    pub const TOKEN: &str = "tok-KNOWN-hostile-access-token-0123456789";
    /// Size of the endless bodies: past the 256 MiB limit on buffered responses.
    const HUGE: usize = 300 * 1024 * 1024;

    /// A running hostile server and the paths it was asked for.
    pub struct Hostile {
        pub url: String,
        pub paths: Arc<Mutex<Vec<String>>>,
    }

    pub fn start() -> Hostile {
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        let addr = crate::common::serve_on_loopback(move |_| {
            axum::Router::new().fallback(move |req: Request<Body>| {
                let seen = seen.clone();
                async move { answer(req, &seen) }
            })
        });
        Hostile {
            url: format!("http://{addr}"),
            paths,
        }
    }

    fn json(status: StatusCode, v: serde_json::Value) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()
    }

    /// A JWT-shaped access token whose payload is `claims` (the hostile server signs nothing).
    pub fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.sig-KNOWN-hostile",
            b64(r#"{"alg":"HS256"}"#),
            b64(claims)
        )
    }

    /// The login answers, chosen by the gateway URL's first path segment (a "mode"): a test
    /// points `DAP_API_URL` at `{url}/{mode}` and the server answers its login accordingly.
    fn login(mode: &str, auth: &str) -> Response {
        match mode {
            // Refuses, echoing the Basic header that carries the client secret.
            "echo-login" => (
                StatusCode::UNAUTHORIZED,
                format!("invalid client; request headers: Authorization: {auth}"),
            )
                .into_response(),
            "echo-login-json" => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": {"type": "invalid_client", "message": format!("bad credentials in {auth}")}}),
            ),
            "expires-max" => json(
                StatusCode::OK,
                serde_json::json!({"access_token": TOKEN, "expires_in": u64::MAX}),
            ),
            "exp-huge" => json(
                StatusCode::OK,
                serde_json::json!({"access_token": jwt(r#"{"exp":1e30}"#), "token_type": "bearer"}),
            ),
            "expires-zero" => json(
                StatusCode::OK,
                serde_json::json!({"access_token": TOKEN, "expires_in": 0}),
            ),
            "exp-past" => json(
                StatusCode::OK,
                serde_json::json!({"access_token": jwt(r#"{"exp":1000000000}"#), "expires_in": 3600}),
            ),
            "login-503" => (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response(),
            "login-429" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
            // An endless login answer: the client must stop reading, not grow until it aborts.
            "login-huge" => {
                let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
                let chunks = std::iter::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                let mut r = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                r
            }
            // Redirects the login to another origin (which would hand out its own token).
            "login-redirect" => (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, "http://127.0.0.2:1/ids/auth/login")],
            )
                .into_response(),
            _ => json(
                StatusCode::OK,
                serde_json::json!({"access_token": TOKEN, "expires_in": 3600, "token_type": "bearer", "scope": "x"}),
            ),
        }
    }

    /// A pre-signed-looking object URL on a loopback port nobody listens on (port 1): every
    /// connection is refused.
    pub const REFUSED_OBJECT: &str = "http://127.0.0.1:1/bucket/part-00000.jsonl.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=CRED-KNOWN-hostile%2F20260101&X-Amz-Signature=SIG-KNOWN-hostile-0123abcd";

    const MODES: [&str; 11] = [
        "echo-login",
        "echo-login-json",
        "expires-max",
        "exp-huge",
        "expires-zero",
        "exp-past",
        "login-503",
        "login-429",
        "login-huge",
        "login-redirect",
        "plain",
    ];

    /// gzip of `n` zero bytes, made once per size.
    fn zeros_gz(n: usize) -> bytes::Bytes {
        use std::io::Write as _;
        static MADE: Mutex<Vec<(usize, bytes::Bytes)>> = Mutex::new(Vec::new());
        let mut made = MADE.lock().unwrap();
        if let Some((_, b)) = made.iter().find(|(size, _)| *size == n) {
            return b.clone();
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1024 * 1024];
        for _ in 0..n / block.len() {
            enc.write_all(&block).unwrap();
        }
        let b = bytes::Bytes::from(enc.finish().unwrap());
        made.push((n, b.clone()));
        b
    }

    /// A body that sends one byte every 100 ms, forever.
    fn trickle() -> Response {
        use futures_util::StreamExt as _;
        let stream = futures_util::stream::repeat(()).then(|_| async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x"))
        });
        Response::new(Body::from_stream(stream))
    }

    fn answer(req: Request<Body>, seen: &Mutex<Vec<String>>) -> Response {
        let full = req.uri().path().to_owned();
        seen.lock().unwrap().push(full.clone());
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (mode, path) = match full[1..].split_once('/') {
            Some((m, rest)) if MODES.contains(&m) => (m, format!("/{rest}")),
            _ => ("", full.clone()),
        };
        let long = "x".repeat(5000);
        match path.as_str() {
            "/ids/auth/login" => login(mode, &auth),
            "/objects-refused" => json(
                StatusCode::OK,
                serde_json::json!({"urls": [{"url": REFUSED_OBJECT}]}),
            ),
            // Object URLs on this same server (another origin than the gateway's when the
            // gateway is reached as `localhost`): `/obj/...` routes below.
            p if p.starts_with("/objects/") => {
                let port = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|h| h.rsplit(':').next())
                    .unwrap_or("")
                    .to_owned();
                let what = &p["/objects/".len()..];
                json(
                    StatusCode::OK,
                    serde_json::json!({"urls": [{"url": format!("http://localhost:{port}/obj/{what}?X-Amz-Signature=SIG-KNOWN-hostile-obj")}]}),
                )
            }
            "/objects-gateway" => {
                let host = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                json(
                    StatusCode::OK,
                    serde_json::json!({"urls": [{"url": format!("http://{host}/dl401")}]}),
                )
            }
            // A download on the gateway's origin: needs the token, and rejects every other
            // request's token once (as after a revocation), so the client must renew and replay.
            "/dl401" => {
                let n = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|p| *p == "/dl401")
                    .count();
                if auth != format!("Bearer {TOKEN}") || n % 2 == 1 {
                    json(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({"error": {"type": "AuthenticationError", "message": "revoked"}}),
                    )
                } else {
                    (StatusCode::OK, "gateway-file-contents").into_response()
                }
            }
            "/obj/big" => Response::new(Body::from(vec![b'x'; 4 * 1024 * 1024])),
            "/obj/bomb" => Response::new(Body::from(zeros_gz(24 * 1024 * 1024))),
            "/obj/small-gz" => Response::new(Body::from(zeros_gz(2 * 1024 * 1024))),
            "/obj/trickle" => trickle(),
            "/obj/redirect-loopback" => (
                StatusCode::FOUND,
                [(
                    header::LOCATION,
                    "/obj/small-gz?X-Amz-Signature=SIG-KNOWN-hostile-obj",
                )],
            )
                .into_response(),
            "/obj/redirect-remote-http" => (
                StatusCode::FOUND,
                [(
                    header::LOCATION,
                    "http://198.51.100.7/obj/x?X-Amz-Signature=SIG-KNOWN-hostile-obj",
                )],
            )
                .into_response(),
            "/redirect" => (
                StatusCode::FOUND,
                [(
                    header::LOCATION,
                    "http://127.0.0.2:1/elsewhere?X-Amz-Signature=SIG-KNOWN-hostile-r",
                )],
            )
                .into_response(),
            "/notjson" => {
                (StatusCode::OK, "<html><body>502 Bad Gateway</body></html>").into_response()
            }
            "/huge" => {
                let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
                let chunks =
                    (0..HUGE / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
                Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
            }
            "/huge-declared" => {
                use futures_util::StreamExt as _;
                // One byte, then nothing: the client must judge by the declared length.
                let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                    bytes::Bytes::from_static(b"{"),
                )]);
                let mut r = Response::new(Body::from_stream(
                    first.chain(futures_util::stream::pending()),
                ));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, "10000000000".parse().unwrap());
                r
            }
            "/deep" => {
                let n = 100_000;
                (
                    StatusCode::OK,
                    format!("{}{}", "[".repeat(n), "]".repeat(n)),
                )
                    .into_response()
            }
            "/tables-string" => json(StatusCode::OK, serde_json::json!({"tables": "accounts"})),
            "/tables-object" => json(StatusCode::OK, serde_json::json!({"tables": {"a": 1}})),
            "/names" => json(
                StatusCode::OK,
                serde_json::json!({"tables": ["../../escape", "a/b", "/abs", "..", "nul\u{0}x", "ok", long]}),
            ),
            "/unauthorized" => json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": {"type": "AuthenticationError", "message": "no"}}),
            ),
            "/echo500" => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("upstream failed; request headers: Authorization: {auth}"),
            )
                .into_response(),
            "/echo500json" => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": {"type": "InternalError", "message": format!("bad request with {auth}")}}),
            ),
            "/echo200" => json(
                StatusCode::OK,
                serde_json::json!({"echo": auth, "token": auth.trim_start_matches("Bearer ")}),
            ),
            p if p.ends_with("/schema") => json(
                StatusCode::OK,
                serde_json::json!({"schema": {}, "version": 1}),
            ),
            _ => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": {"type": "NotFound", "message": "no"}}),
            ),
        }
    }
}

const HOSTILE_SECRET: &str = "cs-KNOWN-hostile-client-secret-5d1e";

/// Runs a job against the hostile server in a fresh workspace: it ends with `code`, saying
/// `says`.
pub(crate) fn run_hostile(
    h: &hostile::Hostile,
    steps: &str,
    extra: &[&str],
    code: i32,
    says: &[&str],
) -> (Workspace, Outcome) {
    run_hostile_at(h, "", "token_cache = false", steps, extra, code, says)
}

/// Everything that must never appear in any output of a hostile run: the client secret (as is
/// and as the base64 of `id:secret` in the Basic header), the access token, and the signature
/// and credential of a pre-signed URL.
fn hostile_secrets() -> Vec<String> {
    use base64::Engine as _;
    vec![
        HOSTILE_SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD
            .encode(format!("client-KNOWN-id:{HOSTILE_SECRET}")),
        hostile::TOKEN.to_owned(),
        "sig-KNOWN-hostile".to_owned(),
        "SIG-KNOWN-hostile".to_owned(),
        "CRED-KNOWN-hostile".to_owned(),
        "SIG-KNOWN-hostile-obj".to_owned(),
        "X-Amz-".to_owned(),
    ]
}

/// [`run_hostile`] against the hostile server's `mode` (the gateway URL's first path segment),
/// with `token_cache` as the gateway's token cache setting. No secret in any output or file,
/// no partial file left.
fn run_hostile_at(
    h: &hostile::Hostile,
    mode: &str,
    token_cache: &str,
    steps: &str,
    extra: &[&str],
    code: i32,
    says: &[&str],
) -> (Workspace, Outcome) {
    let url = if mode.is_empty() {
        h.url.clone()
    } else {
        format!("{}/{mode}", h.url)
    };
    let ws = Workspace::at(&url, "client-KNOWN-id", HOSTILE_SECRET);
    let gateway = FAST_RETRY.replace("[gateway]\n", &format!("[gateway]\n{token_cache}\n"));
    ws.job("job.toml", &format!("name = \"hostile\"\n{steps}{gateway}"));
    let t = ws
        .dap()
        .args(&[
            "job.toml",
            "--output-dir",
            "out",
            "-vv",
            "--report",
            "json=report.json",
            "--report",
            "junit=report.xml",
        ])
        .args(extra)
        .status(code);
    let t = if says.is_empty() && code != 0 {
        // A failure of the job named `hostile`: its summary says so.
        t.stderr_has(&[&format!("hostile: failed (exit {code})")])
    } else {
        t.stderr_has(says)
    };
    let run = t.run();
    let secrets = hostile_secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(ws.path(), &run, &secrets);
    let files = files_under(ws.path());
    assert!(
        !files.iter().any(|f| f.contains(".dap-run-tmp-")),
        "a partial file was left: {files:?}"
    );
    (ws, run)
}

/// Runs a hostile case twice, with text logs and with `--log-format json` (each checked for
/// secrets, partial files and panics); returns both.
fn run_hostile_both(
    h: &hostile::Hostile,
    mode: &str,
    token_cache: &str,
    steps: &str,
    code: i32,
    says: &[&str],
) -> [(Workspace, Outcome); 2] {
    let text = run_hostile_at(h, mode, token_cache, steps, &[], code, says);
    let json = run_hostile_at(
        h,
        mode,
        token_cache,
        steps,
        &["--log-format", "json"],
        code,
        says,
    );
    for line in json.1.stderr.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
    [text, json]
}

/// Both reports exist and agree with the exit code.
fn assert_reports(dir: &Path, code: i32) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["exit_code"], code, "{report}");
    let junit = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
}

#[test]
fn a_refused_presigned_url_never_prints_its_signature() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"fetch\"\npost = \"/objects-refused\"\ndownload = { urls = \"$.urls.*.url\", to = \"part-{{ part }}.gz\" }\n";
    for (dir, _) in run_hostile_both(
        &h,
        "",
        "token_cache = false",
        steps,
        4,
        &["127.0.0.1:1/bucket/part-00000.jsonl.gz"],
    ) {
        assert!(!dir.path().join("out/part-0.gz").exists());
        assert_reports(dir.path(), 4);
    }
}

#[test]
fn a_login_refusal_echoing_the_basic_header_prints_no_secret() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"get\"\nget = \"/t/a/schema\"\nsave = \"a.json\"\n";
    for mode in ["echo-login", "echo-login-json"] {
        for (dir, _) in run_hostile_both(
            &h,
            mode,
            "token_cache = false",
            steps,
            3,
            &["login rejected", "Basic ***"],
        ) {
            assert!(!dir.path().join("out/a.json").exists());
            assert_reports(dir.path(), 3);
        }
    }
}

/// Twenty loop items against the gateway at `mode`: one step, each item a request.
const TWENTY: &str = "[vars]\nt = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\",\"r\",\"s\",\"u\"]\n\n[[step]]\nid = \"each\"\nfor_each = \"t\"\nconcurrency = 4\nget = \"/t/{{ item }}/schema\"\nsave = \"{{ item }}.json\"\n";

fn logins(h: &hostile::Hostile) -> usize {
    h.paths
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.ends_with("/ids/auth/login"))
        .count()
}

#[test]
fn huge_token_lifetimes_do_not_panic() {
    for mode in ["expires-max", "exp-huge"] {
        let h = hostile::start();
        for (dir, _) in run_hostile_both(
            &h,
            mode,
            "token_cache = false",
            TWENTY,
            0,
            &["20 loop items", ", 1 login,"],
        ) {
            assert_eq!(files_under(&dir.path().join("out")).len(), 20);
            assert_reports(dir.path(), 0);
        }
        assert_eq!(logins(&h), 2, "one login per run");
    }
}

/// Logins the hostile server answered for `mode` since `before`.
fn logins_since(h: &hostile::Hostile, before: usize) -> usize {
    logins(h) - before
}

#[test]
fn a_login_answering_503_or_429_every_time_is_exit_4_not_3() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"get\"\nget = \"/t/a/schema\"\nsave = \"a.json\"\n";
    for mode in ["login-503", "login-429"] {
        let before = logins(&h);
        for (dir, _) in run_hostile_both(
            &h,
            mode,
            "token_cache = false",
            steps,
            4,
            &["cannot log in at the gateway", "after 3 attempts"],
        ) {
            assert!(!dir.path().join("out/a.json").exists());
            assert_reports(dir.path(), 4);
        }
        // Two runs of 3 attempts: retried, and bounded.
        assert_eq!(logins_since(&h, before), 6);
    }
}

#[test]
fn an_endless_login_answer_is_cut_at_the_limit() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"get\"\nget = \"/t/a/schema\"\n";
    for (dir, _) in run_hostile_both(
        &h,
        "login-huge",
        "token_cache = false",
        steps,
        4,
        &["larger than the limit of"],
    ) {
        assert_reports(dir.path(), 4);
    }
}

#[test]
fn redirects_on_the_gateway_and_the_login_are_refused() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"get\"\nget = \"/redirect\"\nsave = \"r.json\"\n";
    for (dir, _) in run_hostile_both(
        &h,
        "",
        "token_cache = false",
        steps,
        4,
        &["the gateway does not redirect", "127.0.0.2:1/elsewhere"],
    ) {
        assert!(!dir.path().join("out/r.json").exists());
        assert_reports(dir.path(), 4);
    }
    let steps = "[[step]]\nid = \"get\"\nget = \"/t/a/schema\"\n";
    for (dir, _) in run_hostile_both(
        &h,
        "login-redirect",
        "token_cache = false",
        steps,
        4,
        &["cannot log in", "the gateway does not redirect"],
    ) {
        assert_reports(dir.path(), 4);
    }
    // The schema request was never sent: no token from elsewhere was used.
    assert!(
        !h.paths
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.ends_with("/t/a/schema"))
    );
}

/// A download step of the object `what` served by the hostile server.
fn object_step(what: &str, decompress: bool) -> String {
    format!(
        "[[step]]\nid = \"fetch\"\npost = \"/objects/{what}\"\ndownload = {{ urls = \"$.urls.*.url\", to = \"part-{{{{ part }}}}.bin\", decompress = {decompress} }}\n"
    )
}

#[test]
fn object_redirects_are_followed_only_to_https_or_between_loopbacks() {
    let h = hostile::start();
    for (dir, _) in run_hostile_both(
        &h,
        "",
        "token_cache = false",
        &object_step("redirect-loopback", true),
        0,
        &[],
    ) {
        let bytes = std::fs::metadata(dir.path().join("out/part-0.bin"))
            .unwrap()
            .len();
        assert_eq!(bytes, 2 * 1024 * 1024);
    }
    for (dir, _) in run_hostile_both(
        &h,
        "",
        "token_cache = false",
        &object_step("redirect-remote-http", false),
        4,
        &["object URLs may redirect only to https"],
    ) {
        assert!(!dir.path().join("out/part-0.bin").exists());
        assert_reports(dir.path(), 4);
    }
}

#[test]
fn a_download_on_the_gateway_origin_renews_and_replays_on_401() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"fetch\"\npost = \"/objects-gateway\"\ndownload = { urls = \"$.urls.*.url\", to = \"g.txt\" }\n";
    for (dir, run) in run_hostile_both(&h, "", "token_cache = false", steps, 0, &[]) {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/g.txt")).unwrap(),
            "gateway-file-contents"
        );
        assert!(run.stderr.contains(", 2 logins,"), "{}", run.stderr);
        assert_reports(dir.path(), 0);
    }
    assert_eq!(logins(&h), 4, "one login and one renewal per run");
}

/// The transport with a fixed token (no login): the token goes to the gateway's origin only,
/// read once per request.
#[test]
fn the_transport_works_with_a_fixed_token_and_no_login() {
    use dap_run::net::{Clients, FixedToken, Http, Request, RetryPolicy, Stats, Transport};
    let h = hostile::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let transport = Transport::new(
        Clients::new().unwrap(),
        RetryPolicy {
            attempts: 2,
            min: Duration::from_millis(1),
            max: Duration::from_millis(5),
            timeout: Duration::from_secs(5),
        },
        std::sync::Arc::new(Stats::default()),
    );
    let gateway = reqwest::Url::parse(&h.url).unwrap();
    let http = Http::new(
        transport,
        gateway.clone(),
        std::sync::Arc::new(FixedToken(dap_run::secret::Secret::new(
            "fixed-KNOWN-token",
        ))),
        vec![],
    );
    let response = rt
        .block_on(http.send(&Request::get(gateway.join("/echo200").unwrap())))
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["echo"], "Bearer fixed-KNOWN-token");
    // Another origin (localhost is not 127.0.0.1) gets no token.
    let other = reqwest::Url::parse(&h.url.replace("127.0.0.1", "localhost"))
        .unwrap()
        .join("/echo200")
        .unwrap();
    let response = rt.block_on(http.send(&Request::get(other))).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["echo"], "");
    assert_eq!(logins(&h), 0);
    assert_eq!(
        http.stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn a_decompression_bomb_fails_the_part() {
    let h = hostile::start();
    for (dir, _) in run_hostile_both(
        &h,
        "",
        "token_cache = false",
        &object_step("bomb", true),
        4,
        &["expands more than 200×"],
    ) {
        assert!(!dir.path().join("out/part-0.bin").exists());
        assert_reports(dir.path(), 4);
    }
}

#[test]
fn a_download_trickling_one_byte_at_a_time_fails_in_bounded_time() {
    let h = hostile::start();
    let steps = object_step("trickle", false);
    let started = Instant::now();
    let ws = Workspace::at(&h.url, "client-KNOWN-id", HOSTILE_SECRET);
    let gateway = FAST_RETRY.replace(
        "timeout = \"2s\"",
        "timeout = \"300ms\"\ntoken_cache = false",
    );
    ws.job("job.toml", &format!("name = \"hostile\"\n{steps}{gateway}"));
    for extra in [&[][..], &["--log-format", "json"][..]] {
        let run = ws
            .dap()
            .args(&[
                "job.toml",
                "--output-dir",
                "out",
                "-vv",
                "--report",
                "json=report.json",
                "--report",
                "junit=report.xml",
            ])
            .args(extra)
            .status(4)
            .stderr_has(&["the download took longer than"])
            .run();
        let secrets = hostile_secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secrets(ws.path(), &run, &secrets);
        assert!(
            files_under(&ws.path().join("out")).is_empty(),
            "{:?}",
            files_under(ws.path())
        );
        assert_reports(ws.path(), 4);
    }
    // Each attempt stops at 2 × 300 ms: the two runs end in seconds, not hours.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_full_disk_during_a_download_is_exit_5() {
    let h = hostile::start();
    let ws = Workspace::at(&h.url, "client-KNOWN-id", HOSTILE_SECRET);
    let text = format!(
        "name = \"hostile\"\n{}{}",
        object_step("big", false),
        FAST_RETRY.replace("[gateway]\n", "[gateway]\ntoken_cache = false\n")
    );
    ws.job("job.toml", &text);
    for format in ["text", "json"] {
        // A file size limit of 1 MiB stands in for a full disk: with SIGXFSZ ignored, a write
        // past it fails with EFBIG, as a write to a full disk fails with ENOSPC.
        let run = ws
            .dap()
            .args(&[
                "job.toml",
                "--output-dir",
                "out",
                "-vv",
                "--log-format",
                format,
                "--report",
                "json=report.json",
                "--report",
                "junit=report.xml",
            ])
            .wrap(|cmd| {
                through(
                    "sh",
                    &["-c", "ulimit -f 2048; trap '' XFSZ; exec \"$0\" \"$@\""],
                    cmd,
                )
            })
            .status(5)
            .stderr_has(&["cannot write"])
            .run();
        let secrets = hostile_secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secrets(ws.path(), &run, &secrets);
        assert!(
            files_under(&ws.path().join("out")).is_empty(),
            "{:?}",
            files_under(ws.path())
        );
        assert_reports(ws.path(), 5);
    }
}

#[test]
fn tokens_that_arrive_expired_cause_no_login_storm() {
    for mode in ["expires-zero", "exp-past"] {
        let h = hostile::start();
        let started = Instant::now();
        for (dir, _) in run_hostile_both(
            &h,
            mode,
            "token_cache = false",
            TWENTY,
            0,
            &["the login answered a token that is already expiring"],
        ) {
            assert_eq!(files_under(&dir.path().join("out")).len(), 20);
            assert_reports(dir.path(), 0);
        }
        // A token fresh from a login is used for at least a second: one login per run and
        // per second at most, never one per request (40 before the fix).
        let bound = 2 * (2 + started.elapsed().as_secs() as usize);
        let n = logins(&h);
        assert!(n <= bound && n < 20, "{n} logins for 2 runs of 20 requests");
    }
}

#[test]
fn a_token_cache_expiring_at_u64_max_does_not_panic() {
    let h = hostile::start();
    for extra in [&[][..], &["--log-format", "json"][..]] {
        let ws = Workspace::at(
            &format!("{}/expires-max", h.url),
            "client-KNOWN-id",
            HOSTILE_SECRET,
        );
        let cache = serde_json::json!({
            "key": format!("{}/expires-max\nclient-KNOWN-id", h.url),
            "access_token": hostile::TOKEN,
            "expires_at": u64::MAX,
            "lifetime": u64::MAX,
        });
        ws.job(".cache/tok.json", &cache.to_string());
        let text = format!(
            "name = \"hostile\"\n{TWENTY}{}",
            FAST_RETRY.replace(
                "[gateway]\n",
                "[gateway]\ntoken_cache = \".cache/tok.json\"\n"
            )
        );
        ws.job("job.toml", &text);
        let run = ws
            .dap()
            .args(&[
                "job.toml",
                "--output-dir",
                "out",
                "-vv",
                "--report",
                "json=report.json",
                "--report",
                "junit=report.xml",
            ])
            .args(extra)
            .status(0)
            .run();
        let secrets = hostile_secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secrets(ws.path(), &run, &secrets);
        assert_eq!(files_under(&ws.path().join("out")).len(), 20);
        assert_reports(ws.path(), 0);
    }
    assert_eq!(logins(&h), 0, "the cached token was used");
}

#[test]
fn a_body_that_is_not_json_fails_with_exit_4_and_says_so() {
    let h = hostile::start();
    let _ = run_hostile(
        &h,
        "[[step]]\nid = \"get\"\nget = \"/notjson\"\noutputs = { x = \"$.x\" }\n",
        &[],
        4,
        &["step `get`: the response is not JSON", "502 Bad Gateway"],
    );
}

#[test]
fn a_body_past_the_size_limit_fails_instead_of_saving_a_truncated_file() {
    let h = hostile::start();
    let (d, _) = run_hostile(
        &h,
        "[[step]]\nid = \"get\"\nget = \"/huge\"\nsave = \"body.json\"\n",
        &[],
        4,
        &["larger than"],
    );
    assert!(
        !d.path().join("out/body.json").exists(),
        "a truncated body was saved"
    );
    let (d, _) = run_hostile(
        &h,
        "[[step]]\nid = \"get\"\nget = \"/huge-declared\"\nsave = \"body.json\"\n",
        &[],
        4,
        &["larger than"],
    );
    assert!(!d.path().join("out/body.json").exists());
}

#[test]
fn json_nested_thousands_deep_fails_cleanly() {
    let h = hostile::start();
    let _ = run_hostile(
        &h,
        "[[step]]\nid = \"get\"\nget = \"/deep\"\noutputs = { x = \"$[0]\" }\n",
        &[],
        4,
        &["not JSON"],
    );
}

#[test]
fn wrong_types_where_a_list_is_expected_fail_with_a_clear_message() {
    let h = hostile::start();
    for route in ["/tables-string", "/tables-object"] {
        let steps = format!(
            "[[step]]\nid = \"list\"\nget = \"{route}\"\noutputs = {{ tables = \"$.tables\" }}\n\n[[step]]\nid = \"each\"\nfor_each = \"tables\"\nget = \"/t/{{{{ item }}}}/schema\"\n"
        );
        let _ = run_hostile(
            &h,
            &steps,
            &[],
            1,
            &["step `each`: `for_each = \"tables\"` is not a list"],
        );
    }
}

#[test]
fn hostile_names_never_write_outside_the_output_folder() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"list\"\nget = \"/names\"\noutputs = { tables = \"$.tables\" }\n\n[[step]]\nid = \"each\"\nfor_each = \"tables\"\nas = \"table\"\nget = \"/t/{{ table }}/schema\"\nsave = \"schemas/{{ table }}.json\"\n";
    let (d, run) = run_hostile(&h, steps, &[], 1, &[]);
    assert!(
        run.stderr.contains("step `each` (item `..`)")
            && run
                .stderr
                .contains("the value `..` cannot be a URL path segment"),
        "{}",
        run.stderr
    );
    for f in files_under(d.path()) {
        assert!(
            f.starts_with("out/")
                || ["job.toml", "job.lock", "report.json", "report.xml"].contains(&f.as_str())
                || f.starts_with("hostile."),
            "a file outside the output folder: {f}"
        );
    }
    // The plain name was saved; every hostile one stayed one file in `out/schemas/`.
    assert!(
        d.path().join("out/schemas/ok.json").exists(),
        "{:?}",
        files_under(d.path())
    );
    for f in files_under(&d.path().join("out")) {
        assert_eq!(f.matches('/').count(), 1, "a name made a folder: {f}");
    }
    // Each name stayed one path segment of the request.
    for p in h
        .paths
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with("/t/"))
    {
        assert_eq!(p.split('/').count(), 4, "{p}");
    }
    assert!(
        !h.paths.lock().unwrap().iter().any(|p| p == "/schema"),
        "`..` changed a request path"
    );
}

/// Asserts no secret appears in the run's output or in any file under `dir` (the token cache
/// excepted: holding the token is its job).
pub(crate) fn assert_no_secrets(dir: &Path, run: &Outcome, secrets: &[&str]) {
    let mut texts = vec![
        ("stdout".to_owned(), run.stdout.clone()),
        ("stderr".to_owned(), run.stderr.clone()),
    ];
    for f in files_under(dir) {
        if f.starts_with(".cache/") || f.ends_with(".gz") {
            continue;
        }
        let bytes = std::fs::read(dir.join(&f)).unwrap();
        texts.push((f, String::from_utf8_lossy(&bytes).into_owned()));
    }
    for (name, text) in &texts {
        for s in secrets {
            assert!(!text.contains(s), "`{s}` leaked into {name}:\n{text}");
        }
        // Sandbox access tokens are JWTs: base64 of `{"` starts every one of them.
        assert!(!text.contains("eyJ"), "a JWT leaked into {name}:\n{text}");
    }
}
