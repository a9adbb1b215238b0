//! The sandbox's data: namespaces, tables, their JSON Schemas, and rows that change over time.
//!
//! Everything here is a pure function of names, numbers and a time, so the sandbox stores no
//! rows and two runs (and the tests that check a client against the sandbox) see the same data.
//! A table holds the keys `1..=rows`. Time advances in ticks of [`Model::tick`] seconds since
//! [`EPOCH`]; key `i` changes at every tick `k` with `(k + i) % period == 0`, so each tick
//! changes one key in `period`. Every change is a new *version* of the row: its values, and
//! whether it exists at all (about one version in ten is deleted), are a hash of
//! `(seed, namespace, table, key, version)`. The table *at* time `T` holds every row's version as
//! of the last change strictly before `T`; the changes *since* `S` *until* `U` are the keys whose
//! version moved in `[S, U)`, as `U` records (upserts, with the new values) or `D` records
//! (deletes, key only). So a snapshot at `T0` plus every incremental up to `Tn` is exactly the
//! snapshot at `Tn`, which is what the tests use as their oracle
//! ([`Model::snapshot_rows`], [`Model::incremental_rows`]).

/// Time zero of the sandbox's data: 2025-01-01T00:00:00Z. Rows have a version for every tick
/// after it.
pub const EPOCH: i64 = 1_735_689_600;

/// How a column's values are typed, as the JSON Schema says it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// `integer`, `int64`.
    Int64,
    /// `integer`, `int32`.
    Int32,
    /// `number`, `float64`.
    Float64,
    /// `boolean`.
    Bool,
    /// `string` without `maxLength` (PostgreSQL `text`).
    Text,
    /// `string` with `maxLength`.
    Varchar(u32),
    /// `string` with `enum`.
    Enum(&'static [&'static str]),
    /// `string`, `date-time` (UTC, second precision here).
    Timestamp,
    /// A nested `object` with these properties: one JSON column in condensed mode, one column
    /// per property (`value.settings.x`) in expanded mode.
    Object(&'static [Field]),
}

/// A property of a nested object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// Property name.
    pub name: &'static str,
    /// Its type (never another object).
    pub kind: Kind,
}

/// A column of a table: `key.<name>` for the key, `value.<name>` for the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    /// Column (property) name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// In the schema's `required` list; otherwise the column is nullable.
    pub required: bool,
    /// The schema's `title`.
    pub title: &'static str,
}

