//! An output's value kept as the answer's own text, read where it is: an object or a list an
//! output selects is not built as a tree but kept as a slice of the answer's body (one buffer,
//! shared, never copied), and what a template, a report or a save reads of it is found in
//! that text when it is read.
//!
//! A tree costs many times the text it is parsed from (a `serde_json` object of one short
//! member is about 370 bytes): an output `$.objects` of a 50 MB job answer held a 210 MiB tree
//! for the whole run. Kept as text it costs the body, which the parse needed anyway, and an
//! index of where each element starts (8 bytes an element) once something reads into it. A
//! list path (`$.objects[*].id`) keeps where each value it selected is, not copies of them.
//!
//! The body was checked as JSON before anything here reads it, so a slice is always one
//! whole JSON value; what is read from it is what `serde_json` reads (the same numbers, the
//! same strings, the last of a key given twice at the first's place).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde::de::{Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_json::value::RawValue;

// Places in a text are `u32`: an answer is buffered up to `MAX_BODY_BYTES`, far below 4 GiB.
const _: () = assert!(crate::net::MAX_BODY_BYTES <= u32::MAX as u64);

/// What kind of JSON value a text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{…}`
    Object,
    /// `[…]`, or a list of values gathered by a list path.
    Array,
    /// A string, number, boolean or `null`.
    Scalar,
}

/// One JSON value as text, with what has been read of it so far.
pub struct RawNode {
    /// The value's text; for a gathered list, the buffer its elements are in.
    text: Bytes,
    kind: Kind,
    /// Where the members or elements are (built when first read; given for a gathered list).
    index: OnceLock<Index>,
}

enum Index {
    /// Members in order: a key given twice keeps its first place and its last value.
    Object(Vec<(String, Arc<RawNode>)>),
    /// Each element's start and length in `text`.
    Array(Box<[(u32, u32)]>),
}

impl RawNode {
    /// The value `text` holds (whitespace around it ignored), if it is one: the caller checked
    /// it as JSON. `None` for text longer than 4 GiB, which no answer is (the net layer buffers
    /// at most `MAX_BODY_BYTES`).
    pub fn new(text: Bytes) -> Option<Arc<RawNode>> {
        if u32::try_from(text.len()).is_err() {
            return None;
        }
        let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
        let end = text.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
        let text = text.slice(start..end);
        let kind = match text.first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            _ => Kind::Scalar,
        };
        Some(Arc::new(RawNode {
            text,
            kind,
            index: OnceLock::new(),
        }))
    }

    /// A list of values that are at `ranges` (start, length) in `buffer`.
    pub fn list(buffer: Bytes, ranges: Vec<(u32, u32)>) -> Arc<RawNode> {
        Arc::new(RawNode {
            text: buffer,
            kind: Kind::Array,
            index: OnceLock::from(Index::Array(ranges.into_boxed_slice())),
        })
    }

    /// What kind of value this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The buffer the value is read from.
    pub fn buffer(&self) -> &Bytes {
        &self.text
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| match self.kind {
            Kind::Object => Index::Object(members(&self.text)),
            _ => Index::Array(elements(&self.text)),
        })
    }

    /// An object's member `name`.
    pub fn member(&self, name: &str) -> Option<Arc<RawNode>> {
        if self.kind != Kind::Object {
            return None;
        }
        match self.index() {
            Index::Object(m) => m.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            Index::Array(_) => None,
        }
    }

    /// An object's members, in order.
    pub fn members(&self) -> &[(String, Arc<RawNode>)] {
        match (self.kind, self.index()) {
            (Kind::Object, Index::Object(m)) => m,
            _ => &[],
        }
    }

    /// The number of elements of a list, or of members of an object (0 for a scalar).
    pub fn len(&self) -> usize {
        match (self.kind, self.index()) {
            (Kind::Scalar, _) => 0,
            (_, Index::Object(m)) => m.len(),
            (_, Index::Array(a)) => a.len(),
        }
    }

    /// Where a list's element `i` is in [`Self::buffer`].
    fn range(&self, i: usize) -> Option<(u32, u32)> {
        if self.kind != Kind::Array {
            return None;
        }
        match self.index() {
            Index::Array(a) => a.get(i).copied(),
            Index::Object(_) => None,
        }
    }

    /// A list's element `i`.
    pub fn element(&self, i: usize) -> Option<Arc<RawNode>> {
        let (start, len) = self.range(i)?;
        let (start, len) = (start as usize, len as usize);
        RawNode::new(self.text.slice(start..start + len))
    }

    /// The value as a tree (the whole of it: for a message or a test, or a consumer that
    /// needs a tree; a template or a report reads the text instead).
    pub fn to_json(&self) -> Json {
        match (self.kind, self.index.get()) {
            (Kind::Array, Some(Index::Array(ranges))) => Json::Array(
                ranges
                    .iter()
                    .map(|&(s, l)| parse_value(&self.text[s as usize..(s + l) as usize]))
                    .collect(),
            ),
            _ => parse_value(&self.text),
        }
    }

    /// Whether the text of `self` and `other` is in one buffer (one shares the other's).
    pub fn shares_buffer_with(&self, other: &RawNode) -> bool {
        let a = self.text.as_ptr_range();
        let b = other.text.as_ptr_range();
        (a.start <= b.start && b.end <= a.end) || (b.start <= a.start && a.end <= b.end)
    }

    /// Where `inner`'s text starts in `self`'s, when it is inside it.
    fn offset_of(&self, inner: &RawNode) -> Option<(u32, u32)> {
        let outer = self.text.as_ptr_range();
        let at = inner.text.as_ptr_range();
        if outer.start <= at.start && at.end <= outer.end {
            let start = at.start as usize - outer.start as usize;
            Some((start as u32, inner.text.len() as u32))
        } else {
            None
        }
    }
}

