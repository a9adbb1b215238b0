//! Runs a validated job: steps in order, loop items concurrently, results as records.
//!
//! A step returns what happened ([`StepRecord`]: per item the outputs, files, polls and
//! errors); later steps and the reports read those records. Failure rules:
//! - a failed check fails its item and the run (exit 1), but the run goes on with what it can;
//! - a looped step's failed items are left out of the list later steps loop over;
//! - a step that does not loop and fails other than by a check ends the run: later steps are
//!   skipped, since they may depend on its outputs;
//! - state is written only when every step and item succeeded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use minijinja::Value;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::ExitCode;
use crate::extract;
use crate::fsio;
use crate::job::model::{Body, Job, JsonTemplate, Loop, LoopRecord, SaveWhat, Step};
use crate::net::{FileOptions, Http, HttpError, Request, RequestBody};
use crate::template::{EnvVars, to_json, to_value};

/// What went wrong in a step or item.
#[derive(Debug, Clone, Serialize)]
pub struct StepError {
    /// The exit code this failure maps to.
    pub code: ExitCode,
    /// What happened, and what to do.
    pub message: String,
    /// Whether it is a failed check (as opposed to an error).
    pub check: bool,
    /// Whether no token could be had: items not yet started are skipped.
    #[serde(skip)]
    pub token: bool,
}

impl StepError {
    pub(crate) fn new(code: ExitCode, message: impl Into<String>) -> Self {
        StepError {
            code,
            message: crate::secret::redact(&message.into()),
            check: false,
            token: false,
        }
    }
    /// A task that panicked: a bug in dap-run, exit 70.
    fn internal(what: &str, e: &tokio::task::JoinError) -> Self {
        StepError::new(
            ExitCode::Internal,
            format!(
                "internal error (a bug in dap-run): {what} failed: {e}\n  = help: please report it with the log of this run"
            ),
        )
    }
    fn check(message: impl Into<String>) -> Self {
        StepError {
            code: ExitCode::CheckFailed,
            message: crate::secret::redact(&message.into()),
            check: true,
            token: false,
        }
    }
}

impl From<HttpError> for StepError {
    fn from(e: HttpError) -> Self {
        StepError {
            token: matches!(e, HttpError::Token { .. } | HttpError::Unauthorized { .. }),
            ..StepError::new(e.exit_code(), e.to_string())
        }
    }
}

/// A file a step wrote.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    /// Path (under the output folder, as shown to users).
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
}

/// One execution of a step: the step itself, or one loop item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemRecord {
    /// Position in the loop.
    pub index: Option<usize>,
    /// Short name for messages (the item's value or first field).
    pub label: Option<String>,
    /// Outputs extracted.
    pub outputs: serde_json::Map<String, Json>,
    /// Files written.
    pub files: Vec<FileRecord>,
    /// Requests of this item that got an answer (polls included).
    pub requests: u32,
    /// Duration.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// The failure, if any.
    pub error: Option<StepError>,
    /// Not run, because authentication had already failed.
    pub skipped: bool,
    /// Not run, because the step's `when` did not hold for it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub when_false: bool,
    /// The DAP query the item's request started: snapshot, or incremental since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<crate::query::QueryRecord>,
    /// The loop record later steps see (successful items only).
    #[serde(skip)]
    record: Value,
    /// The outputs as template values, converted once and shared (not copied) by the item's
    /// own templates, its loop record and a later step's scope.
    #[serde(skip)]
    values: Vec<(String, Value)>,
    /// State updates to apply if the run succeeds.
    #[serde(skip)]
    persist: Vec<(Vec<String>, Json)>,
}

impl ItemRecord {
    /// Whether the item has no state updates.
    pub fn persist_is_empty(&self) -> bool {
        self.persist.is_empty()
    }
}

/// What a step did.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// Whether it looped.
    pub looped: bool,
    /// Skipped because an earlier step failed.
    pub skipped: bool,
    /// One entry, or one per loop item.
    pub items: Vec<ItemRecord>,
    /// The step's own failure (e.g. its loop list could not be evaluated).
    pub error: Option<StepError>,
    /// Labels of the items this loop did not run because they failed (or were dropped) in the
    /// earlier looped step it goes over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Duration.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
}

