//! `kubectl supsvc override-image`: `override-package-image.sh` (KB 437632) with its interface
//! (`-p`, `-i`, `-n`, `--dry-run`, `-h`), made safe: the reference is validated and normalised, a public
//! registry is refused unless `--allow-public`, the change is shown as a diff, written with a
//! resourceVersion precondition, the previous image is kept on the Package for `--revert`, and
//! `--registry-map OLD=NEW` rewrites every reference under a prefix across the namespace's Packages.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use supsvc_core::carvel::{App, PackageInstall};
use supsvc_core::image::{ImageRef, RegistryPolicy, RegistryVerdict};
use supsvc_core::kapp::{self, LABEL_APP};
use supsvc_core::relocation::{self, MapRule, PREVIOUS_IMAGE_ANNOTATION, Rewrite};

use crate::api::{self, SupervisorApi};
use crate::cli::Output;
use crate::cmd::Session;

use crate::cli::{DryRun, OverrideImageArgs};
use crate::cmd::fix::FixOptions;
use crate::error::{Failure, Result};
use crate::output::render;

use super::objects::{replace, unified_diff, without_server_fields, yaml};

const PACKAGE_RESOURCE: &str = "package.data.packaging.carvel.dev";

/// What `-o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    namespace: String,
    dry_run: Option<&'static str>,
    written: bool,
    packages: Vec<PackageChange>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PackageChange {
    package: String,
    rewrites: Vec<Rewrite>,
}

fn dry_run_name(d: DryRun) -> Option<&'static str> {
    match d {
        DryRun::None => None,
        DryRun::Client => Some("client"),
        DryRun::Server => Some("server"),
    }
}

/// A list item with its apiVersion and kind (list items may come without them).
fn typed(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "apiVersion".into(),
            "data.packaging.carvel.dev/v1alpha1".into(),
        );
        m.insert("kind".into(), "Package".into());
    }
    v
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn invalid_image(image: &str, e: impl std::fmt::Display) -> Failure {
    Failure::usage(
        format!("-i {image:?}: {e}"),
        "give a full reference to the relocated bundle, e.g. my-registry.example.com/tkg-svs/package/tkg-service:3.5.1 \
         (lower case; a tag after ':' or a digest after '@sha256:')",
    )
}

/// Refuses a public target unless `--allow-public`.
fn check_public(images: &[&str], allow_public: bool) -> Result<()> {
    let policy = RegistryPolicy::default();
    for image in images {
        let Ok(parsed) = ImageRef::parse(image) else {
            continue;
        };
        if let RegistryVerdict::Public { pattern } = policy.classify(&parsed)
            && !allow_public
        {
            return Err(Failure::new(
                format!(
                    "{image} is on the public registry {} (matches {pattern}): an air-gapped Supervisor cannot pull it, which is how the reconciliation deadlock starts; nothing was written",
                    parsed.registry()
                ),
                "relocate the bundle with `imgpkg copy -b <bundle> --to-repo <private registry>/<repository>` and pass that reference; \
                 if this Supervisor does reach the public registry, pass --allow-public",
            ));
        }
    }
    Ok(())
}

/// The Packages of the namespace, typed, sorted by name.
async fn packages(supervisor: &SupervisorApi, namespace: &str) -> Result<Vec<Value>> {
    let mut list: Vec<Value> = supervisor
        .list(&api::packages(), Some(namespace), None)
        .await?
        .into_iter()
        .map(typed)
        .collect();
    list.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    Ok(list)
}

fn unknown_package(name: &str, namespace: &str, all: &[Value]) -> Failure {
    let names: Vec<String> = all.iter().map(|p| name_of(p).to_owned()).collect();
    let close = relocation::close_names(name, &names, 5);
    let hint = if !close.is_empty() {
        format!("did you mean: {}?", close.join(", "))
    } else if names.is_empty() {
        format!(
            "there is no Package in namespace {namespace}; is -n right? (`kubectl get packages -A` lists them)"
        )
    } else {
        format!("the Packages in {namespace} are: {}", names.join(", "))
    };
    Failure::new(
        format!("package \"{name}\" not found in namespace {namespace}; nothing was written"),
        hint,
    )
}

