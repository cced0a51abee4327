//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): what apiextensions-apiserver does with one —
//! defaulting and validation of the CRD, the names check and `Established` condition its controllers
//! write, and the resource types it serves (one per served version: scope, names, subresources, printer
//! columns).
//!
//! Sources (kubernetes/kubernetes, `staging/src/k8s.io/apiextensions-apiserver`):
//! - `pkg/apis/apiextensions/v1/defaults.go`: `singular` = lower-case kind, `listKind` = kind + `List`,
//!   `conversion.strategy` = `None`;
//! - `pkg/apis/apiextensions/validation/validation.go`: `metadata.name` = `<plural>.<group>`, a group with a
//!   dot, one storage version, `scope` `Cluster` or `Namespaced`, names in DNS-label form;
//! - `pkg/controller/status/naming_controller.go`: `NamesAccepted` (`NoConflicts`, or
//!   `PluralConflict`/`SingularConflict`/`ShortNamesConflict`/`KindConflict`/`ListKindConflict` with
//!   `"<name>" is already in use`) among the CRDs of the same group, `Established` `False`/`NotAccepted`
//!   until the names are accepted;
//! - `pkg/controller/establish/establishing_controller.go`: `Established` `True`/`InitialNamesAccepted`;
//! - `pkg/apiserver/customresource_handler.go` (`serveDefaultColumnsIfEmpty`): without printer columns a
//!   kind shows `Age` (`.metadata.creationTimestamp`, type `date`).
//!
//! The simulator runs both controllers synchronously inside the write, so a CRD serves its kind as soon as
//! the create returns; deleting a CRD deletes its objects and stops serving it in the same step.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use super::registry::{Cell, Column, NAME, Registry, ResourceType, ScalePaths};
use super::status::FieldError;
use super::{Gvr, strategy};

/// The CRDs created at start-up (`sim/crds/`, see its README).
pub const SHIPPED: &[(&str, &str)] = &[
    ("carvel.yaml", include_str!("../../crds/carvel.yaml")),
    (
        "cluster-api.yaml",
        include_str!("../../crds/cluster-api.yaml"),
    ),
    ("tanzu.yaml", include_str!("../../crds/tanzu.yaml")),
    (
        "vm-operator.yaml",
        include_str!("../../crds/vm-operator.yaml"),
    ),
];

/// A CRD file built into the simulator that is not YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sim/crds/{file}: {reason}")]
pub struct ShippedCrdError {
    /// The file's name under `sim/crds/`.
    pub file: &'static str,
    /// The parser's message.
    pub reason: String,
}

/// The shipped CRDs as objects.
///
/// # Errors
/// [`ShippedCrdError`] for a file that is not YAML (a build of the simulator with a broken data file).
pub fn shipped() -> Result<Vec<Value>, ShippedCrdError> {
    let mut out = Vec::new();
    for (file, text) in SHIPPED {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ShippedCrdError {
            file,
            reason: e.to_string(),
        })?;
        out.extend(docs.into_iter().filter(Value::is_object));
    }
    Ok(out)
}

/// The types of the shipped CRDs (made once).
pub fn shipped_types() -> &'static [&'static ResourceType] {
    static TYPES: OnceLock<Vec<&'static ResourceType>> = OnceLock::new();
    TYPES.get_or_init(|| {
        shipped()
            .unwrap_or_default()
            .into_iter()
            .flat_map(|mut crd| {
                default_spec(&mut crd);
                types_of(&crd)
            })
            .collect()
    })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// The server's defaults of a CRD's spec.
pub fn default_spec(crd: &mut Value) {
    let kind = str_at(crd, "/spec/names/kind").to_string();
    let Some(names) = crd
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if !kind.is_empty() {
        names
            .entry("singular")
            .or_insert_with(|| Value::from(kind.to_lowercase()));
        names
            .entry("listKind")
            .or_insert_with(|| Value::from(format!("{kind}List")));
    }
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
    }
}

fn is_label(s: &str) -> bool {
    super::validation::is_dns_subdomain(s) && !s.contains('.') && s.len() <= 63
}

