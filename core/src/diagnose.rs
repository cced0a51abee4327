//! From observed objects to findings in plain words: what is wrong, the evidence, what to run.

use serde::{Deserialize, Serialize};

use crate::carvel::{
    App, Package, PackageInstall, Reconcilable, State, is_reconciled, package_for, state,
};
use crate::fix::{KB_TRIGGER_LABEL, PROGRESS_ANNOTATION, ProgressRecord, TRIGGER_LABEL};
use crate::image::{ImageRef, RegistryPolicy};
use crate::kapp::{self, Reading, parse_failures};

/// How bad a finding is. Errors and warnings are problems; infos are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fault that keeps the service from reconciling (deadlock, failed fetch, missing App, ...).
    Error,
    /// Something to act on that is not itself a failed reconcile (an unfinished `fix` run, a pause, ...).
    Warning,
    /// A state worth knowing; not a problem.
    Info,
}

/// What kind of finding, as a stable code for scripts (`-o json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// KB 437632: the parent waits on failed children that never re-read their corrected Packages.
    ReconcileDeadlock,
    /// A Package fetches from a registry the settings call public.
    PublicRegistryReference,
    /// A change kapp cannot apply because the API server forbids it (StatefulSet spec, PVC shrink).
    ImmutableFieldChange,
    /// The service's own fetch fails (vendir/imgpkg cannot pull its bundle): not KB 437632.
    FetchFailed,
    /// Failing for a reason supsvc does not recognise; the finding quotes the text.
    ReconcileFailed,
    /// Paused or canceled: kapp-controller does nothing with it.
    Paused,
    /// A `kubectl supsvc fix` run did not finish.
    StaleFixProgress,
    /// A trigger label left by `fix` or by the KB's commands.
    LeftoverTriggerLabel,
    /// The PackageInstall has no App.
    AppMissing,
    /// Reconciling right now.
    Reconciling,
}

/// Where the evidence is: object, field, what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `pkgi/<name> -n <ns>`, `app/<name> -n <ns>`, `package/<name> -n <ns>`.
    pub object: String,
    /// The field of that object, as a dotted path, e.g. `status.usefulErrorMessage`.
    pub field: String,
    /// What the field says (trimmed), or the offending reference with a note.
    pub value: String,
}

/// One thing diagnose found about a service: its code, how bad, what, the evidence and the remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The stable kind of finding.
    pub code: Code,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong, in one or two sentences.
    pub what: String,
    /// Where it shows: objects, fields and what they say.
    pub evidence: Vec<Evidence>,
    /// What to run, in order.
    pub remedy: Vec<String>,
}

impl Finding {
    /// Whether it is a problem: an error or a warning, not an info.
    pub fn is_problem(&self) -> bool {
        self.severity != Severity::Info
    }
}

/// Everything diagnose looks at for one service.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The service's PackageInstall in `vmware-system-supervisor-services` (e.g.
    /// `svc-tkg.vsphere.vmware.com`).
    pub parent: PackageInstall,
    /// The parent's App (same name and namespace), `None` when it has none.
    pub app: Option<App>,
    /// The PackageInstalls the parent's App deployed (see [`crate::kapp::children`]).
    pub children: Vec<PackageInstall>,
    /// The Packages of the parent and children namespaces (diagnose picks each one's own).
    pub packages: Vec<Package>,
}

fn pkgi_ref(p: &PackageInstall) -> String {
    format!("pkgi/{} -n {}", p.metadata.name, p.metadata.ns())
}

fn app_ref(a: &App) -> String {
    format!("app/{} -n {}", a.metadata.name, a.metadata.ns())
}

fn package_ref(p: &Package) -> String {
    format!("package/{} -n {}", p.metadata.name, p.metadata.ns())
}

fn useful_error(obj: &impl Reconcilable) -> Option<&str> {
    obj.reconcile_status()
        .useful_error_message
        .as_deref()
        .filter(|m| !m.trim().is_empty())
}

fn error_evidence(object: String, message: &str) -> Evidence {
    Evidence {
        object,
        field: "status.usefulErrorMessage".into(),
        value: message.trim().to_owned(),
    }
}