impl StepRecord {
    /// Every failure in the step.
    pub fn errors(&self) -> impl Iterator<Item = &StepError> {
        self.error
            .iter()
            .chain(self.items.iter().filter_map(|i| i.error.as_ref()))
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Job name.
    pub job: String,
    /// The run's id and start time (the templates' `run`).
    pub run: crate::template::RunInfo,
    /// Steps in order.
    pub steps: Vec<StepRecord>,
    /// Logins (or InstAccess mints) made.
    pub logins: u64,
    /// Requests sent.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Whether the state file was written.
    pub state_written: bool,
    /// Why the state file could not be written after a successful run (exit 5; the summary
    /// and reports are written all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_error: Option<StepError>,
    /// Duration.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl RunReport {
    /// Every failure, in step order.
    pub fn errors(&self) -> impl Iterator<Item = (&StepRecord, Option<&ItemRecord>, &StepError)> {
        self.steps.iter().flat_map(|s| {
            s.error.iter().map(move |e| (s, None, e)).chain(
                s.items
                    .iter()
                    .filter_map(move |i| i.error.as_ref().map(|e| (s, Some(i), e))),
            )
        })
    }

    /// The exit code: the most serious failure decides.
    pub fn exit_code(&self) -> ExitCode {
        self.errors()
            .map(|(_, _, e)| e.code)
            .chain(self.state_error.as_ref().map(|e| e.code))
            .max_by_key(|c| c.severity())
            .unwrap_or(ExitCode::Success)
    }

    /// Files written and their total size.
    pub fn files(&self) -> (usize, u64) {
        let files = self
            .steps
            .iter()
            .flat_map(|s| s.items.iter())
            .flat_map(|i| i.files.iter());
        files.fold((0, 0), |(n, b), f| (n + 1, b + f.bytes))
    }
}

/// Settings of one run that do not come from the job file.
pub struct RunContext {
    /// The HTTP layer (with its token source).
    pub http: Arc<Http>,
    /// State read from the last successful run, merged over the job's defaults.
    pub state: serde_json::Map<String, Json>,
    /// Progress display.
    pub progress: crate::progress::Progress,
    /// The replica database of `load` steps, resolved before the run.
    pub database: Option<crate::load::Target>,
}

struct Shared {
    job: Arc<Job>,
    http: Arc<Http>,
    progress: crate::progress::Progress,
    database: Option<crate::load::Target>,
    /// Set when authentication failed for good: items not yet started are skipped, so one
    /// failed login is one error, not one per loop item.
    auth_failed: std::sync::atomic::AtomicBool,
}

/// Runs every step of `job`. Files are written; state is returned, not written (the caller
/// writes it when the report shows success).
pub async fn run(job: Arc<Job>, ctx: RunContext) -> (RunReport, serde_json::Map<String, Json>) {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        job: job.clone(),
        http: ctx.http.clone(),
        progress: ctx.progress.clone(),
        database: ctx.database.clone(),
        auth_failed: Default::default(),
    });
    let run_info = crate::template::RunInfo::now();
    tracing::info!(run = %run_info.id, "run `{}` started", run_info.id);
    let mut scope = base_scope(&job, &ctx.state, &run_info);

    let mut steps = Vec::new();
    let mut stop = false;
    let mut persist: Vec<(Vec<String>, Json)> = Vec::new();
    for (i, step) in job.steps.iter().enumerate() {
        if stop {
            steps.push(StepRecord {
                id: step.id.clone(),
                looped: step.for_each.is_some(),
                skipped: true,
                items: vec![],
                error: None,
                dropped: vec![],
                duration: Duration::ZERO,
            });
            continue;
        }
        tracing::info!(step = %step.id, "step {}/{} `{}`", i + 1, job.steps.len(), step.id);
        let mut record = run_step(&shared, i, &scope).await;
        if let Some(source) = step.for_each.as_ref().and_then(|l| {
            steps
                .iter()
                .find(|s: &&StepRecord| s.looped && s.id == l.over.source.trim())
        }) {
            record.dropped = source
                .items
                .iter()
                .filter(|i| i.error.is_some() || i.skipped)
                .map(|i| {
                    i.label
                        .clone()
                        .or(i.index.map(|n| n.to_string()))
                        .unwrap_or_default()
                })
                .chain(source.dropped.iter().cloned())
                .collect();
        }
        if shared
            .auth_failed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            stop = true;
        }
        match &step.for_each {
            Some(_) => {
                let items: Vec<Value> = record
                    .items
                    .iter()
                    .filter(|i| i.error.is_none() && !i.skipped && !i.when_false)
                    .map(|i| i.record.clone())
                    .collect();
                scope.insert(step.id.clone(), Value::from(items));
                if record.error.is_some() {
                    stop = true;
                }
            }
            None => {
                if let Some(item) = record.items.first() {
                    for (k, v) in &item.values {
                        scope.insert(k.clone(), v.clone());
                    }
                    if item.error.as_ref().is_some_and(|e| !e.check) {
                        stop = true;
                    }
                } else {
                    stop = true;
                }
            }
        }
        for item in record
            .items
            .iter()
            .filter(|i| i.error.is_none() && !i.skipped && !i.when_false)
        {
            persist.extend(item.persist.iter().cloned());
        }
        for e in record.errors() {
            tracing::error!(step = %step.id, "{}", e.message);
        }
        steps.push(record);
    }

    let mut state = ctx.state;
    for (path, value) in persist {
        set_path(&mut state, &path, value);
    }
    let http = &ctx.http;
    let report = RunReport {
        job: job.name.clone(),
        run: run_info,
        steps,
        logins: http.tokens().logins(),
        requests: http
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        retries: http
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        state_written: false,
        state_error: None,
        duration: started.elapsed(),
    };
    (report, state)
}

/// What every step sees before any has run: `[vars]`, `env`, `state` and `job`.
pub fn base_scope(
    job: &Job,
    state: &serde_json::Map<String, Json>,
    run: &crate::template::RunInfo,
) -> BTreeMap<String, Value> {
    let mut scope: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in &job.vars {
        scope.insert(k.clone(), to_value(v));
    }
    scope.insert("env".into(), Value::from_object(EnvVars));
    scope.insert(
        "state".into(),
        crate::template::StateView::root(state, &job.state_levels),
    );
    scope.insert(
        "job".into(),
        to_value(&serde_json::json!({ "name": job.name })),
    );
    scope.insert(
        "run".into(),
        to_value(&serde_json::to_value(run).unwrap_or_default()),
    );
    scope
}

/// The elements a loop runs over, or why there are none to have.
pub fn loop_items(job: &Job, step: &Step, l: &Loop, ctx: &Value) -> Result<Vec<Value>, String> {
    let list = job.templates.eval(&l.over, ctx).map_err(|e| {
        format!(
            "step `{}`: cannot evaluate `for_each = \"{}\"`: {}",
            step.id,
            l.over.source,
            template_error(&e)
        )
    })?;
    match (list.kind(), list.try_iter()) {
        (minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable, Ok(iter)) => {
            Ok(iter.collect())
        }
        _ => Err(format!(
            "step `{}`: `for_each = \"{}\"` is not a list (it is {})",
            step.id,
            l.over.source,
            short_json(&to_json(&list))
        )),
    }
}

fn set_path(map: &mut serde_json::Map<String, Json>, path: &[String], value: Json) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert(first.clone(), value);
        return;
    }
    let entry = map
        .entry(first.clone())
        .or_insert_with(|| Json::Object(Default::default()));
    if !entry.is_object() {
        *entry = Json::Object(Default::default());
    }
    if let Json::Object(inner) = entry {
        set_path(inner, rest, value);
    }
}