const fn col(name: &'static str, kind: Kind, required: bool, title: &'static str) -> Column {
    Column {
        name,
        kind,
        required,
        title,
    }
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

const ID: Column = col(
    "id",
    Kind::Int64,
    true,
    "The unique identifier of the record. Primary key.",
);
const CREATED: Column = col(
    "created_at",
    Kind::Timestamp,
    true,
    "Timestamp of when the record was created.",
);
const UPDATED: Column = col(
    "updated_at",
    Kind::Timestamp,
    true,
    "Timestamp of when the record was last updated.",
);

const ACCOUNTS: &[Column] = &[
    col("name", Kind::Varchar(255), true, "Name of the account."),
    col("uuid", Kind::Varchar(255), true, "The UUID of the account."),
    col(
        "parent_account_id",
        Kind::Int64,
        false,
        "The ID of the parent account. Foreign key to `accounts.id`.",
    ),
    col(
        "root_account_id",
        Kind::Int64,
        false,
        "The ID of the root account. Foreign key to `accounts.id`.",
    ),
    col(
        "workflow_state",
        Kind::Enum(&["active", "deleted"]),
        true,
        "Life-cycle state of the account.",
    ),
    col(
        "default_time_zone",
        Kind::Text,
        false,
        "The default time zone of the account.",
    ),
    col(
        "sis_source_id",
        Kind::Varchar(255),
        false,
        "The SIS identifier of the account.",
    ),
    CREATED,
    UPDATED,
    col(
        "settings",
        Kind::Object(&[
            field("restrict_student_future_view", Kind::Bool),
            field("lock_all_announcements", Kind::Bool),
            field("help_link_name", Kind::Text),
        ]),
        false,
        "Account settings, as a JSON object.",
    ),
];

const USERS: &[Column] = &[
    col("name", Kind::Varchar(255), false, "Name of the user."),
    col(
        "sortable_name",
        Kind::Varchar(255),
        false,
        "Name of the user used for sorting.",
    ),
    col(
        "short_name",
        Kind::Varchar(255),
        false,
        "A short name the user has selected.",
    ),
    col(
        "workflow_state",
        Kind::Enum(&[
            "registered",
            "pre_registered",
            "creation_pending",
            "deleted",
        ]),
        true,
        "Life-cycle state of the user.",
    ),
    col(
        "time_zone",
        Kind::Text,
        false,
        "The user's preferred time zone.",
    ),
    col(
        "bio",
        Kind::Text,
        false,
        "A short biography of the user, free text.",
    ),
    col(
        "avatar_image_url",
        Kind::Varchar(255),
        false,
        "URL of the user's avatar.",
    ),
    col(
        "lti_context_id",
        Kind::Varchar(255),
        false,
        "The LTI context id of the user.",
    ),
    col(
        "last_logged_in",
        Kind::Timestamp,
        false,
        "When the user last logged in.",
    ),
    CREATED,
    UPDATED,
    col(
        "preferences",
        Kind::Object(&[
            field("selected_calendar_contexts", Kind::Text),
            field("enable_speedgrader_grade_by_question", Kind::Bool),
            field("comment_library_suggestions_enabled", Kind::Bool),
        ]),
        false,
        "User preferences, as a JSON object.",
    ),
];

const COURSES: &[Column] = &[
    col("name", Kind::Varchar(255), true, "The name of the course."),
    col("course_code", Kind::Varchar(255), false, "The course code."),
    col(
        "account_id",
        Kind::Int64,
        true,
        "The account of the course. Foreign key to `accounts.id`.",
    ),
    col(
        "root_account_id",
        Kind::Int64,
        true,
        "The root account of the course. Foreign key to `accounts.id`.",
    ),
    col(
        "enrollment_term_id",
        Kind::Int64,
        true,
        "The term of the course. Foreign key to `enrollment_terms.id`.",
    ),
    col(
        "workflow_state",
        Kind::Enum(&["created", "claimed", "available", "completed", "deleted"]),
        true,
        "Life-cycle state of the course.",
    ),
    col(
        "start_at",
        Kind::Timestamp,
        false,
        "When the course starts.",
    ),
    col(
        "conclude_at",
        Kind::Timestamp,
        false,
        "When the course ends.",
    ),
    col(
        "is_public",
        Kind::Bool,
        false,
        "Whether the course is public.",
    ),
    col("syllabus_body", Kind::Text, false, "The syllabus, as HTML."),
    col(
        "storage_quota",
        Kind::Int64,
        false,
        "Storage quota in bytes.",
    ),
    col(
        "default_view",
        Kind::Enum(&["assignments", "feed", "modules", "syllabus", "wiki"]),
        false,
        "The default view of the course.",
    ),
    CREATED,
    UPDATED,
    col(
        "settings",
        Kind::Object(&[
            field("hide_final_grade", Kind::Bool),
            field("allow_student_discussion_topics", Kind::Bool),
            field("course_format", Kind::Text),
        ]),
        false,
        "Course settings, as a JSON object.",
    ),
];

const ENROLLMENTS: &[Column] = &[
    col(
        "user_id",
        Kind::Int64,
        true,
        "The enrolled user. Foreign key to `users.id`.",
    ),
    col(
        "course_id",
        Kind::Int64,
        true,
        "The course. Foreign key to `courses.id`.",
    ),
    col(
        "type",
        Kind::Enum(&[
            "StudentEnrollment",
            "TeacherEnrollment",
            "TaEnrollment",
            "DesignerEnrollment",
            "ObserverEnrollment",
            "StudentViewEnrollment",
        ]),
        true,
        "The type of the enrollment.",
    ),
    col(
        "workflow_state",
        Kind::Enum(&[
            "active",
            "invited",
            "creation_pending",
            "deleted",
            "rejected",
            "completed",
            "inactive",
        ]),
        true,
        "Life-cycle state of the enrollment.",
    ),
    col(
        "role_id",
        Kind::Int64,
        true,
        "The role. Foreign key to `roles.id`.",
    ),
    col(
        "course_section_id",
        Kind::Int64,
        true,
        "The section. Foreign key to `course_sections.id`.",
    ),
    col(
        "limit_privileges_to_course_section",
        Kind::Bool,
        false,
        "Whether the user sees only their section.",
    ),
    col(
        "last_activity_at",
        Kind::Timestamp,
        false,
        "Last activity of the user in the course.",
    ),
    col(
        "total_activity_time",
        Kind::Int32,
        false,
        "Total activity time in seconds.",
    ),
    col(
        "sis_batch_id",
        Kind::Int64,
        false,
        "The SIS batch that last changed the enrollment.",
    ),
    CREATED,
    UPDATED,
];

const SUBMISSIONS: &[Column] = &[
    col(
        "assignment_id",
        Kind::Int64,
        true,
        "The assignment. Foreign key to `assignments.id`.",
    ),
    col(
        "user_id",
        Kind::Int64,
        true,
        "The submitter. Foreign key to `users.id`.",
    ),
    col("score", Kind::Float64, false, "The raw score."),
    col(
        "grade",
        Kind::Varchar(255),
        false,
        "The grade, as shown to the student.",
    ),
    col("body", Kind::Text, false, "The submitted text, as HTML."),
    col(
        "submitted_at",
        Kind::Timestamp,
        false,
        "When the submission was made.",
    ),
    col(
        "graded_at",
        Kind::Timestamp,
        false,
        "When the submission was graded.",
    ),
    col(
        "workflow_state",
        Kind::Enum(&[
            "submitted",
            "unsubmitted",
            "graded",
            "pending_review",
            "deleted",
        ]),
        true,
        "Life-cycle state of the submission.",
    ),
    col(
        "submission_type",
        Kind::Enum(&[
            "online_text_entry",
            "online_url",
            "online_upload",
            "media_recording",
            "online_quiz",
        ]),
        false,
        "How the work was submitted.",
    ),
    col("attempt", Kind::Int32, false, "The attempt number."),
    col(
        "late",
        Kind::Bool,
        false,
        "Whether the submission was late.",
    ),
    col(
        "excused",
        Kind::Bool,
        false,
        "Whether the student is excused.",
    ),
    CREATED,
    UPDATED,
];

const ASSIGNMENTS: &[Column] = &[
    col(
        "title",
        Kind::Varchar(255),
        true,
        "The title of the assignment.",
    ),
    col(
        "description",
        Kind::Text,
        false,
        "The description, as HTML.",
    ),
    col(
        "due_at",
        Kind::Timestamp,
        false,
        "When the assignment is due.",
    ),
    col(
        "points_possible",
        Kind::Float64,
        false,
        "The maximum points possible.",
    ),
    col(
        "context_id",
        Kind::Int64,
        true,
        "The course. Foreign key to `courses.id`.",
    ),
    col(
        "context_type",
        Kind::Enum(&["Course", "Group"]),
        true,
        "The type of the context.",
    ),
    col(
        "workflow_state",
        Kind::Enum(&["published", "unpublished", "deleted"]),
        true,
        "Life-cycle state of the assignment.",
    ),
    col(
        "grading_type",
        Kind::Enum(&[
            "pass_fail",
            "percent",
            "letter_grade",
            "gpa_scale",
            "points",
            "not_graded",
        ]),
        false,
        "How the assignment is graded.",
    ),
    col(
        "position",
        Kind::Int32,
        false,
        "Position in the assignment group.",
    ),
    CREATED,
    UPDATED,
];

const WEB_LOGS_KEY: Column = col(
    "id",
    Kind::Varchar(36),
    true,
    "The unique identifier of the request. Primary key.",
);

const WEB_LOGS: &[Column] = &[
    col(
        "timestamp",
        Kind::Timestamp,
        true,
        "When the request was made.",
    ),
    col(
        "user_id",
        Kind::Int64,
        false,
        "The user who made the request.",
    ),
    col(
        "course_id",
        Kind::Int64,
        false,
        "The course the request was made in.",
    ),
    col("url", Kind::Text, true, "The URL requested."),
    col(
        "http_method",
        Kind::Enum(&["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        true,
        "The HTTP method.",
    ),
    col(
        "http_status",
        Kind::Varchar(3),
        true,
        "The HTTP status of the response.",
    ),
    col(
        "remote_ip",
        Kind::Varchar(255),
        false,
        "The client's IP address.",
    ),
    col("user_agent", Kind::Text, false, "The client's user agent."),
    col(
        "interaction_micros",
        Kind::Int64,
        false,
        "How long the request took, in microseconds.",
    ),
];

/// Every other table: a name, a state and two timestamps.
const GENERIC: &[Column] = &[
    col("name", Kind::Varchar(255), true, "Display name."),
    col(
        "workflow_state",
        Kind::Enum(&["active", "deleted"]),
        true,
        "Life-cycle state.",
    ),
    CREATED,
    UPDATED,
];

/// The column a schema change adds (nullable, so it is additive).
const ADDED: Column = col(
    "sandbox_added_note",
    Kind::Varchar(255),
    false,
    "A note added by a newer schema version (sandbox schema change).",
);

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
pub fn tables(namespace: &str) -> Option<&'static [&'static str]> {
    match namespace {
        "canvas" => Some(CANVAS),
        "canvas_logs" => Some(CANVAS_LOGS),
        "catalog" => Some(CATALOG),
        "new_quizzes" => Some(NEW_QUIZZES),
        _ => None,
    }
}

/// How long a namespace keeps its changes: incrementals with an older `since` are refused with
/// `OutOfRangeError` (`canvas_logs` keeps 30 days; the others are not limited here).
pub fn retention_seconds(namespace: &str) -> Option<i64> {
    (namespace == "canvas_logs").then_some(30 * 24 * 3600)
}

/// The key column and value columns of a table in its first schema version.
fn base_columns(namespace: &str, table: &str) -> (Column, &'static [Column]) {
    match (namespace, table) {
        ("canvas", "accounts") => (ID, ACCOUNTS),
        ("canvas", "users") => (ID, USERS),
        ("canvas", "courses") => (ID, COURSES),
        ("canvas", "enrollments") => (ID, ENROLLMENTS),
        ("canvas", "submissions") => (ID, SUBMISSIONS),
        ("canvas", "assignments") => (ID, ASSIGNMENTS),
        ("canvas_logs", "web_logs") => (WEB_LOGS_KEY, WEB_LOGS),
        _ => (ID, GENERIC),
    }
}

/// Schema version before any schema change: small, stable, different between tables.
fn base_version(table: &str) -> u64 {
    1 + u64::from(table.bytes().fold(0u8, u8::wrapping_add) % 4)
}

/// A schema change: from `at` (Unix seconds, sandbox clock) on, `namespace.table` has one more
/// schema version with one more nullable column, `sandbox_added_note`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaChange {
    /// Namespace of the table.
    pub namespace: String,
    /// The table that changes.
    pub table: String,
    /// When the new version takes effect (Unix seconds).
    pub at: i64,
}

/// The layout of a table at some time: its key, columns and schema version.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Namespace.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// The key column (`key.id`).
    pub key: Column,
    /// Value columns, in schema order.
    pub columns: Vec<Column>,
    /// Schema version.
    pub version: u64,
    /// When the schema change that added the last column took effect, if one did.
    pub changed_at: Option<i64>,
    seed: u64,
}

