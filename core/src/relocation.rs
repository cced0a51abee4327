//! `override-image`'s decisions: which reference of a Package is its bundle, how `--registry-map
//! OLD=NEW` rewrites references under a prefix, where a namespace's Packages were relocated, and which
//! Package names are close to a mistyped one.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::image::{
    ImageError, ImageOccurrence, ImageRef, RegistryPattern, RegistryPolicy, find_images,
};

/// Annotation on a Package: the bundle image it used before `override-image` changed it (`--revert`).
pub const PREVIOUS_IMAGE_ANNOTATION: &str = crate::keys::PREVIOUS_IMAGE;

/// Why an argument of `override-image` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelocationError {
    /// A `--registry-map` argument is not `OLD=NEW` with two valid registry prefixes.
    #[error("--registry-map {arg:?}: {reason}")]
    BadRule {
        /// The argument as given.
        arg: String,
        /// What is wrong with it, in plain words.
        reason: String,
    },
    /// The Package (its name) has no `spec.template.spec.fetch[].imgpkgBundle.image`.
    #[error("Package {0} fetches no imgpkg bundle (spec.template.spec.fetch[].imgpkgBundle.image)")]
    NoBundle(String),
    /// A rewrite names a field the Package does not have (or that is not a string).
    #[error("cannot set {path}: the Package has no such field")]
    NoField {
        /// The field, a dotted JSON path like [`Rewrite::path`].
        path: String,
    },
}

/// One `--registry-map OLD=NEW`: a registry (with optional repository prefix) and its replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapRule {
    /// OLD, normalised: the registry host (and optional repository prefix) references must start with.
    pub from: String,
    /// NEW, normalised: what replaces [`MapRule::from`] at the head of a matching reference.
    pub to: String,
}

fn normalise_prefix(side: &str) -> Result<String, String> {
    RegistryPattern::parse(side).map_err(|e| e.reason.to_owned())?;
    if side.starts_with("*.") {
        return Err("a wildcard cannot be rewritten: name the registry".into());
    }
    let (host, rest) = side.split_once('/').unwrap_or((side, ""));
    // Every name of Docker Hub is docker.io, as references are normalised.
    let host = crate::registries::canonical_host(&host.to_ascii_lowercase()).to_owned();
    let rest = rest.trim_end_matches('/');
    Ok(if rest.is_empty() {
        host
    } else {
        format!("{host}/{rest}")
    })
}

impl MapRule {
    /// Parses `OLD=NEW`, e.g. `projects.registry.vmware.com/tkg=harbor.corp/tkg`.
    ///
    /// # Errors
    /// [`RelocationError::BadRule`] when there is no `=` or either side is not a registry with an
    /// optional repository prefix, or OLD and NEW are the same.
    pub fn parse(arg: &str) -> Result<Self, RelocationError> {
        let bad = |reason: String| RelocationError::BadRule {
            arg: arg.to_owned(),
            reason,
        };
        let (from, to) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected OLD=NEW, e.g. projects.registry.vmware.com=my-registry.example.com/vmware".into()))?;
        let from = normalise_prefix(from.trim()).map_err(|r| bad(format!("OLD: {r}")))?;
        let to = normalise_prefix(to.trim()).map_err(|r| bad(format!("NEW: {r}")))?;
        if from == to {
            return Err(bad("OLD and NEW are the same".into()));
        }
        Ok(MapRule { from, to })
    }

    /// The reference with this rule applied, if the (normalised) reference is under OLD.
    fn apply(&self, normalised: &str) -> Option<String> {
        let rest = normalised.strip_prefix(&self.from)?;
        (rest.is_empty() || rest.starts_with(['/', ':', '@'])).then(|| format!("{}{rest}", self.to))
    }
}

/// A reference rewritten: where, from what, to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// Where in the Package the reference is: a dotted JSON path as [`find_images`] reports it, e.g.
    /// `spec.template.spec.fetch[0].imgpkgBundle.image`.
    pub path: String,
    /// The reference as it was.
    pub from: String,
    /// The reference it becomes.
    pub to: String,
}

