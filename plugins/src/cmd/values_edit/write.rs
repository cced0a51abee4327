//! Writing the values as `kctrl package installed update` does (pause, wait for
//! `Canceled/paused`, keep the previous values, write with a resourceVersion precondition, unpause)
//! and following the reconcile on watches.

use super::*;

pub(super) fn pkgi_ref(target: &Target) -> ObjectRef {
    ObjectRef {
        kind: Kind::PackageInstall,
        namespace: target.namespace.clone(),
        name: target.service.clone(),
    }
}

/// The values Secret with the new text under its key (other keys kept), or a new one as kctrl makes it.
pub(super) fn new_secret(target: &Target, text: &str) -> Value {
    match &target.secret {
        Some(s) => {
            let mut s = s.clone();
            if !s["data"].is_object() {
                s["data"] = json!({});
            }
            s["data"][&target.key] = json!(b64(text.as_bytes()));
            if let Some(m) = s.as_object_mut() {
                m.remove("stringData");
            }
            s["apiVersion"] = json!("v1");
            s["kind"] = json!("Secret");
            s
        }
        None => json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": target.secret_name, "namespace": target.namespace,
                         "annotations": {"packaging.carvel.dev/package": format!("{}-{}", target.service, target.namespace)}},
            "type": "Opaque",
            "data": {target.key.clone(): b64(text.as_bytes())}
        }),
    }
}

/// The Secret keeping the values being replaced (every key of the values Secret as it was).
pub(super) fn previous_secret(target: &Target, existing: Option<&Value>) -> Value {
    let data: Map<String, Value> = if target.data.is_empty() {
        [(target.key.clone(), json!(b64(b"")))]
            .into_iter()
            .collect()
    } else {
        target
            .data
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64(v.as_bytes()))))
            .collect()
    };
    let mut s = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}{PREVIOUS_SUFFIX}", target.secret_name), "namespace": target.namespace,
                     "annotations": {PREVIOUS_OF_ANNOTATION: target.secret_name,
                                     supsvc_core::keys::SAVED_AT: jiff::Timestamp::now().to_string()}},
        "type": "Opaque",
        "data": data
    });
    if let Some(rv) = existing.and_then(|e| e["metadata"]["resourceVersion"].as_str()) {
        s["metadata"]["resourceVersion"] = json!(rv);
    }
    s
}

