//! An output's value as everything after the extraction reads it: the item's record, the
//! reports, saved files, the item's templates, later steps and loops. One JSON tree behind an
//! `Arc`, or the answer's own text ([`super::raw`]), never copied: a template sees it through a
//! view ([`SharedJson`] is a minijinja object) that makes a template value only of what a
//! template reaches (a string, a number), and a nested object or list is another view of the
//! same tree or text; a report or a save writes it from where it is.
//!
//! Without it, each output was held twice for the whole run, as JSON for the records and as
//! a converted copy for the templates: an output of 600,000 objects cost more than the parse.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectExt as _, ObjectRepr, Value};
use serde_json::Value as Json;

use super::raw::{Kind, RawNode};

/// One step from a value towards a value inside it: an object member or an array position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An object's member.
    Name(String),
    /// An array's element.
    Index(usize),
}

/// The value at `route` under `at`, if there is one.
pub fn walk<'a>(mut at: &'a Json, route: &[Route]) -> Option<&'a Json> {
    for step in route {
        at = match step {
            Route::Name(n) => at.as_object()?.get(n.as_str())?,
            Route::Index(i) => at.as_array()?.get(*i)?,
        };
    }
    Some(at)
}

/// A JSON value shared, not copied: a tree and the route from its root to the value, or the
/// answer's own text ([`RawNode`]).
#[derive(Clone)]
pub struct SharedJson(Inner);

#[derive(Clone)]
enum Inner {
    Tree {
        base: Arc<Json>,
        route: Arc<[Route]>,
    },
    Raw(Arc<RawNode>),
}

static NULL: Json = Json::Null;

impl SharedJson {
    /// A value of its own.
    pub fn new(value: Json) -> Self {
        SharedJson(Inner::Tree {
            base: Arc::new(value),
            route: Arc::from([]),
        })
    }

    /// A value read from its text where it is (an object or a list: a scalar is a tree).
    pub fn raw(node: Arc<RawNode>) -> Self {
        match node.kind() {
            Kind::Scalar => SharedJson::new(node.to_json()),
            _ => SharedJson(Inner::Raw(node)),
        }
    }

    /// The value at `route` inside `self` (`None` when there is none), sharing its tree.
    pub fn within(&self, route: &[Route]) -> Option<Self> {
        match &self.0 {
            Inner::Tree { base, route: mine } => {
                walk(self.tree()?, route)?;
                let full: Vec<Route> = mine.iter().chain(route).cloned().collect();
                Some(SharedJson(Inner::Tree {
                    base: base.clone(),
                    route: full.into(),
                }))
            }
            Inner::Raw(node) => {
                let mut at = node.clone();
                for step in route {
                    at = match step {
                        Route::Name(n) => at.member(n)?,
                        Route::Index(i) => at.element(*i)?,
                    };
                }
                Some(SharedJson::raw(at))
            }
        }
    }

    fn tree(&self) -> Option<&Json> {
        match &self.0 {
            // A route is checked when the view is made, and the tree never changes after.
            Inner::Tree { base, route } => Some(walk(base, route).unwrap_or(&NULL)),
            Inner::Raw(_) => None,
        }
    }

    /// The value as a tree: the tree itself, or one built from the text (for a message or a
    /// consumer that needs a tree; templates, reports and saves read the text where it is).
    pub fn to_json(&self) -> Json {
        match &self.0 {
            Inner::Tree { .. } => self.tree().cloned().unwrap_or(Json::Null),
            Inner::Raw(node) => node.to_json(),
        }
    }

    /// The value when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        self.tree()?.as_str()
    }

    /// Whether `self` and `other` are views of the same tree or text (not only equal values).
    pub fn shares_tree_with(&self, other: &SharedJson) -> bool {
        match (&self.0, &other.0) {
            (Inner::Tree { base: a, .. }, Inner::Tree { base: b, .. }) => Arc::ptr_eq(a, b),
            (Inner::Raw(a), Inner::Raw(b)) => a.shares_buffer_with(b),
            _ => false,
        }
    }

    /// Whether the value is kept as the answer's text rather than as a tree.
    pub fn is_text(&self) -> bool {
        matches!(self.0, Inner::Raw(_))
    }

    /// The value for templates: a string, number, boolean or none as itself, an object or a
    /// list as a view of this tree or text.
    pub fn to_template(&self) -> Value {
        match &self.0 {
            Inner::Tree { .. } => match self.tree().and_then(scalar) {
                Some(v) => v,
                None => Value::from_object(self.clone()),
            },
            Inner::Raw(_) => Value::from_object(self.clone()),
        }
    }

    fn child(&self, value: &Json, step: Route) -> Value {
        match scalar(value) {
            Some(v) => v,
            None => {
                let Inner::Tree { base, route } = &self.0 else {
                    return Value::UNDEFINED;
                };
                let route: Vec<Route> = route.iter().cloned().chain([step]).collect();
                Value::from_object(SharedJson(Inner::Tree {
                    base: base.clone(),
                    route: route.into(),
                }))
            }
        }
    }
}

/// A node's value for templates: a scalar as itself, an object or a list as a view.
fn raw_template(node: Arc<RawNode>) -> Value {
    match node.kind() {
        Kind::Scalar => scalar(&node.to_json()).unwrap_or_default(),
        _ => Value::from_object(SharedJson(Inner::Raw(node))),
    }
}

/// A scalar as a template value, as minijinja's serde conversion makes it; `None` for an
/// object or a list.
fn scalar(value: &Json) -> Option<Value> {
    Some(match value {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(_) | Json::Object(_) => return None,
    })
}

