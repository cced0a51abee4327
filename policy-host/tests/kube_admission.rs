//! The one-pass AdmissionReview parser (`parse_review`) agrees with kube's admission types
//! (`kube::core::admission::AdmissionReview<DynamicObject>`) on every fixture, on the fuzz corpus,
//! and on mutations of the fixtures; where they legitimately differ, each difference is a case
//! below with the reason, decided by the Kubernetes API (admission.k8s.io/v1, k8s.io/api
//! admission/v1/types.go, as kube-apiserver encodes it and Go's encoding/json decodes it).

#[path = "support/kube_agreement.rs"]
mod kube_agreement;

use std::path::{Path, PathBuf};

use kube_agreement::{decode, fields_agree};
use serde_json::{Value, json};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.json` under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The AdmissionReview fixtures: the guards' fixture table, the webhook's, the fuzz seeds.
fn fixtures() -> Vec<(PathBuf, Vec<u8>)> {
    let root = workspace();
    let mut all = Vec::new();
    for dir in ["tests/fixtures/admission"] {
        for path in json_files(&root.join(dir)) {
            let bytes = std::fs::read(&path).unwrap();
            all.push((path, bytes));
        }
    }
    assert!(all.len() >= 30, "fixtures not found: {}", all.len());
    all
}

/// The reviews both sides accept: every well-formed fixture.
fn accepted_fixtures() -> Vec<(PathBuf, Value)> {
    fixtures()
        .into_iter()
        .filter(|(path, _)| {
            !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("bad-")
        })
        .map(|(path, bytes)| {
            let value = serde_json::from_slice(&bytes).unwrap();
            (path, value)
        })
        .collect()
}

#[test]
fn every_fixture_decodes_the_same_with_both() {
    let mut accepted = 0;
    for (path, body) in fixtures() {
        let decoded = decode(&body);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The fixtures named bad-* are refused by both, the others accepted by both; but kube's
        // TypeMeta takes any apiVersion and kind (see DIVERGENCES).
        let want = !name.starts_with("bad-");
        let kube_wants = want || name == "bad-api-version.json" || name == "bad-kind.json";
        assert_eq!(
            decoded.accepts(),
            (want, kube_wants),
            "{}: ours {:?}, kube {:?}",
            path.display(),
            decoded.ours.as_ref().err(),
            decoded.kube.as_ref().err()
        );
        fields_agree(&decoded).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Real requests' objects and users read by kube's types lose nothing: the JSON is equal.
        if let (Ok(ours), Ok(kube)) = (&decoded.ours, &decoded.kube) {
            let json = |text: &Option<String>| text.as_deref().map(json_of);
            assert_eq!(json(&ours.object), json(&kube.object), "{}", path.display());
            assert_eq!(
                json(&ours.old_object),
                json(&kube.old_object),
                "{}",
                path.display()
            );
            assert_eq!(
                json_of(&ours.user),
                json_of(&kube.user),
                "{}",
                path.display()
            );
        }
        accepted += usize::from(want);
    }
    assert!(accepted >= 30, "{accepted}");
}

/// One change to a fixture's `request` (or to the whole body).
struct Mutation {
    /// Names the case in the table of expected outcomes.
    label: String,
    apply: Box<dyn Fn(&mut Value)>,
}

fn mutation(label: impl Into<String>, apply: impl Fn(&mut Value) + 'static) -> Mutation {
    Mutation {
        label: label.into(),
        apply: Box::new(apply),
    }
}

/// The request's fields, each removed, `null`, and of each wrong JSON type; and the cases the
/// issue names (dryRun absent/true, a subresource, DELETE with oldObject only).
fn mutations() -> Vec<Mutation> {
    let fields = [
        "uid",
        "kind",
        "resource",
        "subResource",
        "operation",
        "userInfo",
        "object",
        "oldObject",
        "dryRun",
        "namespace",
        "name",
        "options",
        "requestKind",
    ];
    let mut all = Vec::new();
    for field in fields {
        all.push(mutation(format!("{field} absent"), move |r| {
            r["request"].as_object_mut().unwrap().remove(field);
        }));
        let wrong: [(&str, Value); 6] = [
            ("null", Value::Null),
            ("a number", json!(7)),
            ("a string", json!("x")),
            ("a bool", json!(true)),
            ("an array", json!([])),
            ("an empty object", json!({})),
        ];
        for (what, value) in wrong {
            all.push(mutation(format!("{field} {what}"), move |r| {
                r["request"][field] = value.clone();
            }));
        }
    }
    let set = |label: &str, field: &'static str, value: Value| {
        mutation(label, move |r: &mut Value| {
            r["request"][field] = value.clone()
        })
    };
    all.extend([
        set("dryRun true", "dryRun", json!(true)),
        set("subResource status", "subResource", json!("status")),
        set("subResource empty", "subResource", json!("")),
        set("uid empty", "uid", json!("")),
        set("operation PATCH", "operation", json!("PATCH")),
        set("operation lowercase", "operation", json!("create")),
        set("operation empty", "operation", json!("")),
        set("operation CONNECT", "operation", json!("CONNECT")),
        mutation("DELETE with oldObject only", |r| {
            let request = &mut r["request"];
            if request["oldObject"].is_null() {
                request["oldObject"] = request["object"].clone();
            }
            request["operation"] = json!("DELETE");
            request.as_object_mut().unwrap().remove("object");
        }),
        mutation("DELETE with object null", |r| {
            let request = &mut r["request"];
            if request["oldObject"].is_null() {
                request["oldObject"] = request["object"].clone();
            }
            request["operation"] = json!("DELETE");
            request["object"] = Value::Null;
        }),
        mutation("resource without group", |r| {
            r["request"]["resource"]
                .as_object_mut()
                .unwrap()
                .remove("group");
        }),
        mutation("resource without version", |r| {
            r["request"]["resource"]
                .as_object_mut()
                .unwrap()
                .remove("version");
        }),
        mutation("resource.resource null", |r| {
            r["request"]["resource"]["resource"] = Value::Null;
        }),
        mutation("kind without group", |r| {
            r["request"]["kind"]
                .as_object_mut()
                .unwrap()
                .remove("group");
        }),
        mutation("userInfo with an unknown field", |r| {
            r["request"]["userInfo"]["team"] = json!("a");
        }),
        mutation("userInfo.groups a string", |r| {
            r["request"]["userInfo"]["groups"] = json!("system:masters");
        }),
        mutation("userInfo.groups holding null", |r| {
            r["request"]["userInfo"]["groups"] = json!([null]);
        }),
        mutation("resource a [group, version, resource] array", |r| {
            r["request"]["resource"] = json!(["", "v1", "pods"]);
        }),
        mutation("kind a [group, version, kind] array", |r| {
            r["request"]["kind"] = json!(["", "v1", "Pod"]);
        }),
        mutation("object without metadata", |r| {
            let request = &mut r["request"];
            request["object"] = json!({"apiVersion": "v1", "kind": "Pod", "spec": {}});
        }),
        mutation("object.metadata a string", |r| {
            r["request"]["object"] = json!({"metadata": "x"});
        }),
        mutation("object nested 110 levels", |r| {
            let mut deep = json!(1);
            for _ in 0..110 {
                deep = json!([deep]);
            }
            r["request"]["object"] = json!({"metadata": {"name": "deep"}, "spec": deep});
        }),
        mutation("apiVersion admission.k8s.io/v1beta1", |r| {
            r["apiVersion"] = json!("admission.k8s.io/v1beta1");
        }),
        mutation("apiVersion absent", |r| {
            r.as_object_mut().unwrap().remove("apiVersion");
        }),
        mutation("kind (review) absent", |r| {
            r.as_object_mut().unwrap().remove("kind");
        }),
        mutation("kind (review) Pod", |r| r["kind"] = json!("Pod")),
        mutation("request absent", |r| {
            r.as_object_mut().unwrap().remove("request");
        }),
        mutation("request null", |r| r["request"] = Value::Null),
        mutation("response beside the request", |r| {
            r["response"] = json!({"uid": "x", "allowed": true});
        }),
    ]);
    all
}

/// The body of `review` with the `request`'s first key given twice (first the duplicate).
fn with_duplicate_uid(review: &Value) -> Vec<u8> {
    let text = serde_json::to_string(review).unwrap();
    let request = text.find(r#""request":{"#).unwrap() + r#""request":{"#.len();
    format!(
        r#"{}"uid":"duplicate",{}"#,
        &text[..request],
        &text[request..]
    )
    .into_bytes()
}

/// Where the two disagree on accepting a body, and which is right by admission/v1 as Go decodes it
/// (k8s.io/api admission/v1 types.go: absent fields and `null` are zero values; a JSON type
/// that does not fit the Go type is an error; `object`, `oldObject` and `options` are
/// `runtime.RawExtension`, any JSON). `(ours accepts, kube accepts, why)`.
const DIVERGENCES: &[(&str, bool, bool, &str)] = &[
    // kube's types are stricter than the API: kube-apiserver would decode these, and so do we.
    (
        "kind absent",
        true,
        false,
        "Go: zero GroupVersionKind; kube: kind is required",
    ),
    (
        "kind null",
        true,
        false,
        "Go: null is the zero value; serde: null is no struct",
    ),
    (
        "kind an empty object",
        true,
        false,
        "Go: zero fields; kube: group, version, kind required",
    ),
    (
        "kind without group",
        true,
        false,
        "Go: group \"\" (the core group); kube: group required",
    ),
    ("requestKind an empty object", true, false, "as kind"),
    (
        "resource without group",
        true,
        false,
        "Go: group \"\"; kube: group required",
    ),
    (
        "resource without version",
        true,
        false,
        "Go: version \"\"; kube: version required",
    ),
    (
        "userInfo absent",
        true,
        false,
        "Go: zero UserInfo; kube: userInfo required",
    ),
    ("userInfo null", true, false, "Go: null is the zero value"),
    (
        "userInfo.groups holding null",
        true,
        false,
        "Go: a null string is \"\"; serde: null is no String",
    ),
    (
        "dryRun null",
        true,
        false,
        "Go: *bool, null is nil (false); kube: bool",
    ),
    (
        "name null",
        true,
        false,
        "Go: null string is \"\"; kube: String",
    ),
    (
        "object a number",
        true,
        false,
        "Go: RawExtension holds any JSON; kube: DynamicObject",
    ),
    ("object a string", true, false, "as object a number"),
    ("object a bool", true, false, "as object a number"),
    ("object an array", true, false, "as object a number"),
    (
        "object.metadata a string",
        true,
        false,
        "RawExtension: any JSON; kube: ObjectMeta",
    ),
    ("oldObject a number", true, false, "as object a number"),
    ("oldObject a string", true, false, "as object a number"),
    ("oldObject a bool", true, false, "as object a number"),
    ("oldObject an array", true, false, "as object a number"),
    (
        "uid twice",
        true,
        false,
        "Go (and ours): the last duplicate key wins; serde derive refuses it",
    ),
    (
        "response beside the request",
        true,
        false,
        "Go: response.status is omitempty; kube's AdmissionResponse requires status (an answer \
         {uid, allowed: true} does not decode with kube's types)",
    ),
    // Ours refuses, kube accepts: ours is right, or stricter on purpose.
    (
        "apiVersion admission.k8s.io/v1beta1",
        false,
        true,
        "kube's TypeMeta takes any apiVersion; we answer v1 only, and kube-apiserver refuses an \
         answer of another version than it asked in",
    ),
    (
        "kind (review) Pod",
        false,
        true,
        "kube's TypeMeta takes any kind",
    ),
    (
        "kind a [group, version, kind] array",
        false,
        true,
        "Go decodes a struct from an object only; serde's derive also takes an array of the fields",
    ),
    (
        "resource a [group, version, resource] array",
        false,
        true,
        "as kind a [group, version, kind] array (before: both accepted it)",
    ),
    (
        "uid empty",
        false,
        true,
        "on purpose: kube-apiserver always sends a UUID, and an answer must echo it",
    ),
    (
        "object nested 110 levels",
        false,
        true,
        "on purpose: MAX_DEPTH 100, as policies parse the request again (serde_json stops at 128)",
    ),
];

/// Every mutation of every fixture: where both accept, the fields agree; where they disagree on
/// accepting it, the case is in [`DIVERGENCES`], with the same outcome for every fixture. Fixed
/// in parse_review when this test was written (ours accepted, kube and Go refuse): `operation`
/// not CREATE, UPDATE, DELETE or CONNECT; `kind`, `requestKind`, `userInfo` (and its fields),
/// `dryRun` and `name` of a JSON type their Go types refuse; `kind` as an array.
#[test]
fn mutated_fixtures_agree_or_differ_as_recorded() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut outcomes: BTreeMap<String, BTreeSet<(bool, bool)>> = BTreeMap::new();
    let fixtures = accepted_fixtures();
    for (path, review) in &fixtures {
        for m in mutations() {
            let mut mutated = review.clone();
            (m.apply)(&mut mutated);
            let body = serde_json::to_vec(&mutated).unwrap();
            let decoded = decode(&body);
            fields_agree(&decoded)
                .unwrap_or_else(|e| panic!("{} / {}: {e}", path.display(), m.label));
            outcomes
                .entry(m.label)
                .or_default()
                .insert(decoded.accepts());
        }
        let decoded = decode(&with_duplicate_uid(review));
        outcomes
            .entry("uid twice".into())
            .or_default()
            .insert(decoded.accepts());
    }
    let mut unexplained = Vec::new();
    for (label, seen) in &outcomes {
        let seen: Vec<_> = seen.iter().collect();
        assert_eq!(seen.len(), 1, "{label}: differs between fixtures: {seen:?}");
        let (ours, kube) = *seen[0];
        let recorded = DIVERGENCES.iter().find(|(l, ..)| l == label);
        match recorded {
            Some((_, o, k, _)) => {
                assert_eq!((ours, kube), (*o, *k), "{label}: not as recorded")
            }
            None if ours != kube => unexplained.push(format!("{label}: ours {ours}, kube {kube}")),
            None => {}
        }
    }
    assert!(
        unexplained.is_empty(),
        "unrecorded divergences: {unexplained:#?}"
    );
    for (label, ..) in DIVERGENCES {
        assert!(outcomes.contains_key(*label), "{label}: no such case");
    }
    // The cases the issue names, accepted by both with the same fields.
    for label in [
        "dryRun true",
        "dryRun absent",
        "subResource status",
        "DELETE with oldObject only",
        "DELETE with object null",
        "operation CONNECT",
        "object without metadata",
        "userInfo an empty object",
    ] {
        assert_eq!(outcomes[label], BTreeSet::from([(true, true)]), "{label}");
    }
    // And some both refuse.
    for label in [
        "operation PATCH",
        "operation lowercase",
        "kind a string",
        "userInfo a string",
        "userInfo.groups a string",
        "dryRun a string",
        "uid absent",
        "resource absent",
        "request null",
    ] {
        assert_eq!(outcomes[label], BTreeSet::from([(false, false)]), "{label}");
    }
}

#[test]
fn the_fields_read_are_the_fixtures_own() {
    // One fixture by hand, so that agreement is not agreement on nothing.
    let body =
        std::fs::read(workspace().join("tests/fixtures/admission/webhook/pvc-status-update.json"))
            .unwrap();
    let decoded = decode(&body);
    let fields = decoded.ours.as_ref().unwrap();
    fields_agree(&decoded).unwrap();
    assert_eq!(fields.sub_resource, "status");
    assert_eq!(fields.operation, "UPDATE");
    assert_eq!(fields.resource.2, "persistentvolumeclaims");
    assert_eq!(fields.kind.2, "PersistentVolumeClaim");
    assert!(fields.object.is_some() && fields.old_object.is_some());
}

/// The fuzz target's corpus (webhook/fuzz/corpus/parse_review, grown by fuzzing runs) through
/// the fuzz target's own comparison: where both accept, the fields agree. On stable, on every
/// `cargo test`, whether or not cargo-fuzz is at hand.
#[test]
fn the_fuzz_corpus_agrees_where_both_accept() {
    let corpus = json_files(&workspace().join("webhook/fuzz/corpus/parse_review"));
    assert!(corpus.len() >= 8);
    let mut both = 0;
    for path in corpus {
        let decoded = decode(&std::fs::read(&path).unwrap());
        fields_agree(&decoded).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        both += usize::from(decoded.accepts() == (true, true));
    }
    assert!(both >= 4, "{both}");
}

/// What kube's `DynamicObject` does not keep of an object, where parse_review hands policies the
/// object as received (admission/v1 `object` is a `runtime.RawExtension`: the bytes as they are).
/// Both accept these; the fields agree as kube reads them; the JSON differs as recorded.
#[test]
fn what_kube_drops_from_an_object_is_recorded() {
    let cases: [(&str, &str, Value); 5] = [
        (
            "apiVersion without kind: DynamicObject keeps the two only together",
            r#"{"apiVersion": "v1", "metadata": {"name": "a"}}"#,
            json!({"metadata": {"name": "a"}}),
        ),
        (
            "a null metadata field",
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "creationTimestamp": null}}"#,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}),
        ),
        (
            "a metadata field ObjectMeta does not have",
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "colour": "red"}}"#,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}),
        ),
        (
            // Found by the fuzz target: bytes erased so that `options`' fields ended in oldObject.
            // Go and serde_json take the last of duplicate keys; kube's flattened TypeMeta loses
            // apiVersion.
            "apiVersion and kind twice",
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {}, "apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}"#,
            json!({"kind": "UpdateOptions", "metadata": {}}),
        ),
        (
            "no metadata: kube writes an empty one",
            r#"{"apiVersion": "v1", "kind": "Pod"}"#,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}}),
        ),
    ];
    let (_, review) = &accepted_fixtures()[0];
    let mut review = review.clone();
    review["request"]["object"] = json!("OBJECT");
    let review = serde_json::to_string(&review).unwrap();
    for (what, object, as_kube_holds_it) in cases {
        let body = review.replace(r#""OBJECT""#, object);
        let decoded = decode(body.as_bytes());
        fields_agree(&decoded).unwrap_or_else(|e| panic!("{what}: {e}"));
        // Ours: the bytes as received.
        assert_eq!(
            decoded.ours.unwrap().object.as_deref(),
            Some(object),
            "{what}"
        );
        let kube = decoded.kube.unwrap().object.unwrap();
        assert_eq!(json_of(&kube), as_kube_holds_it, "{what}");
    }
}
