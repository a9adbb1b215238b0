//! The words and texts rows are made of: names, time zones, URLs' parts, HTML, JSON documents,
//! user agents, and the texts that break loaders (tabs, newlines, backslashes, quotes,
//! non-ASCII, `\N`, `NULL`, and a value that is exactly `\.`, PostgreSQL's end-of-data line).

/// Strings that exercise every escape of TSV and CSV, and of a database's COPY.
pub(super) const TEXTS: &[&str] = &[
    "Plain text.",
    "",
    "Tab\tseparated\tvalues",
    "Line one\nLine two\r\nLine three",
    "Back\\slash, \\N and \\t written out",
    "\"Quoted\", with commas, and 'apostrophes'",
    "NULL",
    "\\.",
    "Ünïcödé: café, 東京, 🎓",
    "<p>HTML <b>body</b> &amp; entities</p>",
    "  leading and trailing spaces  ",
    "ends with a backslash \\",
];

/// HTML written by people (bodies, messages, descriptions), with the texts that break loaders.
pub(super) const HTML: &[&str] = &[
    "<p>Read chapters 3&ndash;4 before <strong>Monday</strong>.</p>",
    "<p>Welcome!</p>\n<ul>\n\t<li>Syllabus</li>\n\t<li>Office hours: Tue 2&ndash;4pm</li>\n</ul>",
    "<div class=\"user_content\"><p>See <a href=\"https://canvas.example.edu/files/12/download?wrap=1\">the handout</a>.</p></div>",
    "<p>Grading: 40% exams, 60% projects. Late work loses 10%/day.</p>",
    "Submitted text with a tab\there and a line\nbreak.",
    "<p>C:\\Users\\student\\essay.docx &mdash; \"final\" version</p>",
    "<p>Matemáticas — ecuación x² + y² = r², 数学, 🎓</p>",
    "\\.",
    "",
    "<p>Line one</p>\r\n<p>Line two</p>",
];

/// JSON documents kept in string columns (settings, scopes, rubric data, LTI extensions).
pub(super) const JSON_TEXTS: &[&str] = &[
    "{}",
    "[]",
    "[\"url:GET|/api/v1/courses\",\"url:GET|/api/v1/users/:user_id/profile\"]",
    "{\"selection_width\":800,\"selection_height\":400}",
    "[{\"id\":12,\"type\":\"must_view\"},{\"id\":13,\"type\":\"min_score\",\"min_score\":7.5}]",
    "{\"https://canvas.instructure.com/lti/submission_type\":{\"type\":\"external_tool\",\"external_tool_url\":\"https://tool.example.com/launch\"}}",
    "[[\"A\",0.94],[\"A-\",0.9],[\"B+\",0.87],[\"B\",0.84],[\"F\",0.0]]",
    "{\"note\":\"tab\\there, line\\nbreak, back\\\\slash, \\\"quotes\\\" and caf\u{e9}\"}",
];

/// Browsers' user agents (all shorter than 255 characters, the column's `maxLength`).
pub(super) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "candroid/7.8.0 (Android 14; Pixel 8)",
    "iCanvas/7.12 (com.instructure.icanvas; build:2; iOS 17.4.1) Alamofire/5.9.1",
    "python-requests/2.31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 \"quoted\"\\app",
];

pub(super) const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
    "Zoë", "José",
];

pub(super) const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "O'Brien", "Núñez",
];

pub(super) const ZONES: &[&str] = &[
    "America/Denver",
    "America/New_York",
    "Europe/London",
    "Europe/Budapest",
    "Australia/Sydney",
    "Etc/UTC",
];

pub(super) const LOCALES: &[&str] = &["en", "en-GB", "es", "fr-CA", "hu", "ja", "pt-BR"];

pub(super) const SUBJECTS: &[&str] = &["MATH", "HIST", "CS", "BIO", "ART", "PHYS", "ENGL"];

/// The item of `items` that `h` picks.
pub(super) fn pick<'a>(items: &[&'a str], h: u64) -> &'a str {
    items[(h % items.len() as u64) as usize]
}
