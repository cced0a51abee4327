//! The App controller: when an App is due, fetch its bundle, template it with its values, deploy it
//! with kapp, and write the outcome in the App's status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::FutureExt;
use serde_json::{Value, json};

use super::queue::{Handler, Key, key_of};
use super::status::{self, Step};
use super::{Shared, deploy, now_rfc3339, template, text, write_status};
use crate::api::{ListOptions, Status, WatchEvent, gvr};

/// Apps created by hand default to a 30s sync period.
const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(30);

pub(crate) fn on_secret_event(shared: &Arc<Shared>) -> Handler {
    let shared = Arc::clone(shared);
    Arc::new(move |event| {
        let shared = Arc::clone(&shared);
        async move {
            let secret = match &event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    o.clone()
                }
                WatchEvent::Error(_) => return,
            };
            let (namespace, name) = key_of(&secret);
            let Ok(apps) = shared
                .controller
                .list(gvr::APPS, Some(&namespace), &ListOptions::default())
                .await
            else {
                return;
            };
            for app in apps
                .items
                .iter()
                .filter(|a| values_secrets(a).contains(&name))
            {
                let key = key_of(app);
                shared
                    .forced
                    .lock()
                    .expect("forced lock")
                    .insert(key.clone());
                shared.apps.add(key);
            }
        }
        .boxed()
    })
}

/// The Secrets named in `spec.template[].*.valuesFrom[].secretRef`.
fn values_secrets(app: &Value) -> Vec<String> {
    app["spec"]["template"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|step| step.values())
        .flat_map(|engine| engine["valuesFrom"].as_array().cloned().unwrap_or_default())
        .filter_map(|from| from["secretRef"]["name"].as_str().map(str::to_string))
        .collect()
}

