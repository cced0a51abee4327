use serde_json::{Value, json};

use crate::quantity::Quantity;

use super::*;

/// (values path, object, field, refused)
type Row = (String, String, String, bool);
/// (argument, Ok((path, value)) or refused)
type SetCase<'a> = (&'a str, Result<(&'a [&'a str], &'a str), ()>);

fn harbor_values(registry: &str, database: &str) -> Value {
    json!({
        "hostname": "harbor.example.com",
        "harborAdminPassword": "Harbor-Admin-1234!",
        "secretKey": "0123456789abcdef",
        "database": {"password": "db-Secret-5678"},
        "persistence": {"persistentVolumeClaim": {
            "registry": {"size": registry, "storageClass": "ftt0-r0", "accessMode": "ReadWriteOnce"},
            "jobservice": {"size": "1Gi", "storageClass": "ftt0-r0", "accessMode": "ReadWriteOnce"},
            "database": {"size": database, "storageClass": "ftt0-r0", "accessMode": "ReadWriteOnce"}
        }}
    })
}

fn harbor_live() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "harbor-registry", "namespace": "svc-harbor-domain-c8"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "ftt0-r0",
                        "resources": {"requests": {"storage": "55Gi"}}, "volumeName": "pvc-1"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "harbor-jobservice", "namespace": "svc-harbor-domain-c8"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "ftt0-r0",
                        "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "harbor-database", "namespace": "svc-harbor-domain-c8"},
               "spec": {"replicas": 1, "serviceName": "harbor-database",
                        "template": {"spec": {"containers": [{"name": "database", "image": "db:1"}]}},
                        "volumeClaimTemplates": [{"metadata": {"name": "database-data"},
                            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "ftt0-r0",
                                     "resources": {"requests": {"storage": "2Gi"}}}}]}}),
    ]
}

fn p(s: &str) -> Path {
    s.split('.').map(str::to_owned).collect()
}

#[test]
fn sensitive_keys() {
    for (k, want) in [
        ("password", true),
        ("harborAdminPassword", true),
        ("POSTGRES_PASSWORD", true),
        ("secretKey", true),
        ("secret", true),
        ("token", true),
        ("apiKey", true),
        ("tls.key", true),
        ("key", true),
        ("credentials", true),
        ("passwd", true),
        ("hostname", false),
        ("size", false),
        ("storageClass", false),
        ("keys", false),
        ("registry", false),
    ] {
        assert_eq!(is_sensitive_key(k), want, "{k}");
    }
}

