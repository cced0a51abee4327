//! Decoding only the parts of an object a policy reads.
//!
//! Inside the guest, decoding is most of a policy's cost: a Pod or StatefulSet arrives with its
//! `managedFields`, `status` and every container's environment, and building a
//! `serde_json::Value` of all of it allocates for every string and map. A [`Projection`] names the
//! fields a policy reads; everything else is skipped while parsing (still checked to be JSON, never
//! allocated), and the result is a `Value` of the same shape holding only those fields.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A set of dotted field paths (`spec.containers.image`). Arrays on the way are traversed, so
/// `spec.containers.image` keeps the `image` of every container, at its index.
/// Field names are borrowed from the paths: the tree is a flat list of nodes, built by the same
/// `const fn` at run time ([`Projection::new`]) or at compile time (a policy's `OBJECT_FIELDS`,
/// so a guest builds nothing per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection<'a> {
    nodes: Nodes<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Nodes<'a> {
    Built(Vec<Node<'a>>),
    Static(&'a [Node<'a>]),
}

/// One field of the tree; node 0 is the root. `first_child` and `next_sibling` are indices into
/// the node list, [`NONE`] for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node<'a> {
    name: &'a str,
    /// The whole value from here down.
    whole: bool,
    first_child: u32,
    next_sibling: u32,
}

const NONE: u32 = u32::MAX;

const EMPTY: Node<'static> = Node {
    name: "",
    whole: false,
    first_child: NONE,
    next_sibling: NONE,
};

/// The most nodes (path segments, plus the root) a projection built at compile time holds.
pub(crate) const MAX_STATIC_NODES: usize = 256;

/// A projection's nodes, built at compile time: `Static::new(P::OBJECT_FIELDS)` in a `const`.
pub(crate) struct Static {
    nodes: [Node<'static>; MAX_STATIC_NODES],
    len: usize,
}

impl Static {
    /// The tree of `paths`. A compile-time error (a panic in a const) when they have more than
    /// [`MAX_STATIC_NODES`] segments.
    pub(crate) const fn new(paths: &'static [&'static str]) -> Self {
        let mut nodes = [EMPTY; MAX_STATIC_NODES];
        let len = build(paths, &mut nodes);
        Static { nodes, len }
    }

    /// The projection over these nodes: no allocation.
    pub(crate) fn projection(&'static self) -> Projection<'static> {
        Projection {
            nodes: Nodes::Static(&self.nodes[..self.len]),
        }
    }
}

/// The nodes `paths` need at most: the root and one per segment.
const fn capacity(paths: &[&str]) -> usize {
    let mut count = 1;
    let mut p = 0;
    while p < paths.len() {
        let bytes = paths[p].as_bytes();
        count += 1;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'.' {
                count += 1;
            }
            i += 1;
        }
        p += 1;
    }
    count
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Builds the tree of `paths` into `nodes` (all [`EMPTY`]); returns how many are used. A path
/// that is a prefix of another keeps all of it. Panics when `nodes` is too short.
const fn build<'a>(paths: &[&'a str], nodes: &mut [Node<'a>]) -> usize {
    let mut len = 1; // the root
    let mut p = 0;
    while p < paths.len() {
        let mut rest: &'a str = paths[p];
        let mut node = 0;
        loop {
            if nodes[node].whole {
                break;
            }
            // The next segment: up to the first `.`.
            let bytes = rest.as_bytes();
            let mut dot = 0;
            while dot < bytes.len() && bytes[dot] != b'.' {
                dot += 1;
            }
            let (segment, tail) = rest.split_at(dot);
            // Its node among the children, else a new last child.
            let mut child = nodes[node].first_child;
            let mut last = NONE;
            while child != NONE && !same(nodes[child as usize].name.as_bytes(), segment.as_bytes())
            {
                last = child;
                child = nodes[child as usize].next_sibling;
            }
            if child == NONE {
                assert!(
                    len < nodes.len() && len < NONE as usize,
                    "OBJECT_FIELDS has more than 255 distinct path segments: declare fewer (a shorter path keeps its whole subtree)"
                );
                child = len as u32;
                nodes[len] = Node {
                    name: segment,
                    whole: false,
                    first_child: NONE,
                    next_sibling: NONE,
                };
                len += 1;
                if last == NONE {
                    nodes[node].first_child = child;
                } else {
                    nodes[last as usize].next_sibling = child;
                }
            }
            node = child as usize;
            if tail.is_empty() {
                break; // the path ends here
            }
            rest = tail.split_at(1).1; // past the `.`: `a..b` has an empty middle segment
        }
        if !nodes[node].whole {
            nodes[node].whole = true;
            nodes[node].first_child = NONE;
        }
        p += 1;
    }
    len
}

