//! Discovery documents (legacy `APIVersions`/`APIGroupList`/`APIResourceList`), `/version`, and the
//! minimal OpenAPI v3 documents kubectl reads to learn that the server validates fields itself.

use serde_json::{Value, json};

use crate::api::registry::{GroupVersions, Registry, ResourceType};

/// The Kubernetes version the simulator claims (kubectl's dispatcher picks its client from it).
pub const GIT_VERSION: &str = "v1.32.4+vmware.1";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:02:27Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group(g: &GroupVersions) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{}/{v}", g.name), "version": v}))
        .collect();
    json!({"name": g.name, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or_default()})
}

/// Create-only review APIs (`kubectl auth can-i`, `kubectl auth whoami`): not stored, answered at once.
/// (group, version, resource, kind)
pub const REVIEWS: [(&str, &str, &str, &str); 2] = [
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
];

/// Every served group with its versions (preferred first), the core group excluded.
pub fn all_groups(registry: &Registry) -> Vec<GroupVersions> {
    let mut out = registry.groups();
    for (g, v, _, _) in REVIEWS {
        match out.iter_mut().find(|x| x.name == g) {
            Some(x) if !x.versions.contains(&v) => x.versions.push(v),
            Some(_) => {}
            None => out.push(GroupVersions {
                name: g,
                versions: vec![v],
            }),
        }
    }
    out
}

/// `/apis`: the `APIGroupList`.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = all_groups(registry).iter().map(group).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: one `APIGroup`.
pub fn group_doc(registry: &Registry, name: &str) -> Value {
    let found = all_groups(registry).into_iter().find(|g| g.name == name);
    let mut g = match found {
        Some(g) => group(&g),
        None => json!({"name": name, "versions": []}),
    };
    g["kind"] = Value::from("APIGroup");
    g["apiVersion"] = Value::from("v1");
    g
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn types_of(registry: &Registry, group: &str, version: &str) -> Vec<&'static ResourceType> {
    registry
        .all()
        .iter()
        .copied()
        .filter(|r| r.gvr.group == group && r.gvr.version == version)
        .collect()
}

