//! Command line: the flags kubectl users expect, and one subcommand per job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use supsvc_core::carvel::{DEFAULT_SERVICE, SUPERVISOR_SERVICES_NAMESPACE};

/// Repair and inspect vSphere Supervisor Services (kapp-controller PackageInstalls).
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Connection flags, as kubectl's.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then /etc/kubernetes/admin.conf).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (`fix` takes several, to fix a fleet).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Vec<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Namespace of the Supervisor Services' PackageInstalls.
    #[arg(short = 'n', long, global = true, default_value = SUPERVISOR_SERVICES_NAMESPACE, value_name = "NS")]
    pub namespace: String,
    /// User to impersonate.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// How long to wait for one request to the server ("0" waits forever), e.g. 30s, 1m.
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every Supervisor Service with its package, version and state.
    Status(StatusArgs),
    /// Explain what is wrong with a Supervisor Service and what to run.
    Diagnose(DiagnoseArgs),
    /// Resolve the air-gapped reconciliation deadlock of a Supervisor Service (KB 437632).
    Fix(FixArgs),
    /// Point a Package at a relocated bundle image (override-package-image.sh), or rewrite registries in bulk.
    OverrideImage(OverrideImageArgs),
    /// Edit a Supervisor Service's values: validated, checked against the cluster, applied and followed.
    ValuesEdit(ValuesEditArgs),
    /// Forecast which TKG clusters roll for a change (TKR, variable, TKG Service or vCenter upgrade), in what order, and what blocks them.
    UpgradeCheck(crate::cmd::upgrade_check::UpgradeCheckArgs),
    /// Upgrade a Supervisor Service to a newer version through vCenter: checked, planned, followed.
    Upgrade(UpgradeArgs),
    /// Uninstall a Supervisor Service through vCenter (deactivate, remove, --unregister): planned, confirmed.
    Uninstall(UninstallArgs),
    /// Install, check or remove supsvc-webhook (the admission guard), or package it as a Supervisor Service.
    Webhook(crate::cmd::webhook::WebhookArgs),
    /// Write, try and measure admission policies (WASM) for supsvc-webhook.
    Policy(crate::cmd::policy::PolicyArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Try supsvc on an embedded simulated Supervisor: diagnose, fix and status of the KB's stuck svc-tkg.
    Demo(DemoArgs),
}

/// The embedded simulated Supervisor.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The scenario to start (`supsvc-sim scenarios` lists them).
    #[arg(long, default_value = "airgap-deadlock")]
    pub scenario: String,
    /// Multiplies the simulated controllers' periods: 0.01 makes a 10 minute sync period 6 seconds.
    #[arg(long, default_value_t = 0.01)]
    pub time_scale: f64,
    /// The kubectl to drive the simulator with.
    #[arg(long, env = "KUBECTL", default_value = "kubectl")]
    pub kubectl: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// After listing, print each change as it happens.
    #[arg(short, long)]
    pub watch: bool,
    /// With --vcenter (or SUPSVC_VCENTER): vCenter's desired and current version and config_status beside each service.
    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