async fn run_step(
    shared: &Arc<Shared>,
    index: usize,
    scope: &BTreeMap<String, Value>,
) -> StepRecord {
    let started = Instant::now();
    let step = &shared.job.steps[index];
    let refuse = |violations: Vec<String>| StepRecord {
        id: step.id.clone(),
        looped: step.for_each.is_some(),
        skipped: false,
        items: vec![],
        error: Some(StepError::new(
            ExitCode::CheckFailed,
            format!(
                "step `{}`: refusing to take snapshots of tables that must run incrementally; nothing was sent\n{}\n  = help: fix the state lookup in the request's `since`; to take new snapshots on purpose, delete the state file",
                step.id,
                violations
                    .iter()
                    .map(|v| format!("  - {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        )),
        dropped: vec![],
        duration: started.elapsed(),
    };
    let Some(l) = &step.for_each else {
        let violations = incremental_violations(shared, step, scope, &[(None, None)]);
        if !violations.is_empty() {
            return refuse(violations);
        }
        let item = run_item(shared.clone(), index, Arc::new(scope.clone()), None, None).await;
        return StepRecord {
            id: step.id.clone(),
            looped: false,
            skipped: false,
            items: vec![item],
            error: None,
            dropped: vec![],
            duration: started.elapsed(),
        };
    };
    let ctx = Value::from(scope.clone());
    let items = match loop_items(&shared.job, step, l, &ctx) {
        Ok(items) => items,
        Err(message) => {
            return StepRecord {
                id: step.id.clone(),
                looped: true,
                skipped: false,
                items: vec![],
                error: Some(StepError::new(ExitCode::CheckFailed, message)),
                dropped: vec![],
                duration: started.elapsed(),
            };
        }
    };
    if step.incremental.is_some() {
        let all: Vec<LoopItem> = items
            .iter()
            .enumerate()
            .map(|(i, v)| (Some((l.var.clone(), v.clone())), Some(i)))
            .collect();
        let violations = incremental_violations(shared, step, scope, &all);
        if !violations.is_empty() {
            return refuse(violations);
        }
    }
    let bar = shared.progress.loop_bar(&step.id, items.len() as u64);
    let base = Arc::new(scope.clone());
    let results: Vec<ItemRecord> = futures_util::stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| {
            let shared = shared.clone();
            let base = base.clone();
            let var = l.var.clone();
            let bar = bar.clone();
            tokio::spawn(async move {
                let r = run_item(shared, index, base, Some((var, item)), Some(i)).await;
                bar.inc(1);
                r
            })
        })
        .buffered(l.concurrency)
        .map(|joined| {
            joined.unwrap_or_else(|e| ItemRecord {
                index: None,
                label: None,
                outputs: Default::default(),
                files: vec![],
                requests: 0,
                duration: Duration::ZERO,
                error: Some(StepError::internal("a loop task", &e)),
                record: Value::UNDEFINED,
                values: vec![],
                persist: vec![],
                skipped: false,
                when_false: false,
                query: None,
            })
        })
        .collect()
        .await;
    // Leave the finished bar on screen: it is the step's line in the terminal's history.
    bar.finish();
    StepRecord {
        id: step.id.clone(),
        looped: true,
        skipped: false,
        items: results,
        error: None,
        dropped: vec![],
        duration: started.elapsed(),
    }
}

fn label_of(item: &Value) -> Option<String> {
    use minijinja::value::ValueKind;
    match item.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => Some(item.to_string()),
        ValueKind::Map => {
            let first = item.try_iter().ok()?.next()?;
            let v = item.get_item(&first).ok()?;
            match v.kind() {
                ValueKind::Map | ValueKind::Seq => None,
                _ => label_of(&v),
            }
        }
        _ => None,
    }
}

fn short_json(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn template_error(e: &minijinja::Error) -> String {
    let mut msg = e
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| e.kind().to_string());
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        msg = format!("{msg} (a value is missing at run time)");
    }
    msg
}

/// A loop item (its variable and value) and its position; `(None, None)` for a step that does
/// not loop.
type LoopItem = (Option<(String, Value)>, Option<usize>);

/// What a loop item adds to the scope: its loop variable and `index`.
fn item_extra(item: Option<&(String, Value)>, pos: Option<usize>) -> BTreeMap<String, Value> {
    let mut extra = BTreeMap::new();
    if let Some((var, v)) = item {
        extra.insert(var.clone(), v.clone());
        extra.insert("index".to_owned(), Value::from(pos.unwrap_or(0)));
    }
    extra
}

/// A step's `incremental` rule, checked for every item before any of them sends: where the
/// expression holds, the request must be a DAP query with a `since`. Returns the violations.
fn incremental_violations(
    shared: &Shared,
    step: &Step,
    scope: &BTreeMap<String, Value>,
    items: &[LoopItem],
) -> Vec<String> {
    let Some(rule) = &step.incremental else {
        return vec![];
    };
    let job = &shared.job;
    let mut out = Vec::new();
    for (item, pos) in items {
        let mut m = scope.clone();
        m.extend(item_extra(item.as_ref(), *pos));
        let ctx = Value::from(m);
        let label = item
            .as_ref()
            .and_then(|(_, v)| label_of(v))
            .map(|l| format!("item `{l}`: "))
            .unwrap_or_default();
        if let Some(w) = &step.when
            && !job.templates.eval(w, &ctx).is_ok_and(|v| v.is_true())
        {
            continue;
        }
        let required = match job.templates.eval(rule, &ctx) {
            Ok(v) => v.is_true(),
            Err(e) => {
                out.push(format!(
                    "{label}cannot evaluate `incremental = \"{}\"`: {}",
                    rule.source,
                    template_error(&e)
                ));
                continue;
            }
        };
        if !required {
            continue;
        }
        // A request that cannot be rendered fails its own item later, with its own message.
        let Ok(request) = build_request(job, step, &ctx, shared.http.gateway()) else {
            continue;
        };
        match crate::query::detect(&request, shared.http.gateway()) {
            Some(q) if q.kind == crate::query::QueryKind::Incremental => {}
            Some(q) => out.push(format!(
                "{label}`{}` holds, but the request would take a snapshot of {}.{}: its body has no `since`",
                rule.source, q.namespace, q.table
            )),
            None => out.push(format!(
                "{label}`{}` holds, but the request is not a DAP query (`POST /dap/query/NAMESPACE/table/TABLE/data`)",
                rule.source
            )),
        }
    }
    out
}

/// Everything one item needs to render its templates.
struct ItemScope {
    base: Arc<BTreeMap<String, Value>>,
    extra: BTreeMap<String, Value>,
}

impl ItemScope {
    fn ctx(&self) -> Value {
        let mut m = (*self.base).clone();
        m.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Value::from(m)
    }
}

async fn run_item(
    shared: Arc<Shared>,
    index: usize,
    base: Arc<BTreeMap<String, Value>>,
    item: Option<(String, Value)>,
    pos: Option<usize>,
) -> ItemRecord {
    let started = Instant::now();
    let step = &shared.job.steps[index];
    let extra = item_extra(item.as_ref(), pos);
    let label = item.as_ref().and_then(|(_, v)| label_of(v));
    let mut rec = ItemRecord {
        index: pos,
        label: label.clone(),
        outputs: Default::default(),
        files: vec![],
        requests: 0,
        duration: Duration::ZERO,
        error: None,
        record: Value::UNDEFINED,
        values: vec![],
        persist: vec![],
        skipped: false,
        when_false: false,
        query: None,
    };
    let mut scope = ItemScope { base, extra };
    let where_ = match &label {
        Some(l) => format!("step `{}` (item `{l}`)", step.id),
        None => match pos {
            Some(p) => format!("step `{}` (item {p})", step.id),
            None => format!("step `{}`", step.id),
        },
    };
    if shared
        .auth_failed
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        rec.skipped = true;
        return rec;
    }
    let run_it = match &step.when {
        None => Ok(true),
        Some(w) => shared
            .job
            .templates
            .eval(w, &scope.ctx())
            .map(|v| v.is_true())
            .map_err(|e| {
                StepError::new(
                    ExitCode::CheckFailed,
                    format!(
                        "{where_}: cannot evaluate `when = \"{}\"`: {}",
                        w.source,
                        template_error(&e)
                    ),
                )
            }),
    };
    match run_it {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(step = %step.id, "{where_}: skipped: `when` does not hold");
            rec.when_false = true;
            // A step that does not loop still defines its outputs for later steps: as none.
            for name in step
                .outputs
                .iter()
                .map(|o| &o.name)
                .chain(step.lets.iter().map(|(n, _)| n))
            {
                rec.outputs.insert(name.clone(), Json::Null);
                rec.values.push((name.clone(), Value::from(())));
            }
            rec.duration = started.elapsed();
            return rec;
        }
        Err(e) => {
            rec.error = Some(e);
            rec.duration = started.elapsed();
            return rec;
        }
    }
    if let Err(e) = item_body(&shared, step, &mut scope, &mut rec, &where_).await {
        if e.code == ExitCode::Auth || e.token {
            shared
                .auth_failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        rec.error = Some(StepError {
            message: crate::secret::redact(&format!("{where_}: {}", e.message)),
            ..e
        });
    }
    // The record later loops see (`LoopRecord`, decided by validation): the item's own fields
    // or the item under its name, then `index`, then the outputs. Template values share their
    // contents, so this copies none of them.
    let shape = step.for_each.as_ref().map(|l| l.record);
    let mut record: Vec<(Value, Value)> = Vec::new();
    if let Some((var, v)) = &item {
        match (shape, v.kind(), v.try_iter()) {
            (Some(LoopRecord::Fields), minijinja::value::ValueKind::Map, Ok(keys)) => {
                record.extend(keys.map(|k| {
                    let field = v.get_item(&k).unwrap_or_default();
                    (k, field)
                }));
            }
            _ => record.push((Value::from(var.as_str()), v.clone())),
        }
    }
    if let Some(p) = pos
        && !record.iter().any(|(k, _)| k.as_str() == Some("index"))
    {
        record.push((Value::from("index"), Value::from(p)));
    }
    record.extend(
        rec.values
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), v.clone())),
    );
    rec.record = Value::from_pairs(record);
    rec.duration = started.elapsed();
    rec
}