#[test]
fn masking_shows_that_a_secret_changed_never_what_it_is() {
    let old = harbor_values("55Gi", "2Gi");
    let mut new = old.clone();
    new["database"]["password"] = json!("new-pass");
    new["persistence"]["persistentVolumeClaim"]["registry"]["size"] = json!("60Gi");
    let (a, b) = mask_pair(&old, &new);
    assert_eq!(a["harborAdminPassword"], MASK);
    assert_eq!(b["harborAdminPassword"], MASK);
    assert_eq!(a["secretKey"], MASK);
    assert_eq!(a["database"]["password"], MASK_BEFORE);
    assert_eq!(b["database"]["password"], MASK_AFTER);
    assert_eq!(
        b["persistence"]["persistentVolumeClaim"]["registry"]["size"],
        "60Gi"
    );
    let text = format!("{a}{b}");
    for secret in [
        "Harbor-Admin-1234!",
        "0123456789abcdef",
        "db-Secret-5678",
        "new-pass",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // A whole sensitive subtree, added or removed, is masked too; empty values stay visible.
    let (_, b) = mask_pair(
        &json!({}),
        &json!({"credentials": {"user": "u", "pw": "p"}, "token": ""}),
    );
    assert_eq!(b["credentials"], MASK);
    assert_eq!(b["token"], "");
    assert_eq!(
        mask(&json!({"list": [{"password": "x"}]}))["list"][0]["password"],
        MASK
    );
}

#[test]
fn changes_are_leaves() {
    let old = harbor_values("55Gi", "2Gi");
    let mut new = harbor_values("60Gi", "2Gi");
    new["extra"] = json!({"a": 1});
    new.as_object_mut().unwrap().remove("hostname");
    let got: Vec<(String, Option<Value>, Option<Value>)> = changes(&old, &new)
        .into_iter()
        .map(|c| (dotted(&c.path), c.old, c.new))
        .collect();
    assert_eq!(
        got,
        [
            ("extra".into(), None, Some(json!({"a": 1}))),
            ("hostname".into(), Some(json!("harbor.example.com")), None),
            (
                "persistence.persistentVolumeClaim.registry.size".into(),
                Some(json!("55Gi")),
                Some(json!("60Gi"))
            ),
        ]
    );
    assert!(changes(&old, &old).is_empty());
    assert_eq!(changes(&json!(null), &json!({"a": 1})).len(), 1);
}

#[test]
fn set_arguments() {
    let cases: &[SetCase] = &[
        ("a.b.c=60Gi", Ok((&["a", "b", "c"], "60Gi"))),
        ("a=", Ok((&["a"], ""))),
        ("a=b=c", Ok((&["a"], "b=c"))),
        (
            r"labels.app\.kubernetes\.io/name=x",
            Ok((&["labels", "app.kubernetes.io/name"], "x")),
        ),
        ("novalue", Err(())),
        ("=x", Err(())),
        ("a..b=x", Err(())),
        ("a.=x", Err(())),
        (r"a\=x", Err(())),
    ];
    for (arg, want) in cases {
        let got = parse_set(arg);
        match want {
            Ok((path, value)) => {
                let (gp, gv) = got.unwrap_or_else(|e| panic!("{arg}: {e}"));
                assert_eq!(
                    gp,
                    path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    "{arg}"
                );
                assert_eq!(gv, *value, "{arg}");
            }
            Err(()) => assert!(got.is_err(), "{arg} should be refused"),
        }
    }
}

#[test]
fn set_values_follow_the_schema_then_yaml() {
    let schema = json!({"type": "object", "properties": {
        "size": {"type": "string"}, "count": {"type": "integer"}, "name": {"type": "string"}}});
    let cases = [
        ("size=60Gi", json!({"size": "60Gi"})),
        ("count=3", json!({"count": 3})),
        ("name=3", json!({"name": "3"})),
        ("name=true", json!({"name": "true"})),
        ("other=true", json!({"other": true})),
        ("other=1.5", json!({"other": 1.5})),
        ("other=null", json!({"other": null})),
        ("other=1.2.3", json!({"other": "1.2.3"})),
        ("a.b.c=x", json!({"a": {"b": {"c": "x"}}})),
    ];
    for (arg, want) in cases {
        let mut v = json!({});
        set_path(&mut v, arg, Some(&schema)).unwrap();
        assert_eq!(v, want, "{arg}");
    }
    let mut v = harbor_values("55Gi", "2Gi");
    set_path(
        &mut v,
        "persistence.persistentVolumeClaim.registry.size=60Gi",
        None,
    )
    .unwrap();
    assert_eq!(v, harbor_values("60Gi", "2Gi"));
    let mut v = json!(null);
    set_path(&mut v, "a=1", None).unwrap();
    assert_eq!(v, json!({"a": 1}));
    let err = set_path(&mut harbor_values("55Gi", "2Gi"), "hostname.x=1", None).unwrap_err();
    assert!(
        err.to_string().contains("hostname is a string, not a map"),
        "{err}"
    );
}

fn harbor_schema() -> Value {
    let volume = json!({"type": "object", "additionalProperties": false, "properties": {
        "size": {"type": "string", "pattern": "^[0-9]+(Mi|Gi|Ti)$"},
        "storageClass": {"type": "string"},
        "accessMode": {"type": "string", "enum": ["ReadWriteOnce", "ReadWriteMany"]}}});
    json!({"type": "object", "additionalProperties": false, "properties": {
        "hostname": {"type": "string"},
        "harborAdminPassword": {"type": "string"},
        "secretKey": {"type": "string", "minLength": 16, "maxLength": 16},
        "database": {"type": "object", "additionalProperties": false, "properties": {"password": {"type": "string"}}},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "persistence": {"type": "object", "additionalProperties": false, "properties": {
            "persistentVolumeClaim": {"type": "object", "additionalProperties": false, "properties": {
                "registry": volume, "jobservice": volume, "database": volume}}}}}})
}

#[test]
fn schema_validation_table() {
    let schema = harbor_schema();
    let base = harbor_values("55Gi", "2Gi");
    assert!(
        validate(&schema, &base).is_empty(),
        "{:?}",
        validate(&schema, &base)
    );
    let cases: &[(&str, Value, &str)] = &[
        (
            "persistence.persistentVolumeClaim.registry.size",
            json!("60GB"),
            "persistence.persistentVolumeClaim.registry.size: Invalid value: \"60GB\": should match '^[0-9]+(Mi|Gi|Ti)$'",
        ),
        (
            "persistence.persistentVolumeClaim.registry.size",
            json!(60),
            "persistence.persistentVolumeClaim.registry.size: Invalid value: 60: must be of type string, not number",
        ),
        (
            "persistence.persistentVolumeClaim.registry.accessMode",
            json!("ReadOnce"),
            "persistence.persistentVolumeClaim.registry.accessMode: Unsupported value: \"ReadOnce\": supported values: \"ReadWriteOnce\", \"ReadWriteMany\"",
        ),
        (
            "persistence.persistentVolumeClaim.registry.sise",
            json!("1Gi"),
            "persistence.persistentVolumeClaim.registry: unknown field \"sise\" (known fields: accessMode, size, storageClass)",
        ),
        (
            "secretKey",
            json!("short"),
            "secretKey: Invalid value: must be at least 16 characters long",
        ),
        (
            "secretKey",
            json!(5),
            "secretKey: Invalid value: ***: must be of type string, not number",
        ),
        (
            "replicas",
            json!(0),
            "replicas: Invalid value: 0: must be greater than or equal to 1",
        ),
        (
            "replicas",
            json!(4),
            "replicas: Invalid value: 4: must be less than or equal to 3",
        ),
        (
            "replicas",
            json!(1.5),
            "replicas: Invalid value: 1.5: must be of type integer, not number",
        ),
        (
            "tags",
            json!(["a", 1]),
            "tags[1]: Invalid value: 1: must be of type string, not number",
        ),
        (
            "tags",
            json!(["a", "b", "c"]),
            "tags: Invalid value: must have at most 2 items",
        ),
        (
            "hostname",
            json!(null),
            "hostname: Invalid value: null: must be of type string",
        ),
    ];
    for (path, value, want) in cases {
        let mut v = base.clone();
        let segs = p(path);
        let mut cur = &mut v;
        for s in &segs[..segs.len() - 1] {
            cur = &mut cur[s.as_str()];
        }
        cur[segs.last().unwrap().as_str()] = value.clone();
        let got: Vec<String> = validate(&schema, &v)
            .iter()
            .map(|x| x.to_string())
            .collect();
        assert_eq!(got, [want.to_string()], "{path} = {value}");
    }
    let got = validate(&schema, &json!(["not", "a", "map"]));
    assert_eq!(
        got[0].to_string(),
        "(root): Invalid value: [\"not\",\"a\",\"map\"]: must be of type object, not list"
    );
    let required = json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "nullable": true}}});
    assert_eq!(
        validate(&required, &json!({}))[0].message,
        "Required value: \"a\" is required"
    );
    assert!(validate(&required, &json!({"a": null})).is_empty());
    let any = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(validate(&any, &json!(1)).is_empty());
    assert_eq!(validate(&any, &json!(true)).len(), 1);
    // A schema the validator cannot read is no reason to refuse values.
    assert!(validate(&json!({"type": "string", "pattern": "("}), &json!("x")).is_empty());
    assert!(validate(&json!(true), &json!({"x": 1})).is_empty());
}

