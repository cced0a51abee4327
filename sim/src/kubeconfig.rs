//! Kubeconfig files pointing at the simulator, one context per user, CA data inline.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

/// A user of the kubeconfig: the context and the user are both named `name`.
#[derive(Clone, Debug)]
pub struct KubeconfigUser {
    pub name: String,
    pub token: String,
}

/// The cluster's name in the kubeconfig.
pub const CLUSTER_NAME: &str = "supervisor";

/// The kubeconfig as YAML; `current` names the current context (the first user when `None`).
pub fn render(
    server_url: &str,
    ca_pem: &str,
    users: &[KubeconfigUser],
    current: Option<&str>,
) -> anyhow::Result<String> {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let current = current
        .or(users.first().map(|u| u.name.as_str()))
        .unwrap_or_default();
    let config: Value = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server_url, "certificate-authority-data": ca_data}}],
        "users": users.iter().map(|u| json!({"name": u.name, "user": {"token": u.token}})).collect::<Vec<_>>(),
        "contexts": users
            .iter()
            .map(|u| json!({"name": u.name, "context": {"cluster": CLUSTER_NAME, "user": u.name, "namespace": "default"}}))
            .collect::<Vec<_>>(),
        "current-context": current,
    });
    Ok(serde_saphyr::to_string(&config)?)
}

/// Writes the kubeconfig to `path` (mode 0600 on Unix, as kubectl writes them).
pub fn write(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    users: &[KubeconfigUser],
    current: Option<&str>,
) -> anyhow::Result<()> {
    let yaml = render(server_url, ca_pem, users, current)?;
    std::fs::write(path, yaml)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_kubeconfig() {
        let users = [
            KubeconfigUser {
                name: "admin".into(),
                token: "t1".into(),
            },
            KubeconfigUser {
                name: "viewer".into(),
                token: "t2".into(),
            },
        ];
        let yaml = render("https://127.0.0.1:1", "PEM", &users, None).unwrap();
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back["current-context"], "admin");
        assert_eq!(
            back["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(back["users"][1]["user"]["token"], "t2");
    }
}
