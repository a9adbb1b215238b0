//! An output's value as everything after the extraction reads it: the item's record, the
//! reports, saved files, the item's templates, later steps and loops. One JSON tree behind an
//! `Arc`, never copied: a template sees it through a view ([`SharedJson`] is a minijinja
//! object) that makes a template value only of what a template reaches (a string, a number),
//! and a nested object or list is another view of the same tree.
//!
//! Without it, each output was held twice for the whole run, as JSON for the records and as
//! a converted copy for the templates: an output of 600,000 objects cost more than the parse.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectExt as _, ObjectRepr, Value};
use serde_json::Value as Json;

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

/// A JSON value shared, not copied: a tree and the route from its root to the value.
#[derive(Clone)]
pub struct SharedJson {
    base: Arc<Json>,
    route: Arc<[Route]>,
}

static NULL: Json = Json::Null;

impl SharedJson {
    /// A value of its own.
    pub fn new(value: Json) -> Self {
        SharedJson {
            base: Arc::new(value),
            route: Arc::from([]),
        }
    }

    /// The value at `route` inside `self` (`None` when there is none), sharing its tree.
    pub fn within(&self, route: &[Route]) -> Option<Self> {
        walk(self.json(), route)?;
        let full: Vec<Route> = self.route.iter().chain(route).cloned().collect();
        Some(SharedJson {
            base: self.base.clone(),
            route: full.into(),
        })
    }

    /// The value.
    pub fn json(&self) -> &Json {
        // A route is checked when the view is made, and the tree never changes after.
        walk(&self.base, &self.route).unwrap_or(&NULL)
    }

    /// Whether `self` and `other` are views of the same tree (not only equal values).
    pub fn shares_tree_with(&self, other: &SharedJson) -> bool {
        Arc::ptr_eq(&self.base, &other.base)
    }

    /// The value for templates: a string, number, boolean or none as itself, an object or a
    /// list as a view of this tree.
    pub fn to_template(&self) -> Value {
        match scalar(self.json()) {
            Some(v) => v,
            None => Value::from_object(self.clone()),
        }
    }

    fn child(&self, value: &Json, step: Route) -> Value {
        match scalar(value) {
            Some(v) => v,
            None => {
                let route: Vec<Route> = self.route.iter().cloned().chain([step]).collect();
                Value::from_object(SharedJson {
                    base: self.base.clone(),
                    route: route.into(),
                })
            }
        }
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
        match self.json() {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.json() {
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
        match self.json() {
            Json::Array(items) => Enumerator::Seq(items.len()),
            Json::Object(_) => self.mapped_enumerator(|this| match this.json() {
                Json::Object(m) => Box::new(m.keys().map(|k| Value::from(k.as_str()))),
                _ => Box::new(std::iter::empty()),
            }),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.json() {
            Json::Array(items) => Some(items.len()),
            Json::Object(m) => Some(m.len()),
            _ => Some(0),
        }
    }
}

impl serde::Serialize for SharedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

impl PartialEq for SharedJson {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl fmt::Debug for SharedJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedJson({})", super::short_json(self.json()))
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
        });
        let shared = SharedJson::new(tree.clone());
        let copied = Value::from(minijinja::value::Serde(&tree));
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
        ] {
            assert_eq!(
                render(expr, shared.to_template()),
                render(expr, copied.clone()),
                "{expr}"
            );
        }
    }

    #[test]
    fn views_share_the_tree() {
        let shared = SharedJson::new(json!({"objects": [{"id": "a"}]}));
        let inner = shared
            .within(&[Route::Name("objects".into()), Route::Index(0)])
            .unwrap();
        assert!(inner.shares_tree_with(&shared));
        assert_eq!(inner.json(), &json!({"id": "a"}));
        assert_eq!(serde_json::to_value(&inner).unwrap(), json!({"id": "a"}));
        assert!(shared.within(&[Route::Name("nothing".into())]).is_none());
        let from_template = shared.to_template().get_attr("objects").unwrap();
        let view = from_template
            .downcast_object_ref::<SharedJson>()
            .expect("a list is a view, not a copy");
        assert!(view.shares_tree_with(&shared));
    }
}