/// `/api/v1`, `/apis/<group>/<version>`: the `APIResourceList`.
pub fn resources(registry: &Registry, group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for (g, v, resource, kind) in REVIEWS {
        if g == group && v == version {
            list.push(json!({"name": resource, "singularName": "", "namespaced": false, "kind": kind, "verbs": ["create"]}));
        }
    }
    for r in types_of(registry, group, version) {
        let mut entry = json!({
            "name": r.gvr.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        if r.has_scale() {
            list.push(json!({
                "name": format!("{}/scale", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.has_ephemeral_containers() {
            list.push(json!({
                "name": format!("{}/ephemeralcontainers", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.has_subresource("eviction") {
            list.push(json!({
                "name": format!("{}/eviction", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "policy",
                "version": "v1",
                "kind": "Eviction",
                "verbs": ["create"],
            }));
        }
        if r.has_subresource("token") {
            list.push(json!({
                "name": format!("{}/token", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
        if r.has_subresource("approval") {
            list.push(json!({
                "name": format!("{}/approval", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.status_subresource {
            list.push(json!({
                "name": format!("{}/status", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": list})
}

/// The media type of aggregated discovery, as client-go asks for it and checks it on the answer.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// One group-version's resources as aggregated discovery lists them (`APIVersionDiscovery`).
fn aggregated_version(registry: &Registry, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for (g, v, resource, kind) in REVIEWS {
        if g == group && v == version {
            resources.push(json!({
                "resource": resource,
                "responseKind": {"group": "", "version": "", "kind": kind},
                "scope": "Cluster",
                "singularResource": "",
                "verbs": ["create"],
            }));
        }
    }
    for r in types_of(registry, group, version) {
        let same = |kind: &str| json!({"group": "", "version": "", "kind": kind});
        let mut subresources = Vec::new();
        if r.has_scale() {
            subresources.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
        }
        if r.has_ephemeral_containers() {
            subresources.push(json!({"subresource": "ephemeralcontainers", "responseKind": same(r.kind), "verbs": ["get", "patch", "update"]}));
        }
        if r.has_subresource("eviction") {
            subresources.push(json!({"subresource": "eviction", "responseKind": {"group": "policy", "version": "v1", "kind": "Eviction"}, "verbs": ["create"]}));
        }
        if r.has_subresource("token") {
            subresources.push(json!({"subresource": "token", "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}, "verbs": ["create"]}));
        }
        if r.has_subresource("approval") {
            subresources.push(json!({"subresource": "approval", "responseKind": same(r.kind), "verbs": ["get", "patch", "update"]}));
        }
        if r.status_subresource {
            subresources.push(json!({"subresource": "status", "responseKind": same(r.kind), "verbs": ["get", "patch", "update"]}));
        }
        let mut entry = json!({
            "resource": r.gvr.resource,
            "responseKind": same(r.kind),
            "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": r.singular,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        if !subresources.is_empty() {
            entry["subresources"] = Value::Array(subresources);
        }
        resources.push(entry);
    }
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// `/api` (`core` = true) or `/apis` as aggregated discovery (`apidiscovery.k8s.io/v2`
/// `APIGroupDiscoveryList`): every group, each version with its resources, preferred version first.
/// The shape: kubernetes `staging/src/k8s.io/api/apidiscovery/v2/types.go`.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![json!({
            "metadata": {"creationTimestamp": null},
            "versions": [aggregated_version(registry, "", "v1")],
        })]
    } else {
        all_groups(registry)
            .iter()
            .map(|g| {
                let versions: Vec<Value> = g
                    .versions
                    .iter()
                    .map(|v| aggregated_version(registry, g.name, v))
                    .collect();
                json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// `/openapi/v2` as JSON: no definitions, so kubectl falls back to its compiled-in knowledge of
/// built-in kinds (merge keys) and leaves field validation to the server.
pub fn openapi_v2() -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": GIT_VERSION}, "paths": {}})
}

/// The same document as gnostic's `openapi_v2.Document` protobuf, which kubectl up to 1.28 insists on
/// downloading before `apply` or `edit`: `swagger` (field 1) and `info` (field 2: title, version).
pub fn openapi_v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push((number << 3) | 2);
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes");
    field(&mut info, 2, GIT_VERSION.as_bytes());
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    doc
}

/// `/openapi/v3`: where each group-version's document is.
pub fn openapi_v3_root(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=SIM"}),
    );
    for g in registry.groups() {
        for v in &g.versions {
            let name = g.name;
            paths.insert(
                format!("apis/{name}/{v}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{name}/{v}?hash=SIM")}),
            );
        }
    }
    json!({"paths": paths})
}

/// A group-version's OpenAPI v3 document: the paths with their verbs and the `fieldValidation` parameter
/// (how kubectl decides to leave field validation to the server), and schemas that accept any fields.
pub fn openapi_v3(registry: &Registry, group: &str, version: &str) -> Value {
    let prefix = if group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{group}/{version}")
    };
    let field_validation = json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let dry_run =
        json!({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in types_of(registry, group, version) {
        let gvk = json!([{"group": r.gvr.group, "version": r.gvr.version, "kind": r.kind}]);
        let schema_name = schema_name(r);
        let reference = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let body = json!({"content": {"application/json": {"schema": reference}}});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let write = |action: &str| json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk[0], "parameters": [dry_run, field_validation], "requestBody": body, "responses": ok});
        let item = json!({
            "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk[0], "responses": ok},
            "put": write("put"),
            "patch": write("patch"),
            "delete": {"x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk[0], "parameters": [dry_run], "responses": ok},
        });
        let collection = json!({
            "get": {"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk[0], "responses": ok},
            "post": write("post"),
        });
        let base = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.gvr.resource)
        } else {
            format!("{prefix}/{}", r.gvr.resource)
        };
        paths.insert(format!("{base}/{{name}}"), item.clone());
        paths.insert(base, collection);
        if r.status_subresource {
            let status = if r.namespaced {
                format!(
                    "{prefix}/namespaces/{{namespace}}/{}/{{name}}/status",
                    r.gvr.resource
                )
            } else {
                format!("{prefix}/{}/{{name}}/status", r.gvr.resource)
            };
            paths.insert(status, item);
        }
        schemas.insert(
            schema_name,
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

fn schema_name(r: &ResourceType) -> String {
    let group = if r.gvr.group.is_empty() {
        "core".to_string()
    } else {
        r.gvr.group.to_string()
    };
    format!("io.k8s.sim.{group}.{}.{}", r.gvr.version, r.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiServer;

    #[test]
    fn openapi_v2_protobuf_is_swagger_and_info() {
        let pb = openapi_v2_protobuf();
        assert_eq!(&pb[..5], b"\x0a\x032.0");
        assert_eq!(pb[5], 0x12);
        assert_eq!(usize::from(pb[6]), pb.len() - 7);
    }

    #[test]
    fn discovery_lists_every_kind_once() {
        let api = ApiServer::new();
        let registry = api.registry();
        let core = resources(registry, "", "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"persistentvolumeclaims")
                && names.contains(&"persistentvolumeclaims/status")
        );
        // What the shipped registry-guard rules name: kubectl debug's subresource, every pod-template kind.
        for served in ["pods/ephemeralcontainers", "replicationcontrollers"] {
            assert!(names.contains(&served), "{served}");
        }
        let named = |group: &str, version: &str| -> Vec<String> {
            resources(registry, group, version)["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(named("apps", "v1").iter().any(|n| n == "daemonsets"));
        assert!(named("apps", "v1").iter().any(|n| n == "replicasets"));
        assert_eq!(
            named("batch", "v1"),
            ["jobs", "jobs/status", "cronjobs", "cronjobs/status"]
        );
        assert!(
            named("packaging.carvel.dev", "v1alpha1")
                .iter()
                .any(|n| n == "packagerepositories")
        );
        let pkgi = resources(registry, "packaging.carvel.dev", "v1alpha1");
        assert_eq!(pkgi["resources"][0]["shortNames"], json!(["pkgi"]));
        assert_eq!(
            groups(registry)["groups"].as_array().unwrap().len(),
            registry.groups().len() + REVIEWS.len()
        );
        let reviews = resources(registry, "authorization.k8s.io", "v1");
        assert_eq!(reviews["resources"][0]["verbs"], json!(["create"]));
        let doc = openapi_v3(registry, "apps", "v1");
        assert!(
            doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"]["parameters"]
                [1]["name"]
                == "fieldValidation"
        );
    }
}