impl<'a> Projection<'a> {
    /// The projection keeping `paths`. A path that is a prefix of another keeps all of it.
    pub fn new<P: AsRef<str>>(paths: &'a [P]) -> Self {
        let paths: Vec<&'a str> = paths.iter().map(AsRef::as_ref).collect();
        let mut nodes = vec![EMPTY; capacity(&paths)];
        let len = build(&paths, &mut nodes);
        nodes.truncate(len);
        Projection {
            nodes: Nodes::Built(nodes),
        }
    }

    /// Decodes the JSON text `json`, keeping only the projected fields.
    ///
    /// # Errors
    /// serde_json's error when `json` is not one JSON value.
    pub fn decode(&self, json: &str) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let value = self.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    fn nodes(&self) -> &[Node<'a>] {
        match &self.nodes {
            Nodes::Built(nodes) => nodes,
            Nodes::Static(nodes) => nodes,
        }
    }

    /// The root of the tree.
    fn root(&self) -> At<'_, 'a> {
        At {
            nodes: self.nodes(),
            index: 0,
        }
    }
}

/// One node of a projection's tree, as decoding walks it.
#[derive(Clone, Copy)]
struct At<'p, 'a> {
    nodes: &'p [Node<'a>],
    index: usize,
}

impl<'p, 'a> At<'p, 'a> {
    fn node(&self) -> &Node<'a> {
        &self.nodes[self.index]
    }

    /// The child named `name`, if it is projected.
    fn child(&self, name: &str) -> Option<(&'a str, At<'p, 'a>)> {
        let mut child = self.node().first_child;
        while child != NONE {
            let node = &self.nodes[child as usize];
            if node.name == name {
                let at = At {
                    nodes: self.nodes,
                    index: child as usize,
                };
                return Some((node.name, at));
            }
            child = node.next_sibling;
        }
        None
    }
}

impl<'de> DeserializeSeed<'de> for &Projection<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.root().deserialize(deserializer)
    }
}

impl<'de> DeserializeSeed<'de> for At<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.node().whole {
            serde::Deserialize::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(ProjectedVisitor(self))
        }
    }
}

/// Builds the projected value: maps keep the projected keys, arrays keep every element (each
/// projected the same way), scalars are kept as they are.
struct ProjectedVisitor<'p, 'a>(At<'p, 'a>);

