//! Decisions about a Supervisor Service as vCenter keeps it, as pure functions.
//!
//! A Supervisor Service's desired state lives in vCenter (the vSphere Automation API, `/api/vcenter/
//! namespace-management/...`): its `desired_version` and its `yaml_service_config` (base64 YAML). A
//! change written only to the Supervisor's values Secret is replaced by vCenter's copy at the next
//! configure or upgrade, so `values-edit --vcenter` writes vCenter's record instead. This module decides:
//!
//! - which route family a vCenter serves ([`Flavour`], from `GET /api/appliance/system/version`);
//! - which keys of the stored config the platform added and must be kept ([`platform_keys`],
//!   [`merge_edit`]);
//! - whether the Supervisor's Secret drifted from vCenter's copy ([`drift`]);
//! - whether a change is in flight ([`in_flight`]), and the write protocol's next step ([`next_step`]);
//! - how to order service versions ([`compare_versions`]) and what a vAPI error means ([`explain`]).
//! - whether vCenter's checkContent lets a definition be registered ([`read_check_result`]).
//!
//! Sources (the vSphere Automation API bindings, PyPI `vmware-vcenter` 9.1.1.0,
//! `com/vmware/vcenter/namespace_management/supervisor_services_client.py` and `supervisors_client.py`):
//! `SetSpec` replaces the whole spec ("applied in entirety"), `version` is required; `config_status` is
//! one of `CONFIGURING`, `REMOVING`, `CONFIGURED`, `ERROR`; `desired_version != current_version` means a
//! change is in progress; the cluster routes exist from API 7.0.3.0 and are deprecated in 9.0.0.0, where
//! the Supervisor routes arrive; `yaml_service_config` arrives in 8.0.0.1.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::values::{self, Change};

/// The prefix of every Supervisor Services route.
pub const NAMESPACE_MANAGEMENT: &str = "/api/vcenter/namespace-management";
/// The header carrying the session token (vSphere Automation API `session.json` securityDefinitions).
pub const SESSION_HEADER: &str = "vmware-api-session-id";
/// The key vCenter adds to a service's stored config (seen on 9.1: `namespace: svc-<name>-<suffix>`).
pub const NAMESPACE_KEY: &str = "namespace";

/// A vCenter version, `major.minor.patch[.build]` as `/api/appliance/system/version` gives it in `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
///
/// Ordered field by field, so `VcVersion::new(8, 0, 3) < VcVersion::new(9, 0, 0)`; the build number
/// (`8.0.3.00400`) is not kept: no rule of this module depends on it.
///
/// ```
/// use supsvc_core::vcenter::VcVersion;
///
/// let v = VcVersion::parse("8.0.3.00400").unwrap();
/// assert_eq!(v, VcVersion::new(8, 0, 3));
/// assert!(v < VcVersion::new(9, 0, 0));
/// assert_eq!(v.to_string(), "8.0.3");
/// ```
pub struct VcVersion {
    /// The major version (`8` of `8.0.3`).
    pub major: u32,
    /// The minor version (`0` of `8.0.3`; vSphere's "Update" releases bump the patch, not this).
    pub minor: u32,
    /// The patch version (`3` of `8.0.3`, vSphere 8.0 Update 3); `0` when the text has only two numbers.
    pub patch: u32,
}

impl VcVersion {
    /// The version `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        VcVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses `8.0.3`, `8.0.3.00400` or `9.1.0.0`; anything after the third number is ignored.
    /// `None` when the first two parts are not numbers (`"8"`, `"eight.0"`, `""`).
    pub fn parse(text: &str) -> Option<VcVersion> {
        let mut parts = text.trim().split('.');
        let mut number = || parts.next()?.trim().parse::<u32>().ok();
        let major = number()?;
        let minor = number()?;
        let patch = number().unwrap_or(0);
        Some(VcVersion::new(major, minor, patch))
    }
}

impl fmt::Display for VcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Which routes install records live under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Flavour {
    /// 7.0.3 and 8.x: `/clusters/{cluster}/supervisor-services/...`, the list a bare array.
    Cluster,
    /// 9.0 and later: `/supervisors/{supervisor}/supervisor-services/...`, the list wrapped in
    /// `{"supervisor_services": [...]}`.
    Supervisor,
}

/// What a vCenter of a version can do with Supervisor Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// The route family install records live under (9.0.0.0+: [`Flavour::Supervisor`]).
    pub flavour: Flavour,
    /// `yaml_service_config` exists (8.0.0.1+); before, only the `service_config` string map.
    pub yaml_config: bool,
    /// The compatibility precheck of a target version (8.0.3.0+, Supervisor routes only).
    pub precheck: bool,
    /// `must_be_installed` on a service (8.0.3.0+).
    pub must_be_installed: bool,
    /// `APIEndpoint` in `supervisors/summaries` (9.1.0.0+).
    pub summaries_endpoint: bool,
}

/// Why a vCenter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// `version` of `GET /api/appliance/system/version` is not `major.minor[.patch[.build]]`; holds the text.
    #[error("vCenter reports version {0:?}, which is not a version number")]
    Unparsable(String),
    /// The vCenter predates the Supervisor Services API (API 7.0.3.0, vSphere 7.0 Update 3).
    #[error(
        "vCenter {0} has no Supervisor Services API (it arrived in vSphere 7.0 Update 3); upgrade vCenter"
    )]
    TooOld(VcVersion),
}

/// The capabilities of a vCenter from its `version` (source: §1.6 of the notes, the API version each
/// route and field arrived in).
///
/// ```
/// use supsvc_core::vcenter::{capabilities, Flavour};
///
/// let eight = capabilities("8.0.3.00400").unwrap();
/// assert_eq!(eight.flavour, Flavour::Cluster);
/// assert!(eight.yaml_config && eight.precheck && !eight.summaries_endpoint);
/// assert_eq!(capabilities("9.1.0.0").unwrap().flavour, Flavour::Supervisor);
/// assert!(capabilities("7.0.2").is_err());
/// ```
///
/// # Errors
/// [`VersionError::Unparsable`] when `version` is not a version number, [`VersionError::TooOld`] when
/// it is older than 7.0.3 (no Supervisor Services API).
pub fn capabilities(version: &str) -> Result<Capabilities, VersionError> {
    let v = VcVersion::parse(version).ok_or_else(|| VersionError::Unparsable(version.into()))?;
    if v < VcVersion::new(7, 0, 3) {
        return Err(VersionError::TooOld(v));
    }
    let nine = v >= VcVersion::new(9, 0, 0);
    Ok(Capabilities {
        flavour: if nine {
            Flavour::Supervisor
        } else {
            Flavour::Cluster
        },
        yaml_config: v >= VcVersion::new(8, 0, 0),
        precheck: v >= VcVersion::new(8, 0, 3),
        must_be_installed: v >= VcVersion::new(8, 0, 3),
        summaries_endpoint: v >= VcVersion::new(9, 1, 0),
    })
}

/// The route of a service's install record: `…/clusters/{id}/supervisor-services/{service}` or
/// `…/supervisors/{id}/supervisor-services/{service}`; `service` `None` is the collection.
pub fn install_path(flavour: Flavour, target: &str, service: Option<&str>) -> String {
    let family = match flavour {
        Flavour::Cluster => "clusters",
        Flavour::Supervisor => "supervisors",
    };
    let mut path = format!(
        "{NAMESPACE_MANAGEMENT}/{family}/{}/supervisor-services",
        segment(target)
    );
    if let Some(service) = service {
        path.push('/');
        path.push_str(&segment(service));
    }
    path
}

/// The route of a catalog service, or one of its versions.
pub fn catalog_path(service: &str, version: Option<&str>) -> String {
    let mut path = format!(
        "{NAMESPACE_MANAGEMENT}/supervisor-services/{}",
        segment(service)
    );
    if let Some(version) = version {
        path.push_str("/versions/");
        path.push_str(&segment(version));
    }
    path
}

/// Percent-encodes what a path segment cannot hold (`+` of `2.9.1+vmware.1` stays: it is legal in a path).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+:@!$&'()*,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The service ID (`harbor.tanzu.vmware.com`) of a Supervisor Service's PackageInstall name
/// (`svc-harbor.tanzu.vmware.com`): vCenter names the PackageInstall `svc-<service id>`.
pub fn service_id(package_install: &str) -> &str {
    package_install
        .strip_prefix("svc-")
        .filter(|id| id.contains('.'))
        .unwrap_or(package_install)
}

/// The host of a URL: `https://10.0.0.5:6443/x` → `10.0.0.5`, `https://[::1]:6443` → `::1`.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map(|(_, a)| a)
        .unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Why [`choose_target`] found no single Supervisor (or cluster) for the kubeconfig's API server.
///
/// The messages are the ones the plugin shows after `error:`; it adds the vCenter URL and a hint
/// naming the flag that picks the target by hand (`--vcenter-cluster`, `--vcenter-supervisor`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// vCenter lists no Supervisor (or cluster) at all.
    #[error("vCenter reports no Supervisor")]
    NoneReported,
    /// Some candidates report endpoints but none holds the kubeconfig server's host.
    #[error("none of vCenter's Supervisors ({}) serves the kubeconfig's API server {host}", candidates.join(", "))]
    NoneServes {
        /// The kubeconfig server's host (`10.0.0.5`, `::1`), as [`url_host`] gives it.
        host: String,
        /// Every candidate's ID, in vCenter's order.
        candidates: Vec<String>,
    },
    /// More than one candidate reports an endpoint on the host.
    #[error("several of vCenter's Supervisors serve {host}: {}", matching.join(", "))]
    Several {
        /// The kubeconfig server's host.
        host: String,
        /// The IDs of the candidates that serve it, in vCenter's order.
        matching: Vec<String>,
    },
}

/// Which of vCenter's Supervisors (or clusters) is the kubeconfig's: the one whose endpoints (as
/// `clusters/{c}` `api_server_cluster_endpoint`/`api_servers`, or summaries `APIEndpoint`, report
/// them) hold the kubeconfig server's host; the only one when none reports an endpoint.
///
/// `host` is a bare host (see [`url_host`]); `candidates` are `(ID, endpoints)` pairs, the ID a
/// cluster's `domain-cN` or a Supervisor's ID, each endpoint a URL or a bare host.
///
/// ```
/// use supsvc_core::vcenter::{choose_target, TargetError};
///
/// let candidates = vec![
///     ("domain-c8".to_string(), vec!["10.0.0.5".to_string()]),
///     ("domain-c9".to_string(), vec!["https://10.0.1.5:6443".to_string()]),
/// ];
/// assert_eq!(choose_target("10.0.1.5", &candidates), Ok("domain-c9".to_string()));
/// assert!(matches!(choose_target("10.9.9.9", &candidates), Err(TargetError::NoneServes { .. })));
/// ```
///
/// # Errors
/// [`TargetError::NoneReported`] when there is no candidate, [`TargetError::NoneServes`] when no
/// candidate serves `host` (and not a single one without endpoints), [`TargetError::Several`] when
/// more than one does.
pub fn choose_target(
    host: &str,
    candidates: &[(String, Vec<String>)],
) -> Result<String, TargetError> {
    let matching: Vec<&String> = candidates
        .iter()
        .filter(|(_, endpoints)| endpoints.iter().any(|e| url_host(e) == host))
        .map(|(id, _)| id)
        .collect();
    match (matching.as_slice(), candidates) {
        ([one], _) => Ok((*one).clone()),
        ([], [(only, endpoints)]) if endpoints.is_empty() => Ok(only.clone()),
        ([], []) => Err(TargetError::NoneReported),
        ([], _) => Err(TargetError::NoneServes {
            host: host.to_owned(),
            candidates: candidates.iter().map(|(id, _)| id.clone()).collect(),
        }),
        (many, _) => Err(TargetError::Several {
            host: host.to_owned(),
            matching: many.iter().map(|s| (*s).clone()).collect(),
        }),
    }
}

