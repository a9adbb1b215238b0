//! What templates and expressions may use: the names in scope at each step and what each
//! stands for ([`Name`]), what is known of a value's fields ([`Shape`]), and the check that
//! reports every variable a template uses that nothing defines.
//!
//! Each step sees `[vars]`, `env`, `state`, the outputs of earlier steps that do not loop, and
//! the ids of earlier looped steps (each a list of its successful items). A looped step also
//! sees its loop variable (default `item`) and `index`. Checks, saves, polling, downloads and
//! `persist` also see the step's own outputs; downloads see `part`. The shared [`Scope`] grows
//! one step at a time and is never copied; a step's few own names sit on top of it
//! ([`Names`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::rc::Rc;

use serde_json::Value as Json;

use super::{Validator, suggest};
use crate::diagnostic::Diagnostic;
use crate::job::model::LoopRecord;
use crate::template::BUILTIN_NAMES;

/// What a name in scope stands for (for messages and field checks).
#[derive(Debug)]
pub(super) enum Name {
    Builtin,
    Var,
    Output {
        step: String,
    },
    /// A looped step's id: the list of its records, each a table of these fields.
    Step {
        fields: BTreeMap<String, Shape>,
    },
    /// A loop variable (shared: the step's own names copy it a few times).
    Item {
        shape: Rc<Shape>,
    },
    State {
        keys: BTreeSet<String>,
    },
}

/// Written out so the tests can count copies: validation must copy a bounded number of names
/// per step, whatever the number of steps.
impl Clone for Name {
    fn clone(&self) -> Self {
        #[cfg(test)]
        super::tests::NAMES_COPIED.with(|n| n.set(n.get() + 1));
        match self {
            Name::Builtin => Name::Builtin,
            Name::Var => Name::Var,
            Name::Output { step } => Name::Output { step: step.clone() },
            Name::Step { fields } => Name::Step {
                fields: fields.clone(),
            },
            Name::Item { shape } => Name::Item {
                shape: shape.clone(),
            },
            Name::State { keys } => Name::State { keys: keys.clone() },
        }
    }
}

/// What validation knows of a value's shape, to check the fields a template reads from it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Shape {
    /// Not known before the run (an output, an expression): any field passes.
    Unknown,
    /// A plain value (string, number, boolean): it has no fields.
    Scalar,
    /// A table with these fields.
    Table(BTreeMap<String, Shape>),
}

impl Shape {
    pub(super) fn of(v: &Json) -> Shape {
        match v {
            Json::Object(m) => {
                Shape::Table(m.iter().map(|(k, v)| (k.clone(), Shape::of(v))).collect())
            }
            Json::Array(_) | Json::Null => Shape::Unknown,
            _ => Shape::Scalar,
        }
    }

    /// What two values surely share: the fields both have.
    pub(super) fn common(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Table(a), Shape::Table(mut b)) => Shape::Table(
                a.into_iter()
                    .filter_map(|(k, v)| b.remove(&k).map(|w| (k, v.common(w))))
                    .collect(),
            ),
            (Shape::Scalar, Shape::Scalar) => Shape::Scalar,
            _ => Shape::Unknown,
        }
    }
}

/// The names every step sees: builtins, `[vars]`, `state`, and what earlier steps defined.
/// It grows by one step's names at a time and is never copied, so validation stays linear in
/// the number of steps (issue 12, defect 8).
#[derive(Debug, Default)]
pub(super) struct Scope {
    pub(super) names: BTreeMap<String, Name>,
}

/// Names a step defines, in order, each with what it stands for.
pub(super) type Defined = Vec<(String, Name)>;

/// Each name a step defines, with the position of the first step that defines it: at step `i`
/// the names first defined after `i` "run later".
pub(super) type Later = BTreeMap<String, (usize, String)>;

/// What a template or expression may use, and what its messages name: the shared scope, the
/// few names of the step itself on top of it (loop variable, `index`, own outputs, `part`),
/// the names later steps define ("runs later" hints) and the step it belongs to.
#[derive(Clone, Copy)]
pub(super) struct Names<'a> {
    pub(super) scope: &'a Scope,
    pub(super) local: &'a [(String, Name)],
    pub(super) later: &'a Later,
    /// The position of the step these names are for.
    pub(super) at: usize,
    pub(super) step: Option<&'a str>,
}

impl<'a> Names<'a> {
    /// What `name` stands for here: the step's own names first, then the shared scope.
    pub(super) fn get(&self, name: &str) -> Option<&'a Name> {
        match self.local.iter().rev().find(|(k, _)| k == name) {
            Some((_, n)) => Some(n),
            None => self.scope.names.get(name),
        }
    }

    /// Every name in scope, for "did you mean" suggestions.
    pub(super) fn all(&self) -> impl Iterator<Item = &'a str> {
        let local = self.local.iter().map(|(k, _)| k.as_str());
        local.chain(self.scope.names.keys().map(String::as_str))
    }

    /// The step that defines `name`, if it runs after this one.
    pub(super) fn later(&self, name: &str) -> Option<&'a str> {
        self.later
            .get(name)
            .filter(|(i, _)| *i > self.at)
            .map(|(_, step)| step.as_str())
    }
}