impl Table {
    /// The JSON Schema of the table's records, shaped like DAP's (`$schema`, `key`, `value`,
    /// `meta`, `additionalProperties: false` everywhere), which the official client parses
    /// strictly.
    pub fn schema(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        fn kind_schema(kind: Kind, title: Option<&str>) -> Value {
            let mut node = match kind {
                Kind::Int64 => json!({"type": "integer", "format": "int64"}),
                Kind::Int32 => json!({"type": "integer", "format": "int32"}),
                Kind::Float64 => json!({"type": "number", "format": "float64"}),
                Kind::Bool => json!({"type": "boolean"}),
                Kind::Text => json!({"type": "string"}),
                Kind::Varchar(max) => json!({"type": "string", "maxLength": max}),
                Kind::Enum(values) => json!({"type": "string", "enum": values}),
                Kind::Timestamp => json!({"type": "string", "format": "date-time"}),
                Kind::Object(fields) => {
                    let properties: Map<String, Value> = fields
                        .iter()
                        .map(|field| (field.name.to_owned(), kind_schema(field.kind, None)))
                        .collect();
                    json!({"type": "object", "properties": properties, "additionalProperties": false})
                }
            };
            if let (Some(title), Some(fields)) = (title, node.as_object_mut()) {
                fields.insert("title".to_owned(), json!(title));
            }
            node
        }
        let object = |columns: &[Column]| {
            let properties: Map<String, Value> = columns
                .iter()
                .map(|column| {
                    (
                        column.name.to_owned(),
                        kind_schema(column.kind, Some(column.title)),
                    )
                })
                .collect();
            let required: Vec<&str> = columns
                .iter()
                .filter(|column| column.required)
                .map(|column| column.name)
                .collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        };
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": format!("The `{}` table of the `{}` namespace.", self.name, self.namespace),
            "properties": {
                "key": object(std::slice::from_ref(&self.key)),
                "value": object(&self.columns),
                "meta": {
                    "type": "object",
                    "properties": {
                        "action": {
                            "type": "string",
                            "enum": ["U", "D"],
                            "title": "`U` for an insert or update, `D` for a delete."
                        },
                        "ts": {
                            "type": "string",
                            "format": "date-time",
                            "title": "When the change was recorded."
                        }
                    },
                    "required": ["action", "ts"],
                    "additionalProperties": false
                }
            },
            "required": ["key", "meta"],
            "additionalProperties": false,
        })
    }
}