/// `config_status` of an install record (`supervisor_services_client.py`, `ConfigStatus`), in JSON
/// and on display as vCenter spells it (`CONFIGURING`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigStatus {
    /// `CONFIGURING`: vCenter is applying the desired state (install, upgrade or config change).
    Configuring,
    /// `REMOVING`: vCenter is uninstalling the service from the Supervisor.
    Removing,
    /// `CONFIGURED`: the desired state is applied.
    Configured,
    /// `ERROR`: applying the desired state failed; the record's `messages` say why.
    Error,
}

impl fmt::Display for ConfigStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigStatus::Configuring => "CONFIGURING",
            ConfigStatus::Removing => "REMOVING",
            ConfigStatus::Configured => "CONFIGURED",
            ConfigStatus::Error => "ERROR",
        })
    }
}

/// A localizable message (`{id, default_message, args}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizableMessage {
    /// The message's ID (a dotted key identifying the message); empty when absent.
    #[serde(default)]
    pub id: String,
    /// The English text, arguments already substituted; empty when absent.
    #[serde(default)]
    pub default_message: String,
    /// The arguments substituted into the message.
    #[serde(default)]
    pub args: Vec<String>,
}

/// One of an install record's `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMessage {
    /// `INFO`, `WARNING` or `ERROR`.
    pub severity: String,
    /// The message itself; `None` when vCenter sent none.
    #[serde(default)]
    pub details: Option<LocalizableMessage>,
}

/// `GET …/supervisor-services/{id}` on a cluster or a Supervisor (the `Info` structure). Unknown
/// fields are ignored, optional ones optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// The version vCenter is to install (`2.9.1+vmware.1`); differs from `current_version` while a
    /// change is in progress.
    pub desired_version: String,
    /// The version installed; `None` before the first install completed.
    #[serde(default)]
    pub current_version: Option<String>,
    /// Where vCenter is in applying `desired_version` and the config.
    pub config_status: ConfigStatus,
    /// vCenter's messages about the service (why it is `ERROR`, for instance).
    #[serde(default)]
    pub messages: Vec<RecordMessage>,
    /// The Supervisor namespace the service runs in (`svc-harbor-domain-c8`); `None` when absent.
    #[serde(default)]
    pub service_namespace: Option<String>,
    /// The service's display name; `None` when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Base64 of the YAML config; absent when none was ever set.
    #[serde(default)]
    pub yaml_service_config: Option<String>,
}

impl InstallRecord {
    /// The messages as lines: `ERROR: Reason: ReconcileFailed. Message: ...`.
    pub fn message_lines(&self) -> Vec<String> {
        self.messages
            .iter()
            .map(|m| {
                format!(
                    "{}: {}",
                    m.severity,
                    m.details
                        .as_ref()
                        .map(|d| d.default_message.as_str())
                        .unwrap_or("")
                )
            })
            .collect()
    }
}

/// One entry of `GET …/supervisor-services` on a cluster or Supervisor (the `Summary` structure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSummary {
    /// The service ID (`harbor.tanzu.vmware.com`).
    pub supervisor_service: String,
    /// As [`InstallRecord::desired_version`].
    pub desired_version: String,
    /// As [`InstallRecord::current_version`].
    #[serde(default)]
    pub current_version: Option<String>,
    /// As [`InstallRecord::config_status`].
    pub config_status: ConfigStatus,
}

/// The list of install records from either route family: a bare array (cluster form, 7.0.3/8.x) or
/// `{"supervisor_services": [...]}` (Supervisor form, 9.x); entries that do not parse are skipped.
pub fn install_summaries(body: &Value) -> Vec<InstallSummary> {
    let items = match body {
        Value::Array(a) => a.as_slice(),
        other => other["supervisor_services"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    };
    items
        .iter()
        .filter_map(|i| InstallSummary::deserialize(i).ok())
        .collect()
}

/// Why a change must not start now, or `None` when the record is idle.
///
/// `CONFIGURING`/`REMOVING`, or `desired_version != current_version`, is a change in flight; `ERROR`
/// is refused unless `allow_error` (a values fix is often the cure of an ERROR).
pub fn in_flight(record: &InstallRecord, allow_error: bool) -> Option<String> {
    match record.config_status {
        ConfigStatus::Configuring | ConfigStatus::Removing => {
            return Some(format!(
                "vCenter reports config_status {} (desired version {}, current {}): a change is in flight",
                record.config_status,
                record.desired_version,
                record.current_version.as_deref().unwrap_or("none")
            ));
        }
        ConfigStatus::Error if !allow_error => {
            let detail = record.message_lines().join("; ");
            return Some(format!(
                "vCenter reports config_status ERROR{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ));
        }
        _ => {}
    }
    match &record.current_version {
        Some(current) if *current == record.desired_version => None,
        Some(current) => Some(format!(
            "vCenter is moving the service from version {current} to {}: a change is in flight",
            record.desired_version
        )),
        None => Some(format!(
            "vCenter has not finished installing version {} yet",
            record.desired_version
        )),
    }
}

/// Keys of vCenter's stored config that the platform added, not the operator: the top-level keys the
/// version's `valuesSchema` does not declare, plus `namespace` (vCenter writes the service namespace
/// there). Without a schema (or one declaring no properties) only `namespace`.
pub fn platform_keys(stored: &Value, schema: Option<&Value>) -> Vec<String> {
    let declared = schema
        .and_then(|s| s["properties"].as_object())
        .filter(|p| !p.is_empty());
    let mut keys: Vec<String> = stored
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| match declared {
            Some(props) => !props.contains_key(*k),
            None => *k == NAMESPACE_KEY,
        })
        .cloned()
        .collect();
    if stored.get(NAMESPACE_KEY).is_some() && !keys.iter().any(|k| k == NAMESPACE_KEY) {
        keys.push(NAMESPACE_KEY.to_owned());
    }
    keys.sort();
    keys
}

/// The operator's part of a config: `config` without the platform keys (what the schema checks and
/// the editor shows).
pub fn operator_view(config: &Value, platform: &[String]) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !platform.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    }
}

/// The schema check of an edit of values that may hold keys the platform added (vCenter's
/// `namespace`, keys injected from SupervisorProperties): top-level keys of `old` that the Package's
/// schema does not declare are the platform's ([`platform_keys`]), so they are checked out of the
/// edit rather than refused by `additionalProperties: false`; changing one is refused (the platform
/// owns it and puts its value back); everything else is validated against `schema` as before.
/// Returns the violations as `path: message` lines.
pub fn check_with_platform_keys(schema: &Value, old: &Value, new: &Value) -> Vec<String> {
    let platform = platform_keys(old, Some(schema));
    let mut out: Vec<String> = platform
        .iter()
        .filter(|k| {
            new.get(k.as_str())
                .is_some_and(|v| Some(v) != old.get(k.as_str()))
        })
        .map(|k| {
            format!(
                "{k}: set by the platform (vCenter), not by the Package's schema: leave it as it is"
            )
        })
        .collect();
    out.extend(
        values::validate(schema, &operator_view(new, &platform))
            .iter()
            .map(|v| v.to_string()),
    );
    out
}

/// An edited config merged back with the platform's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// What to send as `yaml_service_config`: the operator's keys and the platform's.
    pub config: Value,
    /// Platform keys the edit left out, put back from the stored config.
    pub restored: Vec<String>,
}

/// Why an edit cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The edit gives a platform key (see [`platform_keys`]) a value other than the stored one.
    #[error(
        "the edit changes {key}, which vCenter set (the platform owns it): it would be replaced or break the service"
    )]
    PlatformKeyChanged {
        /// The top-level key of the config (`namespace`).
        key: String,
    },
    /// The edited values are a scalar or a list, not a map (a `null` edit counts as an empty map).
    #[error("the values must be a YAML map of keys")]
    NotAMap,
}

/// Merges an edit (a whole operator config, with or without the platform keys) with the stored config:
/// platform keys the edit leaves out are restored; a platform key the edit changes is refused.
///
/// `stored` and `edited` are the decoded YAML configs as JSON values; `platform` lists top-level keys.
///
/// ```
/// use serde_json::json;
/// use supsvc_core::vcenter::{merge_edit, MergeError};
///
/// let stored = json!({"namespace": "svc-harbor-domain-c8", "hostname": "old.example"});
/// let platform = vec!["namespace".to_string()];
/// let merged = merge_edit(&stored, &json!({"hostname": "new.example"}), &platform).unwrap();
/// assert_eq!(merged.config, json!({"namespace": "svc-harbor-domain-c8", "hostname": "new.example"}));
/// assert_eq!(merged.restored, ["namespace"]);
/// assert!(matches!(
///     merge_edit(&stored, &json!({"namespace": "other"}), &platform),
///     Err(MergeError::PlatformKeyChanged { .. })
/// ));
/// ```
///
/// # Errors
/// [`MergeError::NotAMap`] when `edited` is neither a map nor null; [`MergeError::PlatformKeyChanged`]
/// when it gives a platform key present in `stored` another value.
pub fn merge_edit(
    stored: &Value,
    edited: &Value,
    platform: &[String],
) -> Result<Merged, MergeError> {
    let mut out = match edited {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(MergeError::NotAMap),
    };
    let mut restored = Vec::new();
    for key in platform {
        let Some(kept) = stored.get(key) else {
            continue;
        };
        match out.get(key) {
            Some(v) if v == kept => {}
            Some(_) => return Err(MergeError::PlatformKeyChanged { key: key.clone() }),
            None => {
                out.insert(key.clone(), kept.clone());
                restored.push(key.clone());
            }
        }
    }
    Ok(Merged {
        config: Value::Object(out),
        restored,
    })
}

/// Where the Supervisor's values Secret differs from vCenter's copy: `old` is vCenter's value, `new`
/// the Secret's (a direct edit of the Secret, which the next configure or upgrade from vCenter undoes).
pub fn drift(vcenter: &Value, secret: &Value) -> Vec<Change> {
    let normal = |v: &Value| match v {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    values::changes(&normal(vcenter), &normal(secret))
}

/// What the write protocol observed of the record at one read: enough to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// As [`InstallRecord::desired_version`].
    pub desired_version: String,
    /// As [`InstallRecord::current_version`].
    pub current_version: Option<String>,
    /// As [`InstallRecord::config_status`].
    pub config_status: ConfigStatus,
    /// `yaml_service_config` as read (base64), compared byte for byte.
    pub yaml_service_config: Option<String>,
}

impl From<&InstallRecord> for Snapshot {
    fn from(r: &InstallRecord) -> Self {
        Snapshot {
            desired_version: r.desired_version.clone(),
            current_version: r.current_version.clone(),
            config_status: r.config_status,
            yaml_service_config: r.yaml_service_config.clone(),
        }
    }
}

/// How the Supervisor's PackageInstall stands after the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervisor {
    /// Not reconciled since the write yet.
    Pending,
    /// `ReconcileSucceeded` for a generation after the write.
    Succeeded,
    /// `ReconcileFailed`, with kapp-controller's `usefulErrorMessage`.
    Failed(String),
}

/// The progress of one `values-edit --vcenter` write, recorded as it goes (the plan is resumable:
/// [`next_step`] decides from this alone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteProgress {
    /// The record at the first read (what the edit was made against).
    pub read: Option<Snapshot>,
    /// Whether a change in flight may be ignored because its status is ERROR (`--force`).
    pub allow_error: bool,
    /// The record read again right before writing.
    pub reread: Option<Snapshot>,
    /// The PUT was answered 2xx.
    pub written: bool,
    /// The record after the write, as last polled.
    pub after: Option<Snapshot>,
    /// The messages of that record.
    pub after_messages: Vec<String>,
    /// The PackageInstall after the write, as last polled.
    pub supervisor: Option<Supervisor>,
}