/// What `--registry-map` does to one reference: the longest matching OLD wins; `Ok(None)` when no rule
/// matches (or `image` does not parse).
///
/// # Errors
/// The parser's [`ImageError`] when the rewritten reference is not a valid reference.
pub fn map_image(image: &str, rules: &[MapRule]) -> Result<Option<String>, ImageError> {
    let Ok(parsed) = ImageRef::parse(image) else {
        return Ok(None);
    };
    let normalised = parsed.to_string();
    let best = rules
        .iter()
        .filter_map(|r| r.apply(&normalised).map(|new| (r.from.len(), new)))
        .max_by_key(|(len, _)| *len);
    match best {
        None => Ok(None),
        Some((_, new)) => ImageRef::parse(&new).map(|r| Some(r.to_string())),
    }
}

/// Every rewrite `rules` make to one Package (its fetches: bundles and images).
///
/// # Errors
/// As [`map_image`], for the first reference whose rewrite is not a valid reference.
pub fn plan_map(package: &Value, rules: &[MapRule]) -> Result<Vec<Rewrite>, ImageError> {
    let mut out = Vec::new();
    for occ in find_images(package) {
        if let Some(to) = map_image(&occ.image, rules)?
            && to != occ.image
        {
            out.push(Rewrite {
                path: occ.path,
                from: occ.image,
                to,
            });
        }
    }
    Ok(out)
}

/// The Package's bundle: its first `imgpkgBundle` fetch (where `override-package-image.sh` writes).
///
/// # Errors
/// [`RelocationError::NoBundle`] when the Package fetches no imgpkg bundle.
pub fn bundle_image(package: &Value) -> Result<ImageOccurrence, RelocationError> {
    find_images(package)
        .into_iter()
        .find(|o| o.path.ends_with(".imgpkgBundle.image"))
        .ok_or_else(|| {
            RelocationError::NoBundle(
                package["metadata"]["name"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
            )
        })
}

/// `spec.template.spec.fetch[0].imgpkgBundle.image` as a JSON pointer.
pub fn pointer(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('.') {
        let (key, indexes) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        out.push('/');
        out.push_str(&key.replace('~', "~0").replace('/', "~1"));
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(index);
        }
    }
    out
}

/// Applies rewrites to a Package, and records the bundle's previous image in [`PREVIOUS_IMAGE_ANNOTATION`].
///
/// # Errors
/// [`RelocationError::NoField`] when a rewrite's path is not a string field of the Package; the
/// rewrites before it are applied.
pub fn apply(package: &mut Value, rewrites: &[Rewrite]) -> Result<(), RelocationError> {
    let bundle = bundle_image(package).ok();
    for r in rewrites {
        let slot = package
            .pointer_mut(&pointer(&r.path))
            .filter(|s| s.is_string())
            .ok_or_else(|| RelocationError::NoField {
                path: r.path.clone(),
            })?;
        *slot = Value::String(r.to.clone());
        if bundle.as_ref().is_some_and(|b| b.path == r.path) {
            set_annotation(package, PREVIOUS_IMAGE_ANNOTATION, &r.from);
        }
    }
    Ok(())
}

fn set_annotation(object: &mut Value, key: &str, value: &str) {
    if !object["metadata"].is_object() {
        object["metadata"] = Value::Object(Default::default());
    }
    if !object["metadata"]["annotations"].is_object() {
        object["metadata"]["annotations"] = Value::Object(Default::default());
    }
    object["metadata"]["annotations"][key] = Value::String(value.to_owned());
}

/// The image `--revert` restores: the annotation left by the last override (or by an older
/// release, under its old key).
pub fn previous_image(package: &Value) -> Option<&str> {
    crate::keys::annotation(package, PREVIOUS_IMAGE_ANNOTATION)
}

