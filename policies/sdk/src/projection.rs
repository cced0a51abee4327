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
/// Field names are borrowed from the paths: building one is a few small vectors, no strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection<'a> {
    /// The whole value from here down.
    whole: bool,
    children: Vec<(&'a str, Projection<'a>)>,
}

impl<'a> Projection<'a> {
    /// The projection keeping `paths`. A path that is a prefix of another keeps all of it.
    pub fn new<P: AsRef<str>>(paths: &'a [P]) -> Self {
        let mut root = Projection::default();
        for path in paths {
            let mut node = &mut root;
            // By hand rather than `split('.')`: this runs in every evaluation, and in the guest
            // the generic searcher costs more than these few short paths are worth.
            for segment in segments(path.as_ref()) {
                if node.whole {
                    break;
                }
                let index = match node.children.iter().position(|(name, _)| *name == segment) {
                    Some(index) => index,
                    None => {
                        node.children.push((segment, Projection::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[index].1;
            }
            if !node.whole {
                node.whole = true;
                node.children.clear();
            }
        }
        root
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

    fn child(&self, name: &str) -> Option<(&'a str, &Projection<'a>)> {
        self.children
            .iter()
            .find(|(child, _)| *child == name)
            .map(|(child, projection)| (*child, projection))
    }
}

impl<'de> DeserializeSeed<'de> for &Projection<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.whole {
            serde::Deserialize::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(ProjectedVisitor(self))
        }
    }
}

/// Builds the projected value: maps keep the projected keys, arrays keep every element (each
/// projected the same way), scalars are kept as they are.
struct ProjectedVisitor<'p, 'a>(&'p Projection<'a>);

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

/// The `.`-separated segments of `path`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|b| b == b'.') {
            Some(dot) => {
                rest = Some(&current[dot + 1..]);
                Some(&current[..dot])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Reads a map key without allocating, and says whether (and how) its value is kept.
struct KeyFilter<'p, 'a>(&'p Projection<'a>);

impl<'de, 'p, 'a> DeserializeSeed<'de> for KeyFilter<'p, 'a> {
    type Value = Option<(&'a str, &'p Projection<'a>)>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'p, 'a> Visitor<'de> for KeyFilter<'p, 'a> {
    type Value = Option<(&'a str, &'p Projection<'a>)>;

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
    fn segments_split_at_every_dot() {
        let split = |p| segments(p).collect::<Vec<_>>();
        assert_eq!(split("a.bc.d"), ["a", "bc", "d"]);
        assert_eq!(split("a"), ["a"]);
        assert_eq!(split(""), [""]);
        assert_eq!(split("a..b."), ["a", "", "b", ""]);
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
