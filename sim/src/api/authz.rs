//! Who may do what: a small RBAC stand-in. Administrators (`system:masters`) and service accounts may do
//! everything; members of [`VIEW_GROUP`] may only read. Anyone else is forbidden.

use super::registry::ResourceType;
use super::{Status, UserInfo};

/// The group of read-only users.
pub const VIEW_GROUP: &str = "supsvc:view";

/// A read-only user named `name`, for tests that need a real 403.
pub fn viewer(name: &str) -> UserInfo {
    UserInfo {
        username: name.into(),
        uid: String::new(),
        groups: vec![VIEW_GROUP.into(), "system:authenticated".into()],
    }
}

/// Whether `user` may perform `verb` (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`).
pub fn allowed(user: &UserInfo, verb: &str) -> bool {
    if user.groups.iter().any(|g| g == "system:masters")
        || user.username.starts_with("system:serviceaccount:")
    {
        return true;
    }
    if user.groups.iter().any(|g| g == VIEW_GROUP) {
        return matches!(verb, "get" | "list" | "watch");
    }
    false
}

/// A 403 unless allowed, worded as the RBAC authorizer words it.
pub fn authorize(
    user: &UserInfo,
    verb: &str,
    rt: &ResourceType,
    subresource: Option<&str>,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), Status> {
    if allowed(user, verb) {
        return Ok(());
    }
    Err(Status::forbidden(
        forbidden_message(user, verb, rt, subresource, namespace, name),
        name,
        rt,
    ))
}

fn forbidden_message(
    user: &UserInfo,
    verb: &str,
    rt: &ResourceType,
    subresource: Option<&str>,
    namespace: Option<&str>,
    name: &str,
) -> String {
    let resource = match subresource {
        Some(sub) => format!("{}/{sub}", rt.gvr.resource),
        None => rt.gvr.resource.to_string(),
    };
    let subject = if name.is_empty() {
        rt.group_resource()
    } else {
        format!("{} \"{name}\"", rt.group_resource())
    };
    let scope = match namespace {
        Some(ns) if rt.namespaced => format!("in the namespace \"{ns}\""),
        _ => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        user.username, rt.gvr.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{gvr, registry};

    #[test]
    fn rules_and_wording() {
        let pvc = registry::lookup(gvr::PERSISTENT_VOLUME_CLAIMS).unwrap();
        let ns = registry::lookup(gvr::NAMESPACES).unwrap();
        let v = viewer("viewer");
        assert!(authorize(&v, "get", pvc, None, Some("ns"), "x").is_ok());
        let e = authorize(&v, "patch", pvc, None, Some("ns"), "x").unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "persistentvolumeclaims \"x\" is forbidden: User \"viewer\" cannot patch resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"ns\""
        );
        let e = authorize(&v, "delete", ns, None, None, "a").unwrap_err();
        assert!(e.message.ends_with(
            "cannot delete resource \"namespaces\" in API group \"\" at the cluster scope"
        ));
        let e = authorize(&v, "update", pvc, Some("status"), Some("ns"), "x").unwrap_err();
        assert!(
            e.message
                .contains("resource \"persistentvolumeclaims/status\"")
        );
        assert!(allowed(&UserInfo::admin(), "delete"));
        assert!(allowed(&UserInfo::service_account("a", "b"), "patch"));
        let nobody = UserInfo {
            username: "x".into(),
            uid: String::new(),
            groups: vec![],
        };
        assert!(!allowed(&nobody, "get"));
    }
}