/// The next step of the write protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `GET` the install record.
    Read,
    /// Stop before writing: the record is busy.
    Refuse(String),
    /// `GET` it again right before writing.
    Reread,
    /// Stop before writing: someone changed it since it was read (no lost update).
    Abort(String),
    /// `PUT` the whole spec: `version` (the installed one, unchanged) and the config.
    Put {
        /// The `version` to send (see [`set_spec`]).
        version: String,
    },
    /// `GET` the record until `config_status` leaves `CONFIGURING`.
    PollVcenter,
    /// Read the PackageInstall until it reconciled for a generation after the write.
    PollSupervisor,
    /// vCenter and the Supervisor both took the change.
    Done,
    /// The change was written but did not apply; the messages say why.
    Failed(String),
}

/// Decides the next step of a write from what has been done and observed.
pub fn next_step(p: &WriteProgress) -> Step {
    let Some(read) = &p.read else {
        return Step::Read;
    };
    if !p.written {
        let record = InstallRecord {
            desired_version: read.desired_version.clone(),
            current_version: read.current_version.clone(),
            config_status: read.config_status,
            messages: Vec::new(),
            service_namespace: None,
            display_name: None,
            yaml_service_config: None,
        };
        if let Some(why) = in_flight(&record, p.allow_error) {
            return Step::Refuse(why);
        }
        let Some(reread) = &p.reread else {
            return Step::Reread;
        };
        if reread != read {
            let what = if reread.desired_version != read.desired_version {
                format!(
                    "its desired version changed from {} to {}",
                    read.desired_version, reread.desired_version
                )
            } else if reread.yaml_service_config != read.yaml_service_config {
                "its yaml_service_config changed".to_owned()
            } else {
                format!(
                    "its config_status changed from {} to {}",
                    read.config_status, reread.config_status
                )
            };
            return Step::Abort(format!(
                "the service changed in vCenter while you edited it: {what}"
            ));
        }
        return Step::Put {
            version: read.desired_version.clone(),
        };
    }
    match &p.after {
        None => Step::PollVcenter,
        Some(after) => match after.config_status {
            ConfigStatus::Configuring => Step::PollVcenter,
            ConfigStatus::Removing => {
                Step::Failed("vCenter is removing the service: someone uninstalled it".into())
            }
            ConfigStatus::Error => Step::Failed(if p.after_messages.is_empty() {
                "vCenter reports config_status ERROR".to_owned()
            } else {
                format!(
                    "vCenter reports config_status ERROR: {}",
                    p.after_messages.join("; ")
                )
            }),
            ConfigStatus::Configured => match &p.supervisor {
                Some(Supervisor::Succeeded) => Step::Done,
                Some(Supervisor::Failed(m)) => Step::Failed(format!(
                    "the Supervisor's PackageInstall failed to reconcile: {m}"
                )),
                None | Some(Supervisor::Pending) => Step::PollSupervisor,
            },
        },
    }
}

/// The `SetSpec` body of a `PUT`: the whole spec, `version` always (the notes, §1.7: a values-only
/// change sends the installed version again) and the full config, never `service_config` beside it.
pub fn set_spec(version: &str, yaml_service_config_b64: &str) -> Value {
    serde_json::json!({"version": version, "yaml_service_config": yaml_service_config_b64})
}

/// Orders Supervisor Service versions (`2.9.1+vmware.1`, `3.0.0`, `v1.2`): dotted numbers compared as
/// numbers, then a pre-release (`-rc.1`) before its release, then the build metadata (`+vmware.2` after
/// `+vmware.1`; vCenter registers each as its own version). A leading `v` is ignored, and missing
/// trailing zeros are equal (`1.2` = `1.2.0`).
///
/// ```
/// use std::cmp::Ordering;
/// use supsvc_core::vcenter::compare_versions;
///
/// assert_eq!(compare_versions("2.10.0", "2.9.1+vmware.1"), Ordering::Greater);
/// assert_eq!(compare_versions("3.0.0-rc.1", "3.0.0"), Ordering::Less);
/// assert_eq!(compare_versions("2.9.1+vmware.2", "2.9.1+vmware.1"), Ordering::Greater);
/// assert_eq!(compare_versions("v1.2", "1.2.0"), Ordering::Equal);
/// ```
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (Vec<Part<'_>>, Option<Vec<Part<'_>>>, Vec<Part<'_>>) {
        let v = v.trim().trim_start_matches('v');
        let (v, build) = v.split_once('+').unwrap_or((v, ""));
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (v, None),
        };
        (parts(core), pre.map(parts), parts(build))
    }
    let (ca, pa, ba) = split(a);
    let (cb, pb, bb) = split(b);
    cmp_parts(&ca, &cb)
        .then_with(|| match (&pa, &pb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => cmp_parts(x, y),
        })
        .then_with(|| cmp_parts(&ba, &bb))
}

#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    Number(u64),
    Text(&'a str),
}

fn parts(s: &str) -> Vec<Part<'_>> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u64>() {
            Ok(n) => Part::Number(n),
            Err(_) => Part::Text(p),
        })
        .collect()
}

fn cmp_parts(a: &[Part<'_>], b: &[Part<'_>]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let o = match (a.get(i), b.get(i)) {
            (Some(Part::Number(x)), Some(Part::Number(y))) => x.cmp(y),
            (Some(Part::Number(_)), Some(Part::Text(_))) => Ordering::Less,
            (Some(Part::Text(_)), Some(Part::Number(_))) => Ordering::Greater,
            (Some(Part::Text(x)), Some(Part::Text(y))) => x.cmp(y),
            (Some(Part::Number(0)), None) | (None, Some(Part::Number(0))) => Ordering::Equal,
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A vAPI error body: `{"error_type": "NOT_FOUND", "messages": [{id, default_message, args}], "data"?}`
/// (vSphere Automation API `vapi.json`, `VapiStdErrors*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VapiError {
    /// The standard error's type (`NOT_FOUND`, `UNAUTHENTICATED`, `NOT_ALLOWED_IN_CURRENT_STATE`...);
    /// empty when the body had none.
    #[serde(default)]
    pub error_type: String,
    /// The error's messages.
    #[serde(default)]
    pub messages: Vec<LocalizableMessage>,
}

impl VapiError {
    /// The messages joined, or the error type when there are none.
    pub fn text(&self) -> String {
        let text: Vec<&str> = self
            .messages
            .iter()
            .map(|m| m.default_message.as_str())
            .filter(|m| !m.is_empty())
            .collect();
        if text.is_empty() {
            self.error_type.clone()
        } else {
            text.join("; ")
        }
    }
}

/// What to tell the operator about an HTTP error from vCenter: a hint naming what to do, chosen by the
/// HTTP `status` and the vAPI `error_type` (401/`UNAUTHENTICATED`, 403/`UNAUTHORIZED`, 404/`NOT_FOUND`,
/// `NOT_ALLOWED_IN_CURRENT_STATE`, `INVALID_ARGUMENT`, 5xx; anything else points at vCenter's message).
pub fn explain(status: u16, error: &VapiError) -> String {
    match (status, error.error_type.as_str()) {
        (401, _) | (_, "UNAUTHENTICATED") => {
            "vCenter refused the credentials: check --vcenter-user and the password (SUPSVC_VCENTER_PASSWORD, --vcenter-password-stdin or the prompt)".into()
        }
        (403, _) | (_, "UNAUTHORIZED") => {
            "the vCenter user lacks the privilege (SupervisorServices.Manage / SupervisorServices.Install on the Supervisor); use an administrator, or for a Core service, change it through vCenter's own lifecycle".into()
        }
        (404, _) | (_, "NOT_FOUND") => {
            "check the service ID (kubectl supsvc status lists the services; the ID is the PackageInstall name without svc-) and --vcenter-cluster/--vcenter-supervisor".into()
        }
        (_, "NOT_ALLOWED_IN_CURRENT_STATE") => {
            "the service, version or install record is not in a state that allows this; wait for the change in flight to finish (kubectl supsvc status) and run again".into()
        }
        (_, "INVALID_ARGUMENT") => "vCenter refused the request as invalid; check the values".into(),
        (500..=599, _) => {
            "vCenter failed to apply the change; nothing was changed on the Supervisor by supsvc: look at the task in the vSphere Client (Workload Management) and run again".into()
        }
        _ => "see vCenter's message above".into(),
    }
}

/// The `status` of a `POST /supervisor-services?action=checkContent` answer that lets a definition be
/// registered, as vCenter spells it on display (`VALID`, `VALID_WITH_WARNINGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentStatus {
    /// `VALID`.
    Valid,
    /// `VALID_WITH_WARNINGS`: registrable; the answer's `warning_messages` say what to look at.
    ValidWithWarnings,
}

impl fmt::Display for ContentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContentStatus::Valid => "VALID",
            ContentStatus::ValidWithWarnings => "VALID_WITH_WARNINGS",
        })
    }
}

/// Why a checkContent answer does not let the definition be registered (see [`read_check_result`]).
/// The callers add what they were registering and a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentCheckError {
    /// `status` is neither `VALID` nor `VALID_WITH_WARNINGS` (`INVALID`, an unknown status), or the
    /// body has no readable `status` (not JSON, not an object, no `status` or an empty one).
    #[error(
        "checkContent finds the definition {}{}{}",
        status.as_deref().unwrap_or("unreadable"),
        if messages.is_empty() { "" } else { ": " },
        messages.join("; ")
    )]
    NotValid {
        /// The answer's `status`; `None` when the body was unreadable or had none (callers print
        /// `unreadable`).
        status: Option<String>,
        /// The `default_message` of each of `error_messages`, in vCenter's order (empty ones left out).
        messages: Vec<String>,
    },
    /// vCenter validated the definition but reads it as another service or version than expected
    /// (`carvel_apps_check_result.supervisor_service` / `.version`).
    #[error(
        "vCenter reads the definition as {} {}",
        service.as_deref().unwrap_or("(no service)"),
        version.as_deref().unwrap_or("(no version)")
    )]
    OtherDefinition {
        /// `carvel_apps_check_result.supervisor_service`; `None` when absent.
        service: Option<String>,
        /// `carvel_apps_check_result.version`; `None` when absent.
        version: Option<String>,
    },
}