/// The registries (with port) the namespace's other Packages fetch their bundles from, counting only
/// the ones the policy calls private: where the namespace was relocated to.
pub fn relocation_registries(
    packages: &[Value],
    except: &str,
    policy: &RegistryPolicy,
) -> BTreeSet<String> {
    packages
        .iter()
        .filter(|p| p["metadata"]["name"].as_str() != Some(except))
        .flat_map(find_images)
        .filter_map(|o| o.parse().ok())
        .filter(|i| !policy.classify(i).is_refused())
        .map(|i| i.registry().to_owned())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Names close to a mistyped one: sharing its refName part, containing it, or a few edits away; best first.
pub fn close_names<'a>(name: &str, candidates: &'a [String], max: usize) -> Vec<&'a str> {
    let lower = name.to_ascii_lowercase();
    let stem = lower.split('.').next().unwrap_or(&lower).to_owned();
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .filter_map(|c| {
            let cl = c.to_ascii_lowercase();
            let d = edit_distance(&lower, &cl);
            let related = cl.contains(&lower)
                || lower.contains(&cl)
                || (!stem.is_empty() && cl.starts_with(&stem))
                || d <= lower.len().max(cl.len()) / 4;
            related.then_some((d, c.as_str()))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(max).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, image: &str) -> Value {
        json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
               "metadata": {"name": name, "namespace": "ns"},
               "spec": {"refName": "x", "template": {"spec": {"fetch": [{"imgpkgBundle": {"image": image}}]}}}})
    }

    #[test]
    fn map_rules_parse_and_normalise() {
        let ok = [
            (
                "projects.registry.vmware.com=my-registry.example.com",
                ("projects.registry.vmware.com", "my-registry.example.com"),
            ),
            (
                "projects.registry.vmware.com/tkg/=harbor.corp:8443/tkg",
                ("projects.registry.vmware.com/tkg", "harbor.corp:8443/tkg"),
            ),
            (
                "index.docker.io=harbor.corp/hub",
                ("docker.io", "harbor.corp/hub"),
            ),
            (
                "Projects.Registry.VMware.com=h.corp",
                ("projects.registry.vmware.com", "h.corp"),
            ),
        ];
        for (arg, (from, to)) in ok {
            let r = MapRule::parse(arg).unwrap_or_else(|e| panic!("{arg}: {e}"));
            assert_eq!((r.from.as_str(), r.to.as_str()), (from, to), "{arg}");
        }
        for bad in [
            "nothing",
            "=h.corp",
            "a.com=",
            "*.vmware.com=h.corp",
            "https://a.com=h.corp",
            "a.com=a.com",
            "a.com/x:1=h.corp",
            "a.com=h.corp/x@sha256",
        ] {
            let err = MapRule::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("--registry-map"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn mapping_table() {
        let rules = vec![
            MapRule::parse("projects.registry.vmware.com=my-registry.example.com/vmware").unwrap(),
            MapRule::parse(
                "projects.registry.vmware.com/tkg/packages=my-registry.example.com/tkg-svs/package",
            )
            .unwrap(),
            MapRule::parse("docker.io=harbor.corp/hub").unwrap(),
        ];
        let d = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let digest_in = format!("projects.registry.vmware.com/tkg/x@{d}");
        let digest_out = format!("my-registry.example.com/vmware/tkg/x@{d}");
        let cases: Vec<(&str, Option<&str>)> = vec![
            (
                "projects.registry.vmware.com/tkg/packages/core/tkg-controller:v3.5.1",
                Some("my-registry.example.com/tkg-svs/package/core/tkg-controller:v3.5.1"),
            ),
            (
                "projects.registry.vmware.com/tkg/tkg-controller:v3.5.1",
                Some("my-registry.example.com/vmware/tkg/tkg-controller:v3.5.1"),
            ),
            (
                "projects.registry.vmware.com/tkg/packagesx/a:1",
                Some("my-registry.example.com/vmware/tkg/packagesx/a:1"),
            ),
            (&digest_in, Some(&digest_out)),
            ("nginx", Some("harbor.corp/hub/library/nginx:latest")),
            (
                "my-registry.example.com/tkg-svs/package/tkg-service:3.5.1",
                None,
            ),
            ("projects.registry.vmware.com.evil.com/a:1", None),
            ("Not A Reference", None),
        ];
        for (image, want) in cases {
            assert_eq!(
                map_image(image, &rules).unwrap().as_deref(),
                want,
                "{image}"
            );
        }
        let exact = vec![MapRule::parse("projects.registry.vmware.com/tkg/a=h.corp/b").unwrap()];
        assert_eq!(
            map_image("projects.registry.vmware.com/tkg/a:1", &exact)
                .unwrap()
                .as_deref(),
            Some("h.corp/b:1")
        );
        let upper = vec![MapRule::parse("a.com=h.corp/UPPER").unwrap()];
        assert!(
            map_image("a.com/x:1", &upper).is_err(),
            "an invalid result is an error"
        );
    }

    #[test]
    fn plans_and_applies_rewrites_keeping_the_previous_bundle() {
        let mut pkg = package("p.1", "projects.registry.vmware.com/tkg/packages/core/a:v1");
        pkg["spec"]["template"]["spec"]["fetch"]
            .as_array_mut()
            .unwrap()
            .push(json!({"image": {"url": "projects.registry.vmware.com/tkg/img:1"}}));
        let rules = vec![MapRule::parse("projects.registry.vmware.com=h.corp/vmw").unwrap()];
        let plan = plan_map(&pkg, &rules).unwrap();
        assert_eq!(
            plan,
            [
                Rewrite {
                    path: "spec.template.spec.fetch[0].imgpkgBundle.image".into(),
                    from: "projects.registry.vmware.com/tkg/packages/core/a:v1".into(),
                    to: "h.corp/vmw/tkg/packages/core/a:v1".into()
                },
                Rewrite {
                    path: "spec.template.spec.fetch[1].image.url".into(),
                    from: "projects.registry.vmware.com/tkg/img:1".into(),
                    to: "h.corp/vmw/tkg/img:1".into()
                },
            ]
        );
        apply(&mut pkg, &plan).unwrap();
        assert_eq!(
            pkg["spec"]["template"]["spec"]["fetch"][0]["imgpkgBundle"]["image"],
            "h.corp/vmw/tkg/packages/core/a:v1"
        );
        assert_eq!(
            pkg["spec"]["template"]["spec"]["fetch"][1]["image"]["url"],
            "h.corp/vmw/tkg/img:1"
        );
        assert_eq!(
            previous_image(&pkg),
            Some("projects.registry.vmware.com/tkg/packages/core/a:v1")
        );
        assert!(plan_map(&pkg, &rules).unwrap().is_empty(), "idempotent");
        let bad = [Rewrite {
            path: "spec.nothing[3]".into(),
            from: "a".into(),
            to: "b".into(),
        }];
        assert!(apply(&mut pkg, &bad).is_err());
    }

    #[test]
    fn bundles_and_pointers() {
        let pkg = package("p.1", "h.corp/a:1");
        assert_eq!(
            bundle_image(&pkg).unwrap().path,
            "spec.template.spec.fetch[0].imgpkgBundle.image"
        );
        let nobundle = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package", "metadata": {"name": "q"},
                              "spec": {"template": {"spec": {"fetch": [{"git": {"url": "x"}}]}}}});
        assert_eq!(
            bundle_image(&nobundle).unwrap_err(),
            RelocationError::NoBundle("q".into())
        );
        assert_eq!(
            pointer("spec.template.spec.fetch[0].imgpkgBundle.image"),
            "/spec/template/spec/fetch/0/imgpkgBundle/image"
        );
        assert_eq!(pointer("a[1][2].b"), "/a/1/2/b");
        assert_eq!(previous_image(&pkg), None);
    }

    #[test]
    fn relocation_registries_are_the_private_ones_of_the_other_packages() {
        let pkgs = vec![
            package("self", "elsewhere.corp/x:1"),
            package("a", "my-registry.example.com/a:1"),
            package("b", "my-registry.example.com:5000/b:1"),
            package("c", "projects.registry.vmware.com/c:1"),
        ];
        let got = relocation_registries(&pkgs, "self", &RegistryPolicy::default());
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["my-registry.example.com", "my-registry.example.com:5000"]
        );
    }

    #[test]
    fn close_names_table() {
        let names: Vec<String> = [
            "tkg.vsphere.vmware.com.3.5.1-embedded+v1.34",
            "tkg.vsphere.vmware.com.3.4.0",
            "harbor.tanzu.vmware.com.2.9.1+vmware.1",
            "velero.vsphere.vmware.com.1.3.0",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            close_names("tkg.vsphere.vmware.com.3.5.1", &names, 5),
            [
                "tkg.vsphere.vmware.com.3.4.0",
                "tkg.vsphere.vmware.com.3.5.1-embedded+v1.34"
            ]
        );
        assert_eq!(
            close_names("harbr.tanzu.vmware.com.2.9.1+vmware.1", &names, 5),
            ["harbor.tanzu.vmware.com.2.9.1+vmware.1"]
        );
        assert!(close_names("zzz", &names, 5).is_empty());
    }
}
