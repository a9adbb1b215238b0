//! The files a step writes: `save` (the response body, or an output as JSON) and
//! `download` (URLs found in the response, streamed). Every path is a template under the
//! output folder: absolute paths and `..` are refused here, before any request.

use super::Validator;
use super::outputs::path_point;
use super::scope::{Name, Names};
use super::suggest;
use crate::diagnostic::Diagnostic;
use crate::job::model::{Download, JsonTemplate, Output, Save, SaveWhat};
use crate::job::raw::{RawDownload, Sp};
use crate::template::Escape;

impl Validator {
    /// A step's `save`: a path, a table with `to` and `output`, or a list of them.
    pub(super) fn saves(
        &mut self,
        s: &Sp<toml::Value>,
        names: Names<'_>,
        outputs: &[Output],
        lets: &[(String, JsonTemplate)],
    ) -> Vec<Save> {
        let step = names.step.unwrap_or_default();
        let items: Vec<&toml::Value> = match &s.value {
            toml::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            let (to, what) = match item {
                toml::Value::String(p) => (p.clone(), SaveWhat::Body),
                toml::Value::Table(t) => {
                    self.only_keys(
                        t,
                        &["to", "output"],
                        &s.span,
                        "save",
                        "a save has `to` and `output`",
                    );
                    let Some(toml::Value::String(to)) = t.get("to") else {
                        self.error(Diagnostic::at(
                            s.span.clone(),
                            "a save table needs a `to` path",
                        ));
                        continue;
                    };
                    let what = match t.get("output") {
                        None => SaveWhat::Body,
                        Some(toml::Value::String(o)) => {
                            // An output whose path is broken is still the step's (its
                            // error is reported where it is).
                            let own = names.local.iter().any(|(k, n)| {
                                k == o && matches!(n, Name::Output { step: s } if s == step)
                            });
                            if !outputs.iter().any(|x| &x.name == o)
                                && !lets.iter().any(|(n, _)| n == o)
                                && !own
                            {
                                let at = self.find_in(&s.span, o);
                                let mut d = Diagnostic::at(
                                    at,
                                    format!("step `{step}` has no output `{o}` to save"),
                                );
                                if let Some(sug) =
                                    suggest(o, outputs.iter().map(|x| x.name.as_str()))
                                {
                                    d = d.label(format!("did you mean `{sug}`?"));
                                }
                                self.error(d);
                            }
                            SaveWhat::Output(o.clone())
                        }
                        Some(_) => {
                            self.error(Diagnostic::at(
                                s.span.clone(),
                                "a save's `output` must be an output name",
                            ));
                            continue;
                        }
                    };
                    (to.clone(), what)
                }
                _ => {
                    self.error(Diagnostic::at(
                        s.span.clone(),
                        "`save` is a path, a table with `to`, or a list of them",
                    ));
                    continue;
                }
            };
            let at = self.find_in(&s.span, &to);
            self.check_save_path(&Sp {
                value: to.clone(),
                span: at.clone(),
            });
            let hint = format!("step.{step}.save");
            if let Some(t) = self.checked_template(&hint, &to, &at, Escape::FilePath, names) {
                out.push(Save { to: t, what });
            }
        }
        out
    }

    /// Save paths stay under the output folder: no absolute paths, no `..`.
    pub(super) fn check_save_path(&mut self, sp: &Sp<String>) {
        let p = sp.value.trim();
        if p.is_empty() {
            self.error(Diagnostic::at(sp.span.clone(), "the file path is empty"));
        } else if p.starts_with('/')
            || p.starts_with('\\')
            || p.starts_with('~')
            || (p.len() > 1 && p.as_bytes()[1] == b':')
        {
            self.error(
                Diagnostic::at(sp.span.clone(), format!("file path `{p}` is absolute"))
                    .help("file paths are relative to the output folder (`--output-dir`)"),
            );
        } else if p.split(['/', '\\']).any(|seg| seg.trim() == "..") {
            let at = self.find_in(&sp.span, "..");
            self.error(
                Diagnostic::at(at, format!("file path `{p}` leaves the output folder"))
                    .help("remove `..`: every file is written under the output folder"),
            );
        }
    }

    /// A step's `download`; `after` are the names its path template may use besides `part`.
    pub(super) fn download(
        &mut self,
        d: &RawDownload,
        id: &str,
        after: &[(String, Name)],
        after_names: Names<'_>,
    ) -> Option<Download> {
        let hint = |what: &str| format!("step.{id}.{what}");
        let query = match crate::extract::compile(&d.urls.value) {
            Ok(q) => q,
            Err(e) => {
                self.error(
                    Diagnostic::at(
                        path_point(&d.urls.span, &e),
                        format!("invalid JSONPath `{}` for download urls", d.urls.value),
                    )
                    .label(e.message),
                );
                return None;
            }
        };
        self.check_save_path(&d.to);
        let with_part: Vec<(String, Name)> = after
            .iter()
            .cloned()
            .chain([("part".to_owned(), Name::Builtin)])
            .collect();
        let names = Names {
            local: &with_part,
            ..after_names
        };
        let to = self.checked_template(
            &hint("download"),
            &d.to.value,
            &d.to.span,
            Escape::FilePath,
            names,
        )?;
        let concurrency = match &d.concurrency {
            Some(c) => self.count(c, "concurrency", crate::job::schema::DOWNLOAD_CONCURRENCY)?,
            None => 4,
        };
        let max_ratio = match &d.max_ratio {
            Some(r) => self.count(r, "max_ratio", crate::job::schema::MAX_RATIO)? as u32,
            None => crate::net::DEFAULT_MAX_RATIO,
        };
        Some(Download {
            urls: d.urls.value.clone(),
            query,
            to,
            decompress: d.decompress.unwrap_or(false),
            max_ratio,
            concurrency,
        })
    }
}