/// The validation errors of a CRD (after [`default_spec`]), worded as apiextensions-apiserver words them.
pub fn validate(crd: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let name = str_at(crd, "/metadata/name");
    if name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errors.push(FieldError::required("spec.group", ""));
    } else if !group.contains('.') {
        errors.push(FieldError::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    match str_at(crd, "/spec/scope") {
        "Cluster" | "Namespaced" => {}
        "" => errors.push(FieldError::required("spec.scope", "")),
        other => errors.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    for (field, value) in [
        ("plural", plural),
        ("singular", str_at(crd, "/spec/names/singular")),
    ] {
        if value.is_empty() {
            errors.push(FieldError::required(&format!("spec.names.{field}"), ""));
        } else if !is_label(value) {
            errors.push(FieldError::invalid(
                &format!("spec.names.{field}"),
                value,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ));
        }
    }
    if str_at(crd, "/spec/names/kind").is_empty() {
        errors.push(FieldError::required("spec.names.kind", ""));
    }
    for (i, short) in strings_at(crd, "/spec/names/shortNames").iter().enumerate() {
        if !is_label(short) {
            errors.push(FieldError::invalid(
                &format!("spec.names.shortNames[{i}]"),
                short,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ));
        }
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push(FieldError::invalid(
            "spec.versions",
            "null",
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions.iter().filter(|v| v["storage"] == true).count();
        if storage != 1 {
            errors.push(FieldError::invalid(
                "spec.versions",
                "[]",
                "must have exactly one version marked as storage version",
            ));
        }
        if !versions.iter().any(|v| v["served"] == true) {
            errors.push(FieldError::invalid(
                "spec.versions",
                "[]",
                "must have at least one version marked as served",
            ));
        }
        for (i, v) in versions.iter().enumerate() {
            let vname = v["name"].as_str().unwrap_or_default();
            if !is_label(vname) {
                errors.push(FieldError::invalid(
                    &format!("spec.versions[{i}].name"),
                    vname,
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-'",
                ));
            }
            for (j, c) in v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let path = c["jsonPath"].as_str().unwrap_or_default();
                if path.is_empty() {
                    errors.push(FieldError::required(
                        &format!("spec.versions[{i}].additionalPrinterColumns[{j}].jsonPath"),
                        "",
                    ));
                } else if super::jsonpath::JsonPath::parse(path).is_err() {
                    errors.push(FieldError::invalid(
                        &format!("spec.versions[{i}].additionalPrinterColumns[{j}].jsonPath"),
                        path,
                        "must be a simple json path",
                    ));
                }
            }
        }
    }
    errors
}

fn condition(kind: &str, status: bool, reason: &str, message: &str, since: &str) -> Value {
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    })
}

/// The naming and establishing controllers' `status` for `crd`, given the kinds `registry` serves:
/// `acceptedNames`, `conditions` (`NamesAccepted`, `Established`), `storedVersions`.
pub fn accept(registry: &Registry, crd: &mut Value) {
    let name = str_at(crd, "/metadata/name").to_string();
    let group = str_at(crd, "/spec/group").to_string();
    let others: Vec<&'static ResourceType> = registry
        .all()
        .iter()
        .copied()
        .filter(|r| r.custom && r.gvr.group == group && r.group_resource() != name)
        .collect();
    let in_use = |n: &str| {
        others
            .iter()
            .any(|r| r.gvr.resource == n || r.singular == n || r.short_names.contains(&n))
    };
    let kind_in_use = |n: &str| others.iter().any(|r| r.kind == n || r.list_kind() == n);
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    let s = |k: &str| names[k].as_str().unwrap_or_default().to_string();
    let mut conflict: Option<(&str, String)> = None;
    let shorts = strings_at(crd, "/spec/names/shortNames");
    if in_use(&s("plural")) {
        conflict = Some(("PluralConflict", s("plural")));
    } else if in_use(&s("singular")) {
        conflict = Some(("SingularConflict", s("singular")));
    } else if let Some(short) = shorts.iter().find(|x| in_use(x)) {
        conflict = Some(("ShortNamesConflict", short.clone()));
    } else if kind_in_use(&s("kind")) {
        conflict = Some(("KindConflict", s("kind")));
    } else if kind_in_use(&s("listKind")) {
        conflict = Some(("ListKindConflict", s("listKind")));
    }
    let old_conditions = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = strategy::now_rfc3339();
    let since = |kind: &str, status: bool| {
        old_conditions
            .iter()
            .find(|c| c["type"] == kind && c["status"] == if status { "True" } else { "False" })
            .and_then(|c| c["lastTransitionTime"].as_str())
            .map(String::from)
            .unwrap_or_else(|| now.clone())
    };
    let was_established = old_conditions
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let (names_accepted, established) = match &conflict {
        None => (
            condition(
                "NamesAccepted",
                true,
                "NoConflicts",
                "no conflicts found",
                &since("NamesAccepted", true),
            ),
            condition(
                "Established",
                true,
                "InitialNamesAccepted",
                "the initial names have been accepted",
                &since("Established", true),
            ),
        ),
        Some((reason, taken)) => (
            condition(
                "NamesAccepted",
                false,
                reason,
                &format!("{taken:?} is already in use"),
                &since("NamesAccepted", false),
            ),
            if was_established {
                old_conditions
                    .iter()
                    .find(|c| c["type"] == "Established")
                    .cloned()
                    .unwrap_or_default()
            } else {
                condition(
                    "Established",
                    false,
                    "NotAccepted",
                    "not all names are accepted",
                    &since("Established", false),
                )
            },
        ),
    };
    let mut stored = strings_at(crd, "/status/storedVersions");
    if let Some(storage) = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        && !stored.iter().any(|s| s == storage)
    {
        stored.push(storage.to_string());
    }
    let mut accepted = json!({"plural": s("plural"), "singular": s("singular"), "kind": s("kind"), "listKind": s("listKind")});
    if !shorts.is_empty() {
        accepted["shortNames"] = json!(shorts);
    }
    let categories = strings_at(crd, "/spec/names/categories");
    if !categories.is_empty() {
        accepted["categories"] = json!(categories);
    }
    if conflict.is_some() {
        // The names accepted before stay; a CRD never accepted has none.
        accepted = crd
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or_else(|| json!({"plural": "", "kind": ""}));
    }
    crd["status"] = json!({
        "conditions": [names_accepted, established],
        "acceptedNames": accepted,
        "storedVersions": stored,
    });
}

/// Whether a CRD's status says its kind is served.
pub fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

fn leak(s: &str) -> &'static str {
    static INTERNED: OnceLock<Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut set = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = set.get(s) {
        return s;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

fn leak_strings(v: Vec<String>) -> &'static [&'static str] {
    Box::leak(
        v.iter()
            .map(|s| leak(s))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// The types a CRD serves, one per served version. Made once per distinct CRD (by name and spec) for
/// the life of the process, since the registry hands out `&'static` types.
pub fn types_of(crd: &Value) -> Vec<&'static ResourceType> {
    static MADE: OnceLock<Mutex<HashMap<String, Vec<&'static ResourceType>>>> = OnceLock::new();
    let key = format!("{}\n{}", str_at(crd, "/metadata/name"), crd["spec"]);
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    made.entry(key).or_insert_with(|| make_types(crd)).clone()
}

fn make_types(crd: &Value) -> Vec<&'static ResourceType> {
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    let s = |k: &str| leak(names[k].as_str().unwrap_or_default());
    let group = leak(str_at(crd, "/spec/group"));
    let namespaced = str_at(crd, "/spec/scope") == "Namespaced";
    let short_names = leak_strings(strings_at(crd, "/spec/names/shortNames"));
    let categories = leak_strings(strings_at(crd, "/spec/names/categories"));
    let mut out = Vec::new();
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v["served"] == true)
    {
        let scale = v.pointer("/subresources/scale").map(|sc| ScalePaths {
            spec_replicas: leak(sc["specReplicasPath"].as_str().unwrap_or(".spec.replicas")),
            status_replicas: leak(
                sc["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas"),
            ),
            label_selector: sc["labelSelectorPath"].as_str().map(leak),
        });
        let mut columns = vec![NAME];
        let printer = v["additionalPrinterColumns"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if printer.is_empty() {
            columns.push(Column {
                name: "Age",
                kind: "date",
                description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
                priority: 0,
                cell: Cell::JsonPath(".metadata.creationTimestamp"),
            });
        }
        for c in &printer {
            columns.push(Column {
                name: leak(c["name"].as_str().unwrap_or_default()),
                kind: leak(c["type"].as_str().unwrap_or("string")),
                description: leak(c["description"].as_str().unwrap_or_default()),
                priority: c["priority"]
                    .as_u64()
                    .and_then(|p| u8::try_from(p).ok())
                    .unwrap_or(0),
                cell: Cell::JsonPath(leak(c["jsonPath"].as_str().unwrap_or_default())),
            });
        }
        let rt = ResourceType {
            gvr: Gvr {
                group,
                version: leak(v["name"].as_str().unwrap_or_default()),
                resource: s("plural"),
            },
            kind: s("kind"),
            singular: s("singular"),
            namespaced,
            short_names,
            categories,
            status_subresource: v.pointer("/subresources/status").is_some(),
            has_generation: true,
            custom: true,
            scale,
            columns: Box::leak(columns.into_boxed_slice()),
        };
        out.push(&*Box::leak(Box::new(rt)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_crd() -> Value {
        serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]}
                ]
            }
        })
    }

    #[test]
    fn defaults_validation_and_types() {
        let mut crd = widget_crd();
        default_spec(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "widget");
        assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
        assert!(validate(&crd).is_empty(), "{:?}", validate(&crd));
        let types = types_of(&crd);
        assert_eq!(types.len(), 2);
        let v1 = types[1];
        assert_eq!(v1.gvr.version, "v1");
        assert!(v1.status_subresource && v1.has_scale() && v1.namespaced && v1.custom);
        assert!(!types[0].status_subresource && !types[0].has_scale());
        let columns: Vec<&str> = v1.columns.iter().map(|c| c.name).collect();
        assert_eq!(columns, ["Name", "Size"]);
        let defaulted: Vec<&str> = types[0].columns.iter().map(|c| c.name).collect();
        assert_eq!(defaulted, ["Name", "Age"]);
        // The same CRD again: the same types, nothing new made.
        assert!(std::ptr::eq(types_of(&crd)[1], v1));
    }

    #[test]
    fn invalid_crds_are_refused_with_the_servers_words() {
        let cases: &[(&str, Value, &str)] = &[
            (
                "/metadata/name",
                json!("widgets.other.com"),
                "metadata.name",
            ),
            ("/spec/group", json!("example"), "spec.group"),
            ("/spec/scope", json!("Global"), "spec.scope"),
            ("/spec/versions/1/storage", json!(false), "spec.versions"),
            ("/spec/names/plural", json!("Widgets"), "spec.names.plural"),
        ];
        for (pointer, value, field) in cases {
            let mut crd = widget_crd();
            *crd.pointer_mut(pointer).unwrap() = value.clone();
            default_spec(&mut crd);
            let errors = validate(&crd);
            assert!(
                errors.iter().any(|e| e.field == *field),
                "{pointer}: {errors:?}"
            );
        }
    }

    #[test]
    fn names_in_use_in_the_group_are_not_accepted() {
        let registry = Registry::builtin();
        let mut first = widget_crd();
        default_spec(&mut first);
        accept(&registry, &mut first);
        assert!(is_established(&first));
        assert_eq!(first["status"]["conditions"][0]["reason"], "NoConflicts");
        assert_eq!(first["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(
            first["status"]["acceptedNames"]["shortNames"],
            json!(["wd"])
        );
        registry.set_crd("widgets.example.com", &first["spec"], || types_of(&first));

        let mut second = widget_crd();
        second["metadata"]["name"] = json!("gadgets.example.com");
        second["spec"]["names"] =
            json!({"plural": "gadgets", "kind": "Gadget", "shortNames": ["wd"]});
        default_spec(&mut second);
        accept(&registry, &mut second);
        assert!(!is_established(&second));
        let names = &second["status"]["conditions"][0];
        assert_eq!(names["reason"], "ShortNamesConflict");
        assert_eq!(names["message"], "\"wd\" is already in use");
        assert_eq!(second["status"]["conditions"][1]["reason"], "NotAccepted");
    }
}
