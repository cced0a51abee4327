//! Constructors for the API server's errors, worded as the real kube-apiserver words them, and the
//! `Status` object they travel as on the wire.

use serde_json::{Value, json};

use super::Status;
use super::registry::ResourceType;

impl Status {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Status {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `packageinstalls.packaging.carvel.dev "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Status::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.group_resource()),
        )
        .with_details(json!({"name": name, "group": rt.gvr.group, "kind": rt.gvr.resource}))
    }

    /// `namespaces "x" not found`, answered when a namespaced object is created in a missing namespace.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Status::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Status::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.group_resource()),
        )
        .with_details(json!({"name": name, "group": rt.gvr.group, "kind": rt.gvr.resource}))
    }

    /// The optimistic-concurrency failure of an update with a stale resourceVersion.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Status::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.group_resource()
            ),
        )
        .with_details(json!({"name": name, "group": rt.gvr.group, "kind": rt.gvr.resource}))
    }

    /// 422 with field causes: `StatefulSet.apps "x" is invalid: spec: Forbidden: ...`.
    pub fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> Self {
        let qualified_kind = if rt.gvr.group.is_empty() {
            rt.kind.to_string()
        } else {
            format!("{}.{}", rt.kind, rt.gvr.group)
        };
        Self::invalid_kind(&qualified_kind, rt.gvr.group, rt.kind, name, errors)
    }

    /// 422 with field causes for any kind, named `qualified_kind` in the message
    /// (`PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: ...`).
    pub fn invalid_kind(
        qualified_kind: &str,
        group: &str,
        kind: &str,
        name: &str,
        errors: &[FieldError],
    ) -> Self {
        let joined = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.kind.cause_reason(), "message": e.cause_message(), "field": e.field}))
            .collect();
        Status::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    /// `persistentvolumeclaims "x" is forbidden: User "viewer" cannot patch resource ...`.
    pub fn forbidden(message: String, name: &str, rt: &ResourceType) -> Self {
        Status::new(403, "Forbidden", message)
            .with_details(json!({"name": name, "group": rt.gvr.group, "kind": rt.gvr.resource}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Status::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Status::new(401, "Unauthorized", "Unauthorized")
    }

    /// What the server answers for an unknown path or resource.
    pub fn path_not_found() -> Self {
        Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Status::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Status::new(410, "Expired", message)
    }

    pub fn method_not_supported(rt: &ResourceType, verb: &str) -> Self {
        Status::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind {:?}",
                rt.gvr.resource
            ),
        )
    }

    pub fn too_large() -> Self {
        Status::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    /// The answer to a strategic merge patch on a custom resource.
    pub fn unsupported_patch_type() -> Self {
        Status::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    }

    /// The `Status` object as JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            v["details"] = details.clone();
        }
        if self.reason.is_empty()
            && let Some(m) = v.as_object_mut()
        {
            m.remove("reason");
        }
        v
    }

    /// Reads a `Status` object back (a webhook's `status`, a server answer).
    pub fn from_json(v: &Value) -> Self {
        Status {
            code: v
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500),
            reason: v
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            details: v.get("details").cloned(),
        }
    }
}

/// The type of a field error, as `field.ErrorType` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Forbidden,
    Invalid,
    Required,
    /// `Unsupported value: "x": supported values: "a", "b"`.
    NotSupported,
}

impl FieldErrorKind {
    fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::NotSupported => "Unsupported value",
        }
    }
    fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
        }
    }
}

/// One validation error: `spec.resources.requests.storage: Forbidden: field can not be less than previous value`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    /// For `Invalid value`, the offending value as the message quotes it.
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn forbidden(field: &str, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden,
            value: None,
            detail: detail.into(),
        }
    }
    pub fn required(field: &str, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required,
            value: None,
            detail: detail.into(),
        }
    }
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid,
            value: Some(format!("{value:?}")),
            detail: detail.into(),
        }
    }
    /// A value outside a fixed set (`field.NotSupported`).
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported,
            value: Some(format!("{value:?}")),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }
    fn cause_message(&self) -> String {
        match &self.value {
            Some(v) => format!("{}: {v}: {}", self.kind.label(), self.detail),
            None => format!("{}: {}", self.kind.label(), self.detail),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.cause_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{gvr, registry};

    #[test]
    fn messages_match_the_real_server() {
        let pkgi = registry::lookup(gvr::PACKAGE_INSTALLS).unwrap();
        let pvc = registry::lookup(gvr::PERSISTENT_VOLUME_CLAIMS).unwrap();
        let sts = registry::lookup(gvr::STATEFUL_SETS).unwrap();
        let cases = [
            (
                Status::not_found(pkgi, "x"),
                404,
                "packageinstalls.packaging.carvel.dev \"x\" not found",
            ),
            (
                Status::not_found(pvc, "d"),
                404,
                "persistentvolumeclaims \"d\" not found",
            ),
            (
                Status::conflict(pkgi, "x"),
                409,
                "Operation cannot be fulfilled on packageinstalls.packaging.carvel.dev \"x\": the object has been modified; please apply your changes to the latest version and try again",
            ),
            (
                Status::invalid(sts, "s", &[FieldError::forbidden("spec", "nope")]),
                422,
                "StatefulSet.apps \"s\" is invalid: spec: Forbidden: nope",
            ),
            (
                Status::invalid(
                    pvc,
                    "p",
                    &[
                        FieldError::forbidden("a", "x"),
                        FieldError::forbidden("b", "y"),
                    ],
                ),
                422,
                "PersistentVolumeClaim \"p\" is invalid: [a: Forbidden: x, b: Forbidden: y]",
            ),
        ];
        for (status, code, message) in cases {
            assert_eq!(status.code, code);
            assert_eq!(status.message, message);
            assert_eq!(Status::from_json(&status.to_json()).message, message);
        }
    }
}
