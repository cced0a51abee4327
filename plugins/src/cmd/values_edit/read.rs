//! Finding what a values-edit works on: the PackageInstall's values Secret (or where one must be
//! created), the Package's schema, and the live PersistentVolumeClaims and StatefulSets its App deployed.

use super::*;

pub(super) async fn read_target(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &ValuesEditOptions,
) -> Result<Target> {
    let service = args.service.as_str();
    let pkgi = observe::parent(supervisor, namespace, service).await?;
    if pkgi.spec.paused || pkgi.spec.canceled {
        return Err(Failure::new(
            format!(
                "{service} is {}: values-edit pauses and unpauses it itself, and would end what paused it",
                if pkgi.spec.canceled {
                    "canceled"
                } else {
                    "paused"
                }
            ),
            format!(
                "finish what paused it (e.g. a `kubectl supsvc fix {service}` run) or unpause it, then run values-edit again"
            ),
        ));
    }
    let refs: Vec<(String, Option<String>)> = pkgi
        .spec
        .values
        .iter()
        .filter_map(|v| v.secret_ref.as_ref())
        .filter(|r| !r.name.is_empty())
        .map(|r| (r.name.clone(), r.key.clone()))
        .collect();
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    let (secret_name, ref_key) = match (&args.secret, refs.as_slice()) {
        (Some(s), _) if names.contains(&s.as_str()) => {
            let key = refs
                .iter()
                .find(|(n, _)| n == s)
                .and_then(|(_, k)| k.clone());
            (s.clone(), key)
        }
        (Some(s), []) => (s.clone(), None),
        (Some(s), _) => {
            return Err(Failure::usage(
                format!("{service} does not take values from Secret {s}"),
                format!("its values Secrets are: {}", names.join(", ")),
            ));
        }
        (None, [(n, k)]) => (n.clone(), k.clone()),
        (None, []) => (format!("{service}-{namespace}-values"), None),
        (None, _) => {
            return Err(Failure::usage(
                format!(
                    "{service} takes its values from {} Secrets: {}",
                    names.len(),
                    names.join(", ")
                ),
                "name the one to edit with --secret NAME",
            ));
        }
    };
    let secret = supervisor
        .get(&objects::secrets(), namespace, &secret_name)
        .await?;
    if secret.is_none() && !refs.is_empty() {
        return Err(Failure::new(
            format!(
                "{service} references the values Secret {secret_name}, which does not exist in {namespace}"
            ),
            format!(
                "create it (kubectl create secret generic {secret_name} -n {namespace} --from-file={VALUES_KEY}=<file>) or fix spec.values of the PackageInstall"
            ),
        ));
    }
    let data = secret.as_ref().map(decode_data).unwrap_or_default();
    let key = match ref_key {
        Some(k) => k,
        None if data.contains_key(VALUES_KEY) || data.is_empty() => VALUES_KEY.to_owned(),
        None if data.len() == 1 => data.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(Failure::new(
                format!(
                    "Secret {secret_name} holds several keys ({}) and the PackageInstall names none",
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "set spec.values[].secretRef.key of {service} to the key holding the values"
                ),
            ));
        }
    };
    let old_text = data.get(&key).cloned().unwrap_or_default();
    let old_values = parse_values(&old_text).unwrap_or(Value::Null);

    // The Package's schema.
    let raw_packages = supervisor
        .list(&api::packages(), Some(namespace), None)
        .await?;
    let views: Vec<Package> = raw_packages
        .iter()
        .filter_map(|p| Package::from_value(p).ok())
        .collect();
    let schema = carvel::package_for(&pkgi, &views)
        .and_then(|p| {
            raw_packages
                .iter()
                .find(|r| r["metadata"]["name"].as_str() == Some(p.metadata.name.as_str()))
        })
        .and_then(|p| p.pointer("/spec/valuesSchema/openAPIv3"))
        .filter(|s| s.is_object())
        .cloned();

    // The live objects kapp deployed for the service.
    let app = observe::app(supervisor, namespace, service).await?;
    let (live, live_note) = live_objects(supervisor, app.as_ref()).await?;
    Ok(Target {
        service: service.to_owned(),
        namespace: namespace.to_owned(),
        secret_name,
        key,
        secret,
        data,
        old_text,
        old_values,
        schema,
        live,
        live_note,
    })
}

pub(super) async fn live_objects(
    supervisor: &SupervisorApi,
    app: Option<&App>,
) -> Result<(Vec<Value>, Option<String>)> {
    let Some(app) = app else {
        return Ok((Vec::new(), Some("the service has no App yet".into())));
    };
    let Some(selector) = kapp::app_selector(app) else {
        return Ok((
            Vec::new(),
            Some(format!(
                "App {} reports no kapp label (status.deploy.kapp.associatedResources)",
                app.metadata.name
            )),
        ));
    };
    let selector = selector.to_string();
    let namespaces: Vec<Option<String>> = match app.associated_resources() {
        Some(a) if !a.namespaces.is_empty() => a.namespaces.iter().cloned().map(Some).collect(),
        _ => vec![None],
    };
    let mut live = Vec::new();
    for (resource, api_version, kind) in [
        (objects::pvcs(), "v1", "PersistentVolumeClaim"),
        (objects::statefulsets(), "apps/v1", "StatefulSet"),
    ] {
        for ns in &namespaces {
            for mut o in supervisor
                .list(&resource, ns.as_deref(), Some(&selector))
                .await?
            {
                // What kapp applies, not what a controller stamped from it (a StatefulSet's claims
                // carry the app label too): kapp::owned_by_kapp, as the storage guard decides.
                if kapp::owned_by_kapp(&o).is_none() {
                    continue;
                }
                o["apiVersion"] = json!(api_version);
                o["kind"] = json!(kind);
                live.push(o);
            }
        }
    }
    Ok((live, None))
}

impl Target {
    /// Checks a new values document; the errors are what the editor shows as comments.
    pub(super) fn check(
        &self,
        text: &str,
        force: bool,
    ) -> std::result::Result<Checked, Vec<String>> {
        let values = parse_values(text).map_err(|e| vec![e])?;
        if let Some(schema) = &self.schema {
            // Keys the platform added to the values in place (vCenter's `namespace`) are not the
            // Package's: checked out of the edit, not refused by a closed schema.
            let violations =
                supsvc_core::vcenter::check_with_platform_keys(schema, &self.old_values, &values);
            if !violations.is_empty() {
                return Err(violations
                    .iter()
                    .map(|v| format!("{v} (valuesSchema of the Package)"))
                    .collect());
            }
        }
        let changes = values::changes(&self.old_values, &values);
        let findings = values::preflight(&changes, &self.live);
        if !force {
            let refused: Vec<String> = findings
                .iter()
                .filter_map(|f| match &f.verdict {
                    FieldVerdict::Refused {
                        why,
                        server,
                        instead,
                    } => Some(format!(
                        "{} drives {} {}: refused before writing: {why}.{} Instead: {instead}. (--force applies it anyway)",
                        f.values_path,
                        f.object(),
                        f.field,
                        if server.is_empty() {
                            String::new()
                        } else {
                            format!(" The API server would answer: {server}.")
                        }
                    )),
                    FieldVerdict::Allowed { .. } => None,
                })
                .collect();
            if !refused.is_empty() {
                return Err(refused);
            }
        }
        Ok(Checked {
            text: text.to_owned(),
            values,
            changes,
            findings,
        })
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "Secret {}/{} key {}",
            self.namespace, self.secret_name, self.key
        )
    }
}