/// Insert/update or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `U`: the row with these values (an insert or an update).
    Upsert,
    /// `D`: the key no longer exists; only the key is given.
    Delete,
}

/// One value of a record.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// No value (`NULL`; omitted in JSON Lines).
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number (always finite).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (enums included).
    Text(String),
    /// A `date-time`, in Unix seconds (UTC).
    Time(i64),
    /// A nested object.
    Json(serde_json::Value),
}

impl Cell {
    /// The value as JSON (`null` for [`Cell::Null`], RFC 3339 for times).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Int(value) => (*value).into(),
            Cell::Float(value) => (*value).into(),
            Cell::Bool(value) => (*value).into(),
            Cell::Text(value) => value.as_str().into(),
            Cell::Time(value) => timestamp(*value).into(),
            Cell::Json(value) => value.clone(),
        }
    }
}

/// A row (or a delete) as the gateway sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// `U` or `D`.
    pub action: Action,
    /// The key (`key.id`).
    pub key: Cell,
    /// The value columns in the table's order; empty for a delete.
    pub values: Vec<Cell>,
    /// When the change happened (`meta.ts`).
    pub ts: i64,
}

impl Record {
    /// The record as one JSON Lines object: `{"key": ..., "value": ..., "meta": ...}`, nulls
    /// omitted, no `value` for a delete.
    pub fn to_json(&self, table: &Table) -> serde_json::Value {
        let mut line = serde_json::Map::new();
        line.insert(
            "key".to_owned(),
            serde_json::json!({ table.key.name: self.key.to_json() }),
        );
        if self.action == Action::Upsert {
            let value: serde_json::Map<String, serde_json::Value> = table
                .columns
                .iter()
                .zip(&self.values)
                .filter(|(_, cell)| **cell != Cell::Null)
                .map(|(column, cell)| (column.name.to_owned(), cell.to_json()))
                .collect();
            line.insert("value".to_owned(), value.into());
        }
        let action = match self.action {
            Action::Upsert => "U",
            Action::Delete => "D",
        };
        line.insert(
            "meta".to_owned(),
            serde_json::json!({"action": action, "ts": timestamp(self.ts)}),
        );
        line.into()
    }
}

