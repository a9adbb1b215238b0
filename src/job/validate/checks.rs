//! What a step verifies after its response: `poll` (repeat the request until an expression
//! holds) and `check` (expressions that must hold, with an optional message).

use std::time::Duration;

use super::Validator;
use super::scope::Names;
use crate::diagnostic::Diagnostic;
use crate::job::model::{Check, Poll};
use crate::job::raw::{RawPoll, Sp};
use crate::template::Escape;

impl Validator {
    /// A step's `poll`: its condition, interval and deadline.
    pub(super) fn poll(&mut self, p: &RawPoll, names: Names<'_>) -> Option<Poll> {
        let until = self.checked_expr(&p.until, names)?;
        let (min, max) = match &p.every {
            Some(e) => self.duration_range(e, "poll interval")?,
            None => (
                crate::poll::Schedule::DEFAULT.min,
                crate::poll::Schedule::DEFAULT.max,
            ),
        };
        let timeout = match &p.timeout {
            Some(t) => self.duration(t, "poll timeout")?,
            None => Duration::from_secs(3600),
        };
        Some(Poll {
            until,
            min,
            max,
            timeout,
        })
    }

    /// A step's `check`: one, a table with a message, or a list of them.
    pub(super) fn checks(&mut self, c: &Sp<toml::Value>, names: Names<'_>) -> Vec<Check> {
        let step = names.step.unwrap_or_default();
        let items: Vec<&toml::Value> = match &c.value {
            toml::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            let (that, message) = match item {
                toml::Value::String(s) => (s.clone(), None),
                toml::Value::Table(t) => {
                    self.only_keys(
                        t,
                        &["that", "message"],
                        &c.span,
                        "check",
                        "a check has `that` and `message`",
                    );
                    let Some(toml::Value::String(that)) = t.get("that") else {
                        self.error(Diagnostic::at(
                            c.span.clone(),
                            "a check table needs a `that` expression",
                        ));
                        continue;
                    };
                    let message = match t.get("message") {
                        Some(toml::Value::String(m)) => Some(m.clone()),
                        None => None,
                        Some(_) => {
                            self.error(Diagnostic::at(
                                c.span.clone(),
                                "a check's `message` must be a string",
                            ));
                            None
                        }
                    };
                    (that.clone(), message)
                }
                _ => {
                    self.error(Diagnostic::at(
                        c.span.clone(),
                        "a check is an expression string or a table with `that`",
                    ));
                    continue;
                }
            };
            let at = self.find_in(&c.span, &that);
            let that = Sp {
                value: that,
                span: at,
            };
            let Some(e) = self.checked_expr(&that, names) else {
                continue;
            };
            let message = message.and_then(|m| {
                let at = self.find_in(&c.span, &m);
                let hint = format!("step.{step}.check");
                self.checked_template(&hint, &m, &at, Escape::None, names)
            });
            out.push(Check { that: e, message });
        }
        out
    }
}
