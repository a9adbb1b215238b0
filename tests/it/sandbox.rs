//! Integration tests of the sandbox gateway emulator, through HTTP like a real client.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dap_run::sandbox::data::{self, Cell};
use dap_run::sandbox::{Faults, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

pub(crate) async fn start(config: SandboxConfig) -> Sandbox {
    Sandbox::start_async(config, LOCAL)
        .await
        .expect("sandbox starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// The whole body of a GET without credentials (an object URL).
async fn download(url: &str) -> bytes::Bytes {
    client()
        .get(url)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body")
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn login_response(
    sandbox: &Sandbox,
    user: &str,
    secret: &str,
    body: &str,
) -> reqwest::Response {
    client()
        .post(format!("{}/ids/auth/login", sandbox.url()))
        .basic_auth(user, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("login request")
}

/// A client-credentials login with the default credentials: its JSON body (status 200).
async fn login_body(sandbox: &Sandbox) -> Value {
    let response = login_response(
        sandbox,
        "sandbox",
        "sandbox",
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

pub(crate) async fn login(sandbox: &Sandbox) -> String {
    login_body(sandbox).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// A GET of `url` with the bearer `token`, whatever its status.
async fn get_with(url: &str, token: &str) -> reqwest::Response {
    client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn get(sandbox: &Sandbox, token: &str, path: &str) -> (StatusCode, Value) {
    let response = client()
        .get(format!("{}{path}", sandbox.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(sandbox: &Sandbox, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}{path}", sandbox.url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

const ACCOUNTS_DATA: &str = "/dap/query/canvas/table/accounts/data";

/// Runs a job to completion and returns its final body.
async fn run_job(sandbox: &Sandbox, token: &str, table: &str, query: &Value) -> Value {
    let path = format!("/dap/query/canvas/table/{table}/data");
    let (status, job) = post(sandbox, token, &path, query).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("job id").to_owned();
    for _ in 0..10 {
        let (status, job) = get(sandbox, token, &format!("/dap/job/{id}")).await;
        if status == StatusCode::OK {
            return job;
        }
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    panic!("job {id} did not finish");
}

async fn object_urls(sandbox: &Sandbox, token: &str, job: &Value) -> Vec<String> {
    let ids: Vec<Value> = job["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|object| json!({"id": object["id"]}))
        .collect();
    let (status, body) = post(
        sandbox,
        token,
        "/dap/object/url",
        &Value::Array(ids.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys(&body), ["urls"]);
    let urls = body["urls"].as_object().expect("urls");
    let order: Vec<&str> = urls.keys().map(String::as_str).collect();
    let asked: Vec<&str> = ids.iter().filter_map(|id| id["id"].as_str()).collect();
    assert_eq!(order, asked, "urls come back in request order");
    urls.values()
        .map(|resource| {
            assert_eq!(keys(resource), ["url"]);
            resource["url"].as_str().expect("url").to_owned()
        })
        .collect()
}

pub(crate) fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("valid gzip");
    text
}

#[tokio::test]
async fn login_issues_a_jwt_and_rejects_bad_requests() {
    let sandbox = start(SandboxConfig::default()).await;
    let body = login_body(&sandbox).await;
    assert_eq!(
        keys(&body),
        ["access_token", "expires_in", "scope", "token_type"]
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("token");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "HS256");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    let exp = claims["exp"].as_i64().expect("numeric exp");
    let iat = claims["iat"].as_i64().expect("numeric iat");
    assert!(
        (3599..=3601).contains(&(exp - iat)),
        "exp - iat = {}",
        exp - iat
    );
    assert_eq!(claims["sub"], "sandbox");
    let second = login(&sandbox).await;
    let claims2: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(second.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    assert_ne!(claims["jti"], claims2["jti"], "jti is unique");

    let wrong_grant = login_response(&sandbox, "sandbox", "sandbox", "grant_type=password").await;
    assert_eq!(wrong_grant.status(), StatusCode::BAD_REQUEST);
    let no_body = login_response(&sandbox, "sandbox", "sandbox", "").await;
    assert_eq!(no_body.status(), StatusCode::BAD_REQUEST);
    let wrong_secret =
        login_response(&sandbox, "sandbox", "nope", "grant_type=client_credentials").await;
    assert_eq!(wrong_secret.status(), StatusCode::FORBIDDEN);
    let error: Value = wrong_secret.json().await.expect("json");
    assert_eq!(keys(&error["error"]), ["message", "type", "uuid"]);
    let no_auth = client()
        .post(format!("{}/ids/auth/login", sandbox.url()))
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("request");
    assert_eq!(no_auth.status(), StatusCode::FORBIDDEN);

    let counters = sandbox.counters();
    assert_eq!(counters.logins, 2);
    assert_eq!(counters.login_failures, 4);
    assert_eq!(counters.requests, 6);
    assert_eq!(counters.routes["POST /ids/auth/login"], 6);
}

#[tokio::test]
async fn expired_invalid_and_missing_tokens_get_401() {
    let sandbox = start(SandboxConfig {
        token_ttl: Duration::from_secs(1),
        ..SandboxConfig::default()
    })
    .await;
    let body = login_body(&sandbox).await;
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().expect("token").to_owned();
    let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::OK);

    // A forged signature is refused.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (status, body) = get(&sandbox, &forged, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "AuthenticationError");
    assert_eq!(keys(&body["error"]), ["message", "type", "uuid"]);
    let missing = client()
        .get(format!("{}/dap/query/canvas/table", sandbox.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);

    sandbox.advance_clock(Duration::from_secs(2));
    let (status, body) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired token: {body}");
    assert_eq!(sandbox.counters().unauthorized, 3);
}

#[tokio::test]
async fn x_instauth_is_accepted_counted_and_loses_to_authorization() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    let url = format!("{}/dap/query/canvas/table", sandbox.url());
    let response = client()
        .get(&url)
        .header("x-instauth", &token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let response = client()
        .get(&url)
        .header("x-instauth", &token)
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "Authorization wins"
    );
    assert_eq!(sandbox.counters().x_instauth, 2);
}

#[tokio::test]
async fn tables_and_schemas() {
    let sandbox = start(SandboxConfig {
        hidden_tables: vec!["users".to_owned()],
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let (status, body) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["tables"]);
    let tables: Vec<&str> = body["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tables.len() >= 85, "{} tables", tables.len());
    for table in ["accounts", "courses", "enrollments", "submissions"] {
        assert!(tables.contains(&table), "{table}");
    }
    assert!(!tables.contains(&"users"), "hidden table is not listed");
    for namespace in ["canvas_logs", "catalog", "new_quizzes"] {
        let (status, _) = get(&sandbox, &token, &format!("/dap/query/{namespace}/table")).await;
        assert_eq!(status, StatusCode::OK, "{namespace}");
    }
    let (status, body) = get(&sandbox, &token, "/dap/query/nope/table").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        keys(&body["error"]),
        ["id", "kind", "message", "type", "uuid"]
    );
    assert_eq!(body["error"]["kind"], "namespace");

    let (status, body) = get(&sandbox, &token, "/dap/query/canvas/table/accounts/schema").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body), ["schema", "version"]);
    assert_eq!(body["schema"]["type"], "object");
    assert!(body["version"].as_u64().expect("version") >= 1);
    let (_, again) = get(&sandbox, &token, "/dap/query/canvas/table/accounts/schema").await;
    assert_eq!(body, again, "schemas are deterministic");
    for path in [
        "/dap/query/canvas/table/nope/schema",
        "/dap/query/canvas/table/users/schema",
    ] {
        let (status, body) = get(&sandbox, &token, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["kind"], "table");
    }
    let (status, _) = post(
        &sandbox,
        &token,
        "/dap/query/canvas/table/users/data",
        &json!({"format": "jsonl"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn snapshot_job_objects_and_downloads() {
    let sandbox = start(SandboxConfig {
        polls_to_complete: 2,
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let query = json!({"format": "jsonl", "mode": "expanded"});
    let (status, created) = post(&sandbox, &token, ACCOUNTS_DATA, &query).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(keys(&created), ["expires_at", "id", "status"]);
    assert_eq!(created["status"], "waiting");
    let (status, same) = post(&sandbox, &token, ACCOUNTS_DATA, &query).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        same["id"], created["id"],
        "an identical query returns the existing job"
    );
    let id = created["id"].as_str().expect("id");

    let (status, running) = get(&sandbox, &token, &format!("/dap/job/{id}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(running["status"], "running");
    let (status, _) = get(&sandbox, &token, &format!("/dap/job/{id}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, job) = get(&sandbox, &token, &format!("/dap/job/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&job),
        [
            "at",
            "expires_at",
            "id",
            "objects",
            "schema_version",
            "status"
        ]
    );
    assert_eq!(job["status"], "complete");
    let at = job["at"].as_str().expect("at");
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    let objects = job["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 2);
    assert!(
        objects[0]["id"]
            .as_str()
            .expect("id")
            .starts_with(&format!("{id}/part-00000-"))
    );
    let (status, done) = post(&sandbox, &token, ACCOUNTS_DATA, &query).await;
    assert_eq!(status, StatusCode::OK, "the same query after completion");
    assert_eq!(done["id"], job["id"]);

    let (status, body) = get(&sandbox, &token, "/dap/job/no-such-job").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["kind"], "job");

    let urls = object_urls(&sandbox, &token, &job).await;
    assert!(urls[0].starts_with(&sandbox.object_store_url()));
    assert!(urls[0].contains("X-Amz-Signature="));
    let bytes = download(&urls[0]).await;
    let text = gunzip(&bytes);
    let rows: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    // The first object holds keys 1..=20 of the table at `at`, as the data model says.
    let at = data::parse_timestamp(at).expect("at");
    let model = sandbox.data();
    let layout = model.table("canvas", "accounts", at).expect("table");
    let expected: Vec<Value> = model
        .snapshot_rows("canvas", "accounts", at)
        .iter()
        .filter(|row| matches!(row.key, Cell::Int(1..=20)))
        .map(|row| row.to_json(&layout))
        .collect();
    assert!(expected.len() >= 12, "{} rows", expected.len());
    assert_eq!(rows, expected);
    assert_eq!(keys(&rows[0]), ["key", "meta", "value"]);
    let again = download(&urls[0]).await;
    assert_eq!(gunzip(&again), text, "content is deterministic");

    let with_auth = client()
        .get(&urls[1])
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(with_auth.status(), StatusCode::BAD_REQUEST);
    assert!(
        with_auth
            .text()
            .await
            .expect("body")
            .contains("Only one auth mechanism allowed")
    );
    let tampered = urls[1].replace("X-Amz-Signature=", "X-Amz-Signature=00");
    let forged = client().get(&tampered).send().await.expect("download");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let (status, body) = post(
        &sandbox,
        &token,
        "/dap/object/url",
        &json!([{"id": "nope/part-0.json.gz"}]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["kind"], "object");

    let counters = sandbox.counters();
    assert_eq!(counters.object_downloads, 2);
    assert_eq!(counters.object_auth_rejected, 1);
    assert_eq!(
        counters.job_queries,
        vec![query.clone(), query.clone(), query]
    );
    assert_eq!(counters.routes["GET /dap/job/{id}"], 4);
    assert_eq!(
        counters.routes["POST /dap/query/{namespace}/table/{table}/data"],
        3
    );
}

#[tokio::test]
async fn csv_objects_have_a_header() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    let job = run_job(&sandbox, &token, "courses", &json!({"format": "csv"})).await;
    let urls = object_urls(&sandbox, &token, &job).await;
    assert!(urls[0].contains(".csv.gz?"));
    let bytes = download(&urls[1]).await;
    let text = gunzip(&bytes);
    let mut lines = text.lines();
    assert!(lines.next().expect("header").starts_with("key.id,"));
    // Quoted values may hold line breaks: count the lines that start a record (`<key>,`).
    let records = lines
        .filter(|line| {
            line.split_once(',').is_some_and(|(key, _)| {
                key.parse::<u64>().is_ok_and(|key| (21..=40).contains(&key))
            })
        })
        .count();
    let at = data::parse_timestamp(job["at"].as_str().expect("at")).expect("at");
    let expected = sandbox
        .data()
        .snapshot_rows("canvas", "courses", at)
        .iter()
        .filter(|row| matches!(row.key, Cell::Int(21..=40)))
        .count();
    assert_eq!(records, expected);
}

#[tokio::test]
async fn incremental_jobs_and_validation() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    let snapshot = run_job(&sandbox, &token, "accounts", &json!({"format": "jsonl"})).await;
    let at = snapshot["at"].as_str().expect("at").to_owned();
    let query = json!({"format": "jsonl", "since": at});
    let job = run_job(&sandbox, &token, "accounts", &query).await;
    assert_eq!(
        keys(&job),
        [
            "expires_at",
            "id",
            "objects",
            "schema_version",
            "since",
            "status",
            "until"
        ]
    );
    assert_eq!(job["since"], at);
    let until = job["until"].as_str().expect("until");
    assert!(until > at.as_str(), "until {until} after since {at}");

    let bounded = json!({"format": "tsv", "since": "2026-01-01T00:00:00+02:00", "until": "2026-01-02T00:00:00Z"});
    let job = run_job(&sandbox, &token, "accounts", &bounded).await;
    assert_eq!(job["since"], "2025-12-31T22:00:00Z");
    assert_eq!(job["until"], "2026-01-02T00:00:00Z");

    for bad in [
        json!({"format": "jsonl", "since": "yesterday"}),
        json!({"format": "jsonl", "since": "2026-01-01T00:00:00"}),
        json!({"format": "jsonl", "extra": 1}),
        json!({"format": "xml"}),
        json!({"mode": "expanded"}),
        json!([1, 2]),
    ] {
        let (status, body) = post(&sandbox, &token, ACCOUNTS_DATA, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["type"], "ValidationError");
        assert_eq!(
            keys(&body["error"]),
            ["location", "message", "type", "uuid"]
        );
        assert_eq!(
            keys(&body["error"]["location"]),
            ["character", "column", "line"]
        );
    }
    let response = client()
        .post(format!("{}{ACCOUNTS_DATA}", sandbox.url()))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let counters = sandbox.counters();
    assert_eq!(counters.job_queries[1]["since"], at);
    assert_eq!(counters.job_queries.len(), 10);
}

#[tokio::test]
async fn failed_tables_end_failed() {
    let sandbox = start(SandboxConfig {
        faults: Faults {
            fail_tables: vec!["submissions".to_owned()],
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let job = run_job(&sandbox, &token, "submissions", &json!({"format": "jsonl"})).await;
    assert_eq!(keys(&job), ["error", "expires_at", "id", "status"]);
    assert_eq!(job["status"], "failed");
    assert_eq!(keys(&job["error"]), ["message", "type", "uuid"]);
    let job = run_job(&sandbox, &token, "accounts", &json!({"format": "jsonl"})).await;
    assert_eq!(job["status"], "complete");
}

#[tokio::test]
async fn request_faults_come_in_order_429_503_drop() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    sandbox.set_faults(Faults {
        fail_429: 2,
        retry_after: Some(7),
        fail_503: 1,
        drop_connections: 1,
        ..Faults::default()
    });
    let url = format!("{}/dap/query/canvas/table", sandbox.url());
    for _ in 0..2 {
        let response = get_with(&url, &token).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
    }
    let response = get_with(&url, &token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let dropped = client().get(&url).bearer_auth(&token).send().await;
    let error = dropped.expect_err("connection closed without a response");
    assert!(!error.is_timeout(), "{error}");
    let response = get_with(&url, &token).await;
    assert_eq!(response.status(), StatusCode::OK);

    sandbox.set_faults(Faults {
        fail_429: 1,
        ..Faults::default()
    });
    let response = get_with(&url, &token).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
    // Login is not subject to faults.
    sandbox.set_faults(Faults {
        fail_503: 1,
        ..Faults::default()
    });
    login(&sandbox).await;
    assert_eq!(sandbox.counters().rate_limited, 3);
}

#[tokio::test]
async fn expired_object_urls_answer_403() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    let job = run_job(&sandbox, &token, "accounts", &json!({"format": "jsonl"})).await;
    let urls = object_urls(&sandbox, &token, &job).await;
    sandbox.set_faults(Faults {
        expire_object_urls: 1,
        ..Faults::default()
    });
    let expired = client().get(&urls[0]).send().await.expect("download");
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    assert!(
        expired
            .text()
            .await
            .expect("body")
            .contains("Request has expired")
    );
    let fresh = client().get(&urls[0]).send().await.expect("download");
    assert_eq!(fresh.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoked_tokens_get_401() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::OK);
    sandbox.revoke_tokens();
    let (status, body) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "AuthenticationError");
    let fresh = login(&sandbox).await;
    let (status, _) = get(&sandbox, &fresh, "/dap/query/canvas/table").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "tokens issued after the revocation work"
    );

    sandbox.set_faults(Faults {
        revoke_after: Some(1),
        ..Faults::default()
    });
    let (status, _) = get(&sandbox, &fresh, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&sandbox, &fresh, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let sandbox = start(SandboxConfig {
        rate_limits: true,
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    for _ in 0..5 {
        let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table").await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = client()
        .get(format!("{}/dap/query/canvas/table", sandbox.url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Other endpoints have their own budget.
    let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table/accounts/schema").await;
    assert_eq!(status, StatusCode::OK);
    for table in ["a1", "a2", "a3", "a4", "a5"] {
        let (status, _) = post(
            &sandbox,
            &token,
            &format!("/dap/query/canvas/table/{table}/data"),
            &json!({"format": "csv"}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = post(&sandbox, &token, ACCOUNTS_DATA, &json!({"format": "csv"})).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "create job allows 5 a minute"
    );
    assert_eq!(sandbox.counters().rate_limited, 2);
}

#[tokio::test]
async fn inst_access_tokens_are_minted_and_accepted() {
    let sandbox = start(SandboxConfig {
        token_ttl: Duration::from_secs(1),
        ..SandboxConfig::default()
    })
    .await;
    let mint = format!("{}/api/v1/inst_access_tokens", sandbox.canvas_url());
    let refused = client()
        .post(&mint)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let response = client()
        .post(&mint)
        .bearer_auth("canvas-sandbox")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(keys(&body), ["token"]);
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(token.split('.').count(), 5, "looks like a JWE");
    let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sandbox.counters().canvas_mints, 1);
    sandbox.advance_clock(Duration::from_secs(2));
    let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "lifetime capped by token_ttl"
    );
}

#[tokio::test]
async fn large_objects_stream_as_valid_gzip() {
    const SIZE: u64 = 50 * 1024 * 1024;
    let sandbox = start(SandboxConfig {
        large_object_bytes: SIZE,
        objects_per_job: 1,
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let job = run_job(&sandbox, &token, "accounts", &json!({"format": "jsonl"})).await;
    let urls = object_urls(&sandbox, &token, &job).await;
    let response = client().get(&urls[0]).send().await.expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.content_length().is_none(),
        "streamed, not buffered"
    );
    let bytes = response.bytes().await.expect("body");
    let compressed = bytes.len() as u64;
    assert!(
        (SIZE..SIZE + SIZE / 100).contains(&compressed),
        "{compressed} bytes"
    );
    let mut decoder = flate2::read::GzDecoder::new(&bytes[..]);
    let mut lines = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    let mut last = Vec::new();
    loop {
        let read = decoder.read(&mut buffer).expect("valid gzip");
        if read == 0 {
            break;
        }
        lines += buffer[..read].iter().filter(|byte| **byte == b'\n').count() as u64;
        last = buffer[..read].to_vec();
    }
    assert!(lines > 50_000, "{lines} rows");
    let tail = String::from_utf8_lossy(&last);
    let last_line = tail.trim_end().rsplit('\n').next().expect("a line");
    serde_json::from_str::<Value>(last_line).expect("the last row is complete JSON");
}

#[tokio::test]
async fn latency_delays_gateway_responses() {
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(150),
        ..SandboxConfig::default()
    })
    .await;
    let started = Instant::now();
    login(&sandbox).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn start_runs_on_its_own_runtime_and_stops() {
    let sandbox = Sandbox::start(SandboxConfig::default()).expect("sandbox starts");
    let url = sandbox.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let token = login(&sandbox).await;
        let (status, _) = get(&sandbox, &token, "/dap/query/canvas/table").await;
        assert_eq!(status, StatusCode::OK);
    });
    assert_eq!(sandbox.counters().requests, 2);
    sandbox.stop();
    let refused = runtime.block_on(client().get(format!("{url}/dap/query/canvas/table")).send());
    assert!(refused.is_err(), "stopped sandbox no longer listens");
}

/// The fields of a record as a TSV object should carry them (`None`: NULL).
fn tsv_cells(record: &data::Record) -> Vec<Option<String>> {
    std::iter::once(&record.key)
        .chain(&record.values)
        .map(|cell| match cell {
            Cell::Null => None,
            Cell::Int(value) => Some(value.to_string()),
            Cell::Float(value) => Some(value.to_string()),
            Cell::Bool(value) => Some(value.to_string()),
            Cell::Text(text) => Some(text.to_string()),
            Cell::Time(unix) => Some(data::timestamp(*unix)),
            Cell::Decimal { units, scale } => {
                let factor = 10_i64.pow(u32::from(*scale));
                Some(format!(
                    "{}.{:0width$}",
                    units / factor,
                    units % factor,
                    width = usize::from(*scale)
                ))
            }
            Cell::Date(_) | Cell::Clock(_) | Cell::Uuid(_) | Cell::Ipv4(_) => {
                cell.to_json().as_str().map(str::to_owned)
            }
            Cell::Json(value) => Some(value.to_string()),
        })
        .collect()
}

/// One field of PostgreSQL's COPY text format.
fn unescape_copy(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(character) = chars.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        out.push(match chars.next() {
            Some('t') => '\t',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('\\') => '\\',
            other => panic!("unexpected escape {other:?} in {field:?}"),
        });
    }
    Some(out)
}

/// Every object of a TSV job: the header and the unescaped fields of each line.
async fn tsv_rows(
    sandbox: &Sandbox,
    token: &str,
    job: &Value,
) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for url in object_urls(sandbox, token, job).await {
        let text = gunzip(&download(&url).await);
        assert!(text.ends_with('\n'), "every line ends with a newline");
        let mut lines = text.lines();
        header = lines
            .next()
            .expect("header")
            .split('\t')
            .map(str::to_owned)
            .collect();
        for line in lines {
            assert!(
                !line.is_empty(),
                "no empty line (the official client stops at one)"
            );
            let row: Vec<Option<String>> = line.split('\t').map(unescape_copy).collect();
            assert_eq!(row.len(), header.len(), "{line}");
            rows.push(row);
        }
    }
    (header, rows)
}

#[tokio::test]
async fn a_tsv_snapshot_plus_its_incrementals_is_the_later_snapshot() {
    let sandbox = start(SandboxConfig {
        polls_to_complete: 0,
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let snapshot = json!({"format": "tsv", "mode": "condensed"});
    let job = run_job(&sandbox, &token, "users", &snapshot).await;
    let (header, rows) = tsv_rows(&sandbox, &token, &job).await;
    assert_eq!(header[0], "key.id");
    assert_eq!(header.last().map(String::as_str), Some("meta.ts"));
    // The real `canvas.users`, with a truncatable text (`pronouns`).
    assert!(header.contains(&"value.pronouns".to_owned()), "{header:?}");
    assert!(
        !header.contains(&"meta.action".to_owned()),
        "snapshots have no action column"
    );
    let mut replica: std::collections::BTreeMap<String, Vec<Option<String>>> = rows
        .into_iter()
        .map(|mut row| {
            row.pop(); // meta.ts
            (row[0].clone().expect("key"), row)
        })
        .collect();
    let model = sandbox.data();
    let expected_at = |until: &str| -> std::collections::BTreeMap<_, _> {
        let at = data::parse_timestamp(until).expect("time");
        model
            .snapshot_rows("canvas", "users", at)
            .iter()
            .map(|row| {
                let cells = tsv_cells(row);
                (cells[0].clone().expect("key"), cells)
            })
            .collect()
    };
    let mut since = job["at"].as_str().expect("at").to_owned();
    assert_eq!(replica, expected_at(&since), "the snapshot is the model's");
    let (mut upserts, mut deletes) = (0, 0);
    // Windows of several lengths; then, as the changes seen depend on where the real clock
    // stood at the start, more of them until a delete is among them (bounded).
    let steps = [1, 3, 2, 10].into_iter().chain(std::iter::repeat_n(10, 40));
    for (n, step) in steps.enumerate() {
        if n >= 4 && deletes > 0 {
            break;
        }
        sandbox.advance_clock(Duration::from_secs(step));
        let query = json!({"format": "tsv", "mode": "condensed", "since": since});
        let job = run_job(&sandbox, &token, "users", &query).await;
        let (header, rows) = tsv_rows(&sandbox, &token, &job).await;
        let action = header
            .iter()
            .position(|name| name == "meta.action")
            .expect("meta.action");
        for mut row in rows {
            row.pop(); // meta.ts
            let kind = row.remove(action).expect("action");
            let key = row[0].clone().expect("key");
            match kind.as_str() {
                "U" => {
                    upserts += 1;
                    replica.insert(key, row);
                }
                "D" => {
                    deletes += 1;
                    assert!(row[1..].iter().all(Option::is_none), "a delete is its key");
                    assert!(replica.remove(&key).is_some(), "delete of absent {key}");
                }
                other => panic!("action {other}"),
            }
        }
        let until = job["until"].as_str().expect("until").to_owned();
        assert_eq!(replica, expected_at(&until), "at {until}");
        since = until;
    }
    // Deletes were served (above); the model's condensed rows over the whole time need not
    // hold one, as a key deleted may come back later.
    assert!(upserts > 20 && deletes > 0, "{upserts} U, {deletes} D");
}

#[tokio::test]
async fn incrementals_too_old_or_needing_a_snapshot_are_refused() {
    let sandbox = start(SandboxConfig {
        faults: Faults {
            snapshot_required: vec!["courses".to_owned()],
            out_of_range: vec!["users".to_owned()],
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let web_logs = "/dap/query/canvas_logs/table/web_logs/data";
    let old = data::timestamp(sandbox.now() - 31 * 86_400);
    let (status, body) = post(
        &sandbox,
        &token,
        web_logs,
        &json!({"format": "tsv", "since": old}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "OutOfRangeError");
    assert_eq!(
        keys(&body["error"]),
        ["message", "since", "type", "until", "uuid"]
    );
    let earliest = data::parse_timestamp(body["error"]["since"].as_str().expect("since"));
    assert!(earliest.expect("since") > data::parse_timestamp(&old).expect("old"));
    let recent = data::timestamp(sandbox.now() - 29 * 86_400);
    let (status, _) = post(
        &sandbox,
        &token,
        web_logs,
        &json!({"format": "tsv", "since": recent}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "29 days back is kept");

    let since = data::timestamp(sandbox.now() - 60);
    for (table, kind) in [
        ("courses", "SnapshotRequiredError"),
        ("users", "OutOfRangeError"),
    ] {
        let path = format!("/dap/query/canvas/table/{table}/data");
        let (status, body) = post(
            &sandbox,
            &token,
            &path,
            &json!({"format": "jsonl", "since": since}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{table}");
        assert_eq!(body["error"]["type"], kind);
        let (status, _) = post(&sandbox, &token, &path, &json!({"format": "jsonl"})).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "a snapshot of {table} is served"
        );
    }
    let (status, body) = post(
        &sandbox,
        &token,
        "/dap/query/canvas/table/accounts/data",
        &json!({"format": "jsonl", "since": since}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Once no new data arrives, the snapshot's `at` and every later incremental's `until` are the
/// time of the last data, as the real gateway's (the commit time of the latest record): two
/// runs get the same `until`. An identical query gets the same job while it lives, a new job
/// with the same `until` after it expired.
#[tokio::test]
async fn when_no_new_data_arrives_until_stays_where_the_data_stopped() {
    // The clock moves on by more than a day; the token, issued for two, outlives it.
    let sandbox = start(SandboxConfig {
        no_new_data_after: Some(Duration::ZERO),
        token_ttl: Duration::from_secs(48 * 3_600),
        ..SandboxConfig::default()
    })
    .await;
    let last = data::timestamp(sandbox.now());
    let token = login(&sandbox).await;
    sandbox.advance_clock(Duration::from_secs(3_600));
    let snapshot = run_job(&sandbox, &token, "accounts", &json!({"format": "jsonl"})).await;
    assert_eq!(snapshot["at"], last.as_str());
    let query = json!({"format": "jsonl", "since": last});
    let first = run_job(&sandbox, &token, "accounts", &query).await;
    assert_eq!(first["since"], last.as_str());
    assert_eq!(
        first["until"],
        last.as_str(),
        "`until` does not move: {first}"
    );
    for url in object_urls(&sandbox, &token, &first).await {
        assert_eq!(
            gunzip(&download(&url).await),
            "",
            "no changes in an empty window"
        );
    }

    sandbox.advance_clock(Duration::from_secs(3_600));
    let (status, again) = post(&sandbox, &token, ACCOUNTS_DATA, &query).await;
    assert_eq!(status, StatusCode::OK, "the same job, complete: {again}");
    assert_eq!(again["id"], first["id"]);

    // Past the job's 24 hours, the same query starts a new job, which ends at the same time.
    sandbox.advance_clock(Duration::from_secs(24 * 3_600));
    let later = run_job(&sandbox, &token, "accounts", &query).await;
    assert_ne!(later["id"], first["id"]);
    assert_eq!(later["until"], last.as_str());
}

#[tokio::test]
async fn parquet_is_refused_not_faked() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = login(&sandbox).await;
    let (status, body) = post(
        &sandbox,
        &token,
        ACCOUNTS_DATA,
        &json!({"format": "parquet"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "ValidationError");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("parquet"),
        "{body}"
    );
    assert_eq!(body["error"]["location"]["line"], 1);
}

#[tokio::test]
async fn a_schema_change_adds_a_version_and_a_nullable_column() {
    let sandbox = start(SandboxConfig {
        polls_to_complete: 0,
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let schema = "/dap/query/canvas/table/users/schema";
    let (_, before) = get(&sandbox, &token, schema).await;
    assert_eq!(
        before["schema"]["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let query = json!({"format": "tsv", "mode": "condensed"});
    let snapshot = run_job(&sandbox, &token, "users", &query).await;
    assert_eq!(snapshot["schema_version"], before["version"]);
    sandbox.advance_clock(Duration::from_secs(1));
    sandbox.change_schema("canvas", "users");
    let (_, after) = get(&sandbox, &token, schema).await;
    let version = before["version"].as_u64().expect("version");
    assert_eq!(after["version"], version + 1);
    let value = &after["schema"]["properties"]["value"];
    assert_eq!(
        value["properties"]["sandbox_added_note"]["type"], "string",
        "{value}"
    );
    assert!(
        !value["required"]
            .as_array()
            .expect("required")
            .contains(&json!("sandbox_added_note"))
    );
    sandbox.advance_clock(Duration::from_secs(5));
    let since = snapshot["at"].as_str().expect("at");
    let query = json!({"format": "tsv", "mode": "condensed", "since": since});
    let job = run_job(&sandbox, &token, "users", &query).await;
    assert_eq!(job["schema_version"], version + 1);
    let (header, rows) = tsv_rows(&sandbox, &token, &job).await;
    let note = header
        .iter()
        .position(|name| name == "value.sandbox_added_note")
        .expect("the new column");
    assert!(
        rows.iter().any(|row| row[note].is_some()),
        "rows changed after the change carry the new column"
    );
}

/// A time-based job completes when its time has passed on the sandbox clock, however often it
/// is polled before: `waiting`, then `running` after a tenth of its time, then `complete`.
#[tokio::test]
async fn jobs_complete_by_time_when_a_job_time_is_set() {
    // Shorter than the token's hour: the clock moves past the job's time, not the token's.
    let job_time = Duration::from_secs(600);
    let sandbox = start(SandboxConfig {
        polls_to_complete: 0,
        job_time: Some(job_time),
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let (status, job) = post(&sandbox, &token, ACCOUNTS_DATA, &json!({"format": "jsonl"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let path = format!("/dap/job/{}", job["id"].as_str().expect("id"));
    // Polls do not hurry the job.
    for _ in 0..5 {
        let (status, body) = get(&sandbox, &token, &path).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "waiting", "{body}");
    }
    sandbox.advance_clock(job_time / 2);
    let (status, body) = get(&sandbox, &token, &path).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "running", "{body}");
    sandbox.advance_clock(job_time / 2 - Duration::from_secs(60));
    let (status, body) = get(&sandbox, &token, &path).await;
    assert_eq!(status, StatusCode::ACCEPTED, "a minute early: {body}");
    sandbox.advance_clock(Duration::from_secs(60));
    let (status, body) = get(&sandbox, &token, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "complete");
}

#[tokio::test]
async fn the_rows_endpoint_serves_the_model() {
    let sandbox = start(SandboxConfig::default()).await;
    let at = sandbox.now();
    let url = format!(
        "{}/sandbox/rows/canvas/enrollments?at={}",
        sandbox.url(),
        data::timestamp(at)
    );
    let text = client()
        .get(url)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let model = sandbox.data();
    let layout = model.table("canvas", "enrollments", at).expect("table");
    let expected: Vec<Value> = model
        .snapshot_rows("canvas", "enrollments", at)
        .iter()
        .map(|row| row.to_json(&layout))
        .collect();
    let got: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(got, expected);
}

/// With instant jobs a query's answer is already `complete` (the official client polls every
/// 5 s otherwise) and an identical query gets a new job; after `POST /sandbox/freeze` every job
/// ends at the frozen time, however far the clock moves.
#[tokio::test]
async fn instant_jobs_complete_at_once_and_freeze_stops_the_data() {
    let sandbox = start(SandboxConfig {
        instant_jobs: true,
        ..SandboxConfig::default()
    })
    .await;
    let token = login(&sandbox).await;
    let snapshot = json!({"format": "jsonl"});
    let (status, first) = post(&sandbox, &token, ACCOUNTS_DATA, &snapshot).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "complete", "{first}");
    assert!(first["at"].is_string(), "{first}");
    let (_, again) = post(&sandbox, &token, ACCOUNTS_DATA, &snapshot).await;
    assert_ne!(
        first["id"], again["id"],
        "an identical query gets a new job"
    );

    let frozen: Value = client()
        .post(format!("{}/sandbox/freeze", sandbox.url()))
        .send()
        .await
        .expect("freeze")
        .json()
        .await
        .expect("JSON");
    let at = frozen["at"].as_str().expect("at").to_owned();
    sandbox.advance_clock(std::time::Duration::from_secs(30));
    let since = first["at"].as_str().expect("at");
    let changes = json!({"format": "jsonl", "since": since});
    let (status, job) = post(&sandbox, &token, ACCOUNTS_DATA, &changes).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["until"].as_str(), Some(at.as_str()), "{job}");
}