/// Warns when a new reference's registry is not where the namespace's other Packages were relocated.
fn registry_warnings(all: &[Value], except: &str, targets: &[&str]) -> Vec<String> {
    let registries = relocation::relocation_registries(all, except, &RegistryPolicy::default());
    if registries.is_empty() {
        return Vec::new();
    }
    let mut seen = BTreeSet::new();
    targets
        .iter()
        .filter_map(|t| ImageRef::parse(t).ok())
        .filter(|r| !registries.contains(r.registry()) && seen.insert(r.registry().to_owned()))
        .map(|r| {
            format!(
                "{} is on {}, but the other Packages of the namespace were relocated to {}: check that this is where the bundle was copied",
                r,
                r.registry(),
                registries.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect()
}

/// The Supervisor Service that owns a Package. A kapp-deployed Package belongs to the App whose kapp
/// label it carries (from the App's `associatedResources`, else kapp's record ConfigMap `<app>.app`);
/// any other Package to the PackageInstall of its refName in its namespace. Returns (namespace, service).
async fn owner(supervisor: &SupervisorApi, package: &Value) -> Result<Option<(String, String)>> {
    if let Some(label) = package["metadata"]["labels"][LABEL_APP].as_str() {
        let wanted = format!("{LABEL_APP}={label}");
        for app in supervisor.list(&api::apps(), None, None).await? {
            let Ok(app) = App::from_value(&app) else {
                continue;
            };
            if app.associated_resources().and_then(|a| a.label.as_deref()) == Some(&wanted) {
                return Ok(Some((app.metadata.ns().to_owned(), app.metadata.name)));
            }
        }
        for record in supervisor
            .list(&api::configmaps(), None, Some(kapp::LABEL_IS_APP))
            .await?
        {
            if kapp::app_record_label_value(&record).as_deref() == Some(label)
                && let (Some(ns), Some(app)) = (
                    record["metadata"]["namespace"].as_str(),
                    record["metadata"]["name"]
                        .as_str()
                        .and_then(|n| n.strip_suffix(".app")),
                )
            {
                let app = app.strip_suffix("-ctrl").unwrap_or(app);
                return Ok(Some((ns.to_owned(), app.to_owned())));
            }
        }
        return Ok(None);
    }
    let namespace = package["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let ref_name = package["spec"]["refName"].as_str().unwrap_or_default();
    for pkgi in supervisor
        .list(&api::packageinstalls(), Some(namespace), None)
        .await?
    {
        if let Ok(p) = PackageInstall::from_value(&pkgi)
            && p.spec.package_ref.ref_name == ref_name
        {
            return Ok(Some((namespace.to_owned(), p.metadata.name)));
        }
    }
    Ok(None)
}

/// The fix `--then-fix` runs for `service`: fix's defaults, without asking, within `timeout`.
pub fn fix_options(service: &str, timeout: Duration) -> FixOptions {
    FixOptions {
        yes: true,
        timeout,
        ..FixOptions::new(service)
    }
}

async fn then_fix(
    supervisor: &SupervisorApi,
    changed: &[Value],
    args: &OverrideImageOptions,
) -> Result<()> {
    let mut services = BTreeSet::new();
    for p in changed {
        match owner(supervisor, p).await? {
            Some(s) => {
                services.insert(s);
            }
            None => errln!(
                "warning: no Supervisor Service found that owns Package {}; nothing to fix for it",
                name_of(p)
            ),
        }
    }
    for (namespace, service) in services {
        outln!("Running `kubectl supsvc fix {service} -n {namespace}`:");
        let session = Session {
            supervisor: supervisor.clone(),
            namespace,
        };
        super::fix::run(&session, &fix_options(&service, args.timeout)).await?;
    }
    Ok(())
}

/// Writes the Packages (each with its resourceVersion precondition). The server checks every write
/// with dryRun=All first, so a refusal (403, invalid) leaves nothing half-written; a failure after
/// that puts back the Packages already written.
async fn write_all(supervisor: &SupervisorApi, namespace: &str, updated: &[Value]) -> Result<()> {
    let resource = api::packages();
    for p in updated {
        replace(supervisor, &resource, namespace, p, true).await?;
    }
    let mut written: Vec<(Value, Value)> = Vec::new();
    for p in updated {
        match replace(supervisor, &resource, namespace, p, false).await {
            Ok(after) => written.push((p.clone(), after)),
            Err(f) => {
                let mut notes = Vec::new();
                for (before_write, after) in written.iter().rev() {
                    // Undo: the image(s) as they were, on top of what was written.
                    let mut undo = typed(after.clone());
                    let original = before_write.clone();
                    for path_value in changed_paths(&original, &undo) {
                        if let Some(slot) = undo.pointer_mut(&path_value.0) {
                            *slot = path_value.1;
                        }
                    }
                    match replace(supervisor, &resource, namespace, &undo, false).await {
                        Ok(_) => notes.push(format!("put back {}", name_of(&undo))),
                        Err(e) => {
                            notes.push(format!("could not put back {}: {}", name_of(&undo), e.what))
                        }
                    }
                }
                return Err(Failure {
                    what: format!(
                        "{}{}",
                        f.what,
                        if notes.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", notes.join("; "))
                        }
                    ),
                    ..f
                });
            }
        }
    }
    Ok(())
}

/// The fetch references of `a` as (pointer, value) wherever `b` differs: what to restore on `b`.
fn changed_paths(a: &Value, b: &Value) -> Vec<(String, Value)> {
    supsvc_core::image::find_images(a)
        .into_iter()
        .filter_map(|o| {
            let ptr = relocation::pointer(&o.path);
            (b.pointer(&ptr) != a.pointer(&ptr)).then_some((ptr, Value::String(o.image)))
        })
        .collect()
}

fn print_diff(before: &Value, after: &Value, namespace: &str) {
    let name = name_of(before);
    let d = unified_diff(
        &yaml(&without_server_fields(before)),
        &yaml(&without_server_fields(after)),
        &format!("{PACKAGE_RESOURCE}/{name} -n {namespace} (live)"),
        &format!("{PACKAGE_RESOURCE}/{name} -n {namespace} (new)"),
    );
    out!("{d}");
}

fn finish(
    out: Outcome,
    args: &OverrideImageOptions,
    summary: impl FnOnce(&Outcome) -> String,
) -> Result<()> {
    match args.output {
        Some(format) => out!("{}", render(format, &out)?),
        None => outln!("{}", summary(&out)),
    }
    Ok(())
}
/// What `override-image` is asked to do: built from clap's [`crate::cli::OverrideImageArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct OverrideImageOptions {
    /// The Package to change, e.g. tkg.vsphere.vmware.com.3.5.1-embedded+v1.34 (in -n, default vmware-system-supervisor-services).
    pub package_name: Option<String>,
    /// The relocated bundle image, e.g. my-registry.example.com/tkg-svs/package/tkg-service:3.5.1.
    pub image: Option<String>,
    /// Restore the image the Package fetched before the last override-image.
    pub revert: bool,
    /// Rewrite every bundle/image reference under OLD to NEW in all Packages of the namespace (repeatable).
    pub registry_map: Vec<String>,
    /// Accept an image on a public registry (an air-gapped Supervisor cannot pull it).
    pub allow_public: bool,
    /// Change nothing: show the change (client) or have the server check the write too (server).
    pub dry_run: DryRun,
    /// Afterwards, run `fix` for the service that owns the Package(s).
    pub then_fix: bool,
    /// How long --then-fix may take.
    pub timeout: Duration,
    /// Output format of the result.
    pub output: Option<Output>,
}

impl From<&OverrideImageArgs> for OverrideImageOptions {
    fn from(args: &OverrideImageArgs) -> Self {
        OverrideImageOptions {
            package_name: args.package_name.clone(),
            image: args.image.clone(),
            revert: args.revert,
            registry_map: args.registry_map.clone(),
            allow_public: args.allow_public,
            dry_run: args.dry_run,
            then_fix: args.then_fix,
            timeout: args.timeout,
            output: args.output,
        }
    }
}

pub async fn run(session: &Session, args: &OverrideImageOptions) -> Result<()> {
    let (supervisor, namespace) = (&session.supervisor, session.namespace.as_str());
    if !args.registry_map.is_empty() {
        return registry_map(supervisor, namespace, args).await;
    }
    let Some(name) = args.package_name.as_deref() else {
        return Err(Failure::usage(
            "name the Package with -p/--package-name, or rewrite registries with --registry-map OLD=NEW",
            "e.g. kubectl supsvc override-image -p tkg.vsphere.vmware.com.3.5.1-embedded+v1.34 -i my-registry.example.com/tkg-svs/package/tkg-service:3.5.1",
        ));
    };
    // The reference is checked before anything is read.
    let requested = match (&args.image, args.revert) {
        (Some(image), false) => Some(
            ImageRef::parse(image)
                .map_err(|e| invalid_image(image, e.reason))?
                .to_string(),
        ),
        (None, true) => None,
        _ => {
            return Err(Failure::usage(
                "give either -i/--image or --revert",
                "-i IMAGE points the Package at IMAGE; --revert restores the image it used before",
            ));
        }
    };
    let all = packages(supervisor, namespace).await?;
    let package = all
        .iter()
        .find(|p| name_of(p) == name)
        .cloned()
        .ok_or_else(|| unknown_package(name, namespace, &all))?;
    let bundle = relocation::bundle_image(&package).map_err(|e| {
        Failure::new(
            e.to_string(),
            "override-image changes the imgpkg bundle a Package fetches; this Package fetches something else",
        )
    })?;
    let target = match requested {
        Some(t) => t,
        None => {
            let previous = relocation::previous_image(&package).ok_or_else(|| {
                Failure::new(
                    format!(
                        "Package {name} has no previous image to revert to (no annotation {PREVIOUS_IMAGE_ANNOTATION})"
                    ),
                    "--revert undoes an override made by kubectl supsvc override-image; pass -i IMAGE to set one",
                )
            })?;
            ImageRef::parse(previous)
                .map_err(|e| {
                    Failure::new(
                        format!(
                            "the previous image recorded on {name} ({previous:?}) is not a valid reference: {}",
                            e.reason
                        ),
                        "pass -i IMAGE instead of --revert",
                    )
                })?
                .to_string()
        }
    };
    let dry_run = dry_run_name(args.dry_run);
    if target == bundle.image {
        return finish(
            Outcome {
                namespace: namespace.to_owned(),
                dry_run,
                written: false,
                packages: Vec::new(),
                warnings: Vec::new(),
            },
            args,
            |_| format!("Package {name} already fetches {target}: nothing to change."),
        );
    }
    check_public(&[&target], args.allow_public)?;
    let warnings = registry_warnings(&all, name, &[&target]);
    for w in &warnings {
        errln!("warning: {w}");
    }
    let rewrite = Rewrite {
        path: bundle.path.clone(),
        from: bundle.image.clone(),
        to: target.clone(),
    };
    let mut updated = package.clone();
    relocation::apply(&mut updated, std::slice::from_ref(&rewrite))
        .map_err(|e| Failure::new(e.to_string(), "report this as a bug"))?;
    if args.output.is_none() {
        print_diff(&package, &updated, namespace);
    }
    let written = match args.dry_run {
        DryRun::Client => false,
        DryRun::Server => {
            replace(supervisor, &api::packages(), namespace, &updated, true).await?;
            false
        }
        DryRun::None => {
            write_all(supervisor, namespace, std::slice::from_ref(&updated)).await?;
            true
        }
    };
    let out = Outcome {
        namespace: namespace.to_owned(),
        dry_run,
        written,
        packages: vec![PackageChange {
            package: name.to_owned(),
            rewrites: vec![rewrite.clone()],
        }],
        warnings,
    };
    finish(out, args, |_| match args.dry_run {
        DryRun::Client => "Dry run: nothing was written.".to_owned(),
        DryRun::Server => {
            "Dry run (server): the server accepted the change with dryRun=All; nothing was written."
                .to_owned()
        }
        DryRun::None => format!(
            "{PACKAGE_RESOURCE}/{name} image overridden: {} -> {} (the previous image is kept in annotation {PREVIOUS_IMAGE_ANNOTATION}; undo with --revert)",
            rewrite.from, rewrite.to
        ),
    })?;
    if written && args.then_fix {
        then_fix(supervisor, std::slice::from_ref(&updated), args).await?;
    }
    Ok(())
}

async fn registry_map(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &OverrideImageOptions,
) -> Result<()> {
    let rules: Vec<MapRule> = args
        .registry_map
        .iter()
        .map(|r| MapRule::parse(r))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Failure::usage(
                e.to_string(),
                "OLD and NEW are a registry with an optional repository prefix, e.g. --registry-map projects.registry.vmware.com=my-registry.example.com/vmware",
            )
        })?;
    let all = packages(supervisor, namespace).await?;
    let mut changes = Vec::new();
    for p in &all {
        let rewrites = relocation::plan_map(p, &rules).map_err(|e| {
            Failure::usage(
                format!("--registry-map would make an invalid reference in Package {}: {e}; nothing was written", name_of(p)),
                "check NEW: lower case, a registry host and repository path",
            )
        })?;
        if !rewrites.is_empty() {
            let mut updated = p.clone();
            relocation::apply(&mut updated, &rewrites)
                .map_err(|e| Failure::new(e.to_string(), "report this as a bug"))?;
            changes.push((p.clone(), updated, rewrites));
        }
    }
    let dry_run = dry_run_name(args.dry_run);
    if changes.is_empty() {
        let olds: Vec<&str> = rules.iter().map(|r| r.from.as_str()).collect();
        return finish(
            Outcome {
                namespace: namespace.to_owned(),
                dry_run,
                written: false,
                packages: Vec::new(),
                warnings: Vec::new(),
            },
            args,
            |_| {
                format!(
                    "No Package in {namespace} fetches anything under {}: nothing to change.",
                    olds.join(", ")
                )
            },
        );
    }
    let targets: Vec<&str> = changes
        .iter()
        .flat_map(|(_, _, r)| r.iter().map(|r| r.to.as_str()))
        .collect();
    check_public(&targets, args.allow_public)?;
    let mut warnings = Vec::new();
    let managed: Vec<&str> = changes
        .iter()
        .filter(|(p, _, _)| p["metadata"]["labels"][LABEL_APP].is_string())
        .map(|(p, _, _)| name_of(p))
        .collect();
    if !managed.is_empty() {
        warnings.push(format!(
            "{} of these Packages are deployed by kapp ({}): the next successful deploy of the service that owns them puts back what its bundle says, so relocate that bundle with `imgpkg copy` too",
            managed.len(),
            managed.join(", ")
        ));
    }
    for w in &warnings {
        errln!("warning: {w}");
    }
    if args.output.is_none() {
        for (before, after, _) in &changes {
            print_diff(before, after, namespace);
        }
    }
    let updated: Vec<Value> = changes.iter().map(|(_, u, _)| u.clone()).collect();
    let written = match args.dry_run {
        DryRun::Client => false,
        DryRun::Server => {
            for u in &updated {
                replace(supervisor, &api::packages(), namespace, u, true).await?;
            }
            false
        }
        DryRun::None => {
            write_all(supervisor, namespace, &updated).await?;
            true
        }
    };
    let count: usize = changes.iter().map(|(_, _, r)| r.len()).sum();
    let out = Outcome {
        namespace: namespace.to_owned(),
        dry_run,
        written,
        packages: changes
            .iter()
            .map(|(p, _, r)| PackageChange {
                package: name_of(p).to_owned(),
                rewrites: r.clone(),
            })
            .collect(),
        warnings,
    };
    finish(out, args, |out| match args.dry_run {
        DryRun::Client => format!(
            "Dry run: {count} reference(s) in {} Package(s) would be rewritten; nothing was written.",
            out.packages.len()
        ),
        DryRun::Server => format!(
            "Dry run (server): the server accepted {} Package update(s) with dryRun=All; nothing was written.",
            out.packages.len()
        ),
        DryRun::None => {
            let mut s = String::new();
            for p in &out.packages {
                for r in &p.rewrites {
                    s.push_str(&format!(
                        "{PACKAGE_RESOURCE}/{} {}: {} -> {}\n",
                        p.package, r.path, r.from, r.to
                    ));
                }
            }
            s + &format!(
                "Rewrote {count} reference(s) in {} Package(s) of {namespace}.",
                out.packages.len()
            )
        }
    })?;
    if written && args.then_fix {
        then_fix(supervisor, &updated, args).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn pkg(name: &str, image: &str) -> Value {
        typed(json!({"metadata": {"name": name, "namespace": "ns"},
                      "spec": {"refName": "r", "template": {"spec": {"fetch": [{"imgpkgBundle": {"image": image}}]}}}}))
    }

    #[test]
    fn then_fix_is_the_fix_command_with_yes_and_the_timeout() {
        let f = fix_options("svc-tkg.vsphere.vmware.com", Duration::from_secs(90));
        let parsed = match Cli::try_parse_from([
            "kubectl-supsvc",
            "fix",
            "svc-tkg.vsphere.vmware.com",
            "-y",
            "--timeout",
            "90s",
        ])
        .map(|c| c.command)
        {
            Ok(Command::Fix(args)) => FixOptions::from(&args),
            other => panic!("{other:?}"),
        };
        assert_eq!(f, parsed);
        assert_eq!(f.service, "svc-tkg.vsphere.vmware.com");
        assert!(f.yes);
        assert_eq!(f.timeout, Duration::from_secs(90));
        assert_eq!(f.dry_run, DryRun::None);
    }

    #[test]
    fn public_targets_are_refused_unless_allowed() {
        let f = check_public(&["projects.registry.vmware.com/tkg/x:1"], false).unwrap_err();
        assert!(
            f.what
                .contains("public registry projects.registry.vmware.com"),
            "{}",
            f.what
        );
        assert!(f.hint.contains("--allow-public"), "{}", f.hint);
        assert!(check_public(&["projects.registry.vmware.com/tkg/x:1"], true).is_ok());
        assert!(check_public(&["my-registry.example.com/x:1"], false).is_ok());
    }

    #[test]
    fn unknown_packages_list_close_names() {
        let all = vec![
            pkg("tkg.vsphere.vmware.com.3.5.1-embedded+v1.34", "h/a:1"),
            pkg("harbor.tanzu.vmware.com.2.9.1+vmware.1", "h/b:1"),
        ];
        let f = unknown_package("tkg.vsphere.vmware.com.3.5.1", "ns", &all);
        assert_eq!(
            f.hint,
            "did you mean: tkg.vsphere.vmware.com.3.5.1-embedded+v1.34?"
        );
        let f = unknown_package("zzz", "ns", &all);
        assert!(f.hint.starts_with("the Packages in ns are: "), "{}", f.hint);
        let f = unknown_package("zzz", "ns", &[]);
        assert!(f.hint.contains("no Package in namespace ns"), "{}", f.hint);
        assert!(f.what.contains("nothing was written"));
    }

    #[test]
    fn warns_about_a_registry_other_than_the_relocation() {
        let all = vec![
            pkg("self", "my-registry.example.com/a:1"),
            pkg("other", "my-registry.example.com/b:1"),
        ];
        assert!(registry_warnings(&all, "self", &["my-registry.example.com/c:1"]).is_empty());
        let w = registry_warnings(&all, "self", &["other.example.com/c:1"]);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("relocated to my-registry.example.com"),
            "{}",
            w[0]
        );
        assert!(registry_warnings(&[], "self", &["other.example.com/c:1"]).is_empty());
    }

    #[test]
    fn undo_restores_only_the_references() {
        let before = pkg("p", "a.corp/x:1");
        let mut after = pkg("p", "b.corp/x:1");
        after["metadata"]["resourceVersion"] = json!("9");
        let paths = changed_paths(&before, &after);
        assert_eq!(
            paths,
            [(
                "/spec/template/spec/fetch/0/imgpkgBundle/image".to_owned(),
                json!("a.corp/x:1")
            )]
        );
    }
}
