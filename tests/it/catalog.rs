//! The sandbox serves the real Canvas Data 2 catalog: every namespace's tables with the schemas
//! the gateway serves (every JSON Schema construct the real schemas use), and rows that
//! validate against them in every format, with NULLs, the truncation marker and the texts that
//! break loaders.

use std::collections::{BTreeMap, BTreeSet};

use dap_run::sandbox::data;
use dap_run::sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sandbox::{gunzip, login, start};

/// A sandbox and one HTTP client for a test's many requests (building a client loads the
/// platform's root certificates, which dominates a request's time on loopback).
struct Gateway {
    sandbox: Sandbox,
    http: reqwest::Client,
    token: String,
}

impl Gateway {
    async fn start() -> Gateway {
        let sandbox = start(SandboxConfig::default()).await;
        let token = login(&sandbox).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        Gateway {
            sandbox,
            http,
            token,
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.sandbox.url());
        Gateway::answer(self.http.get(url).bearer_auth(&self.token)).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.sandbox.url());
        Gateway::answer(self.http.post(url).bearer_auth(&self.token).json(body)).await
    }

    /// A query job on `namespace.table`, polled to completion.
    async fn run(&self, namespace: &str, table: &str, query: &Value) -> Value {
        let path = format!("/dap/query/{namespace}/table/{table}/data");
        let (status, job) = self.post(&path, query).await;
        // An identical query answers 200 with the job it already has.
        assert!(
            matches!(status, StatusCode::ACCEPTED | StatusCode::OK),
            "{path}: {status} {job}"
        );
        let id = job["id"].as_str().expect("job id").to_owned();
        for _ in 0..10 {
            let (status, job) = self.get(&format!("/dap/job/{id}")).await;
            if status == StatusCode::OK {
                assert_eq!(job["status"], "complete", "{job}");
                return job;
            }
        }
        panic!("job {id} did not finish");
    }

    /// The text of every object of a job, in part order.
    async fn texts(&self, job: &Value) -> Vec<String> {
        let ids: Vec<Value> = job["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|object| json!({"id": object["id"]}))
            .collect();
        let (status, body) = self.post("/dap/object/url", &Value::Array(ids)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut texts = Vec::new();
        for resource in body["urls"].as_object().expect("urls").values() {
            let url = resource["url"].as_str().expect("url");
            let response = self.http.get(url).send().await.expect("download");
            texts.push(gunzip(&response.bytes().await.expect("body")));
        }
        texts
    }
}

/// Tables per namespace in the public dataset documentation (`new_quizzes`: the sandbox's own,
/// as its tables are not publicly documented).
const NAMESPACES: &[(&str, usize)] = &[
    ("canvas", 93),
    ("canvas_logs", 1),
    ("catalog", 28),
    ("new_quizzes", 9),
];

/// `GET /dap/query/{namespace}/table/{table}/schema` of every table: (namespace, table) →
/// (schema, version).
async fn served_schemas(gateway: &Gateway) -> BTreeMap<(String, String), Value> {
    let mut schemas = BTreeMap::new();
    for (namespace, count) in NAMESPACES {
        let (status, body) = gateway.get(&format!("/dap/query/{namespace}/table")).await;
        assert_eq!(status, StatusCode::OK, "{namespace}");
        let tables: Vec<&str> = body["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(tables.len(), *count, "tables of {namespace}: {tables:?}");
        for table in tables {
            let path = format!("/dap/query/{namespace}/table/{table}/schema");
            let (status, body) = gateway.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body["version"].as_u64().is_some_and(|v| v >= 1), "{path}");
            schemas.insert((namespace.to_string(), table.to_owned()), body);
        }
    }
    schemas
}

/// The JSON Schema constructs a schema node uses, named as the brief of the catalog names them.
fn constructs(node: &Value, found: &mut BTreeSet<String>) {
    let mut note = |name: &str| {
        found.insert(name.to_owned());
    };
    if let Some(format) = node.get("format").and_then(Value::as_str) {
        note(format);
    }
    if node.get("$ref").is_some() {
        note("$ref");
    }
    if node.get("maxLength").is_some() {
        note("maxLength");
    }
    if node.get("multipleOf").is_some()
        && node.get("exclusiveMinimum").is_some()
        && node.get("exclusiveMaximum").is_some()
    {
        note("decimal");
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        if values.iter().all(Value::is_i64) {
            note("integer enum");
        } else if values.iter().any(|v| v == data::UNSPECIFIED) {
            note("string enum with __dap_unspecified__");
        }
    }
    if let Some(members) = node.get("oneOf").and_then(Value::as_array)
        && members.first().and_then(|m| m.get("const")) == Some(&json!(data::TRUNCATED))
    {
        note("oneOf truncation marker");
        if members[1].get("maxLength").is_some() {
            note("oneOf truncation marker or string of maxLength");
        }
    }
    match node.get("type").and_then(Value::as_str) {
        Some("array") => {
            let items = &node["items"];
            if items.get("enum").is_some() {
                note("array of string enums");
            } else if items["type"] == "string" {
                note("array of strings");
            } else if items["type"] == "integer" {
                note("array of integers");
            }
        }
        Some("object") if node.get("properties").is_none() => note("object without properties"),
        Some("number") if node.get("format").is_none() && node.get("multipleOf").is_none() => {
            note("number")
        }
        _ => {}
    }
    match node {
        Value::Object(map) => map.values().for_each(|child| constructs(child, found)),
        Value::Array(items) => items.iter().for_each(|child| constructs(child, found)),
        _ => {}
    }
    let value_properties = node.get("properties");
    if let Some(properties) = value_properties.and_then(Value::as_object) {
        for property in properties.values() {
            if property.get("type") == Some(&json!("object"))
                && property.get("properties").is_some()
            {
                found.insert("object with properties".to_owned());
            }
        }
    }
}

#[tokio::test]
async fn every_namespace_serves_its_tables_and_their_schemas() {
    let gateway = Gateway::start().await;
    let schemas = served_schemas(&gateway).await;
    let mut columns = BTreeMap::new();
    for ((namespace, table), body) in &schemas {
        let schema = &body["schema"];
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{namespace}.{table}"
        );
        assert_eq!(schema["required"], json!(["key"]));
        for part in ["key", "value", "meta"] {
            assert_eq!(
                schema["properties"][part]["additionalProperties"], false,
                "{namespace}.{table}.{part}"
            );
        }
        // Every schema is a valid JSON Schema.
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("urn:dap:table", schema.clone())
            .expect("resource");
        compiler
            .compile("urn:dap:table", &mut boon::Schemas::new())
            .unwrap_or_else(|e| panic!("{namespace}.{table}: {e}"));
        let count = ["key", "value"]
            .iter()
            .map(|part| {
                schema["properties"][part]["properties"]
                    .as_object()
                    .map_or(0, |p| p.len())
            })
            .sum::<usize>();
        *columns.entry(namespace.clone()).or_insert(0) += count;
    }
    // Keys are not always `id`.
    let key = |namespace: &str, table: &str| {
        schemas[&(namespace.to_owned(), table.to_owned())]["schema"]["properties"]["key"]
            ["properties"]
            .clone()
    };
    assert_eq!(
        key("canvas", "enrollment_states"),
        json!({"enrollment_id": {"type": "integer", "format": "int64"}})
    );
    assert_eq!(
        key("canvas_logs", "web_logs"),
        json!({"id": {"type": "string", "format": "uuid"}})
    );
    assert_eq!(key("catalog", "products")["id"]["format"], "int32");
    assert!(columns["canvas"] > 1_300, "{columns:?}");
    assert!(columns["catalog"] > 300, "{columns:?}");
}