/// What a query job covers: a snapshot at a time, or the changes in `[since, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The table as it is at this time.
    Snapshot(i64),
    /// The changes with `since <= time < until`.
    Changes(i64, i64),
}

impl Window {
    /// The time whose schema the job's data follows: the snapshot's `at` or the `until`.
    pub fn end(self) -> i64 {
        match self {
            Window::Snapshot(at) | Window::Changes(_, at) => at,
        }
    }
}

/// The data model: which rows every table has at every moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Changes every value (two sandboxes with the same seed serve the same data).
    pub seed: u64,
    /// Keys per table: `1..=rows`.
    pub rows: u64,
    /// Seconds per tick (at least 1).
    pub tick: i64,
    /// Ticks between two changes of the same key: each tick changes one key in `period`.
    pub period: u64,
    /// Schema changes in effect.
    pub schema_changes: Vec<SchemaChange>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            seed: 0,
            rows: 40,
            tick: 1,
            period: 4,
            schema_changes: Vec::new(),
        }
    }
}

impl Model {
    /// The layout of `namespace.table` at time `at`, or `None` for an unknown table.
    pub fn table(&self, namespace: &str, table: &str, at: i64) -> Option<Table> {
        let name = tables(namespace)?.iter().find(|name| **name == table)?;
        let (key, base) = base_columns(namespace, name);
        let mut columns = base.to_vec();
        let mut version = base_version(name);
        let changed_at = self
            .schema_changes
            .iter()
            .filter(|change| change.namespace == namespace && change.table == *name)
            .map(|change| change.at)
            .filter(|change| *change <= at)
            .min();
        if changed_at.is_some() {
            columns.push(ADDED);
            version += 1;
        }
        Some(Table {
            namespace: namespace.to_owned(),
            name: (*name).to_owned(),
            key,
            columns,
            version,
            changed_at,
            seed: mix(self.seed ^ fnv(namespace) ^ fnv(name).rotate_left(17)),
        })
    }

