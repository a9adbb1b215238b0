//! How a log event's fields are written in the text formats (terminal and cron): the message,
//! then the other fields as `key=value`, as tracing-subscriber writes them, and then an
//! error's advice (the fields `note` and `help`) on lines of their own, the way rustc writes
//! them (`  = help: ...`). The advice stays data in the event, so the JSON format gives it as
//! fields of its own and never sees the terminal's formatting.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The text formats' field formatter.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFields;

/// The fields of one event, sorted into the message, the others and the advice.
#[derive(Default)]
struct Collected {
    message: Option<String>,
    others: String,
    note: Option<String>,
    help: Option<String>,
}

impl Visit for Collected {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            "note" => self.note = Some(value.to_owned()),
            "help" => self.help = Some(value.to_owned()),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "note" => self.note = Some(format!("{value:?}")),
            "help" => self.help = Some(format!("{value:?}")),
            name if name.starts_with("log.") => {}
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                let _ = write!(self.others, " {name}={value:?}");
            }
        }
    }
}

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut c = Collected::default();
        fields.record(&mut c);
        let others = match &c.message {
            Some(m) => {
                writer.write_str(m)?;
                c.others.as_str()
            }
            None => c.others.trim_start(),
        };
        writer.write_str(others)?;
        let text = crate::error::advice::render("", c.note.as_deref(), c.help.as_deref());
        writer.write_str(&text)
    }
}