/// Checks at once, then again at each change `changes` sees (or after `poll` without one), until
/// `check` answers or `deadline` passes.
pub(super) async fn wait_until<T, F, Fut>(
    deadline: Instant,
    changes: &api::Changes,
    poll: Duration,
    what: &str,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                format!("timed out waiting for {what}"),
                "allow more time with --timeout; `kubectl supsvc status` shows the service",
            )
            .with_exit(Exit::Timeout));
        }
        changes
            .next(poll.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// How the reconcile after a write ended.
pub(super) enum Reconciled {
    Succeeded,
    Failed(String),
}

/// Writes the values as kctrl does (pause, wait, write, unpause) and follows the reconcile.
pub(super) async fn write_and_follow(
    supervisor: &SupervisorApi,
    target: &Target,
    text: &str,
    args: &ValuesEditOptions,
    progress: &ProgressPrinter,
) -> Result<Reconciled> {
    let deadline = Instant::now() + args.timeout;
    let secrets = objects::secrets();
    let ns = target.namespace.as_str();
    let prev_name = format!("{}{PREVIOUS_SUFFIX}", target.secret_name);
    let existing_prev = supervisor.get(&secrets, ns, &prev_name).await?;
    let prev = previous_secret(target, existing_prev.as_ref());
    let secret = new_secret(target, text);
    let pkgi = pkgi_ref(target);
    // The pause and the reconcile are followed on watches of the PackageInstall and its App.
    let changes = api::Changes::watch(
        supervisor,
        &[
            (api::packageinstalls(), Some(ns.to_owned())),
            (api::apps(), Some(ns.to_owned())),
        ],
    );
    // Every write checked by the server first: a refusal (403, invalid) leaves nothing changed.
    match &existing_prev {
        Some(_) => replace(supervisor, &secrets, ns, &prev, true).await?,
        None => create(supervisor, &secrets, ns, &prev, true).await?,
    };
    match &target.secret {
        Some(_) => replace(supervisor, &secrets, ns, &secret, true).await?,
        None => create(supervisor, &secrets, ns, &secret, true).await?,
    };
    supervisor
        .merge_patch(
            &pkgi,
            &json!({"spec": {"paused": true}}),
            true,
            Some(deadline),
        )
        .await?;

    progress.line(&format!("pausing pkgi/{} -n {ns}", target.service));
    let work = async {
        supervisor
            .merge_patch(
                &pkgi,
                &json!({"spec": {"paused": true}}),
                false,
                Some(deadline),
            )
            .await?;
        let paused_gen = wait_until(
            deadline,
            &changes,
            args.poll_interval,
            "the App to show Canceled/paused",
            || async {
                let app = observe::app(supervisor, ns, &target.service).await?;
                Ok(app
                    .filter(App::is_pause_observed)
                    .map(|a| a.metadata.generation))
            },
        )
        .await?;
        match &existing_prev {
            Some(_) => replace(supervisor, &secrets, ns, &prev, false).await?,
            None => create(supervisor, &secrets, ns, &prev, false).await?,
        };
        progress.line(&format!(
            "saved the values in use to Secret {ns}/{prev_name}"
        ));
        match &target.secret {
            Some(_) => {
                replace(supervisor, &secrets, ns, &secret, false).await?;
            }
            None => {
                create(supervisor, &secrets, ns, &secret, false).await?;
                supervisor
                    .merge_patch(
                        &pkgi,
                        &json!({"spec": {"values": [{"secretRef": {"name": target.secret_name, "key": target.key}}]}}),
                        false,
                        Some(deadline),
                    )
                    .await?;
            }
        };
        progress.line(&format!("wrote the new values to {}", target.describe()));
        Ok::<i64, Failure>(paused_gen)
    };
    // Ctrl-C while paused ends the work, never the unpause below.
    let written = tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Failure::new(
            format!("interrupted while pkgi/{} was paused; it has been unpaused", target.service),
            format!(
                "the values may or may not have been written: compare {} with the saved Secret {ns}/{prev_name}, or run `kubectl supsvc values-edit {} --rollback`",
                target.describe(),
                target.service
            ),
        )
        .with_exit(Exit::Interrupted)),
    };
    // Whatever happened, the service is unpaused before going on.
    let unpaused = supervisor
        .merge_patch(&pkgi, &json!({"spec": {"paused": null}}), false, None)
        .await;
    let paused_gen = written?;
    unpaused?;
    progress.line(&format!(
        "unpaused pkgi/{} -n {ns}; following the reconcile",
        target.service
    ));

    let last = std::cell::RefCell::new(String::new());
    wait_until(
        deadline,
        &changes,
        args.poll_interval,
        &format!("{} to reconcile", target.service),
        || async {
            let app = observe::app(supervisor, ns, &target.service).await?;
            let parent = observe::parent(supervisor, ns, &target.service).await?;
            let Some(app) = app else { return Ok(None) };
            let line = format!(
                "app/{}: {}{}",
                app.metadata.name,
                carvel::state(&app),
                app.status
                    .friendly_description
                    .as_deref()
                    .map(|d| format!(" — {}", truncate(d, 100)))
                    .unwrap_or_default()
            );
            if *last.borrow() != line {
                progress.line(&line);
                *last.borrow_mut() = line;
            }
            let current = !app.spec.paused
                && app.metadata.generation > paused_gen
                && app.status.observed_generation == Some(app.metadata.generation);
            if !current {
                return Ok(None);
            }
            match carvel::state(&app) {
                State::ReconcileSucceeded if carvel::is_reconciled(&parent) => {
                    Ok(Some(Reconciled::Succeeded))
                }
                State::ReconcileFailed => Ok(Some(Reconciled::Failed(
                    app.status
                        .useful_error_message
                        .clone()
                        .or(app.status.friendly_description.clone())
                        .unwrap_or_default(),
                ))),
                _ => Ok(None),
            }
        },
    )
    .await
}