#[test]
fn quantities() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    for (s, want) in [
        ("55Gi", Some(q("55Gi"))),
        ("59055800320", Some(q("55Gi"))),
        ("56320Mi", Some(q("55Gi"))),
        ("1.5Gi", Some(q("1536Mi"))),
        ("500M", Some(q("500000000"))),
        ("100m", Some(q("0.1"))),
        ("1e3", Some(q("1k"))),
        (" 2Gi ", Some(q("2048Mi"))),
        // Not quantities in a values file: Kubernetes spellings only, and at least one digit.
        ("GB", None),
        ("60GB", None),
        ("16MiB", None),
        ("Gi", None),
        ("E", None),
        ("", None),
        ("ReadWriteOnce", None),
    ] {
        assert_eq!(parse_quantity(s), want, "{s}");
    }
    // Exact where a float is not: 2^63 + 1 bytes is not 2^63.
    assert_ne!(parse_quantity("9223372036854775809"), parse_quantity("8Ei"));
    for (field, want) in [
        ("spec.resources.requests.storage", true),
        (
            "spec.volumeClaimTemplates[0].spec.resources.requests.storage",
            true,
        ),
        (
            "spec.template.spec.containers[0].resources.limits.memory",
            true,
        ),
        ("spec.template.spec.volumes[0].emptyDir.sizeLimit", true),
        ("spec.storageClassName", false),
        ("spec.replicas", false),
    ] {
        assert_eq!(is_quantity_field(field), want, "{field}");
    }
}