    /// Every row of `namespace.table` at time `at` (Unix seconds), in key order: what a
    /// snapshot at `at` holds. Empty for an unknown table.
    pub fn snapshot_rows(&self, namespace: &str, table: &str, at: i64) -> Vec<Record> {
        self.records(namespace, table, Window::Snapshot(at))
    }

    /// The changes to `namespace.table` with `since <= time < until`, in key order: what an
    /// incremental query from `since` to `until` holds.
    pub fn incremental_rows(
        &self,
        namespace: &str,
        table: &str,
        since: i64,
        until: i64,
    ) -> Vec<Record> {
        self.records(namespace, table, Window::Changes(since, until))
    }

    fn records(&self, namespace: &str, table: &str, window: Window) -> Vec<Record> {
        let Some(layout) = self.table(namespace, table, window.end()) else {
            return Vec::new();
        };
        (1..=self.rows)
            .filter_map(|key| self.record(&layout, key, window))
            .collect()
    }

    /// Keys `[first, end)` of part `part` out of `parts`.
    pub fn part_keys(&self, part: u64, parts: u64) -> (u64, u64) {
        let parts = parts.max(1);
        let first = 1 + self.rows * part / parts;
        let end = 1 + self.rows * (part + 1) / parts;
        (first, end)
    }

    /// The last tick whose changes a table at `at` includes (changes strictly before `at`).
    fn last_tick(&self, at: i64) -> i64 {
        (at - EPOCH - 1).div_euclid(self.tick.max(1))
    }

    fn offset(&self, key: u64) -> i64 {
        (key % self.period.max(1)) as i64
    }

    /// The version of `key` as of tick `tick`.
    fn version(&self, key: u64, tick: i64) -> i64 {
        (tick + self.offset(key)).div_euclid(self.period.max(1) as i64)
    }

    /// When version `version` of `key` was made.
    fn version_time(&self, key: u64, version: i64) -> i64 {
        EPOCH + self.tick.max(1) * (version * self.period.max(1) as i64 - self.offset(key))
    }

    fn exists(table: &Table, key: u64, version: i64) -> bool {
        !hash(table.seed, key, version as u64, 0xdead).is_multiple_of(10)
    }

    /// The record of `key` in `window`, or `None` if the window has nothing for it.
    pub fn record(&self, table: &Table, key: u64, window: Window) -> Option<Record> {
        match window {
            Window::Snapshot(at) => {
                let version = self.version(key, self.last_tick(at));
                Model::exists(table, key, version).then(|| self.row(table, key, version))
            }
            Window::Changes(since, until) => {
                if until <= since {
                    return None;
                }
                let before = self.version(key, self.last_tick(since));
                let after = self.version(key, self.last_tick(until));
                if before == after {
                    return None;
                }
                if Model::exists(table, key, after) {
                    Some(self.row(table, key, after))
                } else if Model::exists(table, key, before) {
                    Some(Record {
                        action: Action::Delete,
                        key: key_cell(table, key),
                        values: Vec::new(),
                        ts: self.version_time(key, after),
                    })
                } else {
                    None
                }
            }
        }
    }

    /// Version `version` of `key`, as a `U` record (whether or not that version exists).
    pub(crate) fn row(&self, table: &Table, key: u64, version: i64) -> Record {
        let ts = self.version_time(key, version);
        let values = table
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| value(table, column, key, version, index as u64, ts))
            .collect();
        Record {
            action: Action::Upsert,
            key: key_cell(table, key),
            values,
            ts,
        }
    }

    /// The version of `key` at `at`, for objects that ignore deletes (large objects).
    pub(crate) fn version_at(&self, key: u64, at: i64) -> i64 {
        self.version(key, self.last_tick(at))
    }
}

fn key_cell(table: &Table, key: u64) -> Cell {
    match table.key.kind {
        Kind::Int64 | Kind::Int32 => Cell::Int(key as i64),
        _ => {
            let high = hash(table.seed, key, 0, 1);
            let low = hash(table.seed, key, 0, 2);
            Cell::Text(format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                high >> 32,
                (high >> 16) & 0xffff,
                high & 0xfff,
                low >> 52,
                low & 0xffff_ffff_ffff
            ))
        }
    }
}

/// Strings that exercise every escape of TSV and CSV.
const TEXTS: &[&str] = &[
    "Plain text.",
    "",
    "Tab\tseparated\tvalues",
    "Line one\nLine two\r\nLine three",
    "Back\\slash, \\N and \\t written out",
    "\"Quoted\", with commas, and 'apostrophes'",
    "NULL",
    "Ünïcödé: café, 東京, 🎓",
    "<p>HTML <b>body</b> &amp; entities</p>",
    "  leading and trailing spaces  ",
];