impl Object for SharedJson {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match &self.0 {
            Inner::Raw(node) if node.kind() == Kind::Array => ObjectRepr::Seq,
            Inner::Raw(_) => ObjectRepr::Map,
            Inner::Tree { .. } => match self.tree() {
                Some(Json::Array(_)) => ObjectRepr::Seq,
                _ => ObjectRepr::Map,
            },
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Inner::Raw(node) = &self.0 {
            return match node.kind() {
                Kind::Object => node.member(key.as_str()?).map(raw_template),
                Kind::Array => node.element(key.as_usize()?).map(raw_template),
                Kind::Scalar => None,
            };
        }
        match self.tree()? {
            Json::Object(m) => {
                let name = key.as_str()?;
                let v = m.get(name)?;
                Some(self.child(v, Route::Name(name.to_owned())))
            }
            Json::Array(items) => {
                let i = key.as_usize()?;
                Some(self.child(items.get(i)?, Route::Index(i)))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if let Inner::Raw(node) = &self.0 {
            return match node.kind() {
                Kind::Array => Enumerator::Seq(node.len()),
                Kind::Object => self.mapped_enumerator(|this| match &this.0 {
                    Inner::Raw(node) => {
                        Box::new(node.members().iter().map(|(k, _)| Value::from(k.as_str())))
                    }
                    Inner::Tree { .. } => Box::new(std::iter::empty()),
                }),
                Kind::Scalar => Enumerator::Empty,
            };
        }
        match self.tree() {
            Some(Json::Array(items)) => Enumerator::Seq(items.len()),
            Some(Json::Object(_)) => self.mapped_enumerator(|this| match this.tree() {
                Some(Json::Object(m)) => Box::new(m.keys().map(|k| Value::from(k.as_str()))),
                _ => Box::new(std::iter::empty()),
            }),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        if let Inner::Raw(node) = &self.0 {
            return Some(node.len());
        }
        match self.tree() {
            Some(Json::Array(items)) => Some(items.len()),
            Some(Json::Object(m)) => Some(m.len()),
            _ => Some(0),
        }
    }
}

impl serde::Serialize for SharedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Inner::Tree { .. } => self.tree().unwrap_or(&NULL).serialize(s),
            Inner::Raw(node) => node.serialize(s),
        }
    }
}

impl PartialEq for SharedJson {
    fn eq(&self, other: &Self) -> bool {
        match (self.tree(), other.tree()) {
            (Some(a), Some(b)) => a == b,
            _ => self.to_json() == other.to_json(),
        }
    }
}

impl fmt::Debug for SharedJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedJson({})", super::short_json(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(expr: &str, v: Value) -> String {
        let mut env = minijinja::Environment::new();
        env.add_template("t", expr).unwrap();
        env.get_template("t")
            .unwrap()
            .render(minijinja::context! { v => v })
            .unwrap()
    }

    #[test]
    fn templates_read_a_view_as_they_read_a_converted_copy() {
        let tree = json!({
            "objects": [{"id": "a", "n": 1}, {"id": "b", "n": -2.5}],
            "empty": [],
            "none": null,
            "yes": true,
            "nested": {"k": [[1, 2], {"x": "é"}]},
        });
        let copied = Value::from(minijinja::value::Serde(&tree));
        let text = bytes::Bytes::from(serde_json::to_vec_pretty(&tree).unwrap());
        let raw = SharedJson::raw(RawNode::new(text).unwrap());
        assert!(raw.is_text());
        for expr in [
            "{{ v.objects[0].id }}",
            "{{ v.objects[-1].n }}",
            "{{ v.objects | length }}",
            "{{ v | length }}",
            "{% for k in v %}{{ k }},{% endfor %}",
            "{% for o in v.objects %}{{ o.id }}={{ o.n }};{% endfor %}",
            "{{ v.objects | map(attribute='id') | join(',') }}",
            "{{ v.objects | tojson }}",
            "{{ v | tojson }}",
            "{{ v.objects }}",
            "{{ v.empty is sequence }} {{ v is mapping }} {{ v.none is none }} {{ v.yes }}",
            "{{ 'objects' in v }} {{ v.objects[0] == {'id': 'a', 'n': 1} }}",
            "{{ v.empty or 'empty' }} {{ v.missing is undefined }}",
            "{{ v.nested.k[0][1] }} {{ v.nested.k[-1].x }} {{ v.nested.k | length }}",
            "{{ v.nested }} {{ v.nested | tojson }} {{ v.objects[5] is undefined }}",
            "{% for k, x in v.nested | items %}{{ k }}={{ x }};{% endfor %}",
        ] {
            for (kind, shared) in [
                ("tree", SharedJson::new(tree.clone())),
                ("text", raw.clone()),
            ] {
                assert_eq!(
                    render(expr, shared.to_template()),
                    render(expr, copied.clone()),
                    "{kind}: {expr}"
                );
            }
        }
    }

    #[test]
    fn views_share_the_tree() {
        let shared = SharedJson::new(json!({"objects": [{"id": "a"}]}));
        let inner = shared
            .within(&[Route::Name("objects".into()), Route::Index(0)])
            .unwrap();
        assert!(inner.shares_tree_with(&shared));
        assert_eq!(inner.to_json(), json!({"id": "a"}));
        assert_eq!(serde_json::to_value(&inner).unwrap(), json!({"id": "a"}));
        assert!(shared.within(&[Route::Name("nothing".into())]).is_none());
        let from_template = shared.to_template().get_attr("objects").unwrap();
        let view = from_template
            .downcast_object_ref::<SharedJson>()
            .expect("a list is a view, not a copy");
        assert!(view.shares_tree_with(&shared));
    }
}