impl serde::Serialize for RawNode {
    /// Written from the text, member by member: the same as the tree `serde_json` would
    /// parse it into, without building it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeSeq as _};
        match self.kind {
            Kind::Scalar => parse_value(&self.text).serialize(s),
            Kind::Object => {
                let members = self.members();
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v.as_ref())?;
                }
                map.end()
            }
            Kind::Array => {
                let len = self.len();
                let mut seq = s.serialize_seq(Some(len))?;
                for i in 0..len {
                    if let Some(e) = self.element(i) {
                        seq.serialize_element(e.as_ref())?;
                    }
                }
                seq.end()
            }
        }
    }
}

impl fmt::Debug for RawNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawNode({})", super::short_json(self))
    }
}

/// A value's text as a tree, built at its size ([`super::parse`]); `null` if it is not JSON,
/// which a checked body's slice always is.
fn parse_value(text: &[u8]) -> Json {
    super::parse::parse(text, None).unwrap_or(Json::Null)
}

/// Where the elements of an array's text are.
fn elements(text: &Bytes) -> Box<[(u32, u32)]> {
    struct Elements<'a>(&'a [u8]);
    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = Vec<(u32, u32)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(raw) = seq.next_element::<&RawValue>()? {
                out.push(place(self.0, raw));
            }
            out.shrink_to_fit();
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    de.deserialize_seq(Elements(text))
        .unwrap_or_default()
        .into_boxed_slice()
}

/// An object's members, in order, a key given twice at its first place with its last value.
fn members(text: &Bytes) -> Vec<(String, Arc<RawNode>)> {
    struct Members<'a>(&'a Bytes);
    impl<'de> Visitor<'de> for Members<'_> {
        type Value = Vec<(String, Arc<RawNode>)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, Arc<RawNode>)> = Vec::new();
            let mut seen: HashMap<String, usize> = HashMap::new();
            while let Some(key) = map.next_key::<String>()? {
                let raw = map.next_value::<&RawValue>()?;
                let (start, len) = place(self.0, raw);
                let (start, len) = (start as usize, len as usize);
                let Some(node) = RawNode::new(self.0.slice(start..start + len)) else {
                    continue;
                };
                match seen.get(&key) {
                    Some(&i) => out[i].1 = node,
                    None => {
                        seen.insert(key.clone(), out.len());
                        out.push((key, node));
                    }
                }
            }
            out.shrink_to_fit();
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    de.deserialize_map(Members(text)).unwrap_or_default()
}

/// Where a raw value borrowed from `text` is in it.
fn place(text: &[u8], raw: &RawValue) -> (u32, u32) {
    let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
    (start as u32, raw.get().len() as u32)
}

/// Whether `q` is a path of names, indexes and wildcards only, which [`select`] walks.
pub fn plain(q: &JpQuery) -> bool {
    q.segments.iter().all(|s| {
        matches!(
            s,
            Segment::Selector(Selector::Name(_) | Selector::Index(_) | Selector::Wildcard)
        )
    })
}

/// Calls `found` with every value a plain path ([`plain`]) selects under `root`, in the order
/// the JSONPath engine gives them, one at a time (a wildcard over 600,000 objects does not
/// hold them all).
pub fn select(q: &JpQuery, root: &Arc<RawNode>, found: &mut dyn FnMut(&Arc<RawNode>)) {
    fn walk(at: &Arc<RawNode>, rest: &[Segment], found: &mut dyn FnMut(&Arc<RawNode>)) {
        let Some((segment, rest)) = rest.split_first() else {
            found(at);
            return;
        };
        let Segment::Selector(selector) = segment else {
            return;
        };
        match (selector, at.kind) {
            (Selector::Name(n), Kind::Object) => {
                if let Some(v) = at.member(n) {
                    walk(&v, rest, found);
                }
            }
            (Selector::Index(i), Kind::Array) => {
                let i = if *i < 0 {
                    at.len().checked_sub(i.unsigned_abs() as usize)
                } else {
                    Some(*i as usize)
                };
                if let Some(v) = i.and_then(|i| at.element(i)) {
                    walk(&v, rest, found);
                }
            }
            (Selector::Wildcard, Kind::Array) => {
                for i in 0..at.len() {
                    if let Some(v) = at.element(i) {
                        walk(&v, rest, found);
                    }
                }
            }
            (Selector::Wildcard, Kind::Object) => {
                for (_, v) in at.members() {
                    walk(v, rest, found);
                }
            }
            _ => {}
        }
    }
    walk(root, &q.segments, found);
}