#[tokio::test]
async fn every_schema_construct_of_the_gateway_appears_in_a_served_schema() {
    let gateway = Gateway::start().await;
    let mut found = BTreeSet::new();
    for body in served_schemas(&gateway).await.values() {
        constructs(&body["schema"], &mut found);
    }
    let wanted = [
        "array of string enums",
        "array of strings",
        "array of integers",
        "oneOf truncation marker",
        "oneOf truncation marker or string of maxLength",
        "uuid",
        "ipv4",
        "date",
        "time",
        "date-time",
        "decimal",
        "int16",
        "int32",
        "int64",
        "float32",
        "float64",
        "number",
        "integer enum",
        "string enum with __dap_unspecified__",
        "object with properties",
        // Not "object without properties": the official client 2.3.1 cannot read a column so
        // typed (`NameError: name 'JsonType' is not defined`), so the gateway serves none.
        "$ref",
        "maxLength",
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|name| !found.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "not served: {missing:?} (found {found:?})"
    );
}

/// The schema with each `oneOf` of the truncation marker and a string read as `anyOf`: the
/// gateway writes `oneOf`, but its marker is a string too, so a truncated value matches both
/// members and strict `oneOf` validation would refuse every truncated row the gateway sends.
fn exclusive_marker(mut node: Value) -> Value {
    if let Value::Object(map) = &mut node {
        let marker = map
            .get("oneOf")
            .and_then(Value::as_array)
            .and_then(|members| members.first())
            .is_some_and(|first| first.get("const") == Some(&json!(data::TRUNCATED)));
        if marker && let Some(members) = map.remove("oneOf") {
            map.insert("anyOf".to_owned(), members);
        }
        for child in map.values_mut() {
            *child = exclusive_marker(child.take());
        }
    } else if let Value::Array(items) = &mut node {
        for child in items.iter_mut() {
            *child = exclusive_marker(child.take());
        }
    }
    node
}