impl<'de> Visitor<'de> for ProjectedVisitor<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(kept) = map.next_key_seed(KeyFilter(self.0))? {
            match kept {
                Some((name, child)) => {
                    out.insert(name.to_owned(), map.next_value_seed(child)?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(element) = seq.next_element_seed(self.0)? {
            out.push(element);
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Reads a map key without allocating, and says whether (and how) its value is kept.
struct KeyFilter<'p, 'a>(At<'p, 'a>);

impl<'de, 'p, 'a> DeserializeSeed<'de> for KeyFilter<'p, 'a> {
    type Value = Option<(&'a str, At<'p, 'a>)>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'p, 'a> Visitor<'de> for KeyFilter<'p, 'a> {
    type Value = Option<(&'a str, At<'p, 'a>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.child(key))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(paths: &[&str], value: &Value) -> Value {
        Projection::new(paths)
            .decode(&value.to_string())
            .expect("valid JSON")
    }

    #[test]
    fn paths_split_at_every_dot_and_build_the_same_tree_at_compile_time() {
        const PATHS: &[&str] = &["a..b.", "a.c", "spec.x", "spec", "", "spec.y"];
        static BUILT: Static = Static::new(PATHS);
        let value = json!({"a": {"": {"b": {"": 1, "z": 2}}, "c": 3, "d": 4}, "spec": {"q": 5}, "": 6, "f": 7});
        let expected = json!({"a": {"": {"b": {"": 1}}, "c": 3}, "spec": {"q": 5}, "": 6});
        assert_eq!(project(PATHS, &value), expected);
        assert_eq!(
            BUILT.projection().decode(&value.to_string()).unwrap(),
            expected
        );
        assert_eq!(
            BUILT.projection(),
            Projection {
                nodes: Nodes::Static(match &Projection::new(PATHS).nodes {
                    Nodes::Built(nodes) => &nodes.clone().leak()[..],
                    Nodes::Static(_) => unreachable!(),
                })
            }
        );
        assert_eq!(capacity(PATHS), 13); // the root and 4 + 2 + 2 + 1 + 1 + 2 segments
    }

    #[test]
    fn keeps_only_the_named_fields_through_arrays() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}]},
            "spec": {"containers": [
                {"name": "a", "image": "nginx", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "ports": [{"containerPort": 80}]}
            ], "nodeName": "n1"},
            "status": {"phase": "Running"}
        });
        assert_eq!(
            project(&["kind", "metadata.labels", "spec.containers.image"], &pod),
            json!({"kind": "Pod", "metadata": {"labels": {"a": "b"}},
                   "spec": {"containers": [{"image": "nginx"}, {}]}})
        );
    }

    #[test]
    fn a_shorter_path_keeps_the_whole_subtree_in_any_order() {
        let object =
            json!({"spec": {"a": {"b": 1, "c": [1.5, true, null]}, "d": "x"}, "status": {}});
        let whole = json!({"spec": object["spec"].clone()});
        assert_eq!(project(&["spec", "spec.a.b"], &object), whole);
        assert_eq!(project(&["spec.a.b", "spec"], &object), whole);
        assert_eq!(
            project(&["spec.a.b"], &object),
            json!({"spec": {"a": {"b": 1}}})
        );
    }

    #[test]
    fn scalars_and_mismatched_shapes_are_kept_as_they_are() {
        // `spec.fetch` is a list in an App and an object in a PackageRepository: one projection fits both.
        let paths = ["spec.fetch.imgpkgBundle.image"];
        let app =
            json!({"spec": {"fetch": [{"imgpkgBundle": {"image": "a"}, "git": {"url": "u"}}]}});
        let repository =
            json!({"spec": {"fetch": {"imgpkgBundle": {"image": "b", "tagSelection": {}}}}});
        assert_eq!(
            project(&paths, &app),
            json!({"spec": {"fetch": [{"imgpkgBundle": {"image": "a"}}]}})
        );
        assert_eq!(
            project(&paths, &repository),
            json!({"spec": {"fetch": {"imgpkgBundle": {"image": "b"}}}})
        );
        assert_eq!(
            project(&paths, &json!({"spec": {"fetch": 7}})),
            json!({"spec": {"fetch": 7}})
        );
        assert_eq!(project(&paths, &json!(null)), json!(null));
        assert_eq!(project(&[], &json!({"a": 1})), json!({}));
    }

    #[test]
    fn skipped_parts_are_still_checked_and_escaped_keys_match() {
        let projection = Projection::new(&["a"]);
        assert!(projection.decode(r#"{"a": 1, "b": [1, }"#).is_err());
        assert!(projection.decode(r#"{"a": 1} trailing"#).is_err());
        assert_eq!(
            projection
                .decode(r#"{"\u0061": 2, "b": {"\"": [1]}}"#)
                .unwrap(),
            json!({"a": 2})
        );
    }
}