/// Where the children live, when kapp's data cannot say.
#[derive(Debug, Clone, Args)]
pub struct Discovery {
    /// Domain namespace(s) of the service's child PackageInstalls (default: from the App's kapp data).
    #[arg(long = "domain-namespace", value_name = "NS")]
    pub domain_namespaces: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The Supervisor Service (its PackageInstall's name).
    #[arg(default_value = DEFAULT_SERVICE)]
    pub service: String,
    #[command(flatten)]
    pub discovery: Discovery,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Registries that are private (an allow-list; repeatable). Default: a deny-list of public registries.
    #[arg(
        long = "allow-registry",
        value_name = "PATTERN",
        conflicts_with = "deny_registries"
    )]
    pub allow_registries: Vec<String>,
    /// Registries that are public (replaces the default deny-list; repeatable).
    #[arg(long = "deny-registry", value_name = "PATTERN")]
    pub deny_registries: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DryRun {
    #[default]
    None,
    /// Print the plan only.
    Client,
    /// Send every write of the plan with dryRun=All.
    Server,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// The Supervisor Service (its PackageInstall's name).
    #[arg(default_value = DEFAULT_SERVICE)]
    pub service: String,
    #[command(flatten)]
    pub discovery: Discovery,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Change nothing: print the plan (client) or have the server check every write (server).
    #[arg(long, value_enum, default_value_t, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Give up (unpausing everything) after this long, e.g. 10m, 90s.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// The longest wait between two reads of the objects: fix wakes on their watch events, and
    /// reads again after this long without one.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION", hide = true)]
    pub poll_interval: Duration,
    /// Output format of the plan with --dry-run=client.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Fix the service on every context of the kubeconfig, concurrently.
    #[arg(long)]
    pub all_contexts: bool,
    /// Act although none of fix's preconditions holds (the KB's signature, a run of its own to resume,
    /// a repair begun by hand): for a fault you know a forced re-reconcile of the children repairs.
    #[arg(long)]
    pub force: bool,
    /// Take over a pause fix did not make (named in the plan with who set it and when) and remove it at
    /// the end of the run. `-y` alone never does.
    #[arg(long)]
    pub take_over_pause: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  kubectl supsvc override-image -p tkg.vsphere.vmware.com.3.5.1-embedded+v1.34 -i my-registry.example.com/tkg-svs/package/tkg-service:3.5.1 --dry-run\n  \
  kubectl supsvc override-image -p tkg.vsphere.vmware.com.3.5.1-embedded+v1.34 --revert\n  \
  kubectl supsvc override-image -n svc-tkg-domain-c1234 --registry-map projects.registry.vmware.com=my-registry.example.com/vmware --then-fix")]
pub struct OverrideImageArgs {
    /// The Package to change, e.g. tkg.vsphere.vmware.com.3.5.1-embedded+v1.34 (in -n, default vmware-system-supervisor-services).
    #[arg(
        short = 'p',
        long = "package-name",
        value_name = "PACKAGE",
        required_unless_present = "registry_map",
        conflicts_with = "registry_map"
    )]
    pub package_name: Option<String>,
    /// The relocated bundle image, e.g. my-registry.example.com/tkg-svs/package/tkg-service:3.5.1.
    #[arg(short = 'i', long, value_name = "IMAGE", required_unless_present_any = ["revert", "registry_map"], conflicts_with_all = ["revert", "registry_map"])]
    pub image: Option<String>,
    /// Restore the image the Package fetched before the last override-image.
    #[arg(long, requires = "package_name")]
    pub revert: bool,
    /// Rewrite every bundle/image reference under OLD to NEW in all Packages of the namespace (repeatable).
    #[arg(long = "registry-map", value_name = "OLD=NEW")]
    pub registry_map: Vec<String>,
    /// Accept an image on a public registry (an air-gapped Supervisor cannot pull it).
    #[arg(long)]
    pub allow_public: bool,
    /// Change nothing: show the change (client) or have the server check the write too (server).
    #[arg(long, value_enum, default_value_t, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Afterwards, run `fix` for the service that owns the Package(s).
    #[arg(long, conflicts_with = "output")]
    pub then_fix: bool,
    /// How long --then-fix may take.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Output format of the result.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  kubectl supsvc values-edit svc-harbor.tanzu.vmware.com\n  \
  kubectl supsvc values-edit svc-harbor.tanzu.vmware.com --set persistence.persistentVolumeClaim.registry.size=60Gi\n  \
  kubectl supsvc values-edit svc-harbor.tanzu.vmware.com -f harbor-values.yaml --dry-run\n  \
  kubectl supsvc values-edit svc-harbor.tanzu.vmware.com --rollback")]
