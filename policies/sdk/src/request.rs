//! The request a policy sees: an AdmissionRequest (`admission.k8s.io/v1`) and its settings.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The `validate` payload: `{"request": AdmissionRequest, "settings": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned + Default"))]
pub struct ValidationRequest<S> {
    /// The AdmissionRequest (`request` of the AdmissionReview).
    pub request: AdmissionRequest,
    /// The policy's settings; `S::default()` when the configuration gives none.
    #[serde(default)]
    pub settings: S,
}

impl<S: DeserializeOwned + Default> ValidationRequest<S> {
    /// A request for tests: the `request` of an AdmissionReview (or a bare AdmissionRequest)
    /// in `json`, with `settings`.
    ///
    /// # Errors
    /// The JSON parser's message when `json` is not JSON or not an AdmissionRequest.
    ///
    /// ```
    /// use supsvc_policy_sdk::{Operation, ValidationRequest};
    ///
    /// let review = br#"{"kind": "AdmissionReview", "request": {"uid": "1", "operation": "CREATE",
    ///     "namespace": "svc-tkg-domain-c1234", "object": {"kind": "Pod"}}}"#;
    /// let request = ValidationRequest::from_admission_json(review, ()).unwrap();
    /// assert_eq!(request.request.operation, Operation::Create);
    /// assert_eq!(request.request.namespace, "svc-tkg-domain-c1234");
    /// assert_eq!(request.request.object["kind"], "Pod");
    /// ```
    pub fn from_admission_json(json: &[u8], settings: S) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let request = match value.get("request") {
            Some(request)
                if value
                    .get("kind")
                    .is_some_and(|kind| kind == "AdmissionReview") =>
            {
                request.clone()
            }
            _ => value,
        };
        let request = serde_json::from_value(request).map_err(|e| e.to_string())?;
        Ok(Self { request, settings })
    }
}

/// What the API server asks about. `O` is how `object` and `oldObject` are held: what a policy
/// sees is `serde_json::Value`; the SDK's decoder reads the other fields with `O = ()`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "O: Deserialize<'de> + Default")
)]
pub struct AdmissionRequest<O = serde_json::Value> {
    /// The request's id, to be echoed in the response.
    pub uid: String,
    /// The kind of the object, as the webhook was registered for it.
    #[serde(default)]
    pub kind: GroupVersionKind,
    /// The resource asked about.
    #[serde(default)]
    pub resource: GroupVersionResource,
    /// The subresource (`status`, `scale`, ...), when the request is for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    /// The kind of the original request, when the API server converted it to [`Self::kind`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    /// The resource of the original request, when the API server converted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    /// The subresource of the original request, when the API server converted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    /// The object's name; empty when the client lets the server generate it.
    #[serde(default)]
    pub name: String,
    /// The object's namespace; empty for a cluster-scoped object.
    #[serde(default)]
    pub namespace: String,
    /// The operation.
    pub operation: Operation,
    /// Who is asking.
    #[serde(default)]
    pub user_info: UserInfo,
    /// The object after the operation (`null` for DELETE).
    #[serde(default)]
    pub object: O,
    /// The object before the operation (UPDATE and DELETE).
    #[serde(default)]
    pub old_object: O,
    /// Whether the request is a dry run (nothing will be persisted).
    #[serde(default)]
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`, `UpdateOptions`, `DeleteOptions`) as JSON.
    #[serde(default)]
    pub options: serde_json::Value,
}

impl<O> AdmissionRequest<O> {
    /// The same request with these objects.
    pub fn with_objects<T>(self, object: T, old_object: T) -> AdmissionRequest<T> {
        AdmissionRequest {
            uid: self.uid,
            kind: self.kind,
            resource: self.resource,
            sub_resource: self.sub_resource,
            request_kind: self.request_kind,
            request_resource: self.request_resource,
            request_sub_resource: self.request_sub_resource,
            name: self.name,
            namespace: self.namespace,
            operation: self.operation,
            user_info: self.user_info,
            object,
            old_object,
            dry_run: self.dry_run,
            options: self.options,
        }
    }

    /// The subresource, `""` for the resource itself.
    pub fn sub_resource(&self) -> &str {
        self.sub_resource.as_deref().unwrap_or_default()
    }
}

impl AdmissionRequest {
    /// `object` as a typed value.
    ///
    /// # Errors
    /// serde's error when `object` does not deserialise as `T`.
    pub fn object_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.object)
    }

    /// `oldObject` as a typed value.
    ///
    /// # Errors
    /// serde's error when `oldObject` does not deserialise as `T`.
    pub fn old_object_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.old_object)
    }
}

/// The operation asked about (`CREATE`, `UPDATE`, `DELETE`, `CONNECT`): the one type core's
/// guards decide with too (`supsvc_core::admission::Operation`).
pub use supsvc_admission::Operation;

/// A kind with its API group and version, e.g. `{"group": "apps", "version": "v1", "kind": "Deployment"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersionKind {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version, e.g. `v1`.
    #[serde(default)]
    pub version: String,
    /// Kind, e.g. `Deployment`.
    #[serde(default)]
    pub kind: String,
}

/// A resource with its API group and version, e.g. `{"group": "apps", "version": "v1", "resource": "deployments"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersionResource {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version, e.g. `v1`.
    #[serde(default)]
    pub version: String,
    /// Resource (plural, lower case), e.g. `deployments`.
    #[serde(default)]
    pub resource: String,
}

/// Who is asking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's name, e.g. `system:serviceaccount:<ns>:<name>`.
    #[serde(default)]
    pub username: String,
    /// The user's uid.
    #[serde(default)]
    pub uid: String,
    /// The groups the user is in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Extra attributes the authenticator provided.
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// Whether the user is in `group` (e.g. `system:masters`).
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_admission_review_fixture() {
        let review = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u","kind":{"group":"","version":"v1","kind":"PersistentVolumeClaim"},
            "resource":{"group":"","version":"v1","resource":"persistentvolumeclaims"},"subResource":"status",
            "name":"data","namespace":"ns","operation":"UPDATE",
            "userInfo":{"username":"system:serviceaccount:ns:sa","groups":["system:serviceaccounts"]},
            "object":{"spec":{"a":1}},"oldObject":{"spec":{"a":0}},"dryRun":false}}"#;
        let request = ValidationRequest::<()>::from_admission_json(review, ())
            .unwrap()
            .request;
        assert_eq!(request.operation, Operation::Update);
        assert_eq!(request.kind.kind, "PersistentVolumeClaim");
        assert_eq!(request.sub_resource(), "status");
        assert!(request.user_info.in_group("system:serviceaccounts"));
        let old: serde_json::Value = request.old_object_as().unwrap();
        assert_eq!(old["spec"]["a"], 0);
    }

    #[test]
    fn missing_settings_are_defaults() {
        let payload = br#"{"request":{"uid":"u","operation":"DELETE"}}"#;
        let request: ValidationRequest<BTreeMap<String, String>> =
            serde_json::from_slice(payload).unwrap();
        assert_eq!(request.request.operation, Operation::Delete);
        assert!(request.settings.is_empty());
        assert!(request.request.object.is_null());
    }
}
