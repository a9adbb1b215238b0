//! One `[[step]]`: its id, its loop, and the order in which its parts are validated, each
//! against the names it may use. The request (and `when`, `incremental`) sees the shared scope
//! plus the loop variable; what runs after the response (polling, checks, saves, downloads,
//! persist) also sees the step's own outputs and `let` values. What the step defines is then
//! added to the shared scope for the steps after it.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::request::request_parts;
use super::scope::{Later, Name, Names, Scope, Shape};
use super::{Validator, is_identifier};
use crate::diagnostic::Diagnostic;
use crate::job::model::{Loop, LoopRecord, SaveWhat, Step};
use crate::job::raw::RawStep;
use crate::template::Escape;

/// A step's loop, as validation made it.
struct LoopPart {
    /// The loop (`None` without `for_each`, or when its expression is broken).
    loop_: Option<Loop>,
    /// What is known of the loop variable.
    item_shape: Shape,
    /// The loop variable and `index`, for the step's own templates.
    local: Vec<(String, Name)>,
    /// False when `for_each` does not compile.
    ok: bool,
}

impl Validator {
    /// Validates one step and adds what it defines to `scope`.
    pub(super) fn step(
        &mut self,
        index: usize,
        rs: RawStep,
        scope: &mut Scope,
        later: &Later,
        default_concurrency: usize,
    ) -> Option<Step> {
        let id = rs.id.value.clone();
        let mut ok = true;
        if !is_identifier(&id) {
            self.error(
                Diagnostic::at(
                    rs.id.span.clone(),
                    format!("step id `{id}` is not a valid identifier"),
                )
                .help("use letters, digits and `_`, starting with a letter"),
            );
            ok = false;
        }

        let LoopPart {
            loop_,
            item_shape,
            local,
            ok: loop_ok,
        } = self.step_loop(index, &rs, &id, scope, later, default_concurrency);
        ok &= loop_ok;

        // The request sees the scope with the loop variable; what runs after the response
        // (checks, saves, polling, downloads, persist) also sees the step's own outputs.
        let request_names = Names {
            scope,
            local: &local,
            later,
            at: index,
            step: Some(&id),
        };

        let request = self.request(&rs, &id, request_names);
        ok &= request.ok;

        let load = match &rs.load {
            Some(l) => {
                let load = self.load_step(&rs, l, &id, request_names);
                ok &= load.is_some();
                load
            }
            None => None,
        };

        let incremental = rs
            .incremental
            .as_ref()
            .and_then(|e| self.checked_expr(e, request_names));
        let when = rs
            .when
            .as_ref()
            .and_then(|e| self.checked_expr(e, request_names));

        let (outputs, mut own) = self.outputs(&rs, &id, request_names);
        // A mistyped `outputs` or `let` (`outptus`) still defines its names.
        for name in self
            .misspelt(Some(index), &["outputs", "let"])
            .unwrap_or_default()
        {
            own.push((name, Name::Output { step: id.clone() }));
        }
        let with_outputs: Vec<(String, Name)> = local.iter().cloned().chain(own.clone()).collect();
        let (lets, let_own) = self.lets(&rs, &id, &with_outputs, request_names);
        own.extend(let_own);
        if load.is_some() {
            own.extend(
                crate::job::model::LOAD_OUTPUTS
                    .iter()
                    .map(|n| (n.to_string(), Name::Output { step: id.clone() })),
            );
        }
        let after: Vec<(String, Name)> = local.iter().cloned().chain(own.clone()).collect();
        let after_names = Names {
            local: &after,
            ..request_names
        };

        let poll = rs.poll.as_ref().and_then(|p| self.poll(p, after_names));

        let checks = match &rs.check {
            Some(c) => self.checks(c, after_names),
            None => Vec::new(),
        };

        let saves = match &rs.save {
            Some(s) => self.saves(s, after_names, &outputs, &lets),
            None => Vec::new(),
        };
        if !request.sends
            && let Some(sp) = &rs.save
            && saves.iter().any(|s| matches!(s.what, SaveWhat::Body))
        {
            self.error(
                Diagnostic::at(
                    sp.span.clone(),
                    format!("step `{id}` sends no request, so it has no response body to save"),
                )
                .help("save a value: `save = { to = \"path\", output = \"name\" }`"),
            );
        }

        let download = rs
            .download
            .as_ref()
            .and_then(|d| self.download(d, &id, &after, after_names));
        let persist = self.persist(&rs, &id, scope, after_names);

        // What later steps see.
        if let Some(l) = &loop_ {
            // The same record the run builds (runner::run_item): the item's fields or the item
            // under its name, `index` unless the item has one, then the outputs.
            let mut fields: BTreeMap<String, Shape> = match (l.record, &item_shape) {
                (LoopRecord::Fields, Shape::Table(f)) => f.clone(),
                _ => [(l.var.clone(), item_shape.clone())].into_iter().collect(),
            };
            fields.entry("index".into()).or_insert(Shape::Scalar);
            fields.extend(outputs.iter().map(|o| (o.name.clone(), Shape::Unknown)));
            fields.extend(lets.iter().map(|(n, _)| (n.clone(), Shape::Unknown)));
            fields.extend(own.iter().map(|(n, _)| (n.clone(), Shape::Unknown)));
            if load.is_some() {
                fields.extend(
                    crate::job::model::LOAD_OUTPUTS
                        .iter()
                        .map(|n| (n.to_string(), Shape::Unknown)),
                );
            }
            if scope.names.contains_key(&id) {
                self.error(Diagnostic::at(
                    rs.id.span.clone(),
                    format!("step id `{id}` is already the name of a variable or output"),
                ));
            }
            scope.names.insert(id.clone(), Name::Step { fields });
        } else {
            scope.names.extend(own);
        }

        if !ok {
            return None;
        }
        let request_target = match (request.sends, request.target) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => return None,
        };
        Some(Step {
            id,
            description: rs.description,
            request: request_target,
            when,
            lets,
            query: request.query,
            headers: request.headers,
            body: request.body,
            incremental,
            for_each: loop_,
            outputs,
            poll,
            checks,
            saves,
            download,
            persist,
            load,
        })
    }

    /// The step's `for_each`, `as` and `concurrency`.
    fn step_loop(
        &mut self,
        index: usize,
        rs: &RawStep,
        id: &str,
        scope: &Scope,
        later: &Later,
        default_concurrency: usize,
    ) -> LoopPart {
        let mut ok = true;
        let mut item_shape = Shape::Unknown;
        let mut loop_ = None;
        // The step's own names, on top of the shared scope: loop variable and `index`, then its
        // outputs.
        let mut local: Vec<(String, Name)> = Vec::new();
        if let Some(fe) = &rs.for_each {
            let var = rs
                .as_
                .as_ref()
                .map_or("item".to_owned(), |a| a.value.clone());
            if let Some(a) = &rs.as_
                && (!is_identifier(&a.value) || scope.names.contains_key(&a.value))
            {
                self.error(
                    Diagnostic::at(
                        a.span.clone(),
                        format!("`{}` cannot be used as the loop variable", a.value),
                    )
                    .help("choose a name that is not a variable, an output or a step id"),
                );
            }
            let names = Names {
                scope,
                local: &[],
                later,
                at: index,
                step: Some(id),
            };
            if let Some(e) = self.checked_expr(fe, names) {
                let (record, shape) = self.loop_record(scope, fe.value.trim());
                item_shape = shape;
                let concurrency = match &rs.concurrency {
                    Some(c) => self.count(c, "concurrency", crate::job::schema::CONCURRENCY),
                    None => Some(default_concurrency),
                };
                loop_ = Some(Loop {
                    over: e,
                    var: var.clone(),
                    concurrency: concurrency.unwrap_or(1),
                    record,
                    label: None,
                });
            } else {
                ok = false;
            }
            local.push((
                var.clone(),
                Name::Item {
                    shape: Rc::new(item_shape.clone()),
                },
            ));
            local.push(("index".into(), Name::Builtin));
            if let Some(lb) = &rs.label {
                let names = Names {
                    scope,
                    local: &local,
                    later,
                    at: index,
                    step: Some(id),
                };
                let t = self.checked_template("label", &lb.value, &lb.span, Escape::None, names);
                if let Some(l) = &mut loop_ {
                    l.label = t;
                }
            }
        } else if self.misspelt(Some(index), &["for_each"]).is_some() {
            // A mistyped `for_each` (`foreach`): the step's templates still have the loop
            // variable, so that its typo is the one problem reported.
            let var = rs
                .as_
                .as_ref()
                .map_or("item".to_owned(), |a| a.value.clone());
            local.push((
                var,
                Name::Item {
                    shape: Rc::new(Shape::Unknown),
                },
            ));
            local.push(("index".into(), Name::Builtin));
        } else if let Some(a) = &rs.as_ {
            self.error(Diagnostic::at(
                a.span.clone(),
                "`as` names the loop variable, but the step has no `for_each`",
            ));
        } else if let Some(c) = &rs.concurrency {
            self.error(Diagnostic::at(
                c.span.clone(),
                "`concurrency` applies to loops, but the step has no `for_each`",
            ));
        }
        if rs.for_each.is_none()
            && let Some(lb) = &rs.label
        {
            self.error(Diagnostic::at(
                lb.span.clone(),
                "`label` names the items of a loop, but the step has no `for_each`",
            ));
        }
        LoopPart {
            loop_,
            item_shape,
            local,
            ok,
        }
    }

    /// A `load` step: its table templates. It sends no request of its own (`request` is
    /// `None`): the loader makes its requests.
    fn load_step(
        &mut self,
        rs: &RawStep,
        l: &crate::job::raw::RawLoad,
        id: &str,
        names: Names<'_>,
    ) -> Option<crate::job::model::Load> {
        // Headers go with the loader's requests.
        let own_requests = request_parts(rs)
            .into_iter()
            .filter(|(key, _)| *key != "headers");
        for (key, span) in own_requests {
            if let Some(span) = span {
                self.error(
                    Diagnostic::at(span, format!("step `{id}` has both `load` and `{key}`"))
                        .help("a `load` step makes its own requests (schema, query job, objects); move the request to a step of its own"),
                );
            }
        }
        let hint = |what: &str| format!("step.{id}.{what}");
        // Names, not path segments: the loader encodes them once where it builds a path.
        let ns = self.checked_template(
            &hint("load.namespace"),
            &l.namespace.value,
            &l.namespace.span,
            Escape::None,
            names,
        );
        let table = self.checked_template(
            &hint("load.table"),
            &l.table.value,
            &l.table.span,
            Escape::None,
            names,
        );
        match (ns, table) {
            (Some(namespace), Some(table)) => Some(crate::job::model::Load {
                namespace,
                table,
                keep_downloads: l.keep_downloads.unwrap_or(false),
                order: l.order.unwrap_or_default(),
            }),
            _ => None,
        }
    }
}