pub struct ValuesEditArgs {
    /// The Supervisor Service (its PackageInstall's name), e.g. svc-harbor.tanzu.vmware.com.
    pub service: String,
    /// The values Secret to edit, when the PackageInstall references several.
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// Take the new values from this file ("-" for stdin) instead of an editor.
    #[arg(short = 'f', long = "values-file", value_name = "FILE")]
    pub values_file: Option<PathBuf>,
    /// Set one value instead of editing, e.g. persistence.persistentVolumeClaim.registry.size=60Gi (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Restore the values in use before the last values-edit.
    #[arg(long, conflicts_with_all = ["values_file", "set"])]
    pub rollback: bool,
    /// Apply even what the pre-flight says the cluster will refuse.
    #[arg(long)]
    pub force: bool,
    /// If the reconcile fails, restore the previous values without asking.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Show the values of sensitive keys (passwords, secrets, keys, tokens) in diffs.
    #[arg(long)]
    pub show_secrets: bool,
    /// Change nothing: show the diff and the pre-flight (client) or have the server check the writes too (server).
    #[arg(long, value_enum, default_value_t, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Output format of the result.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// How long to wait for the reconcile.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// How often to read the service while waiting.
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION", hide = true)]
    pub poll_interval: Duration,
    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  kubectl supsvc upgrade svc-harbor.tanzu.vmware.com --to 2.10.0+vmware.1 --vcenter https://vc.example.com --dry-run\n  \
  kubectl supsvc upgrade svc-harbor.tanzu.vmware.com --to 2.10.0+vmware.1 --definition harbor-2.10.0.yaml -y")]
pub struct UpgradeArgs {
    /// The Supervisor Service (its PackageInstall's name), e.g. svc-harbor.tanzu.vmware.com.
    pub service: String,
    /// The version to upgrade to, as vCenter's catalog names it (e.g. 2.10.0+vmware.1).
    #[arg(long, value_name = "VERSION")]
    pub to: String,
    /// The version's service definition (PackageMetadata + Package YAML): registers it when vCenter lacks it.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
    /// Change one value on the way, e.g. a key the new version requires (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Print the checks and the plan; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for vCenter and kapp-controller to finish.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// How often to read the service while waiting.
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION", hide = true)]
    pub poll_interval: Duration,
    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  kubectl supsvc uninstall svc-velero.vsphere.vmware.com --vcenter https://vc.example.com --dry-run\n  \
  kubectl supsvc uninstall svc-velero.vsphere.vmware.com --unregister\n  \
  kubectl supsvc uninstall svc-velero.vsphere.vmware.com --all-supervisors --unregister")]
pub struct UninstallArgs {
    /// The Supervisor Service (its PackageInstall's name, or its service ID).
    pub service: String,
    /// Also unregister its versions and the service from vCenter (the blog's step 3); refused while
    /// another Supervisor keeps it, unless --all-supervisors.
    #[arg(long)]
    pub unregister: bool,
    /// Remove it from every Supervisor of this vCenter that has it, one after another, not only from
    /// the kubeconfig's.
    #[arg(long)]
    pub all_supervisors: bool,
    /// Do not ask for the service's name.
    #[arg(short, long)]
    pub yes: bool,
    /// Print the checks and the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for vCenter to remove it.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// How often to read the service while waiting.
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION", hide = true)]
    pub poll_interval: Duration,
    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

/// Where a Supervisor Service's desired state lives: vCenter. The password is never a flag (it would
/// show in `ps`): SUPSVC_VCENTER_PASSWORD, --vcenter-password-stdin, or a prompt.
#[derive(Debug, Clone, Args)]
pub struct VcenterArgs {
    /// Edit the values where they persist: vCenter's stored config of the service (https://HOST).
    #[arg(long, env = "SUPSVC_VCENTER", value_name = "URL")]
    pub vcenter: Option<String>,
    /// The vCenter user.
    #[arg(
        long,
        env = "SUPSVC_VCENTER_USER",
        default_value = "administrator@vsphere.local",
        value_name = "USER"
    )]
    pub vcenter_user: String,
    /// Read the vCenter password from stdin (else SUPSVC_VCENTER_PASSWORD, else a prompt).
    #[arg(long)]
    pub vcenter_password_stdin: bool,
    /// Trust only this CA (PEM) for vCenter's certificate (default: the system's trust store).
    #[arg(
        long,
        env = "SUPSVC_VCENTER_CA_FILE",
        value_name = "PATH",
        conflicts_with = "vcenter_insecure"
    )]
    pub vcenter_ca_file: Option<PathBuf>,
    /// Do not verify vCenter's certificate (only where you accept the risk).
    #[arg(long)]
    pub vcenter_insecure: bool,
    /// The Supervisor's vSphere cluster (domain-cN), for 7.0.3/8.x (default: the one serving the kubeconfig's API server).
    #[arg(long, value_name = "MOID")]
    pub vcenter_cluster: Option<String>,
    /// The Supervisor ID, for 9.x (default: the one serving the kubeconfig's API server).
    #[arg(long, value_name = "ID")]
    pub vcenter_supervisor: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// A `--timeout`-style value that is no duration; `Display` says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// An empty value.
    #[error("empty duration")]
    Empty,
    /// A number that does not parse, or out of range; holds the whole value.
    #[error("invalid duration {0:?}: expected e.g. 30s, 10m, 1h30m")]
    Invalid(String),
    /// A unit other than `ms`, `s`, `m`, `h`; holds the whole value.
    #[error("invalid duration {0:?}: unit must be ms, s, m or h")]
    Unit(String),
}

