//! Benchmark 6: JSONPath outputs on a 50 MB response, against parsing alone.
//!
//! `cargo build --release --bench jsonpath`, then run the binary with a mode:
//! `parse` (serde_json only, what every response with outputs costs) or `outputs` (parse, then
//! the four outputs as the runner takes them: the body parsed as far as the paths read, then
//! [`outputs`], which moves what it can out of it and scrubs secrets in place). bench/06-jsonpath.sh runs both under GNU
//! time for peak memory. Timings are the median of several rounds, printed one line per phase;
//! the per-output lines copy each selection from a borrowed response, to show what selecting
//! costs, and the last line adds the conversion to template values (a copy) that a later
//! template's use of the outputs costs.

use std::time::{Duration, Instant};

use dap_run::extract::{apply, compile, from_answer, selects_many};
use dap_run::job::model::Output;
use serde_json::Value as Json;

/// A gateway-like body of about `bytes` bytes: `{"objects": [{"id", "table", "rows", "meta"}...]}`.
fn body(bytes: usize) -> Vec<u8> {
    let mut out = String::with_capacity(bytes + 1024);
    out.push_str(r#"{"id":"job-1","status":"complete","objects":["#);
    let mut i = 0usize;
    while out.len() < bytes {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":"canvas/accounts/part-{i:05}.json.gz","table":"accounts","rows":{i},"meta":{{"ts":"2026-11-24T05:00:00Z","tags":["a","b","c"],"size":{}}}}}"#,
            i * 7
        ));
        i += 1;
    }
    out.push_str(r#"],"at":"2026-11-24T05:00:00Z"}"#);
    out.into_bytes()
}

fn output(name: &str, path: &str) -> Output {
    let query = compile(path).expect("valid path");
    Output {
        name: name.into(),
        path: path.into(),
        many: selects_many(&query),
        query,
        optional: false,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mode = args.next().unwrap_or_else(|| "outputs".into());
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rounds = 5;
    let bytes = bytes::Bytes::from(body(mb * 1_000_000));
    let size = bytes.len() as f64 / 1e6;
    println!("body\t{size:.1} MB");

    let parse = time(rounds, || serde_json::from_slice::<Json>(&bytes).unwrap());
    println!(
        "parse (serde_json::Value)\t{:.1} ms\t{:.0} MB/s",
        parse.as_secs_f64() * 1e3,
        size / parse.as_secs_f64()
    );
    let outputs = [
        output("status", "$.status"),
        output("first", "$.objects[0].id"),
        output("ids", "$.objects[*].id"),
        output("objects", "$.objects"),
        output("recursive_ids", "$..id"),
        output("filter", "$.objects[?@.rows < 10].id"),
    ];
    // What a step with the four outputs does with its response, as the runner does it: the
    // body checked as JSON, the outputs read in its text (kept as text, sharing it), scrubbed
    // of secrets.
    let step = |body: &bytes::Bytes| from_answer(&outputs[..4], body).unwrap();
    match mode.as_str() {
        "parse" => {
            let json: Json = serde_json::from_slice(&bytes).unwrap();
            std::hint::black_box(&json);
            return;
        }
        // One step's worth, for GNU time's peak: parse + the four outputs.
        "step" => {
            std::hint::black_box(step(&bytes));
            return;
        }
        _ => {}
    }

    let json: Json = serde_json::from_slice(&bytes).unwrap();
    for o in &outputs {
        let mut n = 0;
        let t = time(rounds, || {
            let v = apply(o, &json).unwrap();
            n = v.as_array().map_or(1, Vec::len);
            v
        });
        let select = time(rounds, || dap_run::extract::select(&o.query, &json).len());
        println!(
            "output {} = `{}`\t{:.1} ms\t({:.1} ms selecting, the rest cloning; {n} value{})",
            o.name,
            o.path,
            t.as_secs_f64() * 1e3,
            select.as_secs_f64() * 1e3,
            if n == 1 { "" } else { "s" }
        );
    }
    drop(json);
    let copied = time(rounds, || {
        let json: Json = serde_json::from_slice(&bytes).unwrap();
        outputs
            .iter()
            .take(4)
            .map(|o| apply(o, &json).unwrap())
            .collect::<Vec<_>>()
    });
    println!(
        "parse + the 4 outputs, each copied (before issue 15)\t{:.1} ms\t({:.2} × parse)",
        copied.as_secs_f64() * 1e3,
        copied.as_secs_f64() / parse.as_secs_f64()
    );
    let all = time(rounds, || step(&bytes));
    println!(
        "parse + the 4 direct/wildcard outputs\t{:.1} ms\t({:.2} × parse)",
        all.as_secs_f64() * 1e3,
        all.as_secs_f64() / parse.as_secs_f64()
    );
    let templated = time(rounds, || {
        let values = step(&bytes);
        values
            .values
            .iter()
            .map(|(_, v)| v.to_template())
            .collect::<Vec<_>>()
    });
    println!(
        "parse + the 4 outputs + template values\t{:.1} ms\t({:.2} × parse)",
        templated.as_secs_f64() * 1e3,
        templated.as_secs_f64() / parse.as_secs_f64()
    );
}