/// Registries named in a message (fetch errors quote the image or its URL) that the policy refuses.
fn refused_registries_in(message: &str, policy: &RegistryPolicy) -> Vec<String> {
    let mut found: Vec<String> = message
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '"' | '\'' | '(' | ')' | ',' | ';' | '<' | '>' | '[' | ']'
                )
        })
        .map(|t| {
            t.trim_start_matches("https://")
                .trim_start_matches("http://")
        })
        .filter_map(|t| {
            let host = t.split('/').next()?.trim_end_matches([':', '.']);
            if !(host.contains('.') || host.starts_with("localhost")) || !t.contains('/') {
                return None;
            }
            let image = ImageRef::parse(&format!("{host}/x")).ok()?;
            policy
                .classify(&image)
                .is_refused()
                .then(|| image.registry().to_owned())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Runs every check. Findings are ordered by severity, then as found.
pub fn diagnose(input: &Input, policy: &RegistryPolicy) -> Vec<Finding> {
    let mut findings = Vec::new();
    let service = input.parent.metadata.name.as_str();
    let parent = &input.parent;

    if input.app.is_none() {
        findings.push(Finding {
            code: Code::AppMissing,
            severity: Severity::Error,
            what: format!(
                "PackageInstall {service} has no App: kapp-controller has not created it (yet)."
            ),
            evidence: vec![Evidence {
                object: pkgi_ref(parent),
                field: "status.friendlyDescription".into(),
                value: parent
                    .status
                    .friendly_description
                    .clone()
                    .unwrap_or_default(),
            }],
            remedy: vec![format!(
                "kubectl get pkgi {service} -n {} -o yaml   # read status.usefulErrorMessage",
                parent.metadata.ns()
            )],
        });
    }

    let explained = deadlock_and_registries(input, policy, &mut findings);
    let immutable = immutable_fields(input, &mut findings);
    let fetch = !explained && !immutable && own_fetch(input, &mut findings);

    // Failures nothing above explains.
    if !explained && !immutable && !fetch && state(parent) == State::ReconcileFailed {
        let mut evidence = Vec::new();
        if let Some(m) = useful_error(parent) {
            evidence.push(error_evidence(pkgi_ref(parent), m));
        }
        if let Some(app) = &input.app
            && let Some(m) = useful_error(app)
            && Some(m) != useful_error(parent)
        {
            evidence.push(error_evidence(app_ref(app), m));
        }
        let cut = evidence.iter().any(|e| kapp::is_truncated(&e.value));
        for child in input
            .children
            .iter()
            .filter(|c| state(*c) == State::ReconcileFailed)
        {
            if let Some(m) = useful_error(child) {
                evidence.push(error_evidence(pkgi_ref(child), m));
            }
        }
        findings.push(Finding {
            code: Code::ReconcileFailed,
            severity: Severity::Error,
            what: format!(
                "{service} fails to reconcile for a reason supsvc does not recognise: read the text below{}. \
                 This is not the fault `kubectl supsvc fix` repairs.",
                if cut {
                    " (kapp-controller cut it; the whole of it is in the App's status.deploy.stderr or status.fetch.stderr)"
                } else {
                    ""
                }
            ),
            evidence,
            remedy: vec![
                format!(
                    "kubectl get app {service} -n {} -o yaml   # status.usefulErrorMessage, status.deploy.stderr",
                    parent.metadata.ns()
                ),
                format!(
                    "kubectl supsvc fix {service} --force   # only once the cause is corrected and a forced re-reconcile of the children is what is missing"
                ),
            ],
        });
    }

    leftovers(input, &mut findings);

    if state(parent) == State::Reconciling {
        findings.push(Finding {
            code: Code::Reconciling,
            severity: Severity::Info,
            what: format!("{service} is reconciling right now."),
            evidence: vec![Evidence {
                object: pkgi_ref(parent),
                field: "status.friendlyDescription".into(),
                value: parent
                    .status
                    .friendly_description
                    .clone()
                    .unwrap_or_default(),
            }],
            remedy: vec![format!("kubectl supsvc status -w")],
        });
    }

    findings.sort_by_key(|f| f.severity);
    findings
}

/// The KB 437632 signature, and public-registry references in Packages. Returns whether a failure was explained.
fn deadlock_and_registries(
    input: &Input,
    policy: &RegistryPolicy,
    findings: &mut Vec<Finding>,
) -> bool {
    let parent = &input.parent;
    let service = parent.metadata.name.as_str();
    let mut explained = false;

    // The parent (or its App) stuck waiting on failed children.
    let parent_messages: Vec<(String, &str)> =
        std::iter::once(useful_error(parent).map(|m| (pkgi_ref(parent), m)))
            .chain(
                input
                    .app
                    .iter()
                    .map(|a| useful_error(a).map(|m| (app_ref(a), m))),
            )
            .flatten()
            .collect();
    let waited_on: Vec<(String, String)> = parent_messages
        .iter()
        .flat_map(|(_, m)| parse_failures(m))
        .filter(|f| f.is_failed_wait() && f.kind.eq_ignore_ascii_case("packageinstall"))
        .map(|f| (f.namespace.unwrap_or_default(), f.name))
        .collect();

    // Corrected package data: the parent's Package, or the child's own, fetches only from private
    // registries. (While deadlocked, the child Packages in the cluster are still the stale ones: the
    // parent's deploy that would replace them never gets past the wait on the failed children.)
    let all_private = |p: &Package| {
        let images = p.bundle_images();
        !images.is_empty()
            && images
                .iter()
                .all(|o| o.parse().is_ok_and(|i| !policy.classify(&i).is_refused()))
    };
    let parent_package = package_for(parent, &input.packages);
    let parent_corrected = parent_package.is_some_and(all_private);

    // Children failing on fetches from refused registries.
    let mut stale_children = Vec::new(); // the corrected data is there, they never re-read it
    let mut uncorrected = Vec::new(); // nothing corrected yet
    for child in input
        .children
        .iter()
        .filter(|c| state(*c) == State::ReconcileFailed)
    {
        let Some(message) = useful_error(child) else {
            continue;
        };
        if refused_registries_in(message, policy).is_empty() {
            continue;
        }
        let package = package_for(child, &input.packages);
        if parent_corrected || package.is_some_and(all_private) {
            stale_children.push((child, message, package));
        } else {
            uncorrected.push(child);
        }
    }

    let parent_stuck = !waited_on.is_empty()
        && matches!(state(parent), State::ReconcileFailed | State::Reconciling);
    let mut deadlocked: Vec<&PackageInstall> = Vec::new();
    if parent_stuck && !stale_children.is_empty() {
        explained = true;
        let mut evidence: Vec<Evidence> = parent_messages
            .iter()
            .map(|(o, m)| error_evidence(o.clone(), m))
            .collect();
        if let Some(p) = parent_package.filter(|_| parent_corrected) {
            evidence.extend(p.bundle_images().into_iter().map(|o| Evidence {
                object: package_ref(p),
                field: o.path,
                value: format!("{} (corrected: private registry)", o.image),
            }));
        }
        for (child, message, package) in &stale_children {
            deadlocked.push(child);
            evidence.push(error_evidence(pkgi_ref(child), message));
            if let Some(p) = package {
                let note = if all_private(p) {
                    "corrected, not yet re-read by the child"
                } else {
                    "stale: the parent's deploy replaces it once unblocked"
                };
                evidence.extend(p.bundle_images().into_iter().map(|o| Evidence {
                    object: package_ref(p),
                    field: o.path,
                    value: format!("{} ({note})", o.image),
                }));
            }
        }
        let names: Vec<&str> = stale_children
            .iter()
            .map(|(c, _, _)| c.metadata.name.as_str())
            .collect();
        findings.push(Finding {
            code: Code::ReconcileDeadlock,
            severity: Severity::Error,
            what: format!(
                "{service} is deadlocked (KB 437632): its App waits on child PackageInstalls ({}) that keep \
                 failing on fetches from a public registry, although the corrected package data (a private \
                 registry) is in place; kapp gives up on the unchanged, failed children before it applies the \
                 corrected data, so nothing changes until each child is forced to reconcile.",
                names.join(", ")
            ),
            evidence,
            remedy: vec![
                format!("kubectl supsvc fix {service}"),
                "If the bundle was relocated with docker pull/push or imgpkg pull/push, relocate it with \
                 `imgpkg copy` first and point the Package at the copy: otherwise the children keep failing."
                    .to_owned(),
            ],
        });
    }

    // Public references in the Packages in use.
    let in_use: Vec<&PackageInstall> = std::iter::once(parent)
        .chain(input.children.iter())
        .collect();
    let mut seen = Vec::new();
    for pkgi in in_use {
        let Some(package) = package_for(pkgi, &input.packages) else {
            continue;
        };
        if deadlocked.iter().any(|d| {
            d.metadata.name == pkgi.metadata.name && d.metadata.namespace == pkgi.metadata.namespace
        }) {
            // Part of the deadlock above: replaced by the parent's deploy once unblocked.
            continue;
        }
        if seen.contains(&package.metadata.name) {
            continue;
        }
        seen.push(package.metadata.name.clone());
        let offending: Vec<Evidence> = package
            .bundle_images()
            .into_iter()
            .filter_map(|o| {
                let verdict = match o.parse() {
                    Ok(i) => {
                        let v = policy.classify(&i);
                        v.is_refused()
                            .then(|| format!("{} (registry {})", o.image, i.registry()))
                    }
                    Err(e) => Some(format!("{} ({})", o.image, e.reason)),
                };
                verdict.map(|value| Evidence {
                    object: package_ref(package),
                    field: o.path,
                    value,
                })
            })
            .collect();
        if offending.is_empty() {
            continue;
        }
        let failing = uncorrected.iter().any(|c| {
            c.metadata.name == pkgi.metadata.name && c.metadata.namespace == pkgi.metadata.namespace
        });
        explained |= failing;
        // A child's Package is the parent's to write: while the corrected parent has not deployed,
        // a public reference there is stale, not something to relocate again.
        let is_parent = pkgi.metadata.name == parent.metadata.name
            && pkgi.metadata.namespace == parent.metadata.namespace;
        let stale = !failing && parent_corrected && !is_reconciled(parent) && !is_parent;
        let first_image = offending[0]
            .value
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        findings.push(Finding {
            code: Code::PublicRegistryReference,
            severity: if failing {
                Severity::Error
            } else if stale {
                Severity::Info
            } else {
                Severity::Warning
            },
            what: format!(
                "Package {} (used by {}) fetches from a public registry{}.",
                package.metadata.name,
                pkgi_ref(pkgi),
                if failing {
                    ", and that fetch is failing"
                } else if stale {
                    "; it is stale: the parent's corrected package rewrites it at the parent's next successful deploy, \
                     so relocate it only if it is still public after that"
                } else {
                    ""
                }
            ),
            evidence: offending,
            remedy: vec![
                format!("imgpkg copy -b {first_image} --to-repo <private-registry>/<repository>   # copies nested images too"),
                format!(
                    "kubectl supsvc override-image {} --image <private-registry>/<repository>:<tag>",
                    package.metadata.name
                ),
                format!("kubectl supsvc fix {service}"),
            ],
        });
    }
    explained
}

/// Changes the API server refuses (StatefulSet spec, PVC shrink) reported by kapp. Returns whether any.
fn immutable_fields(input: &Input, findings: &mut Vec<Finding>) -> bool {
    let service = input.parent.metadata.name.as_str();
    let mut sources: Vec<(String, &str)> = Vec::new();
    sources.extend(useful_error(&input.parent).map(|m| (pkgi_ref(&input.parent), m)));
    sources.extend(
        input
            .app
            .iter()
            .filter_map(|a| useful_error(a).map(|m| (app_ref(a), m))),
    );
    sources.extend(
        input
            .children
            .iter()
            .filter_map(|c| useful_error(c).map(|m| (pkgi_ref(c), m))),
    );
    let mut any = false;
    let mut reported = Vec::new();
    for (object, message) in sources {
        for failure in parse_failures(message) {
            let forbidden = failure.is_forbidden_change();
            if !forbidden || reported.contains(&(failure.kind.clone(), failure.name.clone())) {
                continue;
            }
            reported.push((failure.kind.clone(), failure.name.clone()));
            any = true;
            let target = format!(
                "{}/{} -n {}",
                failure.kind,
                failure.name,
                failure.namespace.as_deref().unwrap_or_default()
            );
            findings.push(Finding {
                code: Code::ImmutableFieldChange,
                severity: Severity::Error,
                what: format!(
                    "kapp cannot {} {target}: the API server forbids the change. A kapp-managed object (often a \
                     PersistentVolumeClaim or StatefulSet) was edited outside the package, so the package's \
                     template and the live object now disagree on a field that cannot change.",
                    failure.op
                ),
                evidence: vec![error_evidence(object.clone(), message)],
                remedy: vec![
                    format!("kubectl supsvc values-edit {service}   # make the values match the live object"),
                    "Never edit kapp-managed PVCs or StatefulSets directly: change the service's values instead.".into(),
                ],
            });
        }
    }
    any
}

/// The service's own fetch failing (the parent App cannot pull its bundle): the registry is unreachable,
/// refuses the pull, or the image is not there. Returns whether found.
fn own_fetch(input: &Input, findings: &mut Vec<Finding>) -> bool {
    let parent = &input.parent;
    let service = parent.metadata.name.as_str();
    let sources: Vec<(String, &str)> = input
        .app
        .iter()
        .filter_map(|a| useful_error(a).map(|m| (app_ref(a), m)))
        .chain(useful_error(parent).map(|m| (pkgi_ref(parent), m)))
        .collect();
    let Some((object, message, registries)) =
        sources.iter().find_map(|(o, m)| match kapp::read(m) {
            Reading::FetchFailed { registries } => Some((o, m, registries)),
            _ => None,
        })
    else {
        return false;
    };
    let mut evidence = vec![error_evidence(object.clone(), message)];
    if let Some(p) = package_for(parent, &input.packages) {
        evidence.extend(p.bundle_images().into_iter().map(|o| Evidence {
            object: package_ref(p),
            field: o.path,
            value: o.image,
        }));
    }
    let from = if registries.is_empty() {
        "its source".to_owned()
    } else {
        registries.join(", ")
    };
    findings.push(Finding {
        code: Code::FetchFailed,
        severity: Severity::Error,
        what: format!(
            "{service}'s own fetch fails: the Supervisor cannot pull the service's bundle from {from}. This is not \
             KB 437632 (which is about the children): labelling or re-reconciling the children cannot help until \
             the Supervisor can pull from {from}; kapp-controller retries by itself once it can."
        ),
        evidence,
        remedy: vec![
            format!(
                "from a Supervisor control plane VM: curl -v https://{}/v2/   # name resolution, firewall, the registry's CA",
                registries.first().map_or("<registry>", String::as_str)
            ),
            "trust the registry's CA and give the Supervisor its credentials (vCenter: Supervisor > Configure > Container Registries / Image Registry)".into(),
            format!(
                "or point the Package at a registry the Supervisor reaches: kubectl supsvc override-image -p {} -i <registry>/<repository>:<tag>",
                package_for(parent, &input.packages).map_or("<package>", |p| p.metadata.name.as_str())
            ),
        ],
    });
    true
}

/// Paused objects, trigger labels, an unfinished `fix` run.
fn leftovers(input: &Input, findings: &mut Vec<Finding>) {
    let parent = &input.parent;
    let service = parent.metadata.name.as_str();
    let progress = parent.metadata.annotations.get(PROGRESS_ANNOTATION);
    if let Some(value) = progress {
        let how_far = match ProgressRecord::parse(value) {
            Ok(p) => format!("run {} stopped after step {}", p.run, p.step),
            Err(_) => "its value is not one supsvc wrote".to_owned(),
        };
        findings.push(Finding {
            code: Code::StaleFixProgress,
            severity: Severity::Warning,
            what: format!("A `kubectl supsvc fix` run on {service} did not finish ({how_far})."),
            evidence: vec![Evidence {
                object: pkgi_ref(parent),
                field: format!("metadata.annotations[{PROGRESS_ANNOTATION}]"),
                value: value.clone(),
            }],
            remedy: vec![format!("kubectl supsvc fix {service}   # resumes the run")],
        });
    }
    let mut paused: Vec<(String, &'static str)> = Vec::new();
    let mut note = |obj: &dyn Reconcilable, name: String| {
        if obj.canceled() {
            paused.push((name, "spec.canceled"));
        } else if obj.paused() {
            paused.push((name, "spec.paused"));
        }
    };
    note(parent, pkgi_ref(parent));
    if let Some(app) = &input.app {
        note(app, app_ref(app));
    }
    for child in &input.children {
        note(child, pkgi_ref(child));
    }
    for (object, field) in paused {
        let remedy = if progress.is_some() {
            format!("kubectl supsvc fix {service}   # resumes the unfinished run and unpauses")
        } else {
            let (kind, rest) = object.split_once('/').unwrap_or(("pkgi", &object));
            format!(
                "kubectl patch {kind} {rest} --type=merge -p '{{\"spec\":{{\"{}\":null}}}}'",
                &field[5..]
            )
        };
        findings.push(Finding {
            code: Code::Paused,
            severity: Severity::Warning,
            what: format!(
                "{object} is {}: kapp-controller will not reconcile it.",
                if field == "spec.paused" {
                    "paused"
                } else {
                    "canceled"
                }
            ),
            evidence: vec![Evidence {
                object: object.clone(),
                field: field.into(),
                value: "true".into(),
            }],
            remedy: vec![remedy],
        });
    }
    for child in &input.children {
        for key in [TRIGGER_LABEL, KB_TRIGGER_LABEL] {
            if let Some(value) = child.metadata.labels.get(key) {
                findings.push(Finding {
                    code: Code::LeftoverTriggerLabel,
                    severity: Severity::Info,
                    what: format!("{} still carries the trigger label {key}; harmless, kapp removes it at its next deploy.", pkgi_ref(child)),
                    evidence: vec![Evidence {
                        object: pkgi_ref(child),
                        field: format!("metadata.labels[{key}]"),
                        value: value.clone(),
                    }],
                    remedy: vec![format!("kubectl label pkgi {} -n {} {key}-", child.metadata.name, child.metadata.ns())],
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