impl Validator {
    /// Reports every variable a template or expression uses that its scope does not define.
    pub(super) fn check_names(
        &mut self,
        used: HashSet<String>,
        names: Names<'_>,
        span: &Range<usize>,
    ) {
        let step = names.step;
        let mut used: Vec<String> = used.into_iter().collect();
        used.sort();
        let mut reported = BTreeSet::new();
        for path in used {
            let mut parts = path.split('.');
            let first = parts.next().unwrap_or_default().to_owned();
            let second = parts.next();
            if BUILTIN_NAMES.contains(&first.as_str()) {
                continue;
            }
            let where_ = step.map(|s| format!(" in step `{s}`")).unwrap_or_default();
            match names.get(&first) {
                None => {
                    if !reported.insert(first.clone()) {
                        continue;
                    }
                    let at = self.find_word(span, &first);
                    let mut d = Diagnostic::at(at, format!("undefined variable `{first}`{where_}"));
                    if let Some(later_step) = names.later(&first) {
                        d = d
                            .label(format!(
                                "`{first}` comes from step `{later_step}`, which runs later"
                            ))
                            .help("a step can only use the outputs of steps before it");
                    } else if let Some(s) = suggest(&first, names.all()) {
                        d = d.label(format!("did you mean `{s}`?"));
                    } else {
                        d = d.help("define it in [vars], or as an output of an earlier step");
                    }
                    self.error(d);
                }
                Some(Name::Item { shape }) if second.is_some() => {
                    // Walk the path through what is known of the item.
                    let mut shape: &Shape = shape;
                    let mut at_path = first.clone();
                    for field in path.split('.').skip(1) {
                        let fields = match shape {
                            Shape::Unknown => break,
                            Shape::Scalar => None,
                            Shape::Table(f) => Some(f),
                        };
                        if let Some(next) = fields.and_then(|f| f.get(field)) {
                            shape = next;
                            at_path = format!("{at_path}.{field}");
                            continue;
                        }
                        if field.parse::<usize>().is_ok()
                            || !reported.insert(format!("{at_path}.{field}"))
                        {
                            break;
                        }
                        let at = self.find_word(span, field);
                        let mut d = Diagnostic::at(
                            at,
                            format!("`{at_path}` has no field `{field}`{where_}"),
                        );
                        d = match fields {
                            None => d.help(format!(
                                "`{at_path}` is a plain value (a string or number), not a table"
                            )),
                            Some(f) => match suggest(field, f.keys().map(String::as_str)) {
                                Some(s) => d.label(format!("did you mean `{s}`?")),
                                None if f.is_empty() => {
                                    d.help(format!("`{at_path}` has no fields"))
                                }
                                None => d.help(format!(
                                    "its fields are {}",
                                    f.keys()
                                        .map(|f| format!("`{f}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            },
                        };
                        self.error(d);
                        break;
                    }
                }
                Some(Name::State { keys }) if second.is_some() => {
                    let key = second.unwrap_or_default();
                    if keys.contains(key) || !reported.insert(path.clone()) {
                        continue;
                    }
                    let at = self.find_word(span, key);
                    let mut d = Diagnostic::at(at, format!("undefined state key `{key}`{where_}"));
                    d = match suggest(key, keys.iter().map(String::as_str)) {
                        Some(s) => d.label(format!("did you mean `{s}`?")),
                        None => d.help(format!("declare it in [state], e.g. `{key} = {{}}`")),
                    };
                    self.error(d);
                }
                Some(_) => {}
            }
        }
    }

    /// The span of `word` as a whole word inside `within`.
    pub(super) fn find_word(&self, within: &Range<usize>, word: &str) -> Range<usize> {
        let text = self.text(within);
        let bytes = text.as_bytes();
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut from = 0;
        while let Some(i) = text[from..].find(word) {
            let start = from + i;
            let end = start + word.len();
            let before_ok = start == 0 || !is_ident(bytes[start - 1]);
            let after_ok = end >= bytes.len() || !is_ident(bytes[end]);
            if before_ok && after_ok {
                return within.start + start..within.start + end;
            }
            from = start + 1;
        }
        within.clone()
    }

    /// The record of a loop's items, and what is known of the loop variable.
    pub(super) fn loop_record(&self, scope: &Scope, over: &str) -> (LoopRecord, Shape) {
        match scope.names.get(over) {
            Some(Name::Step { fields }) => (LoopRecord::Fields, Shape::Table(fields.clone())),
            Some(Name::Var) => match self.vars.get(over) {
                Some(Json::Array(items)) if !items.is_empty() => {
                    // What every item has: a check-passing template never meets a missing field.
                    let shape = items
                        .iter()
                        .map(Shape::of)
                        .reduce(Shape::common)
                        .unwrap_or(Shape::Unknown);
                    match shape {
                        Shape::Table(_) if items.iter().all(Json::is_object) => {
                            (LoopRecord::Fields, shape)
                        }
                        shape => (LoopRecord::Nested, shape),
                    }
                }
                _ => (LoopRecord::Nested, Shape::Unknown),
            },
            _ => (LoopRecord::Nested, Shape::Unknown),
        }
    }
}
