//! Outputs through the binary: the values the paths select, as files, reports, checks and later
//! steps see them, whichever part of the answer was parsed for them and however they share it.

use crate::common::*;

/// A query, then its job's answer (listing `objects_per_job` objects) with `outputs`.
fn job_answer_step(outputs: &str, more: &str) -> String {
    format!(
        r#"
[[step]]
id = "query"
post = "/dap/query/canvas/table/accounts/data"
json = {{ format = "jsonl" }}
outputs = {{ job_id = "$.id" }}

[[step]]
id = "job"
get = "/dap/job/{{{{ job_id }}}}"
outputs = {outputs}
{more}
"#
    )
}

fn sandbox(objects: usize) -> SandboxConfig {
    SandboxConfig {
        polls_to_complete: 0,
        objects_per_job: objects,
        ..Default::default()
    }
}

#[test]
fn outputs_that_share_one_answer_are_what_their_paths_select_everywhere() {
    let job = job_answer_step(
        r#"{ status = "$.status", first = "$.objects[0].id", ids = "$.objects[*].id", objects = "$.objects" }"#,
        r#"save = ["answer.json", { to = "objects.json", output = "objects" }, { to = "ids.json", output = "ids" }, { to = "first.json", output = "first" }]
check = "status == 'complete' and first == objects[0].id and ids | length == objects | length and ids[-1] == objects[-1].id"

[[step]]
id = "urls"
post = "/dap/object/url"
json = "{{ objects }}"
outputs = { urls = "$.urls.*.url" }
check = "urls | length == ids | length""#,
    );
    let t = Test::new()
        .sandbox(sandbox(40))
        .job("job.toml", &job)
        .args(&["--report", "json=report.json"])
        .status(0)
        .run();
    t.no_secret();
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(t.out().join(f)).unwrap()).unwrap()
    };
    // The body as sent, beside the outputs taken from it.
    let answer = read("answer.json");
    let objects = answer["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 40);
    let ids: Vec<&serde_json::Value> = objects.iter().map(|o| &o["id"]).collect();
    assert_eq!(read("objects.json"), answer["objects"]);
    assert_eq!(read("ids.json"), serde_json::json!(ids));
    assert_eq!(&read("first.json"), ids[0]);
    let report: serde_json::Value = serde_json::from_str(&t.ws.read("report.json")).unwrap();
    let outputs = &report["steps"][1]["items"][0]["outputs"];
    assert_eq!(
        outputs.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["first", "ids", "objects", "status"]
    );
    assert_eq!(outputs["status"], "complete");
    assert_eq!(outputs["objects"], answer["objects"]);
    assert_eq!(outputs["ids"], serde_json::json!(ids));
    assert_eq!(&outputs["first"], ids[0]);
    // The later step sent the list as JSON: the gateway answered a URL for every object.
    assert_eq!(
        report["steps"][2]["items"][0]["outputs"]["urls"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
}

#[test]
fn an_output_that_matches_nothing_shows_the_answer_as_sent() {
    // Only `status` and `nope` are parsed; the message still shows the members around them.
    let job = job_answer_step(r#"{ status = "$.status", nope = "$.nope.id" }"#, "");
    Test::new()
        .sandbox(sandbox(3))
        .job("job.toml", &job)
        .status(1)
        .stderr_has(&[
            "output `nope`: JSONPath `$.nope.id` matched nothing in the response {\"id\":\"",
            "\"status\":\"complete\"",
            "\"objects\":[{\"id\":\"",
        ])
        .run();
}

#[test]
fn a_poll_takes_its_outputs_from_the_answer_that_ended_it() {
    let job = r#"
[[step]]
id = "query"
post = "/dap/query/canvas/table/accounts/data"
json = { format = "jsonl" }
outputs = { job_id = "$.id" }

[[step]]
id = "wait"
get = "/dap/job/{{ job_id }}"
poll = { until = "status == 'complete'", every = "10ms..20ms", timeout = "20s" }
outputs = { status = "$.status", objects = { path = "$.objects", optional = true } }
check = "objects | length == 5"
"#;
    let t = Test::new()
        .sandbox(SandboxConfig {
            polls_to_complete: 2,
            objects_per_job: 5,
            ..Default::default()
        })
        .job("job.toml", job)
        .args(&["--report", "json=report.json"])
        .status(0)
        .run();
    let report: serde_json::Value = serde_json::from_str(&t.ws.read("report.json")).unwrap();
    let item = &report["steps"][1]["items"][0];
    assert_eq!(
        item["requests"], 3,
        "two polls answered running, the third complete"
    );
    assert_eq!(item["outputs"]["objects"].as_array().unwrap().len(), 5);
}
