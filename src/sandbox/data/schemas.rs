//! The value columns of the tables the sandbox models closely (`accounts`, `users`, `courses`,
//! `enrollments`, `submissions`, `assignments`, `web_logs`) and of every other table
//! ([`GENERIC`]): written out as data, close to the real gateway's schemas.

use super::column::{CREATED, Column, Kind, UPDATED, col, field};

pub(super) const ACCOUNTS: &[Column] = &[
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

pub(super) const USERS: &[Column] = &[
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

pub(super) const COURSES: &[Column] = &[
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

pub(super) const ENROLLMENTS: &[Column] = &[
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

pub(super) const SUBMISSIONS: &[Column] = &[
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

pub(super) const ASSIGNMENTS: &[Column] = &[
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

pub(super) const WEB_LOGS_KEY: Column = col(
    "id",
    Kind::Varchar(36),
    true,
    "The unique identifier of the request. Primary key.",
);

pub(super) const WEB_LOGS: &[Column] = &[
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
pub(super) const GENERIC: &[Column] = &[
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
