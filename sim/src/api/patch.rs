//! Applying a [`Patch`] to an object, with the server's errors for patches that do not apply.

use serde_json::Value;

use super::registry::ResourceType;
use super::{Patch, Status, strategic};

/// The most operations a JSON patch may carry, as on the real server.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies `patch` to `original` for a kind `rt`.
pub fn apply(rt: &ResourceType, original: &Value, patch: &Patch) -> Result<Value, Status> {
    match patch {
        Patch::Json(ops) => apply_json(original, ops),
        Patch::Merge(p) => {
            if !p.is_object() {
                return Err(Status::bad_request(
                    "json: cannot unmarshal array into Go value of type map[string]interface {}",
                ));
            }
            let mut out = original.clone();
            json_patch::merge(&mut out, p);
            Ok(out)
        }
        Patch::Strategic(p) => {
            if rt.custom {
                return Err(Status::unsupported_patch_type());
            }
            strategic::apply(original, p).map_err(|e| Status::bad_request(e.0))
        }
    }
}

fn apply_json(original: &Value, ops: &Value) -> Result<Value, Status> {
    let parsed: json_patch::Patch = serde_json::from_value(ops.clone())
        .map_err(|e| Status::bad_request(format!("json: {e}")))?;
    if parsed.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(Status::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                parsed.0.len()
            ),
        ));
    }
    let mut out = original.clone();
    json_patch::patch(&mut out, &parsed.0).map_err(|e| {
        // The real server answers a patch that does not apply with a generic 422 (its
        // NewGenericServerResponse): the jsonpatch text stays in its log, not in the Status.
        tracing::debug!("{}", json_patch_message(parsed.0.get(e.operation), &e));
        let mut status = Status::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        );
        status.details = Some(serde_json::json!({}));
        status
    })?;
    Ok(out)
}

/// The wording of evanphx/json-patch, as the real server logs it.
fn json_patch_message(
    op: Option<&json_patch::PatchOperation>,
    e: &json_patch::PatchError,
) -> String {
    use json_patch::PatchOperation as Op;
    let path = e.path.to_string();
    let name = match op {
        Some(Op::Add(_)) => "add",
        Some(Op::Remove(_)) => "remove",
        Some(Op::Replace(_)) => "replace",
        Some(Op::Move(_)) => "move",
        Some(Op::Copy(_)) => "copy",
        Some(Op::Test(_)) => "test",
        None => "unknown",
    };
    match e.kind {
        json_patch::PatchErrorKind::TestFailed => {
            format!("testing value {path} failed: test failed")
        }
        _ if name == "add" => format!(
            "jsonpatch add operation does not apply: doc is missing path: {path:?}: missing value"
        ),
        _ => format!(
            "jsonpatch {name} operation does not apply: doc is missing path: {path:?}: missing value"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{gvr, registry};
    use serde_json::json;

    #[test]
    fn table() {
        let pkgi = registry::lookup(gvr::PACKAGE_INSTALLS).unwrap();
        let sts = registry::lookup(gvr::STATEFUL_SETS).unwrap();
        let obj = json!({"spec": {"paused": true, "x": 1}});
        let ok = [
            (
                pkgi,
                Patch::Json(json!([{"op": "remove", "path": "/spec/paused"}])),
                json!({"spec": {"x": 1}}),
            ),
            (
                pkgi,
                Patch::Merge(json!({"spec": {"paused": null, "y": 2}})),
                json!({"spec": {"x": 1, "y": 2}}),
            ),
            (
                sts,
                Patch::Strategic(json!({"spec": {"x": 3}})),
                json!({"spec": {"paused": true, "x": 3}}),
            ),
        ];
        for (rt, p, want) in ok {
            assert_eq!(apply(rt, &obj, &p).unwrap(), want, "{p:?}");
        }
        let missing = apply(
            pkgi,
            &json!({"spec": {}}),
            &Patch::Json(json!([{"op": "remove", "path": "/spec/paused"}])),
        )
        .unwrap_err();
        assert_eq!(missing.code, 422);
        assert_eq!(
            missing.message,
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(
            apply(pkgi, &obj, &Patch::Strategic(json!({})))
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            apply(pkgi, &obj, &Patch::Json(json!({"op": "x"})))
                .unwrap_err()
                .code,
            400
        );
        let test = apply(
            pkgi,
            &obj,
            &Patch::Json(json!([{"op": "test", "path": "/spec/x", "value": 2}])),
        )
        .unwrap_err();
        assert_eq!((test.code, test.reason.as_str()), (422, "Invalid"));
    }
}
