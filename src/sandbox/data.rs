//! Deterministic catalogue and contents: namespaces, tables, schemas and rows.
//!
//! Everything here is a pure function of names and numbers, so two runs of the sandbox (and the
//! tests that compare them) see the same tables, schemas and rows without storing anything.

/// Tables of the `canvas` namespace, close to the real list.
const CANVAS: &[&str] = &[
    "access_tokens",
    "account_users",
    "accounts",
    "assessment_question_banks",
    "assessment_questions",
    "assignment_groups",
    "assignment_override_students",
    "assignment_overrides",
    "assignments",
    "attachment_associations",
    "attachments",
    "calendar_events",
    "canvadocs_annotation_contexts",
    "comment_bank_items",
    "communication_channels",
    "content_migrations",
    "content_participation_counts",
    "content_participations",
    "content_shares",
    "content_tags",
    "context_external_tools",
    "context_module_progressions",
    "context_modules",
    "conversation_message_participants",
    "conversation_messages",
    "conversation_participants",
    "conversations",
    "course_account_associations",
    "course_sections",
    "courses",
    "custom_gradebook_column_data",
    "custom_gradebook_columns",
    "developer_key_account_bindings",
    "developer_keys",
    "discussion_entries",
    "discussion_entry_participants",
    "discussion_topic_participants",
    "discussion_topics",
    "enrollment_dates_overrides",
    "enrollment_states",
    "enrollment_terms",
    "enrollments",
    "favorites",
    "folders",
    "grading_period_groups",
    "grading_periods",
    "grading_standards",
    "group_categories",
    "group_memberships",
    "groups",
    "late_policies",
    "learning_outcome_groups",
    "learning_outcome_question_results",
    "learning_outcome_results",
    "learning_outcomes",
    "lti_line_items",
    "lti_resource_links",
    "lti_results",
    "master_courses_child_content_tags",
    "master_courses_child_subscriptions",
    "master_courses_master_content_tags",
    "master_courses_master_migrations",
    "master_courses_master_templates",
    "master_courses_migration_results",
    "originality_reports",
    "outcome_proficiencies",
    "outcome_proficiency_ratings",
    "post_policies",
    "pseudonyms",
    "quiz_groups",
    "quiz_questions",
    "quiz_submissions",
    "quizzes",
    "role_overrides",
    "roles",
    "rubric_assessments",
    "rubric_associations",
    "rubrics",
    "score_statistics",
    "scores",
    "submission_comments",
    "submission_versions",
    "submissions",
    "user_account_associations",
    "user_notes",
    "users",
    "web_conference_participants",
    "web_conferences",
    "wiki_pages",
    "wikis",
];

const CANVAS_LOGS: &[&str] = &["web_logs"];

const CATALOG: &[&str] = &[
    "accounts",
    "catalogs",
    "certificates",
    "enrollments",
    "order_items",
    "orders",
    "products",
    "promotions",
    "user_certificates",
    "users",
];

const NEW_QUIZZES: &[&str] = &[
    "accommodations",
    "item_bank_shares",
    "item_banks",
    "items",
    "quiz_entries",
    "quiz_session_results",
    "quiz_sessions",
    "quizzes",
    "stimuli",
];

/// The tables of `namespace`, or `None` for an unknown namespace.
pub(crate) fn tables(namespace: &str) -> Option<&'static [&'static str]> {
    match namespace {
        "canvas" => Some(CANVAS),
        "canvas_logs" => Some(CANVAS_LOGS),
        "catalog" => Some(CATALOG),
        "new_quizzes" => Some(NEW_QUIZZES),
        _ => None,
    }
}

/// Schema version of a table: small, stable, different between tables.
pub(crate) fn schema_version(table: &str) -> u64 {
    1 + u64::from(table.bytes().fold(0u8, u8::wrapping_add) % 4)
}

/// JSON Schema of a table's records, shaped like DAP's: `key`, `value` and `meta`.
pub(crate) fn schema(namespace: &str, table: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "title": format!("The `{table}` table of the `{namespace}` namespace (sandbox)."),
        "properties": {
            "key": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "format": "int64", "title": "Primary key."}
                },
                "required": ["id"],
                "additionalProperties": false
            },
            "value": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 255, "title": "Display name."},
                    "workflow_state": {
                        "type": "string",
                        "enum": ["active", "deleted"],
                        "title": "Life-cycle state."
                    },
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"}
                },
                "required": ["name", "workflow_state", "created_at", "updated_at"],
                "additionalProperties": false
            },
            "meta": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["U", "D"]},
                    "ts": {"type": "string", "format": "date-time"}
                },
                "required": ["action", "ts"],
                "additionalProperties": false
            }
        },
        "required": ["key", "meta"],
        "additionalProperties": false
    })
}

/// Output format of a query job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jsonl,
    Csv,
    Tsv,
    Parquet,
}

impl Format {
    pub(crate) fn parse(text: &str) -> Option<Format> {
        match text {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// File name suffix of an object in this format.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Format::Jsonl => "json.gz",
            Format::Csv => "csv.gz",
            Format::Tsv => "tsv.gz",
            // The sandbox cannot write Parquet; it serves gzip JSON Lines under this name.
            Format::Parquet => "parquet",
        }
    }

    /// The header line, if the format has one.
    pub(crate) fn header(self) -> Option<&'static str> {
        match self {
            Format::Csv => Some(
                "key.id,value.name,value.workflow_state,value.created_at,value.updated_at,meta.action,meta.ts\n",
            ),
            Format::Tsv => Some(
                "key.id\tvalue.name\tvalue.workflow_state\tvalue.created_at\tvalue.updated_at\tmeta.action\tmeta.ts\n",
            ),
            Format::Jsonl | Format::Parquet => None,
        }
    }
}

/// Row `id` of `table` as one line (newline included) in `format`.
pub(crate) fn row(table: &str, id: u64, format: Format, out: &mut String) {
    use std::fmt::Write as _;
    let state = if id.is_multiple_of(17) {
        "deleted"
    } else {
        "active"
    };
    // Spread times over 2025 so rows differ but stay reproducible.
    let created = super::server::rfc3339(1_735_689_600 + (id as i64 * 7_919) % 31_536_000);
    let updated = super::server::rfc3339(1_735_689_600 + (id as i64 * 15_485) % 31_536_000);
    let _ = match format {
        Format::Jsonl | Format::Parquet => writeln!(
            out,
            r#"{{"key":{{"id":{id}}},"value":{{"name":"{table} {id}","workflow_state":"{state}","created_at":"{created}","updated_at":"{updated}"}},"meta":{{"action":"U","ts":"{updated}"}}}}"#
        ),
        Format::Csv => writeln!(
            out,
            "{id},{table} {id},{state},{created},{updated},U,{updated}"
        ),
        Format::Tsv => writeln!(
            out,
            "{id}\t{table} {id}\t{state}\t{created}\t{updated}\tU\t{updated}"
        ),
    };
}