const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
    "Zoë", "José",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "O'Brien", "Núñez",
];
const ZONES: &[&str] = &[
    "America/Denver",
    "America/New_York",
    "Europe/London",
    "Europe/Budapest",
    "Australia/Sydney",
    "Etc/UTC",
];

fn pick<'a>(items: &[&'a str], h: u64) -> &'a str {
    items[(h % items.len() as u64) as usize]
}

fn value(table: &Table, column: &Column, key: u64, version: i64, index: u64, ts: i64) -> Cell {
    let h = hash(table.seed, key, version as u64, 100 + index);
    match column.name {
        "created_at" => {
            let age = hash(table.seed, key, 0, 99) % (180 * 86_400);
            return Cell::Time(EPOCH - age as i64);
        }
        "updated_at" | "timestamp" => return Cell::Time(ts),
        "sandbox_added_note" => {
            return match table.changed_at {
                Some(at) if ts >= at => Cell::Text(format!("note {key}.{version}")),
                _ => Cell::Null,
            };
        }
        _ => {}
    }
    if !column.required && h.is_multiple_of(5) {
        return Cell::Null;
    }
    let h = h / 5;
    cell(table, column.name, column.kind, key, h)
}

fn cell(table: &Table, name: &str, kind: Kind, key: u64, h: u64) -> Cell {
    match kind {
        Kind::Int64 if name.ends_with("_id") => Cell::Int(10_000_000_000_000 + (h % 5_000) as i64),
        Kind::Int64 => Cell::Int((h % 10_000_000_000) as i64),
        Kind::Int32 => Cell::Int((h % 100_000) as i64),
        Kind::Float64 => Cell::Float((h % 100_001) as f64 / 100.0),
        Kind::Bool => Cell::Bool(h & 1 == 1),
        Kind::Enum(values) => Cell::Text(pick(values, h).to_owned()),
        Kind::Timestamp => Cell::Time(EPOCH + (h % (365 * 86_400)) as i64),
        Kind::Text => Cell::Text(match name {
            "time_zone" | "default_time_zone" => pick(ZONES, h).to_owned(),
            "url" => format!(
                "https://canvas.example.edu/courses/{}/assignments/{}?module_item_id={}&q=a%20b",
                h % 900,
                h % 7_001,
                key
            ),
            "user_agent" => format!("Mozilla/5.0 (sandbox; rv:{}) Gecko/20100101", h % 140),
            _ => pick(TEXTS, h).to_owned(),
        }),
        Kind::Varchar(max) => {
            let text = match name {
                "name" if matches!(table.name.as_str(), "users") => {
                    format!("{} {}", pick(FIRST, h), pick(LAST, h / 13))
                }
                "sortable_name" => format!("{}, {}", pick(LAST, h / 13), pick(FIRST, h)),
                "short_name" => pick(FIRST, h).to_owned(),
                "uuid" => format!("{:016x}{:016x}", h, mix(h)),
                "grade" => {
                    pick(&["A", "B+", "C-", "pass", "fail", "92.5", "complete"], h).to_owned()
                }
                "http_status" => {
                    pick(&["200", "201", "302", "304", "401", "404", "500"], h).to_owned()
                }
                "remote_ip" => format!("10.{}.{}.{}", h % 256, (h >> 8) % 256, (h >> 16) % 256),
                "avatar_image_url" => {
                    format!("https://canvas.example.edu/images/thumbnails/{key}/{h:x}")
                }
                "course_code" => format!(
                    "{}-{:03}",
                    pick(&["MATH", "HIST", "CS", "BIO", "ART"], h),
                    h % 500
                ),
                "title" => format!("Assignment {}: {}", key, pick(TEXTS, h)),
                _ if name.starts_with("sis_") || name.starts_with("lti_") => {
                    format!("{name}-{key}-{:x}", h % 65_536)
                }
                _ => format!("{} {} – {}", table.name, key, pick(TEXTS, h)),
            };
            if text.len() <= max as usize {
                Cell::Text(text)
            } else {
                Cell::Text(text.chars().take(max as usize).collect())
            }
        }
        Kind::Object(fields) => {
            let mut object = serde_json::Map::new();
            for (index, field) in fields.iter().enumerate() {
                let h = mix(h ^ index as u64);
                if h.is_multiple_of(4) {
                    continue; // absent
                }
                let value = cell(table, field.name, field.kind, key, h / 4).to_json();
                object.insert(field.name.to_owned(), value);
            }
            Cell::Json(object.into())
        }
    }
}

