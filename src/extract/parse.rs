//! An answer's body parsed once, for the step's JSONPaths: only the top-level members they
//! read, each object and list allocated to its size.
//!
//! A gateway job's answer can be tens of MB: a list of hundreds of thousands of objects. Parsed
//! as `serde_json` does it by default, each small object costs about 600 bytes (an index map
//! with room for three members, a hash table, its strings), so the tree is about eight times
//! the body. Two things make it smaller: a member of the top-level object that no path reads
//! is skipped, not built (a step whose outputs are `$.status` does not build the object
//! list); and every object and list is built at its size, which takes a third off the rest.
//! The result is the same JSON (same members in the same order, the last of duplicate keys);
//! the whole body is still checked for syntax.

use std::collections::BTreeSet;
use std::fmt;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

/// Which members of the top-level object `paths` read: `None` when one of them may read any
/// (`$`, `$.*`, `$..id`, `$[0]`).
pub fn members<'a>(paths: impl IntoIterator<Item = &'a JpQuery>) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for q in paths {
        match q.segments.first() {
            Some(Segment::Selector(Selector::Name(n))) => {
                names.insert(n.clone());
            }
            _ => return None,
        }
    }
    Some(names)
}

/// Parses `body`, building only the top-level members in `members` (all with `None`); a body
/// whose top level is not an object is built whole.
pub fn parse(body: &[u8], members: Option<&BTreeSet<String>>) -> serde_json::Result<Json> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Top { members }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The top level: an object keeps only `members`.
struct Top<'a> {
    members: Option<&'a BTreeSet<String>>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Json;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
        object(map, self.members)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Json, A::Error> {
        Compact.visit_seq(seq)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Json, E> {
        Compact.visit_bool(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Json, E> {
        Compact.visit_i64(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Json, E> {
        Compact.visit_u64(v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json, E> {
        Compact.visit_f64(v)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Json, E> {
        Compact.visit_str(v)
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Json, E> {
        Compact.visit_string(v)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Json, E> {
        Compact.visit_unit()
    }
}

/// Any value below the top, built at its size.
struct Compact;

impl<'de> DeserializeSeed<'de> for Compact {
    type Value = Json;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Compact {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json, E> {
        // serde_json hands out only finite numbers; `from` maps anything else to null.
        Ok(Json::from(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Compact)? {
            items.push(v);
        }
        items.shrink_to_fit();
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
        object(map, None)
    }
}

/// An object of the members in `keep` (all with `None`), in their order, at its size. A key
/// given twice keeps its first place and its last value, as `serde_json::Map` does.
fn object<'de, A: MapAccess<'de>>(
    mut map: A,
    keep: Option<&BTreeSet<String>>,
) -> Result<Json, A::Error> {
    let mut members: Vec<(String, Json)> = Vec::new();
    while let Some(key) = map.next_key::<String>()? {
        if keep.is_some_and(|k| !k.contains(&key)) {
            map.next_value::<IgnoredAny>()?;
            continue;
        }
        let value = map.next_value_seed(Compact)?;
        members.push((key, value));
    }
    let mut out = Map::with_capacity(members.len());
    for (k, v) in members {
        out.insert(k, v);
    }
    Ok(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id": "j1", "status": "complete", "objects": [{"id": "a", "n": 1.5e3, "x": [true, null, -7]}, {"id": "b", "n": 18446744073709551615}], "dup": 1, "dup": {"k": "é\u00e9\n"}, "at": "2026-01-01T00:00:00Z"}"#;

    fn q(path: &str) -> JpQuery {
        crate::extract::compile(path).unwrap()
    }

    #[test]
    fn the_whole_body_parses_as_serde_json_parses_it() {
        let ours = parse(BODY.as_bytes(), None).unwrap();
        let theirs: Json = serde_json::from_str(BODY).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap(),
            "same members in the same order"
        );
        for other in ["[1, {\"a\": []}]", "\"text\"", "12", "null"] {
            assert_eq!(
                parse(other.as_bytes(), members([&q("$.a")]).as_ref()).unwrap(),
                serde_json::from_str::<Json>(other).unwrap()
            );
        }
    }

    #[test]
    fn only_the_members_the_paths_read_are_built() {
        let paths = [q("$.status"), q("$.objects[*].id"), q("$['dup']")];
        let names = members(&paths).unwrap();
        assert_eq!(
            names.iter().map(String::as_str).collect::<Vec<_>>(),
            ["dup", "objects", "status"]
        );
        let ours = parse(BODY.as_bytes(), Some(&names)).unwrap();
        let theirs: Json = serde_json::from_str(BODY).unwrap();
        let expected: Map<String, Json> = theirs
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| names.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(ours, Json::Object(expected));
        for p in &paths {
            assert_eq!(
                crate::extract::select(p, &ours),
                crate::extract::select(p, &theirs)
            );
        }
        for any in ["$", "$.*", "$..id", "$[0]", "$[*].id"] {
            assert_eq!(members([&q("$.status"), &q(any)]), None, "{any}");
        }
    }

    #[test]
    fn a_member_left_out_is_still_checked() {
        let names = members([&q("$.status")]).unwrap();
        for bad in [
            r#"{"status": "ok", "objects": [1, 2,]}"#,
            "{\"status\": \"ok\", \"objects\": \"a\u{1}b\"}",
            r#"{"status": "ok", "objects": "\x"}"#,
            r#"{"status": "ok"} trailing"#,
            r#"{"status": "ok", "objects": [1"#,
        ] {
            assert!(parse(bad.as_bytes(), Some(&names)).is_err(), "{bad}");
        }
        let deep = format!(
            "{{\"status\": 1, \"x\": {}{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        // Skipped without recursion (no stack to overflow), built with serde_json's limit.
        let _ = parse(deep.as_bytes(), Some(&names));
        assert!(parse(deep.as_bytes(), None).is_err(), "nesting limit");
    }
}