/// Parses a Go-style duration as kubectl does: `90s`, `10m`, `1h30m`, `500ms`; a bare number is seconds.
///
/// # Errors
/// [`DurationError`] for an empty value, a bad number or an unknown unit.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| DurationError::Invalid(s.to_string()))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(DurationError::Unit(s.to_string()));
            }
        };
        total += Duration::try_from_secs_f64(value * scale)
            .map_err(|_| DurationError::Invalid(s.to_string()))?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-supsvc").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        let cases = [
            ("10m", Some(600_000)),
            ("90s", Some(90_000)),
            ("1h30m", Some(5_400_000)),
            ("500ms", Some(500)),
            ("1.5s", Some(1500)),
            ("30", Some(30_000)),
            ("0", Some(0)),
            ("", None),
            ("10x", None),
            ("m", None),
            ("-1s", None),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_duration(s).ok().map(|d| d.as_millis() as u64),
                want,
                "{s:?}"
            );
        }
        assert_eq!(parse_duration(" "), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("10x"),
            Err(DurationError::Unit("10x".into()))
        );
        assert_eq!(parse_duration("m"), Err(DurationError::Invalid("m".into())));
        let clap_error = parse(&["fix", "--timeout", "10x"]).unwrap_err().to_string();
        assert!(
            clap_error.contains("invalid value '10x' for '--timeout <DURATION>'")
                && clap_error.contains("unit must be ms, s, m or h"),
            "{clap_error}"
        );
    }

    #[test]
    fn global_flags_work_before_and_after_the_subcommand() {
        let cli = parse(&[
            "--context",
            "sv1",
            "fix",
            "-y",
            "--as",
            "admin",
            "--as-group",
            "g1",
            "--as-group",
            "g2",
            "-n",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.global.context, ["sv1"]);
        assert_eq!(cli.global.as_user.as_deref(), Some("admin"));
        assert_eq!(cli.global.as_group, ["g1", "g2"]);
        assert_eq!(cli.global.namespace, "x");
        let Command::Fix(fix) = cli.command else {
            panic!("fix")
        };
        assert!(fix.yes);
        assert_eq!(fix.service, DEFAULT_SERVICE);
        assert_eq!(fix.timeout, Duration::from_secs(600));
        assert_eq!(fix.dry_run, DryRun::None);
    }

    #[test]
    fn defaults() {
        let cli = parse(&["status"]).unwrap();
        assert_eq!(cli.global.namespace, SUPERVISOR_SERVICES_NAMESPACE);
        assert!(cli.global.kubeconfig.is_none());
    }

    #[test]
    fn dry_run_forms() {
        let dry = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Fix(f)) => Ok(f.dry_run),
            Ok(_) => panic!("fix"),
            Err(e) => Err(e.kind()),
        };
        assert_eq!(dry(&["fix", "--dry-run=client"]), Ok(DryRun::Client));
        assert_eq!(dry(&["fix", "--dry-run=server"]), Ok(DryRun::Server));
        assert_eq!(dry(&["fix", "--dry-run"]), Ok(DryRun::Client));
        assert_eq!(dry(&["fix", "--dry-run=none"]), Ok(DryRun::None));
        assert!(dry(&["fix", "--dry-run=maybe"]).is_err());
    }

    #[test]
    fn usage_errors() {
        for args in [
            &["fix", "--timeout", "soon"][..],
            &["status", "-o", "table"],
            &["nope"],
            &[],
            &["diagnose", "--allow-registry", "a", "--deny-registry", "b"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }

    #[test]
    fn output_and_discovery_flags() {
        let cli = parse(&[
            "diagnose",
            "svc-x",
            "-o",
            "json",
            "--domain-namespace",
            "a",
            "--domain-namespace",
            "b",
        ])
        .unwrap();
        let Command::Diagnose(d) = cli.command else {
            panic!("diagnose")
        };
        assert_eq!(d.service, "svc-x");
        assert_eq!(d.output, Some(Output::Json));
        assert_eq!(d.discovery.domain_namespaces, ["a", "b"]);
        let cli = parse(&["status", "-o", "yaml", "-w"]).unwrap();
        let Command::Status(s) = cli.command else {
            panic!("status")
        };
        assert_eq!(s.output, Some(Output::Yaml));
        assert!(s.watch);
    }
}