/// SplitMix64's finaliser: a good 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash(seed: u64, key: u64, version: u64, salt: u64) -> u64 {
    mix(seed ^ mix(key ^ mix(version ^ mix(salt))))
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `YYYY-MM-DDThh:mm:ssZ` for Unix seconds, written without allocating.
pub(crate) fn write_timestamp(out: &mut String, unix: i64) {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, value: i64, digits: usize| {
        let mut value = value.unsigned_abs();
        for index in (at..at + digits).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, seconds / 3_600, 2);
    put(14, seconds / 60 % 60, 2);
    put(17, seconds % 60, 2);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// Unix seconds of an RFC 3339 time with a zone (what jobs report as `at`, `since`, `until`).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    super::server::parse_rfc3339(text)
}

/// RFC 3339 (UTC, `Z`) for Unix seconds.
pub fn timestamp(unix: i64) -> String {
    let mut out = String::with_capacity(20);
    write_timestamp(&mut out, unix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_the_time_crate() {
        for unix in [
            0,
            EPOCH,
            951_782_400,
            1_709_164_799,
            4_102_444_800,
            EPOCH - 1,
        ] {
            assert_eq!(timestamp(unix), super::super::server::rfc3339(unix));
        }
    }

    /// Applies `changes` to `rows` (both in key order) the way a loader does.
    fn apply(rows: &mut Vec<Record>, changes: &[Record]) {
        for change in changes {
            let at = rows.binary_search_by(|row| key_order(&row.key, &change.key));
            match (change.action, at) {
                (Action::Upsert, Ok(index)) => rows[index] = change.clone(),
                (Action::Upsert, Err(index)) => rows.insert(index, change.clone()),
                (Action::Delete, Ok(index)) => {
                    rows.remove(index);
                }
                (Action::Delete, Err(_)) => panic!("delete of a missing key {:?}", change.key),
            }
        }
    }

    fn key_order(a: &Cell, b: &Cell) -> std::cmp::Ordering {
        match (a, b) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            _ => panic!("integer keys"),
        }
    }

    #[test]
    fn a_snapshot_plus_every_incremental_is_the_later_snapshot() {
        let model = Model {
            rows: 300,
            period: 7,
            tick: 2,
            ..Model::default()
        };
        let start = 1_790_000_001;
        let mut rows = model.snapshot_rows("canvas", "users", start);
        let mut since = start;
        let (mut upserts, mut deletes) = (0, 0);
        for step in [1, 2, 3, 5, 8, 13, 1, 30] {
            let until = since + step;
            let changes = model.incremental_rows("canvas", "users", since, until);
            upserts += changes
                .iter()
                .filter(|c| c.action == Action::Upsert)
                .count();
            deletes += changes
                .iter()
                .filter(|c| c.action == Action::Delete)
                .count();
            apply(&mut rows, &changes);
            assert_eq!(
                rows,
                model.snapshot_rows("canvas", "users", until),
                "at {until}"
            );
            since = until;
        }
        assert!(upserts > 100 && deletes > 5, "{upserts} U, {deletes} D");
    }

    #[test]
    fn a_schema_change_adds_a_nullable_column_and_a_version() {
        let at = 1_790_000_000;
        let model = Model {
            schema_changes: vec![SchemaChange {
                namespace: "canvas".to_owned(),
                table: "users".to_owned(),
                at,
            }],
            ..Model::default()
        };
        let before = model.table("canvas", "users", at - 1).expect("table");
        let after = model.table("canvas", "users", at).expect("table");
        assert_eq!(after.version, before.version + 1);
        assert_eq!(after.columns.len(), before.columns.len() + 1);
        let added = after.columns.last().expect("column");
        assert!(!added.required);
        let rows = model.snapshot_rows("canvas", "users", at + 100);
        let notes = rows
            .iter()
            .filter(|row| row.values.last() != Some(&Cell::Null))
            .count();
        assert!(notes > 0 && notes < rows.len() + 1, "{notes}");
    }

    #[test]
    fn schemas_are_shaped_like_the_gateway_s() {
        let model = Model::default();
        let table = model.table("canvas", "courses", EPOCH).expect("table");
        let schema = table.schema();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(
            schema["properties"]["key"]["properties"]["id"]["format"],
            "int64"
        );
        assert_eq!(schema["properties"]["value"]["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["value"]["properties"]["settings"]["additionalProperties"],
            false
        );
        assert!(model.table("canvas", "nope", EPOCH).is_none());
    }
}