/// A list of the values `nodes` (each inside `root`'s buffer) as one [`RawNode`]: sharing
/// `root`'s buffer when `share`, else in a buffer of their own (what they select is small
/// beside the answer, which is then let go).
pub fn gather(root: &RawNode, nodes: &[(u32, u32)], share: bool) -> Arc<RawNode> {
    if share {
        return RawNode::list(root.text.clone(), nodes.to_vec());
    }
    let total: usize = nodes.iter().map(|&(_, l)| l as usize).sum();
    let mut buffer = Vec::with_capacity(total);
    let mut ranges = Vec::with_capacity(nodes.len());
    for &(s, l) in nodes {
        ranges.push((buffer.len() as u32, l));
        buffer.extend_from_slice(&root.text[s as usize..(s + l) as usize]);
    }
    RawNode::list(Bytes::from(buffer), ranges)
}

/// Where `node` is in `root`'s buffer (it was found under `root`).
pub fn place_in(root: &RawNode, node: &RawNode) -> Option<(u32, u32)> {
    root.offset_of(node)
}

/// A value found under the answer as a node of its own: its text shared with the answer when
/// `share`, else copied.
pub fn own(node: &Arc<RawNode>, share: bool) -> Arc<RawNode> {
    if share {
        return node.clone();
    }
    RawNode::new(Bytes::copy_from_slice(&node.text)).unwrap_or_else(|| node.clone())
}

/// Whether a value's text can be kept as it is: it holds no registered secret and no escape
/// (`\`), behind which a secret could hide in another spelling. Otherwise it is read as a
/// tree and scrubbed, as every output was.
pub fn clean(text: &[u8], secrets: &crate::secret::Scanner) -> bool {
    memchr::memchr(b'\\', text).is_none() && !secrets.finds(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BODY: &str = r#" {"id": "j1", "objects": [{"id": "a", "n": 1.5e3, "x": [true, null, -7]}, {"id": "b", "n": 18446744073709551615} ], "dup": 1, "dup": {"k": "é\u00e9\n"}, "e": [], "o": {}, "s": "x"} "#;

    #[test]
    fn a_node_reads_as_serde_json_parses_it() {
        let root = RawNode::new(Bytes::from_static(BODY.as_bytes())).unwrap();
        let theirs: Json = serde_json::from_str(BODY).unwrap();
        assert_eq!(root.to_json(), theirs);
        assert_eq!(serde_json::to_value(root.as_ref()).unwrap(), theirs);
        assert_eq!(
            serde_json::to_string_pretty(root.as_ref()).unwrap(),
            serde_json::to_string_pretty(&theirs).unwrap(),
            "same members, same order, same numbers"
        );
        let keys: Vec<&str> = root.members().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["id", "objects", "dup", "e", "o", "s"]);
        let objects = root.member("objects").unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects.element(1).unwrap().to_json(), theirs["objects"][1]);
        assert!(objects.element(2).is_none());
        assert!(objects.shares_buffer_with(&root));
        assert_eq!(root.member("e").unwrap().len(), 0);
        assert_eq!(root.member("o").unwrap().kind(), Kind::Object);
        assert_eq!(root.member("dup").unwrap().to_json(), theirs["dup"]);
    }

    #[test]
    fn a_gathered_list_reads_as_the_values_it_gathered() {
        let root = RawNode::new(Bytes::from_static(BODY.as_bytes())).unwrap();
        let q = crate::extract::compile("$.objects[*].n").unwrap();
        let mut at = Vec::new();
        select(&q, &root, &mut |n| at.push(place_in(&root, n).unwrap()));
        for share in [true, false] {
            let list = gather(&root, &at, share);
            assert_eq!(list.shares_buffer_with(&root), share);
            assert_eq!(list.to_json(), json!([1.5e3, 18446744073709551615u64]));
            assert_eq!(
                serde_json::to_value(list.as_ref()).unwrap(),
                json!([1.5e3, 18446744073709551615u64])
            );
        }
    }

    #[test]
    fn only_clean_text_is_kept_as_it_is() {
        let _s = crate::secret::Secret::new("tok-raw-clean-77");
        let secrets = crate::secret::Scanner::new();
        assert!(clean(br#"{"id": "a"}"#, &secrets));
        assert!(!clean(br#"{"id": "tok-raw-clean-77"}"#, &secrets));
        assert!(!clean(br#"{"id": "tok\u002draw-clean-77"}"#, &secrets));
    }
}
