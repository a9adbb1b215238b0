//! The gateway's answers a load acts on, read into types that say what the API documents and
//! refuse anything else, loudly and before any database work uses them: a table's schema
//! (`{"schema", "version"}`), a query job while it runs (`{"id", "status"}`), and a complete
//! job (its id, its objects, its `at` or `since`/`until`, its schema version). No silent
//! defaults: a job without an `objects` list is not a job with no objects (a snapshot would
//! swap in an empty table), a job id is not made up, a point in time is a point in time.

use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What is wrong with an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerProblem {
    /// A member the API documents is missing.
    #[error("it has no `{0}`")]
    Missing(&'static str),
    /// A member of the wrong type.
    #[error("its `{member}` is not {expected}: {found}")]
    Type {
        /// The member.
        member: &'static str,
        /// What it should be.
        expected: &'static str,
        /// What it is, shortened.
        found: String,
    },
    /// A point in time that is not an RFC 3339 time with a zone.
    #[error("its `{member}` is not an RFC 3339 time: `{found}`")]
    Time {
        /// `at`, `since` or `until`.
        member: &'static str,
        /// The text.
        found: String,
    },
    /// An identifier that could not be one (empty, too long, control characters).
    #[error("its `{member}` `{}` cannot be an identifier (1-255 characters, no control character)", found.escape_default())]
    Id {
        /// `id`, `objects[].id`.
        member: &'static str,
        /// The text.
        found: String,
    },
    /// A status the API does not have.
    #[error("its `status` `{0}` is none of waiting, running, complete, failed")]
    Status(String),
    /// An incremental that ends before it starts.
    #[error("its `until` {until} is before its `since` {since}")]
    Backwards {
        /// `since`.
        since: String,
        /// `until`.
        until: String,
    },
    /// An object listed twice.
    #[error("it lists object `{0}` twice")]
    Repeated(String),
}

/// A table's schema as the gateway sent it.
#[derive(Debug, Clone)]
pub struct SchemaAnswer {
    /// The whole answer (its `schema` member is the table's JSON schema).
    pub answer: Json,
    /// The table schema (`schema`).
    pub schema: Json,
    /// Its version.
    pub version: i64,
}

impl SchemaAnswer {
    /// Reads `GET /dap/query/{ns}/table/{t}/schema`'s answer.
    pub fn read(answer: Json) -> Result<SchemaAnswer, AnswerProblem> {
        let schema = match answer.get("schema") {
            Some(s @ Json::Object(_)) => s.clone(),
            Some(other) => return Err(type_error("schema", "an object", other)),
            None => return Err(AnswerProblem::Missing("schema")),
        };
        let version = match answer.get("version") {
            Some(v) => v
                .as_i64()
                .filter(|v| *v >= 0)
                .ok_or_else(|| type_error("version", "a whole number", v))?,
            None => return Err(AnswerProblem::Missing("version")),
        };
        Ok(SchemaAnswer {
            answer,
            schema,
            version,
        })
    }
}

/// Where a query job is.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// `waiting` or `running`: poll it by this id.
    Running {
        /// The job's id.
        id: String,
    },
    /// `complete`.
    Complete(CompleteJob),
    /// `failed`, with the error's type and message.
    Failed {
        /// `error.type`.
        kind: String,
        /// `error.message`.
        message: String,
    },
}

/// A complete query job.
#[derive(Debug, Clone, PartialEq)]
pub struct CompleteJob {
    /// Its id.
    pub id: String,
    /// Its objects' ids, in order.
    pub objects: Vec<String>,
    /// The point the result reaches: an incremental's `until`, a snapshot's `at`.
    pub until: String,
    /// The schema version of its objects, when it says.
    pub schema_version: Option<i64>,
}

/// Reads a query job's answer (to the query, or to a poll).
pub fn job(answer: &Json) -> Result<JobState, AnswerProblem> {
    let status = match answer.get("status") {
        Some(Json::String(s)) => s.as_str(),
        Some(other) => return Err(type_error("status", "a string", other)),
        None => return Err(AnswerProblem::Missing("status")),
    };
    match status {
        "waiting" | "running" => Ok(JobState::Running {
            id: id(answer, "id")?,
        }),
        "failed" => {
            let err = answer.get("error").cloned().unwrap_or(Json::Null);
            let text = |k: &str| err.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
            Ok(JobState::Failed {
                kind: text("type"),
                message: text("message"),
            })
        }
        "complete" => complete(answer).map(JobState::Complete),
        other => Err(AnswerProblem::Status(other.to_owned())),
    }
}