/// Sends the step's request (polling it when the step polls) and parses what the outputs and
/// downloads need.
/// Whether a step's response is needed only to be saved: no outputs, no polling, no download,
/// and every save is of the body. Such a body is streamed to its file.
fn body_only_saved(step: &Step) -> bool {
    step.outputs.is_empty()
        && step.poll.is_none()
        && step.download.is_none()
        && !step.saves.is_empty()
        && step.saves.iter().all(|s| matches!(s.what, SaveWhat::Body))
}

/// Sends the step's request and streams the response body into its save file(s): a temporary
/// file beside the first, renamed into place when complete (copied for any further save of the
/// same body). Memory does not grow with the body, and there is no size limit, as for downloads.
async fn save_streamed(
    shared: &Arc<Shared>,
    step: &Step,
    scope: &ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<(), StepError> {
    let job = &shared.job;
    let http = &shared.http;
    let ctx = scope.ctx();
    let request = build_request(job, step, &ctx, http.gateway())?;
    if let Some(q) = crate::query::detect(&request, http.gateway()) {
        tracing::info!(step = %step.id, query = ?q.kind, since = q.since.as_deref().unwrap_or(""), "{where_}: {}", q.describe());
        rec.query = Some(q);
    }
    // Every path first: a bad one fails the item before anything is sent.
    let mut paths = Vec::with_capacity(step.saves.len());
    for save in &step.saves {
        paths.push(file_path(job, &save.to, &ctx, "save")?.1);
    }
    let local = |path: &std::path::Path, e: std::io::Error| {
        StepError::new(
            ExitCode::LocalIo,
            format!("cannot write `{}`: {e}", path.display()),
        )
    };
    let first = &paths[0];
    let tmp = fsio::temp_beside(first).map_err(|e| local(first, e))?;
    let bar = indicatif::ProgressBar::hidden();
    // The limit of a body read into memory still holds: a save is not a download.
    let options = FileOptions {
        limit: Some(crate::net::MAX_BODY_BYTES),
        ..FileOptions::default()
    };
    let bytes = http
        .fetch_to_file(&request, tmp.path(), options, &bar)
        .await?;
    rec.requests += 1;
    // A server that echoes a secret must not get it into the file.
    let bytes = crate::secret::redact_file(tmp.path(), bytes).map_err(|e| local(first, e))?;
    for path in &paths[1..] {
        let copy = fsio::temp_beside(path).map_err(|e| local(path, e))?;
        std::fs::copy(tmp.path(), copy.path()).map_err(|e| local(path, e))?;
        copy.persist(path).map_err(|e| local(path, e.error))?;
    }
    tmp.persist(first).map_err(|e| local(first, e.error))?;
    for path in paths {
        tracing::info!(step = %step.id, path = %path.display(), bytes, "saved");
        rec.files.push(FileRecord { path, bytes });
    }
    Ok(())
}

async fn send_and_poll(
    shared: &Arc<Shared>,
    step: &Step,
    scope: &ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<(Request, crate::net::Response, Option<Json>), StepError> {
    let job = &shared.job;
    let http = &shared.http;
    let request = build_request(job, step, &scope.ctx(), http.gateway())?;
    if let Some(q) = crate::query::detect(&request, http.gateway()) {
        tracing::info!(step = %step.id, query = ?q.kind, since = q.since.as_deref().unwrap_or(""), "{where_}: {}", q.describe());
        rec.query = Some(q);
    }

    // Send (and poll).
    let (response, json) = match &step.poll {
        None => {
            let r = http.send(&request).await?;
            rec.requests += 1;
            let json = parse_json_if_needed(step, &r.body)?;
            (r, json)
        }
        Some(poll) => {
            let first = Instant::now();
            let deadline = first + poll.timeout;
            let schedule = crate::poll::Schedule::new(poll.min, poll.max);
            let spinner = shared.progress.spinner(where_);
            loop {
                let r = http.send(&request).await?;
                rec.requests += 1;
                let json: Json = serde_json::from_slice(&r.body).map_err(|e| {
                    StepError::new(
                        ExitCode::Gateway,
                        format!(
                            "the answer to {} {} is not JSON: {e}",
                            request.method.as_str(),
                            crate::net::display_url(&request.url)
                        ),
                    )
                })?;
                let mut extra = BTreeMap::new();
                for o in &step.outputs {
                    let v = extract::apply(o, &json).unwrap_or(Json::Null);
                    extra.insert(o.name.clone(), to_value(&v));
                }
                let mut ctx_map = (*scope.base).clone();
                ctx_map.extend(scope.extra.clone());
                ctx_map.extend(extra);
                let done = job
                    .templates
                    .eval(&poll.until, &Value::from(ctx_map))
                    .map_err(|e| {
                        StepError::new(
                            ExitCode::CheckFailed,
                            format!(
                                "cannot evaluate `poll.until = \"{}\"`: {}",
                                poll.until.source,
                                template_error(&e)
                            ),
                        )
                    })?;
                if let Some(s) = json.get("status").and_then(|s| s.as_str()) {
                    spinner.set_message(format!("{where_}: {s}"));
                }
                if done.is_true() {
                    spinner.finish_and_clear();
                    break (r, Some(json));
                }
                // The last poll lands on the deadline rather than giving up one interval early.
                let now = Instant::now();
                if now >= deadline {
                    spinner.finish_and_clear();
                    let status = json
                        .get("status")
                        .map(|s| format!(", last status {s}"))
                        .unwrap_or_default();
                    return Err(StepError::new(
                        ExitCode::Gateway,
                        format!(
                            "`{}` did not hold within the poll timeout of {} ({} polls{status})\n  = help: raise `poll.timeout`, or check the gateway job's progress",
                            poll.until.source,
                            humantime::format_duration(poll.timeout),
                            rec.requests
                        ),
                    ));
                }
                let elapsed = now - first;
                let wait = schedule.interval(elapsed).min(deadline - now);
                tracing::debug!(
                    step = %step.id,
                    "poll {} after {} ms; polling again in {} ms",
                    rec.requests,
                    elapsed.as_millis(),
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
        }
    };
    Ok((request, response, json))
}

async fn item_body(
    shared: &Arc<Shared>,
    step: &Step,
    scope: &mut ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<(), StepError> {
    let job = &shared.job;
    // Send (and poll), unless the step only computes values.
    // A `load` step makes its own requests; its outputs are what the load did.
    // A body that is only saved goes to disk as it arrives, never whole in memory.
    let streamed = step.load.is_none() && step.request.is_some() && body_only_saved(step);
    let sent = match (&step.request, &step.load) {
        (_, Some(_)) => {
            load_item(shared, step, &scope.ctx(), rec).await?;
            None
        }
        (Some(_), None) if streamed => {
            save_streamed(shared, step, scope, rec, where_).await?;
            None
        }
        (Some(_), None) => Some(send_and_poll(shared, step, scope, rec, where_).await?),
        (None, None) => None,
    };
    let (request, response, mut json) = match sent {
        Some((request, response, json)) => (Some(request), Some(response), json),
        None => (None, None, None),
    };

    // The URLs to download, read before the outputs take their values out of the response
    // (a failure is reported after the files, where it always was).
    let urls = match (&step.download, &json) {
        (Some(d), Some(json)) => Some(download_urls(d, json)),
        _ => None,
    };

    // Outputs: moved out of the response where nothing else needs them, not copied.
    if let Some(json) = &mut json {
        match extract::outputs(&step.outputs, json) {
            Ok(outputs) => {
                for (name, mut v) in outputs {
                    // A server that echoes the token must not get it into files or reports.
                    crate::secret::redact_json_in_place(&mut v);
                    rec.outputs.insert(name, v);
                }
            }
            Err(e) => {
                return Err(StepError::new(
                    ExitCode::CheckFailed,
                    format!(
                        "output `{}`: JSONPath `{}` matched nothing in the response {}\n  = help: check the path, or mark the output `optional = true`",
                        e.name,
                        e.path,
                        short_json(json)
                    ),
                ));
            }
        }
    }
    drop(json);
    for (k, v) in &rec.outputs {
        let v = to_value(v);
        rec.values.push((k.clone(), v.clone()));
        scope.extra.insert(k.clone(), v);
    }
    // `let` values see the outputs; they join them (records, reports, later steps).
    if !step.lets.is_empty() {
        let ctx = scope.ctx();
        let mut values = Vec::new();
        for (name, t) in &step.lets {
            let v = render_json(job, t, &ctx)?.unwrap_or(Json::Null);
            values.push((name.clone(), crate::secret::redact_json(v)));
        }
        for (name, v) in values {
            tracing::debug!(step = %step.id, "{where_}: let {name} = {}", short_json(&v));
            let value = to_value(&v);
            rec.values.push((name.clone(), value.clone()));
            scope.extra.insert(name.clone(), value);
            rec.outputs.insert(name, v);
        }
    }
    let ctx = scope.ctx();

    // Files.
    for save in &step.saves {
        if streamed && matches!(save.what, SaveWhat::Body) {
            continue;
        }
        let (_, path) = file_path(job, &save.to, &ctx, "save")?;
        let bytes: Vec<u8> = match &save.what {
            SaveWhat::Body => {
                let body = response.as_ref().map_or(&[][..], |r| &r.body[..]);
                crate::secret::redact_data(&String::from_utf8_lossy(body)).into_bytes()
            }
            SaveWhat::Output(name) => {
                let v = rec.outputs.get(name).unwrap_or(&Json::Null);
                let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
                s.push('\n');
                s.into_bytes()
            }
        };
        fsio::write_atomic(&path, &bytes).map_err(|e| {
            StepError::new(
                ExitCode::LocalIo,
                format!("cannot write `{}`: {e}", path.display()),
            )
        })?;
        tracing::info!(step = %step.id, path = %path.display(), bytes = bytes.len(), "saved");
        rec.files.push(FileRecord {
            path,
            bytes: bytes.len() as u64,
        });
    }

    if let (Some(d), Some(urls), Some(request)) = (&step.download, urls, &request) {
        download_all(shared, step, d, urls?, request, &ctx, rec).await?;
    }

    // Checks.
    let mut failures = Vec::new();
    for check in &step.checks {
        let result = job.templates.eval(&check.that, &ctx).map_err(|e| {
            StepError::new(
                ExitCode::CheckFailed,
                format!(
                    "cannot evaluate check `{}`: {}",
                    check.that.source,
                    template_error(&e)
                ),
            )
        })?;
        if result.is_true() {
            continue;
        }
        let mut msg = match &check.message {
            Some(m) => match job.templates.render(m, &ctx) {
                Ok(s) => format!("check failed: {s}"),
                Err(_) => format!("check failed: `{}`", check.that.source),
            },
            None => format!("check failed: `{}`", check.that.source),
        };
        for var in job.templates.expr_variables(&check.that) {
            let first = var.split('.').next().unwrap_or(&var);
            if matches!(first, "env") {
                continue;
            }
            let mut v = ctx.get_attr(first).unwrap_or_default();
            for part in var.split('.').skip(1) {
                v = v.get_attr(part).unwrap_or_default();
            }
            msg.push_str(&format!("\n  = {var} = {}", short_json(&to_json(&v))));
        }
        failures.push(msg);
    }
    if !failures.is_empty() {
        return Err(StepError::check(failures.join("\n")));
    }

    // State for the next run.
    for p in &step.persist {
        let mut key = Vec::new();
        for t in &p.key {
            key.push(job.templates.render(t, &ctx).map_err(|e| {
                StepError::new(
                    ExitCode::CheckFailed,
                    format!(
                        "cannot render persist key `{}`: {}",
                        p.key_source,
                        template_error(&e)
                    ),
                )
            })?);
        }
        let value = render_json(job, &p.value, &ctx)?.unwrap_or(Json::Null);
        rec.persist.push((key, value));
    }
    Ok(())
}

/// A `load` step's item: one table into the replica (see [`crate::load::replicate`]).
async fn load_item(
    shared: &Arc<Shared>,
    step: &Step,
    ctx: &Value,
    rec: &mut ItemRecord,
) -> Result<Json, StepError> {
    let job = &shared.job;
    let Some(l) = &step.load else {
        return Ok(Json::Null);
    };
    let render = |t: &crate::template::Tmpl, what: &str| {
        job.templates.render(t, ctx).map_err(|e| {
            StepError::new(
                ExitCode::CheckFailed,
                format!(
                    "cannot render `load.{what}` `{}`: {}",
                    t.source,
                    template_error(&e)
                ),
            )
        })
    };
    let namespace = render(&l.namespace, "namespace")?;
    let table = render(&l.table, "table")?;
    let Some(target) = &shared.database else {
        return Err(StepError::new(
            ExitCode::CheckFailed,
            "internal error (a bug in dap-run): no database for a load step",
        ));
    };
    let loaded = crate::load::replicate::run(crate::load::replicate::Table {
        http: &shared.http,
        target,
        output_dir: &job.output_dir,
        namespace,
        table,
        step_id: &step.id,
    })
    .await?;
    rec.requests += loaded.requests;
    rec.query = Some(crate::query::QueryRecord {
        namespace: loaded.namespace.clone(),
        table: loaded.table.clone(),
        kind: if loaded.since.is_some() {
            crate::query::QueryKind::Incremental
        } else {
            crate::query::QueryKind::Snapshot
        },
        since: loaded.since.clone(),
    });
    for f in &loaded.files {
        let bytes = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        rec.files.push(FileRecord {
            path: f.clone(),
            bytes,
        });
    }
    let json = serde_json::to_value(&loaded).unwrap_or(Json::Null);
    if let Json::Object(m) = &json {
        rec.outputs.extend(m.clone());
    }
    Ok(json)
}

fn parse_json_if_needed(step: &Step, body: &[u8]) -> Result<Option<Json>, StepError> {
    let needed = !step.outputs.is_empty() || step.download.is_some();
    match serde_json::from_slice::<Json>(body) {
        Ok(j) => Ok(Some(j)),
        Err(_) if !needed => Ok(None),
        Err(e) => {
            let excerpt: String = String::from_utf8_lossy(body)
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect();
            Err(StepError::new(
                ExitCode::Gateway,
                format!("the response is not JSON ({e}); it starts with `{excerpt}`"),
            ))
        }
    }
}

async fn download_all(
    shared: &Arc<Shared>,
    step: &Step,
    d: &crate::job::model::Download,
    urls: Vec<reqwest::Url>,
    request: &Request,
    ctx: &Value,
    rec: &mut ItemRecord,
) -> Result<(), StepError> {
    let job = &shared.job;
    // Render every target first: a bad path fails the item before anything is fetched.
    let mut targets = Vec::with_capacity(urls.len());
    for part in 0..urls.len() {
        let ctx = with_var(ctx, "part", Value::from(part));
        let (rel, path) = file_path(job, &d.to, &ctx, "download")?;
        if targets.contains(&path) {
            return Err(StepError::new(
                ExitCode::CheckFailed,
                format!(
                    "download path `{rel}` is the same for two URLs\n  = help: use `part` in `download.to`, e.g. `part-{{{{ part | pad(5) }}}}.jsonl.gz`"
                ),
            ));
        }
        targets.push(path);
    }
    let urls = Arc::new(tokio::sync::Mutex::new(urls));
    let results: Vec<Result<FileRecord, StepError>> =
        futures_util::stream::iter(targets.into_iter().enumerate())
            .map(|(part, path)| {
                let shared = shared.clone();
                let urls = urls.clone();
                let request = request.clone();
                let d = d.clone();
                let step_id = step.id.clone();
                tokio::spawn(async move {
                    download_one(&shared, &step_id, &d, &request, &urls, part, path).await
                })
            })
            .buffered(d.concurrency)
            .map(|j| j.unwrap_or_else(|e| Err(StepError::internal("a download task", &e))))
            .collect()
            .await;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(f) => rec.files.push(f),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn download_urls(
    d: &crate::job::model::Download,
    json: &Json,
) -> Result<Vec<reqwest::Url>, StepError> {
    let found = extract::select(&d.query, json);
    if found.is_empty() {
        return Err(StepError::new(
            ExitCode::Gateway,
            format!(
                "download: JSONPath `{}` found no URLs in the response {}",
                d.urls,
                short_json(json)
            ),
        ));
    }
    found
        .into_iter()
        .map(|v| {
            let s = v.as_str().ok_or_else(|| {
                StepError::new(
                    ExitCode::Gateway,
                    format!(
                        "download: `{}` selected {}, not a URL string",
                        d.urls,
                        short_json(v)
                    ),
                )
            })?;
            let url = reqwest::Url::parse(s).map_err(|e| {
                StepError::new(
                    ExitCode::Gateway,
                    format!(
                        "download: `{}` is not a URL: {e}",
                        crate::net::display_url_str(s)
                    ),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(StepError::new(
                    ExitCode::Gateway,
                    format!(
                        "download: `{}` is not an http(s) URL",
                        crate::net::display_url(&url)
                    ),
                ));
            }
            Ok(url)
        })
        .collect()
}

/// Downloads one URL to a temporary file beside `path`, then renames it into place. A 403
/// from the store (an expired pre-signed URL) gets fresh URLs from the step's request, once.
async fn download_one(
    shared: &Shared,
    step_id: &str,
    d: &crate::job::model::Download,
    request: &Request,
    urls: &tokio::sync::Mutex<Vec<reqwest::Url>>,
    part: usize,
    path: PathBuf,
) -> Result<FileRecord, StepError> {
    let http = &shared.http;
    let tmp = fsio::temp_beside(&path).map_err(|e| {
        StepError::new(
            ExitCode::LocalIo,
            format!("cannot create a file beside `{}`: {e}", path.display()),
        )
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bar = crate::progress::Cleared(shared.progress.download_bar(&format!("{step_id} {name}")));
    let mut refreshed = false;
    loop {
        let url = urls.lock().await[part].clone();
        tracing::debug!(step = %step_id, part, url = %crate::net::display_url(&url), "downloading");
        let options = FileOptions {
            decompress: d.decompress,
            max_ratio: d.max_ratio,
            limit: None,
        };
        match http.download(&url, tmp.path(), options, &bar.0).await {
            Ok(bytes) => {
                tmp.persist(&path).map_err(|e| {
                    StepError::new(
                        ExitCode::LocalIo,
                        format!("cannot write `{}`: {}", path.display(), e.error),
                    )
                })?;
                tracing::info!(step = %step_id, path = %path.display(), bytes, "downloaded");
                return Ok(FileRecord { path, bytes });
            }
            Err(e) if e.refused_status() == Some(reqwest::StatusCode::FORBIDDEN) && !refreshed => {
                refreshed = true;
                // Parts of one item expire together: the first to notice asks for fresh URLs
                // while holding the lock; the others then find theirs replaced and just retry.
                let mut guard = urls.lock().await;
                if guard[part] != url {
                    continue;
                }
                tracing::warn!(step = %step_id, part, "the object store refused the URL (expired?); asking the gateway for fresh URLs");
                let r = http.send(request).await?;
                let json: Json = serde_json::from_slice(&r.body).map_err(|e| {
                    StepError::new(
                        ExitCode::Gateway,
                        format!("fresh object URLs: the response is not JSON: {e}"),
                    )
                })?;
                let fresh = download_urls(d, &json)?;
                if fresh.len() == guard.len() {
                    *guard = fresh;
                }
            }
            Err(e) => {
                let mut err = StepError::from(e);
                if err.code == ExitCode::Gateway && refreshed {
                    err.message
                        .push_str("\n  = note: the URL was refreshed once already");
                }
                return Err(err);
            }
        }
    }
}

/// Renders a file path template and places it under the output folder (never outside it).
fn file_path(
    job: &Job,
    to: &crate::template::Tmpl,
    ctx: &Value,
    what: &str,
) -> Result<(String, PathBuf), StepError> {
    let rel = job.templates.render(to, ctx).map_err(|e| {
        StepError::new(
            ExitCode::CheckFailed,
            format!(
                "cannot render the {what} path `{}`: {}",
                to.source,
                template_error(&e)
            ),
        )
    })?;
    let path = fsio::safe_join(&job.output_dir, &rel)
        .map_err(|e| StepError::new(ExitCode::CheckFailed, e.to_string()))?;
    Ok((rel, path))
}

fn with_var(ctx: &Value, name: &str, value: Value) -> Value {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    if let Ok(keys) = ctx.try_iter() {
        for k in keys {
            if let Some(key) = k.as_str() {
                m.insert(key.to_owned(), ctx.get_attr(key).unwrap_or_default());
            }
        }
    }
    m.insert(name.to_owned(), value);
    Value::from(m)
}

/// Builds a step's request from its templates.
pub fn build_request(
    job: &Job,
    step: &Step,
    ctx: &Value,
    gateway: &reqwest::Url,
) -> Result<Request, StepError> {
    let render = |t: &crate::template::Tmpl, what: &str| {
        job.templates.render(t, ctx).map_err(|e| {
            StepError::new(
                ExitCode::CheckFailed,
                format!(
                    "cannot render {what} `{}`: {}",
                    t.source,
                    template_error(&e)
                ),
            )
        })
    };
    let Some((method, target)) = &step.request else {
        return Err(StepError::new(
            ExitCode::CheckFailed,
            format!("step `{}` sends no request", step.id),
        ));
    };
    let target = render(target, "the request path")?;
    let mut url = crate::net::resolve(gateway, &target)
        .map_err(|e| StepError::new(ExitCode::CheckFailed, e.to_string()))?;
    if !step.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, t) in &step.query {
            let v = render(t, "query parameter")?;
            pairs.append_pair(k, &v);
        }
    }
    let mut headers = Vec::new();
    // Default headers are for the gateway; absolute URLs elsewhere get only their own.
    let to_gateway = url.origin() == gateway.origin();
    let defaults = job.default_headers.iter().filter(|_| to_gateway);
    for (k, t) in defaults.chain(step.headers.iter()) {
        headers.push((k.clone(), render(t, "header")?));
    }
    let body = match &step.body {
        Body::None => None,
        Body::Raw(t) => Some(RequestBody::Raw(render(t, "the body")?)),
        Body::Json(j) => Some(RequestBody::Json(
            render_json(job, j, ctx)?.unwrap_or(Json::Null),
        )),
    };
    Ok(Request {
        method: *method,
        url,
        headers,
        body,
    })
}

/// Renders a JSON template; `None` when a lone expression is undefined or none (its key is
/// then left out).
pub fn render_json(job: &Job, t: &JsonTemplate, ctx: &Value) -> Result<Option<Json>, StepError> {
    Ok(match t {
        JsonTemplate::Literal(v) => Some(v.clone()),
        JsonTemplate::Text(t) => Some(Json::String(job.templates.render(t, ctx).map_err(|e| {
            StepError::new(
                ExitCode::CheckFailed,
                format!("cannot render `{}`: {}", t.source, template_error(&e)),
            )
        })?)),
        JsonTemplate::Expr(e) => {
            let v = job.templates.eval(e, ctx).map_err(|err| {
                StepError::new(
                    ExitCode::CheckFailed,
                    format!(
                        "cannot evaluate `{{{{ {} }}}}`: {}",
                        e.source,
                        template_error(&err)
                    ),
                )
            })?;
            if v.is_undefined() || v.is_none() {
                None
            } else {
                Some(to_json(&v))
            }
        }
        JsonTemplate::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.push(render_json(job, i, ctx)?.unwrap_or(Json::Null));
            }
            Some(Json::Array(out))
        }
        JsonTemplate::Object(fields) => {
            let mut out = serde_json::Map::new();
            for (k, v) in fields {
                if let Some(v) = render_json(job, v, ctx)? {
                    out.insert(k.clone(), v);
                }
            }
            Some(Json::Object(out))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_headers_go_only_to_the_gateway() {
        let src = r#"
[defaults]
headers = { "X-Team" = "data" }
[[step]]
id = "here"
get = "/dap/query/canvas/table"
[[step]]
id = "elsewhere"
get = "https://objects.example.com/x"
"#;
        let job =
            crate::job::load_str(std::path::Path::new("j.toml"), src, &Default::default()).unwrap();
        let gateway = reqwest::Url::parse("https://api-gateway.instructure.com").unwrap();
        let ctx = Value::from(BTreeMap::<String, Value>::new());
        let here = build_request(&job, &job.steps[0], &ctx, &gateway).unwrap();
        assert_eq!(here.headers, vec![("X-Team".to_owned(), "data".to_owned())]);
        let elsewhere = build_request(&job, &job.steps[1], &ctx, &gateway).unwrap();
        assert!(elsewhere.headers.is_empty());
    }
}