#[test]
fn values_paths_name_objects() {
    for (path, name, want) in [
        (
            "persistence.persistentVolumeClaim.registry.size",
            "harbor-registry",
            true,
        ),
        (
            "persistence.persistentVolumeClaim.database.size",
            "harbor-database",
            true,
        ),
        (
            "persistence.persistentVolumeClaim.database.size",
            "harbor-registry",
            false,
        ),
        (
            "persistence.persistentVolumeClaim.jobservice.size",
            "harbor-jobservice",
            true,
        ),
        ("registry", "harbor-registry", false),
        ("harbor-registry.size", "harbor-registry", true),
        ("Registry.size", "harbor-registry", true),
        ("persistence.size", "harbor-registry", false),
        ("reg.size", "harbor-registry", false),
    ] {
        assert_eq!(names_object(&p(path), name), want, "{path} vs {name}");
    }
}

fn findings(old: &Value, new: &Value) -> Vec<Row> {
    preflight(&changes(old, new), &harbor_live())
        .into_iter()
        .map(|f| {
            (
                f.values_path.clone(),
                f.object(),
                f.field.clone(),
                f.is_refused(),
            )
        })
        .collect()
}

#[test]
fn preflight_table() {
    let pvc = "persistentvolumeclaim/harbor-registry -n svc-harbor-domain-c8".to_string();
    let sts = "statefulset/harbor-database -n svc-harbor-domain-c8".to_string();
    let reg = "persistence.persistentVolumeClaim.registry".to_string();
    let db = "persistence.persistentVolumeClaim.database".to_string();
    let base = harbor_values("55Gi", "2Gi");
    let with = |path: &str, v: Value| {
        let mut x = base.clone();
        let segs = p(path);
        x["persistence"]["persistentVolumeClaim"][segs[0].as_str()][segs[1].as_str()] = v;
        x
    };
    let cases: Vec<(Value, Vec<Row>)> = vec![
        // The blog's DO: grow the registry.
        (
            with("registry.size", json!("60Gi")),
            vec![(
                format!("{reg}.size"),
                pvc.clone(),
                "spec.resources.requests.storage".into(),
                false,
            )],
        ),
        // Shrink: refused.
        (
            with("registry.size", json!("50Gi")),
            vec![(
                format!("{reg}.size"),
                pvc.clone(),
                "spec.resources.requests.storage".into(),
                true,
            )],
        ),
        // Same quantity written differently: allowed.
        (
            with("registry.size", json!("56320Mi")),
            vec![(
                format!("{reg}.size"),
                pvc.clone(),
                "spec.resources.requests.storage".into(),
                false,
            )],
        ),
        // r12: the StatefulSet's claim template, the same quantity written differently: allowed (the API
        // server compares quantities by value).
        (
            with("database.size", json!("2048Mi")),
            vec![(
                format!("{db}.size"),
                sts.clone(),
                "spec.volumeClaimTemplates[0].spec.resources.requests.storage".into(),
                false,
            )],
        ),
        // Almost the same is not the same: one byte more is a change the API server refuses.
        (
            with("database.size", json!("2147483649")),
            vec![(
                format!("{db}.size"),
                sts.clone(),
                "spec.volumeClaimTemplates[0].spec.resources.requests.storage".into(),
                true,
            )],
        ),
        // The PVC's storage class: immutable.
        (
            with("registry.storageClass", json!("gold")),
            vec![(
                format!("{reg}.storageClass"),
                pvc.clone(),
                "spec.storageClassName".into(),
                true,
            )],
        ),
        (
            with("registry.accessMode", json!("ReadWriteMany")),
            vec![(
                format!("{reg}.accessMode"),
                pvc.clone(),
                "spec.accessModes[0]".into(),
                true,
            )],
        ),
        // The blog's DON'T: the StatefulSet's volume claim template, grown or shrunk, or its class.
        (
            with("database.size", json!("5Gi")),
            vec![(
                format!("{db}.size"),
                sts.clone(),
                "spec.volumeClaimTemplates[0].spec.resources.requests.storage".into(),
                true,
            )],
        ),
        (
            with("database.storageClass", json!("gold")),
            vec![(
                format!("{db}.storageClass"),
                sts.clone(),
                "spec.volumeClaimTemplates[0].spec.storageClassName".into(),
                true,
            )],
        ),
        // Removing a mapped value: refused (the default is unknown).
        (
            {
                let mut x = base.clone();
                x["persistence"]["persistentVolumeClaim"]["registry"]
                    .as_object_mut()
                    .unwrap()
                    .remove("size");
                x
            },
            vec![(
                format!("{reg}.size"),
                pvc.clone(),
                "spec.resources.requests.storage".into(),
                true,
            )],
        ),
        // Values that name no live object: nothing to check.
        (
            {
                let mut x = base.clone();
                x["hostname"] = json!("h2");
                x["database"]["password"] = json!("x");
                x
            },
            vec![],
        ),
        // Another volume, grown: mapped to its own claim, allowed.
        (
            with("jobservice.size", json!("2Gi")),
            vec![(
                "persistence.persistentVolumeClaim.jobservice.size".into(),
                "persistentvolumeclaim/harbor-jobservice -n svc-harbor-domain-c8".into(),
                "spec.resources.requests.storage".into(),
                false,
            )],
        ),
    ];
    for (new, want) in cases {
        assert_eq!(
            findings(&base, &new),
            want,
            "{}",
            serde_json::to_string(&changes(&base, &new)).unwrap()
        );
    }
    // Drift: the live PVC was edited by hand to 60Gi; a values change from 55Gi maps to nothing.
    let mut live = harbor_live();
    live[0]["spec"]["resources"]["requests"]["storage"] = json!("60Gi");
    assert!(
        preflight(
            &changes(&base, &with("registry.size", json!("58Gi"))),
            &live
        )
        .is_empty()
    );
}

