//! The oracle of the load tests, computed apart from the loader: the rows a table must hold
//! after its loads (the downloaded TSV objects of every committed load, applied in memory in
//! order: snapshot rows, then `U` upserts and `D` deletes), and the sandbox's own snapshot of a
//! table at a point (its data model). Values are compared as [`normal`] makes them, so each
//! database's way of printing a timestamp or a number compares equal.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use dap_run::load::layout::Layout;
use serde_json::Value as Json;

use super::Workspace;
pub(crate) type Rows = BTreeMap<String, BTreeMap<String, Json>>;

/// The layout of a table as the loader recorded its schema.
pub(crate) fn recorded_layout(schema: &str, ns: &str, table: &str) -> Layout {
    Layout::from_schema(ns, table, &serde_json::from_str(schema).unwrap()).unwrap()
}

/// The expected rows of a table: the objects of every committed load (the database's load
/// history: gateway job ids, snapshot or incremental), applied in order.
pub(crate) fn expected(
    out: &Path,
    ns: &str,
    table: &str,
    layout: &Layout,
    history: &[(String, String)],
) -> Rows {
    let mut rows = Rows::new();
    for (job, load) in history {
        let dir = out.join(ns).join(table).join(job);
        apply_job(&mut rows, &dir, load == "snapshot", layout);
    }
    rows
}

/// The sandbox's own snapshot of a table at `until` (RFC 3339): the oracle.
pub(crate) fn oracle(ws: &Workspace, ns: &str, table: &str, until: &str) -> Rows {
    let at = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    let model = ws.sandbox().data();
    let layout = model.table(ns, table, at).expect("table in the sandbox");
    model
        .snapshot_rows(ns, table, at)
        .iter()
        .map(|r| {
            let j = r.to_json(&layout);
            let mut row = BTreeMap::new();
            row.insert(
                layout.key.name.to_owned(),
                normal(j["key"][layout.key.name].clone()),
            );
            for c in &layout.columns {
                let v = j["value"].get(c.name).cloned().unwrap_or(Json::Null);
                row.insert(c.name.to_owned(), normal(v));
            }
            (row[layout.key.name].to_string(), row)
        })
        .collect()
}

/// One value as the comparison sees it: timestamps without `T`/`Z`, JSON text parsed,
/// numbers as numbers, booleans as booleans.
pub(crate) fn normal(v: Json) -> Json {
    match v {
        Json::String(s) => {
            let b = s.as_bytes();
            if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') {
                let mut t = s.replace('T', " ");
                if t.ends_with('Z') {
                    t.pop();
                }
                if t.contains('.') {
                    t = t.trim_end_matches('0').trim_end_matches('.').to_owned();
                }
                return Json::String(t);
            }
            match serde_json::from_str::<Json>(&s) {
                Ok(j @ (Json::Object(_) | Json::Array(_))) => j,
                _ => Json::String(s),
            }
        }
        Json::Number(n) => Json::from(n.as_f64().unwrap_or(0.0)),
        other => other,
    }
}

fn unescape(f: &str) -> Option<String> {
    if f == "\\N" {
        return None;
    }
    let mut out = String::new();
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    Some(out)
}

/// Applies the `.tsv.gz` objects of one load (a job folder) to `rows`.
/// A job's downloaded objects, in part order.
fn part_files(job_dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(job_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tsv.gz"))
        .collect();
    parts.sort();
    parts
}

/// The `U` and `D` records in a job's objects (a record without `meta.action` is a `U`).
pub(crate) fn actions_in(job_dir: &Path) -> (u64, u64) {
    let (mut u, mut d) = (0, 0);
    for p in part_files(job_dir) {
        let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&p).unwrap(),
        ));
        let mut at = None;
        for (i, line) in r.lines().enumerate() {
            let line = line.unwrap();
            let fields: Vec<&str> = line.split('\t').collect();
            if i == 0 {
                at = fields.iter().position(|h| *h == "meta.action");
                continue;
            }
            match at.map(|a| fields[a]) {
                Some("D") => d += 1,
                _ => u += 1,
            }
        }
    }
    (u, d)
}

fn apply_job(rows: &mut Rows, job_dir: &Path, snapshot: bool, layout: &Layout) {
    if snapshot {
        rows.clear();
    }
    for p in part_files(job_dir) {
        let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&p).unwrap(),
        ));
        let mut header: Vec<String> = vec![];
        for line in r.lines() {
            let line = line.unwrap();
            if header.is_empty() {
                header = line.split('\t').map(str::to_owned).collect();
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let mut m = BTreeMap::new();
            let mut action = "U".to_owned();
            for (h, f) in header.iter().zip(&fields) {
                if h == "meta.action" {
                    action = f.to_string();
                }
                if let Some(name) = h.strip_prefix("key.").or_else(|| h.strip_prefix("value.")) {
                    use dap_run::load::layout::ColType as T;
                    let ty = layout.column(name).map(|c| c.ty.clone()).unwrap_or(T::Text);
                    let v = match unescape(f) {
                        None => Json::Null,
                        Some(s) => match ty {
                            T::Int16 | T::Int32 | T::Int64 | T::Float32 | T::Float64 => {
                                Json::from(s.parse::<f64>().unwrap())
                            }
                            T::Bool => Json::Bool(s == "true" || s == "t"),
                            _ => Json::String(s),
                        },
                    };
                    m.insert(name.to_owned(), normal(v));
                }
            }
            let id = m["id"].to_string();
            if action == "D" {
                rows.remove(&id);
            } else {
                rows.insert(id, m);
            }
        }
    }
}

/// Drops columns the expected rows do not have (e.g. kept after leaving the schema).
fn project(actual: &Rows, expected: &Rows) -> Rows {
    actual
        .iter()
        .map(|(k, row)| {
            let cols = expected.values().next();
            let row = match cols {
                Some(e) => row
                    .iter()
                    .filter(|(c, _)| e.contains_key(*c))
                    .map(|(c, v)| (c.clone(), v.clone()))
                    .collect(),
                None => row.clone(),
            };
            (k.clone(), row)
        })
        .collect()
}

pub(crate) fn assert_rows_eq(actual: &Rows, expected: &Rows, what: &str) {
    let actual = project(actual, expected);
    assert_eq!(actual.len(), expected.len(), "{what}: row count");
    for (k, e) in expected {
        assert_eq!(actual.get(k), Some(e), "{what}: row {k}");
    }
}

/// The keys of `rows`.
pub(crate) fn keys(rows: &Rows) -> std::collections::BTreeSet<String> {
    rows.keys().cloned().collect()
}