/// Reads vCenter's answer to `POST /supervisor-services?action=checkContent`
/// (`{"spec": {"content": b64}}`) for a definition of `service` version `version`.
///
/// `body` is the answer's JSON, the `CheckResult` structure of the 9.1 bindings
/// (`namespace_management_client.py`, `SupervisorServices.check_content`): `{status: VALID |
/// VALID_WITH_WARNINGS | INVALID, content_type?, carvel_apps_check_result?: {supervisor_service,
/// version, display_name, ...}, warning_messages?, error_messages?: [{id, default_message, args}]}`.
///
/// The rule: the definition may be registered when `status` is `VALID` or `VALID_WITH_WARNINGS` and
/// vCenter does not read it as another service or version. `carvel_apps_check_result` and its fields
/// are optional in the API (only relevant to Carvel content), so an absent service or version is no
/// mismatch: the callers built or parsed the definition themselves and know what it holds.
///
/// ```
/// use supsvc_core::vcenter::{read_check_result, ContentCheckError, ContentStatus};
///
/// let ok = br#"{"status": "VALID", "carvel_apps_check_result": {"supervisor_service": "a.b", "version": "1.0.0"}}"#;
/// assert_eq!(read_check_result(ok, "a.b", "1.0.0"), Ok(ContentStatus::Valid));
/// assert!(matches!(
///     read_check_result(ok, "a.b", "2.0.0"),
///     Err(ContentCheckError::OtherDefinition { .. })
/// ));
/// ```
///
/// # Errors
/// [`ContentCheckError::NotValid`] for any other or no `status`, with the `error_messages`;
/// [`ContentCheckError::OtherDefinition`] when a present `supervisor_service` or `version` differs from
/// `service` or `version`.
pub fn read_check_result(
    body: &[u8],
    service: &str,
    version: &str,
) -> Result<ContentStatus, ContentCheckError> {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let status = match answer["status"].as_str().filter(|s| !s.is_empty()) {
        Some("VALID") => ContentStatus::Valid,
        Some("VALID_WITH_WARNINGS") => ContentStatus::ValidWithWarnings,
        other => {
            return Err(ContentCheckError::NotValid {
                status: other.map(str::to_owned),
                messages: answer["error_messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["default_message"].as_str())
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        }
    };
    let result = &answer["carvel_apps_check_result"];
    let read_service = result["supervisor_service"].as_str();
    let read_version = result["version"].as_str();
    if read_service.is_some_and(|s| s != service) || read_version.is_some_and(|v| v != version) {
        return Err(ContentCheckError::OtherDefinition {
            service: read_service.map(str::to_owned),
            version: read_version.map(str::to_owned),
        });
    }
    Ok(status)
}

/// The outcome of vCenter's compatibility precheck of a target version (`.../versions/{v}/precheck`,
/// 8.0.3+ Supervisor routes): its `status`, and for INCOMPATIBLE its `status_messages` as
/// `SEVERITY: default_message` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precheck {
    /// `status: COMPATIBLE`.
    Compatible,
    /// Any other status, with its messages.
    Incompatible(Vec<String>),
}

/// What `upgrade SERVICE --to VERSION` observed, for [`next_upgrade_step`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpgradeFacts {
    /// The target version (`--to`).
    pub to: String,
    /// The catalog service's state; `None` when vCenter does not know the service.
    pub service_activated: Option<bool>,
    /// The catalog's versions and whether each is ACTIVATED.
    pub versions: Vec<(String, bool)>,
    /// A definition file was given (`--definition`), so a missing version can be registered.
    pub has_definition: bool,
    /// The install record on this Supervisor, and its messages.
    pub record: Option<Snapshot>,
    /// The install record's messages as [`InstallRecord::message_lines`] gives them.
    pub record_messages: Vec<String>,
    /// vCenter has a precheck (8.0.3+, Supervisor routes) and it has not run yet (`None`), or its
    /// outcome: `Ok(())` COMPATIBLE, `Err(messages)` INCOMPATIBLE.
    pub precheck_supported: bool,
    /// The precheck's outcome, `None` until it ran (see `precheck_supported`).
    pub precheck: Option<Precheck>,
    /// The `PUT` of the new version was sent.
    pub written: bool,
    /// The record after the write, as last polled, and its messages.
    pub after: Option<Snapshot>,
    /// The messages of `after`, as [`InstallRecord::message_lines`] gives them.
    pub after_messages: Vec<String>,
}

/// The next step of an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeStep {
    /// Stop before any write; the text says why (unknown or deactivated service or version, a change
    /// in flight, a downgrade, an INCOMPATIBLE precheck).
    Refuse(String),
    /// An upgrade to this very version is in flight (an earlier run was interrupted after its write,
    /// or someone started it in the vSphere Client): follow it instead of writing again.
    Resume,
    /// Nothing to do: the version is installed.
    AlreadyThere,
    /// `POST /supervisor-services?action=checkContent`, then `POST …/{id}/versions`.
    Register,
    /// Run vCenter's compatibility precheck of the target version (8.0.3+, Supervisor routes).
    Precheck,
    /// `PUT` the install record's spec with the new version (see [`set_spec`]).
    Put {
        /// The version to send (the target, `--to`).
        version: String,
    },
    /// `GET` the install record again until it settles.
    Poll,
    /// The record is `CONFIGURED` at the target version.
    Done,
    /// The upgrade was written (now or by an earlier run) and ended in `ERROR` or a removal; the text
    /// holds vCenter's messages.
    Failed(String),
}

/// Decides an upgrade's next step: refuses an unknown or deactivated service, a change in flight, a
/// downgrade (the lifecycle is forward-only), a missing version without a definition, a deactivated
/// version, an INCOMPATIBLE precheck — all before any write.
pub fn next_upgrade_step(f: &UpgradeFacts) -> UpgradeStep {
    let Some(activated) = f.service_activated else {
        return UpgradeStep::Refuse("vCenter does not know this Supervisor Service".into());
    };
    if !activated {
        return UpgradeStep::Refuse(
            "the service is DEACTIVATED in vCenter: a deactivated service takes no installs or upgrades"
                .into(),
        );
    }
    let Some(record) = &f.record else {
        return UpgradeStep::Refuse("the service is not installed on this Supervisor".into());
    };
    if !f.written
        && record.desired_version == f.to
        && record.current_version.as_deref() != Some(f.to.as_str())
    {
        match record.config_status {
            ConfigStatus::Configuring => return UpgradeStep::Resume,
            ConfigStatus::Error => {
                return UpgradeStep::Failed(if f.record_messages.is_empty() {
                    format!(
                        "an earlier upgrade to {} ended in config_status ERROR",
                        f.to
                    )
                } else {
                    format!(
                        "an earlier upgrade to {} ended in config_status ERROR: {}",
                        f.to,
                        f.record_messages.join("; ")
                    )
                });
            }
            _ => {}
        }
    }
    if f.written {
        let Some(after) = &f.after else {
            return UpgradeStep::Poll;
        };
        return match after.config_status {
            ConfigStatus::Error => UpgradeStep::Failed(f.after_messages.join("; ")),
            ConfigStatus::Configured
                if after.desired_version == f.to
                    && after.current_version.as_deref() == Some(f.to.as_str()) =>
            {
                UpgradeStep::Done
            }
            ConfigStatus::Removing => UpgradeStep::Failed("the service is being removed".into()),
            _ => UpgradeStep::Poll,
        };
    }
    let as_record = InstallRecord {
        desired_version: record.desired_version.clone(),
        current_version: record.current_version.clone(),
        config_status: record.config_status,
        messages: Vec::new(),
        service_namespace: None,
        display_name: None,
        yaml_service_config: None,
    };
    if let Some(why) = in_flight(&as_record, false) {
        return UpgradeStep::Refuse(why);
    }
    let current = record.current_version.as_deref().unwrap_or_default();
    match compare_versions(&f.to, current) {
        Ordering::Equal => return UpgradeStep::AlreadyThere,
        Ordering::Less => {
            return UpgradeStep::Refuse(format!(
                "{} is older than the installed {current}: Supervisor Services upgrade forward only",
                f.to
            ));
        }
        Ordering::Greater => {}
    }
    match f.versions.iter().find(|(v, _)| *v == f.to) {
        None if f.has_definition => return UpgradeStep::Register,
        None => {
            return UpgradeStep::Refuse(format!(
                "version {} is not registered in vCenter; give its definition with --definition FILE",
                f.to
            ));
        }
        Some((_, false)) => {
            return UpgradeStep::Refuse(format!(
                "version {} is DEACTIVATED in vCenter; activate it first",
                f.to
            ));
        }
        Some((_, true)) => {}
    }
    if f.precheck_supported {
        match &f.precheck {
            None => return UpgradeStep::Precheck,
            Some(Precheck::Incompatible(messages)) => {
                return UpgradeStep::Refuse(format!(
                    "vCenter's precheck says {} is INCOMPATIBLE: {}",
                    f.to,
                    messages.join("; ")
                ));
            }
            Some(Precheck::Compatible) => {}
        }
    }
    UpgradeStep::Put {
        version: f.to.clone(),
    }
}

/// The service installed on a Supervisor other than the kubeconfig's, as vCenter lists it
/// (`GET …/clusters/{c}/supervisor-services` or `…/supervisors/{s}/supervisor-services`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherInstall {
    /// Where its install routes are: the cluster MoID (7.0.3/8.x) or the Supervisor ID (9.x).
    pub id: String,
    /// The name a person knows it by (the Supervisor's or cluster's name in vCenter).
    pub name: String,
    /// Its install record's `config_status`.
    pub status: ConfigStatus,
}

/// Which Supervisor an uninstall step acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UninstallTarget {
    /// The Supervisor the kubeconfig points at.
    This,
    /// Another Supervisor of the same vCenter ([`OtherInstall::id`]); only with `--all-supervisors`.
    Other(String),
}

/// What `uninstall SERVICE` observed, for [`next_uninstall_step`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UninstallFacts {
    /// The catalog service's state (`Some(activated)`), `None` when vCenter does not know it.
    pub service_activated: Option<bool>,
    /// `must_be_installed` (8.0.3+) or a Core service: vCenter refuses to remove it.
    pub must_be_installed: bool,
    /// The install record's `config_status` on this Supervisor; `None` when not installed.
    pub installed: Option<ConfigStatus>,
    /// The other Supervisors of this vCenter that have the service installed (any `config_status`),
    /// in vCenter's listing order.
    pub elsewhere: Vec<OtherInstall>,
    /// The catalog's versions and whether each is ACTIVATED.
    pub versions: Vec<(String, bool)>,
    /// `--unregister`: also remove the versions and the service from vCenter (the blog's step 3).
    pub unregister: bool,
    /// `--all-supervisors`: remove the service from every Supervisor that has it, not only this one.
    pub all_supervisors: bool,
}

impl UninstallFacts {
    /// Whether the service stays installed on another Supervisor after this uninstall (it is
    /// installed elsewhere and `--all-supervisors` was not given).
    pub fn stays_elsewhere(&self) -> bool {
        !self.all_supervisors && !self.elsewhere.is_empty()
    }
}

/// The next step of an uninstall: the blog's three steps in order, each taken only when the observed
/// state still needs it, so a rerun resumes where the last run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UninstallStep {
    /// Stop: the text says why (vCenter does not know the service, it must stay installed, or
    /// `--unregister` while other Supervisors keep it).
    Refuse(String),
    /// Step 1: `PATCH /supervisor-services/{id}?action=deactivate` (no new installs).
    Deactivate,
    /// Step 2: `DELETE …/supervisor-services/{id}` on that Supervisor.
    Remove(UninstallTarget),
    /// Step 2: vCenter reports `REMOVING` there: read the record until it is gone.
    WaitRemoving(UninstallTarget),
    /// Step 3: `PATCH …/versions/{v}?action=deactivate`.
    DeactivateVersion(String),
    /// Step 3: `DELETE …/versions/{v}`.
    DeleteVersion(String),
    /// Step 3: `DELETE /supervisor-services/{id}`.
    DeleteService,
    /// Nothing is left to do.
    Done,
}