#[tokio::test]
async fn served_rows_validate_against_their_table_s_schema_in_every_namespace() {
    let gateway = Gateway::start().await;
    let schemas = served_schemas(&gateway).await;
    gateway
        .sandbox
        .advance_clock(std::time::Duration::from_secs(1));
    let since = data::timestamp(gateway.sandbox.now() - 10);
    let (mut rows, mut deletes, mut nulls) = (0, 0, 0);
    let mut strings = BTreeSet::new();
    // One compiler for every table: the draft's meta-schema is compiled once.
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let mut compiled = boon::Schemas::new();
    for ((namespace, table), body) in &schemas {
        let url = format!("urn:dap:{namespace}:{table}");
        compiler
            .add_resource(&url, exclusive_marker(body["schema"].clone()))
            .expect("resource");
        let index = compiler.compile(&url, &mut compiled).expect("schema");
        let required: Vec<&str> = body["schema"]["properties"]["value"]["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for query in [
            json!({"format": "jsonl"}),
            json!({"format": "jsonl", "since": since}),
        ] {
            let job = gateway.run(namespace, table, &query).await;
            for text in gateway.texts(&job).await {
                for line in text.lines() {
                    let record: Value = serde_json::from_str(line).expect("a JSON line");
                    if let Err(error) = compiled.validate(&record, index) {
                        panic!("{namespace}.{table}: {line}\n{error:#}");
                    }
                    rows += 1;
                    let Some(value) = record["value"].as_object() else {
                        deletes += 1;
                        continue;
                    };
                    // Nulls are omitted: a missing column is a NULL.
                    let width = body["schema"]["properties"]["value"]["properties"]
                        .as_object()
                        .map_or(0, |p| p.len());
                    nulls += width - value.len();
                    assert!(required.iter().all(|c| value.contains_key(*c)), "{line}");
                    value.values().filter_map(Value::as_str).for_each(|s| {
                        strings.insert(s.to_owned());
                    });
                }
            }
        }
    }
    assert!(
        rows > 5_000 && deletes > 0,
        "{rows} rows, {deletes} deletes"
    );
    assert!(nulls > 0, "no NULLs");
    for wanted in [data::TRUNCATED, "\\.", ""] {
        assert!(strings.contains(wanted), "no row holds {wanted:?}");
    }
    for (what, test) in [
        ("a tab", '\t'),
        ("a newline", '\n'),
        ("a carriage return", '\r'),
        ("a backslash", '\\'),
        ("a double quote", '"'),
        ("a non-ASCII character", 'é'),
    ] {
        assert!(
            strings.iter().any(|s| s.contains(test)),
            "no text holds {what}"
        );
    }
}

#[tokio::test]
async fn tsv_and_csv_carry_every_table_with_nested_values_as_json_text() {
    let gateway = Gateway::start().await;
    for (namespace, _) in NAMESPACES {
        for table in data::tables(namespace).expect("namespace") {
            let query = json!({"format": "tsv", "mode": "condensed"});
            let job = gateway.run(namespace, table, &query).await;
            for text in gateway.texts(&job).await {
                let mut lines = text.lines();
                let header = lines.next().expect("header");
                let fields = header.split('\t').count();
                for line in lines {
                    assert_eq!(
                        line.split('\t').count(),
                        fields,
                        "{namespace}.{table}: {line}"
                    );
                }
            }
        }
    }
    // Arrays and objects are JSON text in their cell; UUIDs and addresses their usual forms.
    let query = json!({"format": "tsv", "mode": "condensed"});
    let job = gateway.run("canvas", "assignments", &query).await;
    let text = gateway.texts(&job).await.concat();
    let header: Vec<&str> = text.lines().next().expect("header").split('\t').collect();
    let at = header
        .iter()
        .position(|h| *h == "value.submission_types")
        .expect("submission_types");
    let arrays: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with("key.id"))
        .map(|line| line.split('\t').nth(at).expect("field"))
        .collect();
    assert!(
        arrays
            .iter()
            .all(|cell| cell.starts_with('[') && serde_json::from_str::<Value>(cell).is_ok()),
        "{arrays:?}"
    );
    let job = gateway.run("canvas_logs", "web_logs", &query).await;
    let text = gateway.texts(&job).await.concat();
    let header: Vec<&str> = text.lines().next().expect("header").split('\t').collect();
    let ip = header
        .iter()
        .position(|h| *h == "value.remote_ip")
        .expect("remote_ip");
    for line in text
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with("key.id"))
    {
        let fields: Vec<&str> = line.split('\t').collect();
        assert!(is_uuid(fields[0]), "{line}");
        assert!(fields[ip].parse::<std::net::Ipv4Addr>().is_ok(), "{line}");
    }
}

/// A hyphenated lowercase UUID, checked by shape.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}