fn complete(answer: &Json) -> Result<CompleteJob, AnswerProblem> {
    let job_id = id(answer, "id")?;
    let list = match answer.get("objects") {
        Some(Json::Array(a)) => a,
        Some(other) => return Err(type_error("objects", "a list", other)),
        None => return Err(AnswerProblem::Missing("objects")),
    };
    let mut objects: Vec<String> = Vec::with_capacity(list.len());
    for o in list {
        let oid = id(o, "objects[].id")?;
        if objects.contains(&oid) {
            return Err(AnswerProblem::Repeated(oid));
        }
        objects.push(oid);
    }
    let at = point(answer, "at")?;
    let since = point(answer, "since")?;
    let until = point(answer, "until")?;
    if let (Some((s, st)), Some((u, ut))) = (&since, &until)
        && ut < st
    {
        return Err(AnswerProblem::Backwards {
            since: s.clone(),
            until: u.clone(),
        });
    }
    let until = match (until, at) {
        (Some((u, _)), _) | (None, Some((u, _))) => u,
        (None, None) => return Err(AnswerProblem::Missing("until` or `at")),
    };
    let schema_version = match answer.get("schema_version") {
        None | Some(Json::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| type_error("schema_version", "a whole number", v))?,
        ),
    };
    Ok(CompleteJob {
        id: job_id,
        objects,
        until,
        schema_version,
    })
}

/// A string member that can serve as an identifier.
fn id(answer: &Json, member: &'static str) -> Result<String, AnswerProblem> {
    let key = member.rsplit('.').next().unwrap_or(member);
    match answer.get(key) {
        Some(Json::String(s))
            if !s.is_empty() && s.chars().count() <= 255 && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(Json::String(s)) => Err(AnswerProblem::Id {
            member,
            found: s.clone(),
        }),
        Some(other) => Err(type_error(member, "a string", other)),
        None => Err(AnswerProblem::Missing(member)),
    }
}

/// An optional point in time: its text and its value.
fn point(
    answer: &Json,
    member: &'static str,
) -> Result<Option<(String, OffsetDateTime)>, AnswerProblem> {
    match answer.get(member) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Ok(Some((s.clone(), t))),
            Err(_) => Err(AnswerProblem::Time {
                member,
                found: s.clone(),
            }),
        },
        Some(other) => Err(type_error(member, "a string", other)),
    }
}

fn type_error(member: &'static str, expected: &'static str, found: &Json) -> AnswerProblem {
    AnswerProblem::Type {
        member,
        expected,
        found: crate::extract::short_json(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn complete_job(patch: Json) -> Json {
        let mut j = json!({"id": "j1", "status": "complete", "objects": [{"id": "o1"}],
                           "schema_version": 2, "at": "2025-01-01T00:00:00Z"});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                j.as_object_mut().unwrap().remove(k);
            } else {
                j[k] = v.clone();
            }
        }
        j
    }

    #[test]
    fn a_complete_job_reads_whole() {
        let JobState::Complete(j) = job(&complete_job(json!({}))).unwrap() else {
            panic!()
        };
        assert_eq!(j.id, "j1");
        assert_eq!(j.objects, ["o1"]);
        assert_eq!(j.until, "2025-01-01T00:00:00Z");
        assert_eq!(j.schema_version, Some(2));
        let inc = complete_job(
            json!({"at": null, "since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00+01:00"}),
        );
        let JobState::Complete(j) = job(&inc).unwrap() else {
            panic!()
        };
        assert_eq!(j.until, "2025-01-02T00:00:00+01:00");
    }

    #[test]
    fn what_the_api_does_not_document_is_refused() {
        let cases = [
            (json!({"objects": null}), "it has no `objects`"),
            (
                json!({"at": "not-a-time"}),
                "its `at` is not an RFC 3339 time: `not-a-time`",
            ),
            (
                json!({"at": "2025-13-45T99:99:99Z"}),
                "its `at` is not an RFC 3339 time: `2025-13-45T99:99:99Z`",
            ),
            (
                json!({"id": ""}),
                "its `id` `` cannot be an identifier (1-255 characters, no control character)",
            ),
            (json!({"id": 7}), "its `id` is not a string: 7"),
            (json!({"objects": [{"x": 1}]}), "it has no `objects[].id`"),
            (
                json!({"objects": [{"id": "a"}, {"id": "a"}]}),
                "it lists object `a` twice",
            ),
            (
                json!({"schema_version": "v2"}),
                "its `schema_version` is not a whole number: \"v2\"",
            ),
            (json!({"at": null}), "it has no `until` or `at`"),
            (
                json!({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}),
                "its `until` 2025-01-01T00:00:00Z is before its `since` 2025-02-01T00:00:00Z",
            ),
            (
                json!({"status": "exploded"}),
                "its `status` `exploded` is none of waiting, running, complete, failed",
            ),
        ];
        for (patch, want) in cases {
            let got = job(&complete_job(patch.clone())).unwrap_err();
            assert_eq!(got.to_string(), want, "{patch}");
        }
        assert_eq!(
            SchemaAnswer::read(json!({"schema": {}})).unwrap_err(),
            AnswerProblem::Missing("version")
        );
        assert!(SchemaAnswer::read(json!({"schema": {}, "version": 3})).is_ok());
    }
}