/// Decides an uninstall's next step. Refuses a service vCenter does not know (unless nothing is left
/// to do), one that must stay installed (Core services answer 403, `must_be_installed`), and
/// `--unregister` while the service stays installed on other Supervisors (vCenter refuses to delete a
/// version installed anywhere, and those Supervisors would lose it): that needs `--all-supervisors`.
///
/// Order: (1) deactivate the service, unless it stays installed elsewhere (deactivating only stops
/// new installs, but those Supervisors' owners did not ask for that); (2) remove it from this
/// Supervisor, then with `--all-supervisors` from each other one in turn, each waited through
/// `REMOVING` before the next; (3) with `--unregister`, deactivate and delete each version, then the
/// service.
pub fn next_uninstall_step(f: &UninstallFacts) -> UninstallStep {
    let Some(activated) = f.service_activated else {
        return match f.installed {
            None if f.unregister => UninstallStep::Done,
            _ => UninstallStep::Refuse("vCenter does not know this Supervisor Service".into()),
        };
    };
    if f.must_be_installed {
        return UninstallStep::Refuse(
            "vCenter marks this service must_be_installed (a Core service): it cannot be uninstalled"
                .into(),
        );
    }
    if f.unregister && f.stays_elsewhere() {
        let names: Vec<String> = f
            .elsewhere
            .iter()
            .map(|o| format!("{} ({})", o.name, o.status))
            .collect();
        return UninstallStep::Refuse(format!(
            "--unregister would delete a service still installed on other Supervisors too: {}; \
             add --all-supervisors to remove it from every Supervisor first",
            names.join(", ")
        ));
    }
    if activated && !f.stays_elsewhere() {
        return UninstallStep::Deactivate;
    }
    let here = f.installed.map(|s| (UninstallTarget::This, s));
    let others = f
        .elsewhere
        .iter()
        .filter(|_| f.all_supervisors)
        .map(|o| (UninstallTarget::Other(o.id.clone()), o.status));
    if let Some((target, status)) = here.into_iter().chain(others).next() {
        return match status {
            ConfigStatus::Removing => UninstallStep::WaitRemoving(target),
            _ => UninstallStep::Remove(target),
        };
    }
    if !f.unregister {
        return UninstallStep::Done;
    }
    if let Some((v, _)) = f.versions.iter().find(|(_, active)| *active) {
        return UninstallStep::DeactivateVersion(v.clone());
    }
    if let Some((v, _)) = f.versions.first() {
        return UninstallStep::DeleteVersion(v.clone());
    }
    UninstallStep::DeleteService
}

/// A kind a service's package installed: a CustomResourceDefinition that kapp deployed for the
/// service's App (it carries the App's `kapp.k14s.io/app` label). Its objects go when the CRD goes,
/// and what their controllers created from them is orphaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKind {
    /// The CRD's name, `<plural>.<group>`.
    pub name: String,
    /// `spec.group`.
    pub group: String,
    /// The storage version (`spec.versions[].storage`), else the first served one.
    pub version: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `spec.names.plural`.
    pub plural: String,
    /// `spec.scope == "Namespaced"`.
    pub namespaced: bool,
}

/// The kinds defined by `crds` (CustomResourceDefinition objects as the API server returns them,
/// `apiextensions.k8s.io/v1`), sorted by name; a CRD without a group, kind, plural or a served
/// version is skipped (nothing of it can be listed).
pub fn service_kinds(crds: &[Value]) -> Vec<ServiceKind> {
    let mut kinds: Vec<ServiceKind> = crds
        .iter()
        .filter_map(|crd| {
            let spec = &crd["spec"];
            let group = spec["group"].as_str().filter(|g| !g.is_empty())?;
            let kind = spec["names"]["kind"].as_str().filter(|k| !k.is_empty())?;
            let plural = spec["names"]["plural"].as_str().filter(|p| !p.is_empty())?;
            let versions = spec["versions"].as_array()?;
            let served = |v: &&Value| v["served"] != false;
            let version = versions
                .iter()
                .filter(served)
                .find(|v| v["storage"] == true)
                .or_else(|| versions.iter().find(served))?["name"]
                .as_str()?;
            Some(ServiceKind {
                name: format!("{plural}.{group}"),
                group: group.to_owned(),
                version: version.to_owned(),
                kind: kind.to_owned(),
                plural: plural.to_owned(),
                namespaced: spec["scope"] != "Cluster",
            })
        })
        .collect();
    kinds.sort_by(|a, b| a.name.cmp(&b.name));
    kinds
}

/// What carrying a service's values over to a new version's `valuesSchema` finds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CarryOver {
    /// Dotted paths of the values the new schema no longer declares (and does not allow as
    /// `additionalProperties`): the new version would refuse them or ignore them.
    pub dropped: Vec<String>,
    /// Dotted paths the new schema requires that the values do not set.
    pub newly_required: Vec<String>,
    /// Other schema violations of the values under the new schema.
    pub violations: Vec<String>,
}

impl CarryOver {
    /// Whether the values can go to the new version as they are.
    pub fn fits(&self) -> bool {
        self.dropped.is_empty() && self.newly_required.is_empty() && self.violations.is_empty()
    }
}

/// Checks the operator's values (the stored config without the platform's keys, see
/// [`operator_view`]) against the new version's `valuesSchema` (`openAPIv3`); without a schema every
/// value is carried.
pub fn carry_over(values: &Value, new_schema: Option<&Value>) -> CarryOver {
    let Some(schema) = new_schema else {
        return CarryOver::default();
    };
    let mut out = CarryOver::default();
    let mut dropped = Vec::new();
    let mut required = Vec::new();
    walk_schema(schema, values, &mut Vec::new(), &mut dropped, &mut required);
    // The other violations: of the values without the dropped keys, not the missing required ones.
    let mut pruned = values.clone();
    for path in &dropped {
        remove_path(&mut pruned, path);
    }
    out.violations = values::validate(schema, &pruned)
        .iter()
        .map(|v| v.to_string())
        .filter(|v| {
            !required.iter().any(|p: &Vec<String>| {
                p.last()
                    .is_some_and(|k| v.contains(&format!("\"{k}\" is required")))
            })
        })
        .collect();
    out.dropped = dropped.iter().map(|p| values::dotted(p)).collect();
    out.newly_required = required.iter().map(|p| values::dotted(p)).collect();
    out
}

fn remove_path(value: &mut Value, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            if let Some(m) = value.as_object_mut() {
                m.remove(last);
            }
        }
        [first, rest @ ..] => {
            if let Some(child) = value.get_mut(first) {
                remove_path(child, rest);
            }
        }
    }
}

fn walk_schema(
    schema: &Value,
    value: &Value,
    path: &mut Vec<String>,
    dropped: &mut Vec<Vec<String>>,
    required: &mut Vec<Vec<String>>,
) {
    let Some(map) = value.as_object() else {
        return;
    };
    let props = schema["properties"].as_object();
    // OpenAPI's default is open: only `additionalProperties: false` refuses undeclared keys.
    let open = schema["additionalProperties"] != Value::Bool(false);
    for (key, child) in map {
        path.push(key.clone());
        match props.and_then(|p| p.get(key)) {
            Some(sub) => walk_schema(sub, child, path, dropped, required),
            None if !open => dropped.push(path.clone()),
            None => {}
        }
        path.pop();
    }
    for key in schema["required"].as_array().into_iter().flatten() {
        if let Some(key) = key.as_str()
            && !map.contains_key(key)
        {
            path.push(key.to_owned());
            required.push(path.clone());
            path.pop();
        }
    }
}

