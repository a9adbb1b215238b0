//! Which namespaces and tables exist, how long a namespace keeps its changes, and each
//! table's first schema (its key and value columns, and version).

use super::column::{Column, ID};
use super::schemas::*;

/// Tables of the `canvas` namespace, close to the real list.
pub(super) const CANVAS: &[&str] = &[
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

pub(super) const CANVAS_LOGS: &[&str] = &["web_logs"];

pub(super) const CATALOG: &[&str] = &[
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

pub(super) const NEW_QUIZZES: &[&str] = &[
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
pub(super) fn base_columns(namespace: &str, table: &str) -> (Column, &'static [Column]) {
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
pub(super) fn base_version(table: &str) -> u64 {
    1 + u64::from(table.bytes().fold(0u8, u8::wrapping_add) % 4)
}