#[test]
fn refusals_explain_why_and_what_to_do() {
    let v = judge(
        "PersistentVolumeClaim",
        "ns",
        "harbor-registry",
        "spec.resources.requests.storage",
        "55Gi",
        Some("50Gi"),
    );
    let FieldVerdict::Refused {
        why,
        server,
        instead,
    } = v
    else {
        panic!("refused")
    };
    assert!(why.contains("can only grow"), "{why}");
    assert_eq!(
        server,
        "PersistentVolumeClaim \"harbor-registry\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
    );
    assert!(instead.contains("55Gi or more"), "{instead}");
    let v = judge(
        "StatefulSet",
        "ns",
        "harbor-database",
        "spec.volumeClaimTemplates[0].spec.resources.requests.storage",
        "2Gi",
        Some("5Gi"),
    );
    let FieldVerdict::Refused {
        server, instead, ..
    } = v
    else {
        panic!("refused")
    };
    assert_eq!(server, statefulset_message("harbor-database"));
    assert!(
        instead.contains("--cascade=orphan") && instead.contains("\"storage\":\"5Gi\""),
        "{instead}"
    );
    for field in [
        "spec.replicas",
        "spec.template.spec.containers[0].image",
        "spec.updateStrategy.type",
        "spec.minReadySeconds",
        "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
    ] {
        assert!(
            !matches!(
                judge("StatefulSet", "ns", "s", field, "1", Some("2")),
                FieldVerdict::Refused { .. }
            ),
            "{field}"
        );
    }
    for field in [
        "spec.serviceName",
        "spec.selector.matchLabels.app",
        "spec.podManagementPolicy",
    ] {
        assert!(
            matches!(
                judge("StatefulSet", "ns", "s", field, "a", Some("b")),
                FieldVerdict::Refused { .. }
            ),
            "{field}"
        );
    }
    assert!(!matches!(
        judge("Deployment", "ns", "d", "spec.selector.x", "a", Some("b")),
        FieldVerdict::Refused { .. }
    ));
}

#[test]
fn the_same_quantity_is_no_change() {
    let field = "spec.volumeClaimTemplates[0].spec.resources.requests.storage";
    let v = judge(
        "StatefulSet",
        "ns",
        "harbor-database",
        field,
        "2Gi",
        Some("2048Mi"),
    );
    let FieldVerdict::Allowed { note } = v else {
        panic!("allowed: {v:?}")
    };
    assert!(
        note.contains("same quantity") && note.contains("keeps 2Gi"),
        "{note}"
    );
    // Outside the quantity fields, equal numbers in other spellings are still a change.
    assert!(matches!(
        judge(
            "StatefulSet",
            "ns",
            "db",
            "spec.serviceName",
            "1",
            Some("1.0")
        ),
        FieldVerdict::Refused { .. }
    ));
}