/// What to do about a failed configure or upgrade, from vCenter's or kapp-controller's message
/// (known problems: KB 403681 image pulls in an air-gapped site; KB 437632 stuck child PackageInstalls).
pub fn failure_hint(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if [
        "manifest_unknown",
        "vendir",
        "imgpkg",
        "pull",
        "no such host",
        "i/o timeout",
    ]
    .iter()
    .any(|w| m.contains(w))
    {
        "the bundle's images are pulled from a registry the Supervisor cannot reach: relocate them and point the Package at the copy (`kubectl supsvc override-image`)"
    } else if m.contains("reconciling") || m.contains("packageinstall") {
        "child PackageInstalls are stuck: `kubectl supsvc diagnose` then `kubectl supsvc fix`"
    } else {
        "`kubectl supsvc diagnose` explains the state"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn versions_of_vcenter_choose_the_routes() {
        let cases = [
            ("7.0.3", Some((Flavour::Cluster, false, false))),
            ("7.0.3.01700", Some((Flavour::Cluster, false, false))),
            ("8.0.0.10200", Some((Flavour::Cluster, true, false))),
            ("8.0.3.00400", Some((Flavour::Cluster, true, true))),
            ("9.0.0.0", Some((Flavour::Supervisor, true, true))),
            ("9.1.0", Some((Flavour::Supervisor, true, true))),
            ("7.0.2", None),
            ("6.7.0", None),
        ];
        for (version, want) in cases {
            let got = capabilities(version)
                .ok()
                .map(|c| (c.flavour, c.yaml_config, c.precheck));
            assert_eq!(got, want, "{version}");
        }
        assert!(capabilities("9.1.0").unwrap().summaries_endpoint);
        assert!(!capabilities("9.0.0").unwrap().summaries_endpoint);
        assert_eq!(
            capabilities("latest"),
            Err(VersionError::Unparsable("latest".into()))
        );
        assert!(
            capabilities("7.0.2")
                .unwrap_err()
                .to_string()
                .contains("upgrade vCenter")
        );
    }

    #[test]
    fn paths_of_each_flavour() {
        assert_eq!(
            install_path(
                Flavour::Cluster,
                "domain-c8",
                Some("harbor.tanzu.vmware.com")
            ),
            "/api/vcenter/namespace-management/clusters/domain-c8/supervisor-services/harbor.tanzu.vmware.com"
        );
        assert_eq!(
            install_path(Flavour::Supervisor, "sup 1", None),
            "/api/vcenter/namespace-management/supervisors/sup%201/supervisor-services"
        );
        assert_eq!(
            catalog_path("harbor.tanzu.vmware.com", Some("2.9.1+vmware.1")),
            "/api/vcenter/namespace-management/supervisor-services/harbor.tanzu.vmware.com/versions/2.9.1+vmware.1"
        );
        assert_eq!(
            service_id("svc-harbor.tanzu.vmware.com"),
            "harbor.tanzu.vmware.com"
        );
        assert_eq!(
            service_id("harbor.tanzu.vmware.com"),
            "harbor.tanzu.vmware.com"
        );
        assert_eq!(service_id("svc-tkg"), "svc-tkg");
    }

    fn record(status: ConfigStatus, desired: &str, current: Option<&str>) -> InstallRecord {
        InstallRecord {
            desired_version: desired.into(),
            current_version: current.map(Into::into),
            config_status: status,
            messages: vec![],
            service_namespace: None,
            display_name: None,
            yaml_service_config: None,
        }
    }

    #[test]
    fn a_change_in_flight_is_refused() {
        use ConfigStatus::*;
        let cases = [
            (Configured, "1", Some("1"), false, None),
            (Configuring, "1", Some("1"), false, Some("in flight")),
            (Removing, "1", Some("1"), true, Some("REMOVING")),
            (
                Configured,
                "2",
                Some("1"),
                false,
                Some("from version 1 to 2"),
            ),
            (
                Configured,
                "1",
                None,
                false,
                Some("not finished installing"),
            ),
            (Error, "1", Some("1"), false, Some("ERROR")),
            (Error, "1", Some("1"), true, None),
        ];
        for (status, desired, current, allow, want) in cases {
            let got = in_flight(&record(status, desired, current), allow);
            match want {
                None => assert_eq!(got, None, "{status} {desired} {current:?}"),
                Some(w) => assert!(got.as_deref().unwrap_or("").contains(w), "{got:?} vs {w}"),
            }
        }
    }

    #[test]
    fn platform_keys_are_what_the_schema_does_not_declare() {
        let schema = json!({"type": "object", "properties": {"hostname": {}, "persistence": {}}});
        let stored = json!({"hostname": "h", "namespace": "svc-x", "persistence": {}, "vpc": "v"});
        assert_eq!(platform_keys(&stored, Some(&schema)), ["namespace", "vpc"]);
        assert_eq!(platform_keys(&stored, None), ["namespace"]);
        // A schema that declares namespace itself: still the platform's (vCenter writes it).
        let schema = json!({"properties": {"namespace": {}, "hostname": {}}});
        assert_eq!(
            platform_keys(&stored, Some(&schema)),
            ["namespace", "persistence", "vpc"]
        );
        assert!(platform_keys(&json!({}), None).is_empty());
        assert!(platform_keys(&Value::Null, Some(&schema)).is_empty());
        assert_eq!(
            operator_view(&stored, &["namespace".into(), "vpc".into()]),
            json!({"hostname": "h", "persistence": {}})
        );
    }

    #[test]
    fn an_edit_keeps_the_platform_keys() {
        let stored = json!({"namespace": "svc-harbor-domain-c8", "size": "55Gi"});
        let platform = vec!["namespace".to_owned()];
        /// (the edited config, the merged config and the keys put back, or why the edit is refused)
        type Case<'a> = (Value, Result<(Value, Vec<&'a str>), MergeError>);
        let cases: [Case; 5] = [
            // Left out: put back.
            (
                json!({"size": "60Gi"}),
                Ok((
                    json!({"namespace": "svc-harbor-domain-c8", "size": "60Gi"}),
                    vec!["namespace"],
                )),
            ),
            // Kept as is.
            (
                json!({"namespace": "svc-harbor-domain-c8", "size": "60Gi"}),
                Ok((
                    json!({"namespace": "svc-harbor-domain-c8", "size": "60Gi"}),
                    vec![],
                )),
            ),
            // Changed: refused.
            (
                json!({"namespace": "mine", "size": "60Gi"}),
                Err(MergeError::PlatformKeyChanged {
                    key: "namespace".into(),
                }),
            ),
            (
                Value::Null,
                Ok((
                    json!({"namespace": "svc-harbor-domain-c8"}),
                    vec!["namespace"],
                )),
            ),
            (json!(["a"]), Err(MergeError::NotAMap)),
        ];
        for (edited, want) in cases {
            let got = merge_edit(&stored, &edited, &platform).map(|m| (m.config, m.restored));
            let want = want.map(|(c, r)| (c, r.into_iter().map(String::from).collect::<Vec<_>>()));
            assert_eq!(got, want, "{edited}");
        }
        // A platform key vCenter does not hold is not invented.
        let got = merge_edit(&json!({}), &json!({"a": 1}), &platform).unwrap();
        assert_eq!(got.config, json!({"a": 1}));
    }

    #[test]
    fn drift_names_what_the_secret_changed() {
        let vc = json!({"namespace": "n", "persistence": {"size": "55Gi"}});
        let secret = json!({"namespace": "n", "persistence": {"size": "70Gi"}});
        let d = drift(&vc, &secret);
        assert_eq!(d.len(), 1);
        assert_eq!(values::dotted(&d[0].path), "persistence.size");
        assert_eq!(
            (d[0].old.clone(), d[0].new.clone()),
            (Some(json!("55Gi")), Some(json!("70Gi")))
        );
        assert!(drift(&vc, &vc).is_empty());
        assert!(drift(&Value::Null, &json!({})).is_empty());
    }

    fn snap(status: ConfigStatus, desired: &str, config: &str) -> Snapshot {
        Snapshot {
            desired_version: desired.into(),
            current_version: Some(desired.into()),
            config_status: status,
            yaml_service_config: Some(config.into()),
        }
    }

    #[test]
    fn the_write_plan_decides_from_progress() {
        use ConfigStatus::*;
        let idle = snap(Configured, "2.9.1", "YQ==");
        let mut p = WriteProgress::default();
        assert_eq!(next_step(&p), Step::Read);
        p.read = Some(idle.clone());
        assert_eq!(next_step(&p), Step::Reread);
        // Someone changed it meanwhile: no lost update.
        p.reread = Some(snap(Configured, "2.9.1", "Yg=="));
        assert!(
            matches!(next_step(&p), Step::Abort(w) if w.contains("yaml_service_config changed"))
        );
        p.reread = Some(snap(Configured, "2.10.0", "YQ=="));
        assert!(matches!(next_step(&p), Step::Abort(w) if w.contains("from 2.9.1 to 2.10.0")));
        p.reread = Some(snap(Configuring, "2.9.1", "YQ=="));
        assert!(matches!(next_step(&p), Step::Abort(w) if w.contains("config_status changed")));
        p.reread = Some(idle.clone());
        assert_eq!(
            next_step(&p),
            Step::Put {
                version: "2.9.1".into()
            }
        );
        p.written = true;
        assert_eq!(next_step(&p), Step::PollVcenter);
        p.after = Some(snap(Configuring, "2.9.1", "Yg=="));
        assert_eq!(next_step(&p), Step::PollVcenter);
        p.after = Some(snap(Configured, "2.9.1", "Yg=="));
        assert_eq!(next_step(&p), Step::PollSupervisor);
        p.supervisor = Some(Supervisor::Pending);
        assert_eq!(next_step(&p), Step::PollSupervisor);
        p.supervisor = Some(Supervisor::Succeeded);
        assert_eq!(next_step(&p), Step::Done);
        p.supervisor = Some(Supervisor::Failed("forbidden".into()));
        assert!(matches!(next_step(&p), Step::Failed(m) if m.contains("forbidden")));
        p.after = Some(snap(Error, "2.9.1", "Yg=="));
        p.after_messages = vec!["ERROR: Reason: ReconcileFailed.".into()];
        assert!(matches!(next_step(&p), Step::Failed(m) if m.contains("ReconcileFailed")));

        // A busy record is refused before the re-read.
        let mut busy = WriteProgress {
            read: Some(snap(Configuring, "2.9.1", "YQ==")),
            ..Default::default()
        };
        assert!(matches!(next_step(&busy), Step::Refuse(w) if w.contains("in flight")));
        busy.read = Some(snap(Error, "2.9.1", "YQ=="));
        assert!(matches!(next_step(&busy), Step::Refuse(_)));
        busy.allow_error = true;
        assert_eq!(next_step(&busy), Step::Reread);
    }

    #[test]
    fn the_kubeconfigs_supervisor_is_found_by_its_endpoint() {
        assert_eq!(url_host("https://10.0.0.5:6443/x"), "10.0.0.5");
        assert_eq!(url_host("https://[::1]:6443"), "::1");
        assert_eq!(url_host("10.0.0.5"), "10.0.0.5");
        let c = |id: &str, e: &[&str]| (id.to_owned(), e.iter().map(|s| s.to_string()).collect());
        let two = [c("domain-c8", &["10.0.0.5"]), c("domain-c9", &["10.0.1.5"])];
        assert_eq!(choose_target("10.0.1.5", &two), Ok("domain-c9".into()));
        let none = choose_target("10.9.9.9", &two).unwrap_err();
        assert!(matches!(none, TargetError::NoneServes { .. }));
        assert_eq!(
            none.to_string(),
            "none of vCenter's Supervisors (domain-c8, domain-c9) serves the kubeconfig's API server 10.9.9.9"
        );
        assert_eq!(choose_target("h", &[c("s-1", &[])]), Ok("s-1".into()));
        assert_eq!(choose_target("h", &[]), Err(TargetError::NoneReported));
        assert_eq!(
            TargetError::NoneReported.to_string(),
            "vCenter reports no Supervisor"
        );
        let same = [c("a", &["h"]), c("b", &["https://h:6443"])];
        assert_eq!(
            choose_target("h", &same).unwrap_err().to_string(),
            "several of vCenter's Supervisors serve h: a, b"
        );
    }

    #[test]
    fn upgrades_are_refused_before_any_write() {
        let idle = snap(ConfigStatus::Configured, "2.9.1", "YQ==");
        let facts = |f: &dyn Fn(&mut UpgradeFacts)| {
            let mut u = UpgradeFacts {
                to: "2.10.0".into(),
                service_activated: Some(true),
                versions: vec![("2.9.1".into(), true), ("2.10.0".into(), true)],
                record: Some(idle.clone()),
                ..Default::default()
            };
            f(&mut u);
            next_upgrade_step(&u)
        };
        let refused = |step: UpgradeStep, word: &str| {
            assert!(
                matches!(&step, UpgradeStep::Refuse(w) if w.contains(word)),
                "{step:?} vs {word}"
            )
        };
        assert_eq!(
            facts(&|_| {}),
            UpgradeStep::Put {
                version: "2.10.0".into()
            }
        );
        refused(facts(&|u| u.service_activated = None), "does not know");
        refused(facts(&|u| u.service_activated = Some(false)), "DEACTIVATED");
        refused(facts(&|u| u.record = None), "not installed");
        refused(facts(&|u| u.to = "2.8.0".into()), "forward only");
        assert_eq!(facts(&|u| u.to = "2.9.1".into()), UpgradeStep::AlreadyThere);
        refused(facts(&|u| u.to = "3.0.0".into()), "--definition");
        assert_eq!(
            facts(&|u| {
                u.to = "3.0.0".into();
                u.has_definition = true
            }),
            UpgradeStep::Register
        );
        refused(facts(&|u| u.versions[1].1 = false), "activate it first");
        refused(
            facts(&|u| u.record = Some(snap(ConfigStatus::Configuring, "2.9.1", "YQ=="))),
            "in flight",
        );
        assert_eq!(
            facts(&|u| u.precheck_supported = true),
            UpgradeStep::Precheck
        );
        refused(
            facts(&|u| {
                u.precheck_supported = true;
                u.precheck = Some(Precheck::Incompatible(vec![
                    "ERROR: needs 3 control plane nodes".into(),
                    "WARNING: the old API goes".into(),
                ]))
            }),
            "INCOMPATIBLE: ERROR: needs 3 control plane nodes; WARNING: the old API goes",
        );
        assert_eq!(
            facts(&|u| {
                u.precheck_supported = true;
                u.precheck = Some(Precheck::Compatible)
            }),
            UpgradeStep::Put {
                version: "2.10.0".into()
            }
        );
        assert_eq!(facts(&|u| u.written = true), UpgradeStep::Poll);
        assert_eq!(
            facts(&|u| {
                u.written = true;
                u.after = Some(snap(ConfigStatus::Configured, "2.10.0", "YQ=="))
            }),
            UpgradeStep::Done
        );
        assert!(matches!(
            facts(&|u| {
                u.written = true;
                u.after = Some(snap(ConfigStatus::Error, "2.10.0", "YQ=="));
                u.after_messages = vec!["vendir: MANIFEST_UNKNOWN".into()]
            }),
            UpgradeStep::Failed(m) if m.contains("MANIFEST_UNKNOWN")
        ));
    }

    #[test]
    fn an_interrupted_upgrade_is_followed_not_written_again() {
        let mut facts = UpgradeFacts {
            to: "2.10.0".into(),
            service_activated: Some(true),
            versions: vec![("2.9.1".into(), true), ("2.10.0".into(), true)],
            record: Some(Snapshot {
                desired_version: "2.10.0".into(),
                current_version: Some("2.9.1".into()),
                config_status: ConfigStatus::Configuring,
                yaml_service_config: None,
            }),
            ..Default::default()
        };
        assert_eq!(next_upgrade_step(&facts), UpgradeStep::Resume);
        facts.record.as_mut().unwrap().config_status = ConfigStatus::Error;
        facts.record_messages = vec!["ERROR: vendir: MANIFEST_UNKNOWN".into()];
        assert!(matches!(
            next_upgrade_step(&facts),
            UpgradeStep::Failed(m) if m.contains("earlier upgrade") && m.contains("MANIFEST_UNKNOWN")
        ));
        // Moving to another version is still a change in flight.
        facts.to = "2.11.0".into();
        facts.versions.push(("2.11.0".into(), true));
        assert!(matches!(next_upgrade_step(&facts), UpgradeStep::Refuse(_)));
    }

    #[test]
    fn values_are_carried_over_against_the_new_schema() {
        let schema = json!({
            "type": "object", "additionalProperties": false,
            "required": ["hostname", "tlsCertificate"],
            "properties": {
                "hostname": {"type": "string"},
                "tlsCertificate": {"type": "string"},
                "persistence": {"type": "object", "additionalProperties": false,
                    "properties": {"size": {"type": "string", "pattern": "^[0-9]+Gi$"}}},
                "extra": {"type": "object"}
            }
        });
        let cases: &[(Value, &[&str], &[&str], usize)] = &[
            // (values, dropped, newly required, other violations)
            (json!({"hostname": "h", "tlsCertificate": "c"}), &[], &[], 0),
            (json!({"hostname": "h"}), &[], &["tlsCertificate"], 0),
            (
                json!({"hostname": "h", "tlsCertificate": "c", "notary": {"enabled": true}}),
                &["notary"],
                &[],
                0,
            ),
            (
                json!({"hostname": "h", "tlsCertificate": "c", "persistence": {"size": "1Gi", "class": "x"}}),
                &["persistence.class"],
                &[],
                0,
            ),
            (
                json!({"hostname": "h", "tlsCertificate": "c", "extra": {"anything": 1}}),
                &[],
                &[],
                0,
            ),
            (
                json!({"hostname": "h", "tlsCertificate": "c", "persistence": {"size": "1Ti"}}),
                &[],
                &[],
                1,
            ),
        ];
        for (values, dropped, required, violations) in cases {
            let c = carry_over(values, Some(&schema));
            assert_eq!(c.dropped, *dropped, "{values}");
            assert_eq!(c.newly_required, *required, "{values}");
            assert_eq!(
                c.violations.len(),
                *violations,
                "{values}: {:?}",
                c.violations
            );
            assert_eq!(
                c.fits(),
                dropped.is_empty() && required.is_empty() && *violations == 0
            );
        }
        assert!(carry_over(&json!({"x": 1}), None).fits());
    }

    #[test]
    fn keys_the_platform_added_do_not_trip_a_closed_schema() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "properties": {"hostname": {"type": "string"}}});
        let old = json!({"namespace": "svc-harbor-domain-c8", "hostname": "a"});
        // (new values, violations mentioning)
        let cases: &[(Value, &[&str])] = &[
            (
                json!({"namespace": "svc-harbor-domain-c8", "hostname": "b"}),
                &[],
            ),
            (json!({"hostname": "b"}), &[]),
            (
                json!({"namespace": "mine", "hostname": "b"}),
                &["namespace: set by the platform"],
            ),
            (
                json!({"namespace": "svc-harbor-domain-c8", "hostname": 1}),
                &["hostname"],
            ),
            // A key the operator adds is still refused by the schema.
            (
                json!({"namespace": "svc-harbor-domain-c8", "hostname": "b", "typo": 1}),
                &["typo"],
            ),
        ];
        for (new, want) in cases {
            let got = check_with_platform_keys(&schema, &old, new);
            assert_eq!(got.len(), want.len(), "{new}: {got:?}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.contains(w), "{new}: {g} vs {w}");
            }
        }
        // Values without platform keys are checked exactly as before.
        assert_eq!(
            check_with_platform_keys(&schema, &json!({"hostname": "a"}), &json!({"extra": 1}))
                .len(),
            values::validate(&schema, &json!({"extra": 1})).len()
        );
    }

    #[test]
    fn uninstall_takes_the_blogs_three_steps_in_order_and_resumes() {
        use ConfigStatus::*;
        use UninstallStep::*;
        use UninstallTarget::This;
        let base = UninstallFacts {
            service_activated: Some(true),
            installed: Some(Configured),
            versions: vec![("1.0.0".into(), true), ("1.1.0".into(), false)],
            unregister: true,
            ..Default::default()
        };
        let with = |f: &dyn Fn(&mut UninstallFacts)| {
            let mut u = base.clone();
            f(&mut u);
            next_uninstall_step(&u)
        };
        // (state, next step): each step's effect observed, the next one follows.
        assert_eq!(with(&|_| {}), Deactivate);
        assert_eq!(with(&|u| u.service_activated = Some(false)), Remove(This));
        assert_eq!(
            with(&|u| {
                u.service_activated = Some(false);
                u.installed = Some(Error)
            }),
            Remove(This)
        );
        assert_eq!(
            with(&|u| {
                u.service_activated = Some(false);
                u.installed = Some(Removing)
            }),
            WaitRemoving(This)
        );
        let removed = |u: &mut UninstallFacts| {
            u.service_activated = Some(false);
            u.installed = None;
        };
        assert_eq!(with(&|u| removed(u)), DeactivateVersion("1.0.0".into()));
        assert_eq!(
            with(&|u| {
                removed(u);
                u.versions[0].1 = false
            }),
            DeleteVersion("1.0.0".into())
        );
        assert_eq!(
            with(&|u| {
                removed(u);
                u.versions.clear()
            }),
            DeleteService
        );
        assert_eq!(
            with(&|u| {
                removed(u);
                u.unregister = false
            }),
            Done
        );
        // Gone from vCenter: a rerun of --unregister is done; otherwise an unknown service is refused.
        assert_eq!(
            with(&|u| {
                u.service_activated = None;
                u.installed = None
            }),
            Done
        );
        assert!(matches!(
            with(&|u| {
                u.service_activated = None;
                u.unregister = false
            }),
            Refuse(w) if w.contains("does not know")
        ));
        assert!(matches!(
            with(&|u| u.must_be_installed = true),
            Refuse(w) if w.contains("must_be_installed")
        ));
    }

    /// What vCenter does on each step, as the facts a rerun would observe.
    fn after(step: &UninstallStep, f: &UninstallFacts) -> UninstallFacts {
        let mut f = f.clone();
        match step {
            UninstallStep::Deactivate => f.service_activated = Some(false),
            UninstallStep::Remove(UninstallTarget::This) => {
                f.installed = Some(ConfigStatus::Removing)
            }
            UninstallStep::WaitRemoving(UninstallTarget::This) => f.installed = None,
            UninstallStep::Remove(UninstallTarget::Other(id)) => {
                for o in f.elsewhere.iter_mut().filter(|o| &o.id == id) {
                    o.status = ConfigStatus::Removing;
                }
            }
            UninstallStep::WaitRemoving(UninstallTarget::Other(id)) => {
                f.elsewhere.retain(|o| &o.id != id);
            }
            UninstallStep::DeactivateVersion(v) => {
                for x in f.versions.iter_mut().filter(|x| &x.0 == v) {
                    x.1 = false;
                }
            }
            UninstallStep::DeleteVersion(v) => f.versions.retain(|x| &x.0 != v),
            UninstallStep::DeleteService => {
                f.service_activated = None;
                f.versions.clear();
            }
            UninstallStep::Refuse(_) | UninstallStep::Done => {}
        }
        f
    }

    /// Every combination of what vCenter can report and the two flags: each run either refuses at
    /// its first step (before any write) or reaches Done in bounded steps with the goal met, removes
    /// other Supervisors' installs only with --all-supervisors and one at a time, and a rerun from
    /// any state it passed through takes the same remaining steps (it resumes).
    #[test]
    fn uninstall_across_supervisors_every_combination() {
        use ConfigStatus::*;
        let statuses = [
            None,
            Some(Configuring),
            Some(Configured),
            Some(Error),
            Some(Removing),
        ];
        let other = |id: &str, status| OtherInstall {
            id: id.into(),
            name: format!("sup-{id}"),
            status,
        };
        let elsewheres = [
            vec![],
            vec![other("b", Configured)],
            vec![other("b", Removing)],
            vec![other("b", Error), other("c", Configured)],
        ];
        let version_sets = [
            vec![],
            vec![("1.0.0".to_owned(), true)],
            vec![("1.0.0".to_owned(), false), ("1.1.0".to_owned(), true)],
        ];
        let mut runs = 0;
        for service_activated in [None, Some(true), Some(false)] {
            for must_be_installed in [false, true] {
                for installed in statuses {
                    for elsewhere in &elsewheres {
                        for versions in &version_sets {
                            for unregister in [false, true] {
                                for all_supervisors in [false, true] {
                                    let start = UninstallFacts {
                                        service_activated,
                                        must_be_installed,
                                        installed,
                                        elsewhere: elsewhere.clone(),
                                        versions: if service_activated.is_some() {
                                            versions.clone()
                                        } else {
                                            vec![]
                                        },
                                        unregister,
                                        all_supervisors,
                                    };
                                    check_run(&start);
                                    runs += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(runs, 3 * 2 * 5 * 4 * 3 * 2 * 2);
    }

    fn check_run(start: &UninstallFacts) {
        let mut f = start.clone();
        let mut trace = Vec::new();
        loop {
            let step = next_uninstall_step(&f);
            assert!(trace.len() < 20, "no end from {start:?}: {trace:?}");
            match &step {
                UninstallStep::Done => break,
                UninstallStep::Refuse(why) => {
                    assert!(
                        trace.is_empty(),
                        "refused mid-run ({why}) from {start:?}: {trace:?}"
                    );
                    // Why it refused is one of the documented reasons.
                    let known = start.service_activated.is_none()
                        || start.must_be_installed
                        || (start.unregister && start.stays_elsewhere());
                    assert!(known, "refused {why:?} from {start:?}");
                    if start.service_activated.is_some()
                        && !start.must_be_installed
                        && start.unregister
                    {
                        assert!(why.contains("--all-supervisors"), "{why}");
                        for o in &start.elsewhere {
                            assert!(why.contains(&o.name), "{why} names {}", o.name);
                        }
                    }
                    return;
                }
                UninstallStep::Remove(UninstallTarget::Other(_))
                | UninstallStep::WaitRemoving(UninstallTarget::Other(_)) => {
                    assert!(
                        start.all_supervisors,
                        "another Supervisor touched: {start:?}"
                    );
                    assert_eq!(f.installed, None, "this Supervisor first: {start:?}");
                    // One at a time: nothing else is being removed by us.
                }
                UninstallStep::Deactivate => {
                    assert!(
                        !f.stays_elsewhere(),
                        "deactivated while kept elsewhere: {start:?}"
                    );
                }
                UninstallStep::DeactivateVersion(_)
                | UninstallStep::DeleteVersion(_)
                | UninstallStep::DeleteService => {
                    assert!(start.unregister);
                    assert_eq!(f.installed, None);
                    assert!(
                        f.elsewhere.is_empty(),
                        "unregistering while installed: {f:?}"
                    );
                    assert_eq!(f.service_activated, Some(false));
                }
                _ => {}
            }
            // A rerun from here takes the same next step (decided from observed state only).
            assert_eq!(next_uninstall_step(&f.clone()), step);
            trace.push(step.clone());
            f = after(&step, &f);
        }
        // Done: the goal is met.
        if start.service_activated.is_some() {
            assert_eq!(f.installed, None, "{start:?} -> {trace:?}");
        }
        if start.all_supervisors && start.service_activated.is_some() {
            assert!(f.elsewhere.is_empty(), "{start:?} -> {trace:?}");
        }
        if !start.all_supervisors {
            assert_eq!(f.elsewhere.len(), start.elsewhere.len(), "{start:?}");
        }
        if start.unregister {
            assert_eq!(f.service_activated, None, "{start:?} -> {trace:?}");
        }
        // Resumes: from every state the run passed through, the remaining steps are the same.
        let mut g = start.clone();
        for (i, step) in trace.iter().enumerate() {
            let mut h = g.clone();
            let mut rest = Vec::new();
            loop {
                match next_uninstall_step(&h) {
                    UninstallStep::Done => break,
                    s => {
                        rest.push(s.clone());
                        h = after(&s, &h);
                    }
                }
            }
            assert_eq!(rest, trace[i..], "resume from step {i} of {start:?}");
            g = after(step, &g);
        }
    }

    #[test]
    fn uninstall_with_all_supervisors_removes_each_in_turn_then_unregisters() {
        use ConfigStatus::*;
        use UninstallStep::*;
        use UninstallTarget::{Other, This};
        let mut f = UninstallFacts {
            service_activated: Some(true),
            installed: Some(Configured),
            elsewhere: vec![OtherInstall {
                id: "domain-c9".into(),
                name: "sup-east".into(),
                status: Configured,
            }],
            versions: vec![("1.0.0".into(), true)],
            unregister: true,
            all_supervisors: true,
            ..Default::default()
        };
        let mut trace = Vec::new();
        while let s @ (Deactivate | Remove(_) | WaitRemoving(_) | DeactivateVersion(_)
        | DeleteVersion(_) | DeleteService) = next_uninstall_step(&f)
        {
            f = after(&s, &f);
            trace.push(s);
        }
        assert_eq!(
            trace,
            [
                Deactivate,
                Remove(This),
                WaitRemoving(This),
                Remove(Other("domain-c9".into())),
                WaitRemoving(Other("domain-c9".into())),
                DeactivateVersion("1.0.0".into()),
                DeleteVersion("1.0.0".into()),
                DeleteService,
            ]
        );

        // Without --all-supervisors: --unregister is refused naming the flag and the Supervisor;
        // a plain uninstall removes it here only and leaves the service ACTIVATED for the others.
        let mut kept = UninstallFacts {
            service_activated: Some(true),
            installed: Some(Configured),
            elsewhere: vec![OtherInstall {
                id: "domain-c9".into(),
                name: "sup-east".into(),
                status: Configured,
            }],
            unregister: true,
            ..Default::default()
        };
        assert!(matches!(next_uninstall_step(&kept),
            Refuse(w) if w.contains("--all-supervisors") && w.contains("sup-east (CONFIGURED)")));
        kept.unregister = false;
        assert_eq!(next_uninstall_step(&kept), Remove(This));
        kept.installed = None;
        assert_eq!(next_uninstall_step(&kept), Done);
    }

    #[test]
    fn the_services_kinds_are_read_from_its_crds() {
        let crd = |group: &str, plural: &str, scope: &str, versions: Value| {
            json!({"spec": {"group": group, "scope": scope,
                "names": {"kind": "K", "plural": plural}, "versions": versions}})
        };
        let kinds = service_kinds(&[
            crd(
                "goharbor.io",
                "projects",
                "Namespaced",
                json!([{"name": "v1alpha1", "served": true, "storage": false},
                       {"name": "v1beta1", "served": true, "storage": true}]),
            ),
            crd(
                "example.com",
                "things",
                "Cluster",
                json!([{"name": "v1", "served": false, "storage": true},
                       {"name": "v2", "served": true, "storage": false}]),
            ),
            crd("example.com", "", "Cluster", json!([{"name": "v1"}])),
            crd("example.com", "empties", "Cluster", json!([])),
        ]);
        let got: Vec<(&str, &str, bool)> = kinds
            .iter()
            .map(|k| (k.name.as_str(), k.version.as_str(), k.namespaced))
            .collect();
        // Sorted by name; the storage version when served, else the first served one; a CRD
        // without a plural or without a served version cannot be listed and is left out.
        assert_eq!(
            got,
            [
                ("projects.goharbor.io", "v1beta1", true),
                ("things.example.com", "v2", false)
            ]
        );
    }

    #[test]
    fn install_lists_parse_in_both_route_families() {
        let item = json!({"supervisor_service": "x.example.com", "desired_version": "2", "current_version": "1", "config_status": "CONFIGURING"});
        let want = vec![InstallSummary {
            supervisor_service: "x.example.com".into(),
            desired_version: "2".into(),
            current_version: Some("1".into()),
            config_status: ConfigStatus::Configuring,
        }];
        assert_eq!(install_summaries(&json!([item.clone()])), want);
        assert_eq!(
            install_summaries(&json!({"supervisor_services": [item, {"bad": 1}]})),
            want
        );
        assert!(install_summaries(&json!({})).is_empty());
    }

    #[test]
    fn failures_map_to_what_to_run() {
        assert!(
            failure_hint("Fetching resources: vendir: MANIFEST_UNKNOWN").contains("override-image")
        );
        assert!(failure_hint("child PackageInstall tkg-controller Reconciling").contains("fix"));
        assert!(failure_hint("something else").contains("diagnose"));
    }

    #[test]
    fn set_spec_always_carries_the_version() {
        assert_eq!(
            set_spec("2.9.1+vmware.1", "YQ=="),
            json!({"version": "2.9.1+vmware.1", "yaml_service_config": "YQ=="})
        );
    }

    #[test]
    fn versions_are_ordered_as_numbers() {
        use Ordering::*;
        let cases = [
            ("2.9.1", "2.10.0", Less),
            ("2.9.1+vmware.1", "2.9.1+vmware.2", Less),
            ("2.9.1+vmware.1", "2.9.1+vmware.1", Equal),
            ("3.0.0", "3.0.0-rc.1", Greater),
            ("v1.2", "1.2.0", Equal),
            ("1.10.0", "1.9.9", Greater),
            ("1.0.0-rc.2", "1.0.0-rc.10", Less),
            ("0.4.1", "0.4.1+vmware.1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn vapi_errors_are_explained() {
        let e: VapiError = serde_json::from_value(json!({
            "error_type": "NOT_FOUND",
            "messages": [{"id": "x", "default_message": "Supervisor Service nope not found.", "args": ["nope"]}]
        }))
        .unwrap();
        assert_eq!(e.text(), "Supervisor Service nope not found.");
        let cases = [
            (401, "UNAUTHENTICATED", "password"),
            (403, "UNAUTHORIZED", "privilege"),
            (404, "NOT_FOUND", "service ID"),
            (400, "NOT_ALLOWED_IN_CURRENT_STATE", "wait"),
            (400, "INVALID_ARGUMENT", "invalid"),
            (500, "ERROR", "vSphere Client"),
        ];
        for (status, kind, hint) in cases {
            let e = VapiError {
                error_type: kind.into(),
                messages: vec![],
            };
            assert!(explain(status, &e).contains(hint), "{status} {kind}");
            assert_eq!(e.text(), kind);
        }
    }

    #[test]
    fn install_records_parse_tolerantly() {
        let r: InstallRecord = serde_json::from_value(json!({
            "desired_version": "0.4.1", "current_version": "0.4.1", "config_status": "CONFIGURED",
            "messages": [{"severity": "INFO", "details": {"id": "a", "default_message": "Reason: ReconcileSucceeded. Message: Reconcile succeeded.", "args": []}, "type": "COMPATIBILITY"}],
            "service_namespace": "svc-x", "display_name": "X", "prefix": "x", "yaml_service_config": "bmFtZXNwYWNlOiBzdmMteAo="
        }))
        .unwrap();
        assert_eq!(r.config_status, ConfigStatus::Configured);
        assert_eq!(
            r.message_lines(),
            ["INFO: Reason: ReconcileSucceeded. Message: Reconcile succeeded."]
        );
        let bare: InstallRecord =
            serde_json::from_value(json!({"desired_version": "1", "config_status": "CONFIGURING"}))
                .unwrap();
        assert_eq!(bare.current_version, None);
    }

    #[test]
    fn check_content_answers_are_read() {
        use ContentCheckError::{NotValid, OtherDefinition};
        let other = |service: Option<&str>, version: Option<&str>| OtherDefinition {
            service: service.map(str::to_owned),
            version: version.map(str::to_owned),
        };
        let not_valid = |status: Option<&str>, messages: &[&str]| NotValid {
            status: status.map(str::to_owned),
            messages: messages.iter().map(|m| m.to_string()).collect(),
        };
        let result = |service: &str, version: &str| json!({"supervisor_service": service, "version": version, "display_name": service});
        let cases: Vec<(&str, Value, Result<ContentStatus, ContentCheckError>)> = vec![
            (
                "valid",
                json!({"status": "VALID", "content_type": "CARVEL_APPS_YAML", "carvel_apps_check_result": result("a.b", "1.0.0")}),
                Ok(ContentStatus::Valid),
            ),
            (
                "valid with warnings",
                json!({"status": "VALID_WITH_WARNINGS", "carvel_apps_check_result": result("a.b", "1.0.0"),
                       "warning_messages": [{"id": "w", "default_message": "no EULA", "args": []}]}),
                Ok(ContentStatus::ValidWithWarnings),
            ),
            (
                "invalid with messages",
                json!({"status": "INVALID", "error_messages": [
                    {"id": "e1", "default_message": "The content is not base64-encoded.", "args": []},
                    {"id": "e2", "default_message": "", "args": []},
                    {"id": "e3", "args": []},
                    {"id": "e4", "default_message": "No Package.", "args": ["x"]}]}),
                Err(not_valid(
                    Some("INVALID"),
                    &["The content is not base64-encoded.", "No Package."],
                )),
            ),
            (
                "invalid without messages",
                json!({"status": "INVALID"}),
                Err(not_valid(Some("INVALID"), &[])),
            ),
            (
                "a status this rule does not know",
                json!({"status": "PENDING", "carvel_apps_check_result": result("a.b", "1.0.0")}),
                Err(not_valid(Some("PENDING"), &[])),
            ),
            (
                "no status, messages kept",
                json!({"error_messages": [{"id": "e", "default_message": "broken", "args": []}]}),
                Err(not_valid(None, &["broken"])),
            ),
            (
                "empty status",
                json!({"status": "", "error_messages": [{"id": "e", "default_message": "broken", "args": []}]}),
                Err(not_valid(None, &["broken"])),
            ),
            (
                "status not a string",
                json!({"status": 1}),
                Err(not_valid(None, &[])),
            ),
            (
                "another service",
                json!({"status": "VALID", "carvel_apps_check_result": result("c.d", "1.0.0")}),
                Err(other(Some("c.d"), Some("1.0.0"))),
            ),
            (
                "another version",
                json!({"status": "VALID_WITH_WARNINGS", "carvel_apps_check_result": result("a.b", "1.0.1")}),
                Err(other(Some("a.b"), Some("1.0.1"))),
            ),
            (
                "no carvel_apps_check_result",
                json!({"status": "VALID"}),
                Ok(ContentStatus::Valid),
            ),
            (
                "no version, the service matches",
                json!({"status": "VALID", "carvel_apps_check_result": {"supervisor_service": "a.b"}}),
                Ok(ContentStatus::Valid),
            ),
            (
                "no service, another version",
                json!({"status": "VALID", "carvel_apps_check_result": {"version": "2.0.0"}}),
                Err(other(None, Some("2.0.0"))),
            ),
        ];
        for (what, body, want) in cases {
            let body = serde_json::to_vec(&body).unwrap();
            assert_eq!(read_check_result(&body, "a.b", "1.0.0"), want, "{what}");
        }
        for unreadable in [&b""[..], b"<html>502</html>", b"\"VALID\"", b"[]", b"null"] {
            assert_eq!(
                read_check_result(unreadable, "a.b", "1.0.0"),
                Err(not_valid(None, &[])),
                "{}",
                String::from_utf8_lossy(unreadable)
            );
        }
        // What the callers print after `error:`.
        assert_eq!(
            not_valid(Some("INVALID"), &["x.", "y."]).to_string(),
            "checkContent finds the definition INVALID: x.; y."
        );
        assert_eq!(
            not_valid(None, &[]).to_string(),
            "checkContent finds the definition unreadable"
        );
        assert_eq!(
            other(None, Some("2.0.0")).to_string(),
            "vCenter reads the definition as (no service) 2.0.0"
        );
        assert_eq!(
            ContentStatus::ValidWithWarnings.to_string(),
            "VALID_WITH_WARNINGS"
        );
    }
}