pub(crate) async fn reconcile(shared: &Shared, key: &Key) -> Result<(), Status> {
    let client = &shared.controller;
    let app = match client.get(gvr::APPS, Some(&key.0), &key.1).await {
        Ok(app) => app,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    if app["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let generation = app["metadata"]["generation"].as_i64().unwrap_or(1);
    let spec = &app["spec"];
    if spec["paused"] == true || spec["canceled"] == true {
        write_status(client, gvr::APPS, key, |o| {
            status::paused(&o["status"], generation)
        })
        .await?;
        return Ok(());
    }

    let observed = app["status"]["observedGeneration"].as_i64().unwrap_or(0);
    let failures = app["status"]["consecutiveReconcileFailures"]
        .as_i64()
        .unwrap_or(0);
    let sync_period = status::sync_period(spec, DEFAULT_SYNC_PERIOD);
    let due_after = status::due_after(
        generation,
        observed,
        failures,
        sync_period,
        shared.options.time_scale,
    );
    let forced = shared.forced.lock().expect("forced lock").remove(key);
    let last = shared
        .last_attempt
        .lock()
        .expect("attempt lock")
        .get(key)
        .copied();
    if let Some(last) = last.filter(|_| !forced && generation == observed) {
        let due_at = last + due_after;
        let now = Instant::now();
        if now < due_at {
            shared.apps.add_after(key.clone(), due_at - now);
            return Ok(());
        }
    }

    shared
        .last_attempt
        .lock()
        .expect("attempt lock")
        .insert(key.clone(), Instant::now());
    write_status(client, gvr::APPS, key, |o| {
        status::reconciling(&o["status"], generation)
    })
    .await?;
    // What kapp-controller stores of a failed step's stderr (WithFriendlyYAMLStrings, the 1 MiB cut).
    let outcome = fetch_template_deploy(shared, &app)
        .await
        .map_err(|failure| Failure {
            message: text::truncate_output(
                &text::friendly_yaml(&failure.message),
                text::OUTPUT_LIMIT,
            ),
            ..failure
        });
    let written = write_status(client, gvr::APPS, key, |o| {
        let mut current = o["status"].clone();
        // A pause or spec change during the deploy is the next reconcile's business.
        current["observedGeneration"] = json!(generation);
        let finished = now_rfc3339();
        match &outcome {
            Ok(report) => {
                current["deploy"] = deploy_status(&report.stdout, "", 0, &finished);
                current["deploy"]["kapp"] = json!({"associatedResources": report.associated_resources});
                current["fetch"] = json!({"exitCode": 0, "startedAt": finished, "updatedAt": finished});
                current["template"] = json!({"exitCode": 0, "updatedAt": finished});
                status::succeeded(&current)
            }
            Err(failure) => {
                let step_status = json!({"exitCode": 1, "error": failure.message, "stderr": failure.message, "updatedAt": finished});
                match failure.step {
                    Step::Fetch => current["fetch"] = step_status,
                    Step::Template => current["template"] = step_status,
                    Step::Deploy => current["deploy"] = deploy_status("", &failure.message, 1, &finished),
                }
                status::failed(&current, failure.step, &failure.message)
            }
        }
    })
    .await?;

    if let Some(app) = written {
        let failures = app["status"]["consecutiveReconcileFailures"]
            .as_i64()
            .unwrap_or(0);
        let next = status::due_after(
            generation,
            generation,
            failures,
            sync_period,
            shared.options.time_scale,
        );
        shared.apps.add_after(key.clone(), next);
    }
    Ok(())
}

fn deploy_status(stdout: &str, error: &str, exit_code: i64, at: &str) -> Value {
    json!({"startedAt": at, "updatedAt": at, "finished": true, "exitCode": exit_code, "stdout": stdout, "error": error, "stderr": error})
}

/// Why a reconcile failed: the step, and the text that becomes `usefulErrorMessage`.
#[derive(Debug)]
struct Failure {
    step: Step,
    message: String,
}

async fn fetch_template_deploy(shared: &Shared, app: &Value) -> Result<deploy::Report, Failure> {
    let spec = &app["spec"];
    // Fetch: every imgpkgBundle / image, in order; templates come from all of them.
    let mut values = json!({});
    let mut manifests = Vec::new();
    let mut ytts = Vec::new();
    for fetch in spec["fetch"].as_array().into_iter().flatten() {
        let image = fetch["imgpkgBundle"]["image"]
            .as_str()
            .or_else(|| fetch["image"]["url"].as_str());
        if let Some(inline) = fetch["inline"]["paths"].as_object() {
            for text in inline.values().filter_map(Value::as_str) {
                let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Failure {
                    step: Step::Fetch,
                    message: format!("vendir: Error: Syncing directory '0':\n  Syncing directory '.' with inline contents:\n    {e}"),
                })?;
                manifests.extend(documents.into_iter().filter(|d| !d.is_null()));
            }
            continue;
        }
        let Some(image) = image else {
            return Err(Failure {
                step: Step::Fetch,
                message: "Expected at least one fetch option".into(),
            });
        };
        let fetched = shared
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fetch(image);
        let fetched = fetched.map_err(|e| Failure {
            step: Step::Fetch,
            // vendir's error, quoting imgpkg's stderr, each multi-lined by go-cli-ui (carvel-dev/kapp-controller
            // debugging docs show this shape in a PackageRepository's status).
            message: format!(
                "vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n    Imgpkg: exit status 1 (stderr: imgpkg: Error: Checking if image is bundle:\n  Fetching image:\n    Error while preparing a transport to talk with the registry:\n      Unable to create round tripper:\n        {e}\n)\n"
            ),
        })?;
        let ytt = super::ytt::Templates::parse(
            fetched
                .templates
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )
        .map_err(|e| Failure {
            step: Step::Template,
            message: e.to_string(),
        })?;
        // Lowest first: the templates' schema defaults, the bundle's values, then the Secrets.
        let mut bundle_values = ytt.defaults.clone();
        template::merge_values(&mut bundle_values, &fetched.values);
        template::merge_values(&mut values, &bundle_values);
        manifests.extend(fetched.manifests);
        if !fetched.templates.is_empty() {
            ytts.push((ytt, fetched.rewrites));
        }
    }

    // Template: values Secrets over the bundle's defaults.
    let namespace = app["metadata"]["namespace"].as_str().unwrap_or_default();
    for name in values_secrets(app) {
        let secret = shared
            .controller
            .get(gvr::SECRETS, Some(namespace), &name)
            .await
            .map_err(|e| Failure {
                step: Step::Template,
                message: format!("Templating dir: Error: Getting secret '{name}': {e}"),
            })?;
        let mut keys: Vec<(&String, &Value)> =
            secret["data"].as_object().into_iter().flatten().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (file, encoded) in keys {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_str().unwrap_or(""))
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            template::merge_values_file(&mut values, file, &text).map_err(|e| Failure {
                step: Step::Template,
                message: e.to_string(),
            })?;
        }
        let string_data = secret["stringData"].as_object().into_iter().flatten();
        for (file, text) in string_data {
            template::merge_values_file(&mut values, file, text.as_str().unwrap_or("")).map_err(
                |e| Failure {
                    step: Step::Template,
                    message: e.to_string(),
                },
            )?;
        }
    }
    let mut rendered = manifests
        .iter()
        .map(|m| template::render(m, &values))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure {
            step: Step::Template,
            message: e.to_string(),
        })?;
    for (ytt, rewrites) in &ytts {
        let documents = ytt.render(&values).map_err(|e| Failure {
            step: Step::Template,
            message: e.to_string(),
        })?;
        rendered.extend(
            documents
                .iter()
                .map(|d| super::registry::rewrite_strings(d, rewrites)),
        );
    }

    deploy::deploy(shared, app, rendered)
        .await
        .map_err(|message| Failure {
            step: Step::Deploy,
            message,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_secrets_are_read_from_every_template_step() {
        let app = json!({"spec": {"template": [
            {"ytt": {"valuesFrom": [{"secretRef": {"name": "a"}}, {"configMapRef": {"name": "c"}}]}},
            {"kbld": {}},
            {"ytt": {"valuesFrom": [{"secretRef": {"name": "b"}}]}}
        ]}});
        assert_eq!(values_secrets(&app), vec!["a", "b"]);
        assert!(values_secrets(&json!({"spec": {}})).is_empty());
    }
}
