//! Image references: parsed and normalised as the container runtime does, classified against
//! registry settings, and found wherever a Kubernetes or Carvel object names one.
//!
//! Parsing is `container_image_dist_ref`, a grammar-only port of `distribution/reference` (the
//! parser containerd and Docker use) tested against it; normalisation follows the runtime, so `nginx`
//! is `docker.io/library/nginx:latest` here exactly as on a node. It needs no regex: the registry
//! guard runs this code in a fresh WASM instance for every admission request, where `oci-spec`'s
//! regex-based parser spent about 90 ms compiling its pattern each time.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use container_image_dist_ref::ImgRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::registries::{self, DOCKER_HUB_HOSTS};

/// The registry a reference without one resolves to.
const DEFAULT_REGISTRY: &str = registries::DOCKER_HUB;

/// An image reference, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ImageError {
    /// The string as given.
    pub reference: String,
    /// What is wrong with it, in the words of the reference grammar.
    pub reason: String,
}

impl ImageRef {
    /// Parses and normalises a reference as the container runtime does (`distribution/reference`'s
    /// `ParseNormalizedNamed`): no registry means Docker Hub (`docker.io`), a one-segment Docker Hub
    /// repository is under `library/`, and neither tag nor digest means tag `latest`.
    ///
    /// # Errors
    /// [`ImageError`] when the string is not a reference under the grammar (upper-case repository,
    /// empty, bad tag), or its digest is malformed.
    ///
    /// ```rust
    /// use supsvc_core::image::ImageRef;
    ///
    /// let r = ImageRef::parse("nginx").unwrap();
    /// assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
    /// assert_eq!((r.registry(), r.repository(), r.tag()), ("docker.io", "library/nginx", Some("latest")));
    ///
    /// let r = ImageRef::parse("harbor.local:8443/vmware/tkg-controller:v1.2").unwrap();
    /// assert_eq!((r.registry(), r.host()), ("harbor.local:8443", "harbor.local"));
    /// assert_eq!(r.repository(), "vmware/tkg-controller");
    /// assert_eq!(r.digest(), None);
    ///
    /// assert!(ImageRef::parse("Upper/Case").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let error = |reason: String| ImageError {
            reference: s.to_owned(),
            reason,
        };
        if s.trim() != s {
            return Err(error("leading or trailing white space".into()));
        }
        let parsed = ImgRef::new(s).map_err(|e| {
            error(format!(
                "invalid reference format ({:?} at character {})",
                e.kind(),
                usize::from(e.index()) + 1
            ))
        })?;
        let path = parsed.path().to_str();
        // The grammar leaves open whether a first component is a registry; the runtime's rule
        // (distribution's splitDockerDomain) decides: `library/nginx` is a path on docker.io.
        // Every name of Docker Hub (`index.docker.io`, `registry-1.docker.io`, ...) is `docker.io`,
        // as distribution's normalisation makes `index.docker.io` one.
        let (registry, path) = match parsed.domain().map(|d| d.to_str()) {
            Some(first) if is_registry(first) => (
                registries::canonical_host(first).to_owned(),
                path.to_owned(),
            ),
            Some(first) => (DEFAULT_REGISTRY.to_owned(), format!("{first}/{path}")),
            None => (DEFAULT_REGISTRY.to_owned(), path.to_owned()),
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let digest = parsed.digest().map(|d| d.to_str().to_owned());
        if let Some(digest) = &digest {
            check_digest(digest).map_err(error)?;
        }
        let tag = parsed.tag().map(str::to_owned);
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry as the runtime contacts it, with its port if any (every name of Docker Hub,
    /// e.g. `index.docker.io` or `registry.hub.docker.com`, is `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The registry's host name without port.
    pub fn host(&self) -> &str {
        split_port(self.registry()).0
    }

    /// The repository path under the registry, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when the reference named neither tag nor digest, `None` for a digest only.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<64 hex>`), when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageRef {
    /// The fully qualified form, e.g. `docker.io/library/nginx:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether the first component of a name is a registry: it has a `.` or `:`, is `localhost`, or
/// has an upper-case letter (which a repository path may not).
fn is_registry(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// Digests the runtime accepts: a registered algorithm with its length of lower-case hex.
fn check_digest(digest: &str) -> Result<(), String> {
    let (algorithm, encoded) = digest.split_once(':').unwrap_or((digest, ""));
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => return Err(format!("unsupported digest algorithm {other:?}")),
    };
    if encoded.len() != length
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "invalid {algorithm} digest: expected {length} lower-case hex characters"
        ));
    }
    Ok(())
}

fn split_port(registry: &str) -> (&str, Option<&str>) {
    match registry.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (registry, None),
    }
}

/// A registry pattern from settings: `docker.io`, `registry.example.com:5000`, `*.example.com` (any
/// sub-domain, not the domain itself), optionally with a repository prefix (`harbor.corp/tkg`).
///
/// Held as the text it was given and where its parts are in it: a guard builds its patterns on
/// every request (a policy instance lives for one evaluation), so the built-in ones cost no
/// allocation and the others one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistryPattern {
    raw: Cow<'static, str>,
    wildcard: bool,
    /// The host is one of Docker Hub's names: it matches Docker Hub under any of them.
    hub: bool,
    /// Byte ranges in `raw`: the host (without `*.` and port), the port, the repository prefix
    /// (without a trailing `/`).
    host: Range<usize>,
    port: Option<Range<usize>>,
    repository_prefix: Option<Range<usize>>,
}

/// Why a registry pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid registry pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it (a URL, a misplaced wildcard, a bad port, ...).
    pub reason: &'static str,
}

/// Where the parts of a pattern are, or why it is not one.
struct PatternParts {
    wildcard: bool,
    hub: bool,
    host: Range<usize>,
    port: Option<Range<usize>>,
    repository_prefix: Option<Range<usize>>,
}

impl PatternParts {
    fn of(s: &str) -> Result<Self, &'static str> {
        let contains =
            |s: &str, needle: &[u8]| s.as_bytes().windows(needle.len()).any(|w| w == needle);
        if s.is_empty() {
            return Err("empty");
        }
        if contains(s, b"://") {
            return Err("a registry, not a URL: drop the scheme");
        }
        let (registry_end, repository_prefix) = match s.find('/') {
            Some(slash) => {
                let p = s[slash + 1..].trim_end_matches('/');
                if p.is_empty() || contains(p, b"//") {
                    return Err("empty repository path");
                }
                if p.contains(['*', ':', '@']) {
                    return Err(
                        "a wildcard, tag or digest is allowed only as `*.` before the host",
                    );
                }
                (slash, Some(slash + 1..slash + 1 + p.len()))
            }
            None => (s.len(), None),
        };
        let registry = &s[..registry_end];
        let (wildcard, host_start) = match registry.strip_prefix("*.") {
            Some(_) => (true, 2),
            None => (false, 0),
        };
        let rest = &registry[host_start..];
        if rest.contains('*') {
            return Err("a wildcard is allowed only as `*.` before the host");
        }
        let (host, port) = match rest.find(':') {
            Some(colon) => {
                let p = &rest[colon + 1..];
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("the port must be a number");
                }
                let colon = host_start + colon;
                (host_start..colon, Some(colon + 1..registry_end))
            }
            None => (host_start..registry_end, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !s[host.clone()].split('.').all(label_ok) {
            return Err("not a host name");
        }
        Ok(PatternParts {
            wildcard,
            hub: !wildcard && registries::is_docker_hub(&s[host.clone()]),
            host,
            port,
            repository_prefix,
        })
    }

    fn with(self, raw: Cow<'static, str>) -> RegistryPattern {
        RegistryPattern {
            raw,
            wildcard: self.wildcard,
            hub: self.hub,
            host: self.host,
            port: self.port,
            repository_prefix: self.repository_prefix,
        }
    }
}

impl RegistryPattern {
    /// Parses a pattern `[*.]host[:port][/repository/prefix]`.
    ///
    /// # Errors
    /// [`PatternError`] for an empty text, a URL (`https://...`), a wildcard anywhere but a leading
    /// `*.`, a port that is not a number, an invalid host name, or an empty or malformed repository
    /// prefix.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        Self::parse_cow(Cow::Owned(s.to_owned()))
    }

    /// A bare host pattern known to be valid (the built-in deny-list): no checks, no copy.
    fn known_host(s: &'static str) -> Self {
        let wildcard = s.starts_with("*.");
        RegistryPattern {
            raw: Cow::Borrowed(s),
            wildcard,
            // The built-in lists name Docker Hub as `docker.io` only (registries.rs checks it).
            hub: s == registries::DOCKER_HUB,
            host: if wildcard { 2 } else { 0 }..s.len(),
            port: None,
            repository_prefix: None,
        }
    }

    fn parse_cow(raw: Cow<'static, str>) -> Result<Self, PatternError> {
        match PatternParts::of(&raw) {
            Ok(parts) => Ok(parts.with(raw)),
            Err(reason) => Err(PatternError {
                pattern: raw.into_owned(),
                reason,
            }),
        }
    }

    /// Whether an image is in the registry (and repository prefix) this pattern names.
    /// A pattern without port matches every port of its host; a pattern naming Docker Hub under
    /// any of its names matches Docker Hub under any of them.
    pub fn matches(&self, image: &ImageRef) -> bool {
        self.matches_location(image.registry(), image.repository())
    }

    /// Whether a location is in what this pattern names: `authority` is `host` or `host:port`,
    /// `path` the repository (or a URL's path without its leading `/`).
    pub fn matches_location(&self, authority: &str, path: &str) -> bool {
        let (host, port) = split_port(authority);
        self.matches_parts(registries::canonical_host(host), port, path)
    }

    /// [`Self::matches_location`] with the host already canonical ([`registries::canonical_host`])
    /// and split from its port: a list canonicalises once for all its patterns.
    fn matches_parts(&self, host: &str, port: Option<&str>, path: &str) -> bool {
        // Compared as ASCII bytes, case-insensitively, without allocating: this runs for every
        // image against every pattern of the list.
        let pattern = &self.raw[self.host.clone()];
        let host_ok = if self.wildcard {
            // `*.docker.io` names Docker Hub too: `registry-1.docker.io` is one of its names.
            wildcard_matches(pattern, host)
                || (host == registries::DOCKER_HUB
                    && DOCKER_HUB_HOSTS
                        .iter()
                        .any(|h| wildcard_matches(pattern, h)))
        } else if self.hub {
            host == registries::DOCKER_HUB
        } else {
            host.eq_ignore_ascii_case(pattern)
        };
        let part = |range: &Option<Range<usize>>| range.clone().map(|r| &self.raw[r]);
        let port_ok = self.port.is_none() || part(&self.port) == port;
        let repo_ok = part(&self.repository_prefix).is_none_or(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        host_ok && port_ok && repo_ok
    }

    /// Why this pattern can never match anything a Supervisor pulls, or `None`. Such an entry in a
    /// policy's settings is a mistake (a misspelt name of Docker Hub, a port on Docker Hub, an
    /// upper-case repository) that would silently leave a registry unguarded, so settings
    /// validation refuses it.
    pub fn never_matches(&self) -> Option<String> {
        let host = &self.raw[self.host.clone()];
        let lower = host.to_ascii_lowercase();
        let hub_names = DOCKER_HUB_HOSTS.join(", ");
        if self.hub && self.port.is_some() {
            return Some(format!(
                "Docker Hub is named without a port; write {}",
                registries::DOCKER_HUB
            ));
        }
        if !self.wildcard && !self.hub {
            if let Some(near) = DOCKER_HUB_HOSTS
                .iter()
                .find(|h| edit_distance(&lower, h) <= 2)
            {
                return Some(format!(
                    "{host} looks like a misspelling of {near}, a name of Docker Hub (those are {hub_names})"
                ));
            }
            let under_docker = ["docker.io", "docker.com"]
                .iter()
                .any(|d| lower == *d || lower.ends_with(&format!(".{d}")));
            if under_docker {
                return Some(format!(
                    "{host} is not a name of Docker Hub's registry (those are {hub_names}); write docker.io"
                ));
            }
        }
        if self.wildcard && lower.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Some("an IP address has no sub-domains: drop the `*.`".into());
        }
        if let Some(prefix) = &self.repository_prefix
            && self.raw[prefix.clone()]
                .bytes()
                .any(|b| b.is_ascii_uppercase())
        {
            return Some("repository names are lower-case: this path never matches".into());
        }
        None
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

/// `*.example.com` (given as `example.com`) matches `a.example.com`, not `example.com` nor
/// `aexample.com`; ASCII case-insensitive.
fn wildcard_matches(domain: &str, host: &str) -> bool {
    let (host, domain) = (host.as_bytes(), domain.as_bytes());
    host.len() >= domain.len() + 2
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
        && host[host.len() - domain.len() - 1] == b'.'
}

/// Levenshtein distance over bytes (host names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl TryFrom<String> for RegistryPattern {
    type Error = PatternError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RegistryPattern> for String {
    fn from(p: RegistryPattern) -> Self {
        p.raw.into_owned()
    }
}

impl fmt::Display for RegistryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Public registries an air-gapped Supervisor cannot reach: the default deny-list, the patterns of
/// [`registries::PUBLIC_REGISTRIES`] (where each comes from is documented there).
pub fn default_public_registries() -> impl Iterator<Item = &'static str> {
    registries::PUBLIC_REGISTRIES.iter().map(|e| e.pattern)
}

/// Which registries count as public: everything on a deny-list, or everything off an allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RegistryPolicy {
    /// Only these registries are private; any other is refused (recommended when air-gapped).
    AllowList(Vec<RegistryPattern>),
    /// These registries are public; any other is private.
    DenyList(Vec<RegistryPattern>),
}

impl Default for RegistryPolicy {
    fn default() -> Self {
        RegistryPolicy::DenyList(
            default_public_registries()
                .map(RegistryPattern::known_host)
                .collect(),
        )
    }
}

/// How one image reference fares against a [`RegistryPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum RegistryVerdict {
    /// Allowed: not on the deny-list, or on the allow-list.
    Private,
    /// On the deny-list; `pattern` is the entry that matched.
    Public {
        /// The deny-list entry that matched, as written.
        pattern: String,
    },
    /// Not on the allow-list.
    NotAllowed,
}

impl RegistryVerdict {
    /// Whether the image must not be used (public or not allowed).
    pub fn is_refused(&self) -> bool {
        !matches!(self, RegistryVerdict::Private)
    }
}

impl RegistryPolicy {
    /// The default deny-list of public source hosts (`http`, `git` and Helm repository fetches):
    /// [`registries::PUBLIC_SOURCE_HOSTS`].
    pub fn default_source_hosts() -> Self {
        RegistryPolicy::DenyList(
            registries::PUBLIC_SOURCE_HOSTS
                .iter()
                .map(|e| RegistryPattern::known_host(e.pattern))
                .collect(),
        )
    }

    /// A deny-list from pattern strings.
    ///
    /// # Errors
    /// The [`PatternError`] of the first pattern that does not parse.
    pub fn deny(patterns: &[&str]) -> Result<Self, PatternError> {
        Ok(RegistryPolicy::DenyList(parse_patterns(patterns)?))
    }

    /// An allow-list from pattern strings.
    ///
    /// # Errors
    /// The [`PatternError`] of the first pattern that does not parse.
    pub fn allow(patterns: &[&str]) -> Result<Self, PatternError> {
        Ok(RegistryPolicy::AllowList(parse_patterns(patterns)?))
    }

    /// How an image fares against this policy: by its registry (with port) and repository.
    ///
    /// ```rust
    /// use supsvc_core::image::{ImageRef, RegistryPolicy, RegistryVerdict};
    ///
    /// let policy = RegistryPolicy::allow(&["harbor.local", "*.corp.example/vmware"]).unwrap();
    /// let verdict = |s: &str| policy.classify(&ImageRef::parse(s).unwrap());
    /// assert_eq!(verdict("harbor.local:8443/x/y:1"), RegistryVerdict::Private);
    /// assert_eq!(verdict("reg.corp.example/vmware/tkg:1"), RegistryVerdict::Private);
    /// assert_eq!(verdict("nginx"), RegistryVerdict::NotAllowed);
    /// assert!(RegistryPolicy::default().classify(&ImageRef::parse("nginx").unwrap()).is_refused());
    /// ```
    pub fn classify(&self, image: &ImageRef) -> RegistryVerdict {
        self.classify_location(image.registry(), image.repository())
    }

    /// [`RegistryPolicy::classify`] for a location that is not an image: a URL's `host[:port]` and
    /// path (without its leading `/`).
    pub fn classify_location(&self, authority: &str, path: &str) -> RegistryVerdict {
        let (host, port) = split_port(authority);
        let host = registries::canonical_host(host);
        match self {
            RegistryPolicy::DenyList(deny) => {
                match deny.iter().find(|p| p.matches_parts(host, port, path)) {
                    Some(p) => RegistryVerdict::Public {
                        pattern: p.raw.to_string(),
                    },
                    None => RegistryVerdict::Private,
                }
            }
            RegistryPolicy::AllowList(allow) => {
                if allow.iter().any(|p| p.matches_parts(host, port, path)) {
                    RegistryVerdict::Private
                } else {
                    RegistryVerdict::NotAllowed
                }
            }
        }
    }
}

fn parse_patterns(patterns: &[&str]) -> Result<Vec<RegistryPattern>, PatternError> {
    patterns.iter().map(|p| RegistryPattern::parse(p)).collect()
}

/// An image reference found in an object: where, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOccurrence {
    /// Dotted JSON path, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    /// The reference as written.
    pub image: String,
}

impl ImageOccurrence {
    /// [`ImageRef::parse`] of the reference as written.
    ///
    /// # Errors
    /// [`ImageError`] when it is not a valid reference.
    pub fn parse(&self) -> Result<ImageRef, ImageError> {
        ImageRef::parse(&self.image)
    }
}

/// Where a kind keeps its Pod spec, as a path of object keys.
fn pod_spec_path(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    match (group, kind) {
        ("", "Pod") => Some(&["spec"]),
        ("", "PodTemplate") => Some(&["template", "spec"]),
        ("", "ReplicationController") => Some(&["spec", "template", "spec"]),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
            Some(&["spec", "template", "spec"])
        }
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// Every field [`find_images`] reads, as dotted paths through maps (lists on the way traversed): an
/// object decoded with only these fields has the same images at the same paths.
pub const IMAGE_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    // Pod
    "spec.initContainers.image",
    "spec.containers.image",
    "spec.ephemeralContainers.image",
    // PodTemplate
    "template.spec.initContainers.image",
    "template.spec.containers.image",
    "template.spec.ephemeralContainers.image",
    // the workload kinds and ReplicationController
    "spec.template.spec.initContainers.image",
    "spec.template.spec.containers.image",
    "spec.template.spec.ephemeralContainers.image",
    // CronJob
    "spec.jobTemplate.spec.template.spec.initContainers.image",
    "spec.jobTemplate.spec.template.spec.containers.image",
    "spec.jobTemplate.spec.template.spec.ephemeralContainers.image",
    // Package
    "spec.template.spec.fetch.imgpkgBundle.image",
    "spec.template.spec.fetch.image.url",
    // App (a list) and PackageRepository (one fetch)
    "spec.fetch.imgpkgBundle.image",
    "spec.fetch.image.url",
    // EphemeralContainers (pods/ephemeralcontainers before Kubernetes 1.23)
    "ephemeralContainers.image",
];

/// Every image reference in an object, with its JSON path, for the kinds that name images:
/// Pods and every pod-template kind (containers, initContainers, ephemeralContainers), and the
/// Carvel Package, App and PackageRepository fetches. Other kinds have none. The kind is the
/// object's own `apiVersion` and `kind`; an admission guard, which is told the kind by the request,
/// uses [`find_images_of`].
pub fn find_images(object: &Value) -> Vec<ImageOccurrence> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    find_images_of(group, kind, object)
}

/// [`find_images`] for an object of the given API group and kind, whatever the object says it is
/// (an AdmissionRequest names the kind in `request.kind`; the object may carry no `apiVersion`).
/// `("", "EphemeralContainers")` is the body of `pods/ephemeralcontainers` before Kubernetes 1.23.
pub fn find_images_of(group: &str, kind: &str, object: &Value) -> Vec<ImageOccurrence> {
    if let Some(path) = pod_spec_path(group, kind) {
        let mut spec = Some(object);
        for key in path {
            spec = spec.and_then(|v| v.get(key));
        }
        return spec.map_or_else(Vec::new, |s| pod_spec_images(s, &path.join(".")));
    }
    fn items(v: Option<&Value>) -> &[Value] {
        v.and_then(Value::as_array).map_or(&[][..], Vec::as_slice)
    }
    match (group, kind) {
        ("", "EphemeralContainers") => pod_spec_images(object, ""),
        ("data.packaging.carvel.dev", "Package") => fetch_images(
            items(object.pointer("/spec/template/spec/fetch")),
            "spec.template.spec.fetch",
        ),
        ("kappctrl.k14s.io", "App") => {
            fetch_images(items(object.pointer("/spec/fetch")), "spec.fetch")
        }
        ("packaging.carvel.dev", "PackageRepository") => object
            .pointer("/spec/fetch")
            .map(|f| single_fetch_images(f, "spec.fetch"))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn pod_spec_images(spec: &Value, base: &str) -> Vec<ImageOccurrence> {
    let mut found = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                let dot = if base.is_empty() { "" } else { "." };
                found.push(ImageOccurrence {
                    path: format!("{base}{dot}{list}[{i}].image"),
                    image: image.to_owned(),
                });
            }
        }
    }
    found
}

/// Images of an App-style `fetch[]` list: `imgpkgBundle.image` and `image.url`.
pub fn fetch_images(fetch: &[Value], base: &str) -> Vec<ImageOccurrence> {
    fetch
        .iter()
        .enumerate()
        .flat_map(|(i, f)| single_fetch_images(f, &format!("{base}[{i}]")))
        .collect()
}

fn single_fetch_images(fetch: &Value, base: &str) -> Vec<ImageOccurrence> {
    [("imgpkgBundle", "image"), ("image", "url")]
        .into_iter()
        .filter_map(|(source, field)| {
            let image = fetch.get(source)?.get(field)?.as_str()?;
            Some(ImageOccurrence {
                path: format!("{base}.{source}.{field}"),
                image: image.to_owned(),
            })
        })
        .collect()
}

/// An image reference the policy refuses, with where it is and where it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offense {
    /// Dotted JSON path, as in [`ImageOccurrence::path`].
    pub path: String,
    /// The reference as written.
    pub image: String,
    /// The normalised reference, or `None` when it does not parse.
    pub normalized: Option<String>,
    /// The registry it resolves to, or `None` when it does not parse.
    pub registry: Option<String>,
    /// What the policy says of it, or `None` when it does not parse.
    pub verdict: Option<RegistryVerdict>,
    /// Why it does not parse.
    pub error: Option<String>,
}

/// Every image reference in the object that the policy refuses, and every one that does not parse
/// (a runtime could not pull it either, and it must not slip past a guard).
pub fn offending_images(object: &Value, policy: &RegistryPolicy) -> Vec<Offense> {
    find_images(object)
        .into_iter()
        .filter_map(|occ| match occ.parse() {
            Ok(image) => {
                let verdict = policy.classify(&image);
                verdict.is_refused().then(|| Offense {
                    normalized: Some(image.to_string()),
                    registry: Some(image.registry().to_owned()),
                    verdict: Some(verdict),
                    error: None,
                    path: occ.path,
                    image: occ.image,
                })
            }
            Err(e) => Some(Offense {
                normalized: None,
                registry: None,
                verdict: None,
                error: Some(e.reason),
                path: occ.path,
                image: occ.image,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn normalises_as_the_runtime_does() {
        let d = format!("nginx@{DIGEST}");
        let dd = format!("docker.io/library/nginx@{DIGEST}");
        let td = format!("nginx:1.25@{DIGEST}");
        let tdd = format!("docker.io/library/nginx:1.25@{DIGEST}");
        let cases: &[(&str, &str, &str, &str)] = &[
            // (input, normalised, registry, host)
            (
                "nginx",
                "docker.io/library/nginx:latest",
                "docker.io",
                "docker.io",
            ),
            (
                "nginx:1.25",
                "docker.io/library/nginx:1.25",
                "docker.io",
                "docker.io",
            ),
            (
                "library/nginx",
                "docker.io/library/nginx:latest",
                "docker.io",
                "docker.io",
            ),
            (
                "bitnami/redis:7",
                "docker.io/bitnami/redis:7",
                "docker.io",
                "docker.io",
            ),
            (
                "index.docker.io/nginx",
                "docker.io/library/nginx:latest",
                "docker.io",
                "docker.io",
            ),
            (
                "docker.io/nginx",
                "docker.io/library/nginx:latest",
                "docker.io",
                "docker.io",
            ),
            (
                "localhost/app",
                "localhost/app:latest",
                "localhost",
                "localhost",
            ),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000",
                "localhost",
            ),
            (
                "harbor.corp:8443/tkg/svc:3.5.1",
                "harbor.corp:8443/tkg/svc:3.5.1",
                "harbor.corp:8443",
                "harbor.corp",
            ),
            (
                "projects.registry.vmware.com/tkg/packages/standard/repo:v1",
                "projects.registry.vmware.com/tkg/packages/standard/repo:v1",
                "projects.registry.vmware.com",
                "projects.registry.vmware.com",
            ),
            (
                "test.com:5000",
                "docker.io/library/test.com:5000",
                "docker.io",
                "docker.io",
            ),
            (&d, &dd, "docker.io", "docker.io"),
            (&td, &tdd, "docker.io", "docker.io"),
            (
                "10.0.0.1:5000/a/b",
                "10.0.0.1:5000/a/b:latest",
                "10.0.0.1:5000",
                "10.0.0.1",
            ),
        ];
        for (input, normalised, registry, host) in cases {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *normalised, "{input}");
            assert_eq!(r.registry(), *registry, "{input}");
            assert_eq!(r.host(), *host, "{input}");
        }
    }

    #[test]
    fn refuses_what_the_runtime_refuses() {
        for bad in [
            "",
            " nginx",
            "nginx ",
            "Nginx",
            "nginx:",
            "nginx@sha256:abc",
            "https://docker.io/nginx",
            "a//b",
            "nginx@md5:ffffffffffffffffffffffffffffffff",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn pattern_parsing() {
        for ok in [
            "docker.io",
            "*.example.com",
            "harbor.corp:8443",
            "harbor.corp/tkg",
            "harbor.corp/tkg/",
            "localhost",
        ] {
            assert!(RegistryPattern::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "*",
            "*example.com",
            "a.*.com",
            "https://docker.io",
            "docker.io:port",
            "docker.io:",
            "-bad.com",
            "bad-.com",
            "a..b",
            "harbor.corp/",
            "harbor.corp/tkg:1.0",
            "harbor.corp/*",
            "sp ace.com",
        ] {
            assert!(
                RegistryPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn pattern_matching_table() {
        let cases = [
            ("docker.io", "nginx", true),
            ("docker.io", "index.docker.io/library/nginx", true),
            ("docker.io", "quay.io/x/y", false),
            ("*.example.com", "registry.example.com/a", true),
            ("*.example.com", "a.b.example.com/a", true),
            ("*.example.com", "example.com/a", false),
            ("*.example.com", "badexample.com/a", false),
            ("*.example.com", "registry.example.com:5000/a", true),
            ("harbor.corp", "harbor.corp:8443/a", true),
            ("harbor.corp:8443", "harbor.corp:8443/a", true),
            ("harbor.corp:8443", "harbor.corp:443/a", false),
            ("harbor.corp:8443", "harbor.corp/a", false),
            ("harbor.corp/tkg", "harbor.corp/tkg/svc:1", true),
            ("harbor.corp/tkg", "harbor.corp/tkg:1", true),
            ("harbor.corp/tkg", "harbor.corp/tkgx/svc:1", false),
            ("harbor.corp/tkg", "harbor.corp/other/svc:1", false),
            ("HARBOR.corp", "harbor.corp/a", true),
            ("harbor.corp", "Harbor.CORP/a", true),
            ("*.example.com", "Registry.EXAMPLE.com/a", true),
            ("localhost", "localhost:5000/a", true),
        ];
        for (pattern, image, want) in cases {
            let p = RegistryPattern::parse(pattern).unwrap();
            let i = ImageRef::parse(image).unwrap();
            assert_eq!(p.matches(&i), want, "{pattern} vs {image}");
        }
    }

    #[test]
    fn classify_table() {
        let deny = RegistryPolicy::default();
        let allow = RegistryPolicy::allow(&["harbor.corp", "*.svc.local"]).unwrap();
        let public = |p: &str| RegistryVerdict::Public { pattern: p.into() };
        let cases = [
            ("nginx", &deny, public("docker.io")),
            (
                "registry-1.docker.io/library/nginx",
                &deny,
                public("docker.io"),
            ),
            (
                "registry.hub.docker.com/library/node:20-alpine",
                &deny,
                public("docker.io"),
            ),
            (
                "projects.packages.broadcom.com/vsphere/supervisor/harbor-service:2.14.2",
                &deny,
                public("*.packages.broadcom.com"),
            ),
            (
                "us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0",
                &deny,
                public("*.pkg.dev"),
            ),
            // A private ECR is an organisation's own registry (see registries.rs).
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1",
                &deny,
                RegistryVerdict::Private,
            ),
            (
                "projects.registry.vmware.com/tkg/x:1",
                &deny,
                public("projects.registry.vmware.com"),
            ),
            ("k8s.gcr.io/pause:3.9", &deny, public("k8s.gcr.io")),
            ("us.gcr.io/p/a:1", &deny, public("*.gcr.io")),
            (
                "registry.k8s.io/pause:3.9",
                &deny,
                public("registry.k8s.io"),
            ),
            ("ghcr.io/a/b", &deny, public("ghcr.io")),
            ("quay.io/a/b", &deny, public("quay.io")),
            ("public.ecr.aws/a/b", &deny, public("public.ecr.aws")),
            ("mcr.microsoft.com/a/b", &deny, public("mcr.microsoft.com")),
            ("harbor.corp/tkg/x:1", &deny, RegistryVerdict::Private),
            ("localhost:5000/a", &deny, RegistryVerdict::Private),
            ("harbor.corp/tkg/x:1", &allow, RegistryVerdict::Private),
            ("r.svc.local:5000/x", &allow, RegistryVerdict::Private),
            ("nginx", &allow, RegistryVerdict::NotAllowed),
            ("other.corp/x", &allow, RegistryVerdict::NotAllowed),
        ];
        for (image, policy, want) in cases {
            let i = ImageRef::parse(image).unwrap();
            let got = policy.classify(&i);
            assert_eq!(got, want, "{image}");
            assert_eq!(got.is_refused(), want != RegistryVerdict::Private);
        }
    }

    #[test]
    fn every_name_of_docker_hub_is_docker_hub_in_images_and_in_settings() {
        let names = DOCKER_HUB_HOSTS;
        for image_host in names {
            let image = ImageRef::parse(&format!("{image_host}/library/node:20-alpine")).unwrap();
            assert_eq!(image.to_string(), "docker.io/library/node:20-alpine");
            let bare = ImageRef::parse(&format!("{image_host}/node")).unwrap();
            assert_eq!(bare.to_string(), "docker.io/library/node:latest");
            for pattern_host in names {
                for pattern in [pattern_host.to_string(), pattern_host.to_ascii_uppercase()] {
                    let p = RegistryPattern::parse(&pattern).unwrap();
                    assert!(p.matches(&image), "{pattern} vs {image_host}");
                    assert!(p.never_matches().is_none(), "{pattern}");
                }
            }
            // With a port the reference keeps its host, and the patterns still see Docker Hub.
            let ported = ImageRef::parse(&format!("{image_host}:443/library/node")).unwrap();
            assert!(
                RegistryPattern::parse("docker.io")
                    .unwrap()
                    .matches(&ported)
            );
        }
        for wildcard in ["*.docker.io", "*.docker.com", "*.hub.docker.com"] {
            let p = RegistryPattern::parse(wildcard).unwrap();
            assert!(p.matches(&ImageRef::parse("nginx").unwrap()), "{wildcard}");
        }
        assert!(
            !RegistryPattern::parse("docker.io")
                .unwrap()
                .matches(&ImageRef::parse("quay.io/docker.io/x").unwrap())
        );
        let allow = RegistryPolicy::allow(&["registry-1.docker.io/bitnami"]).unwrap();
        assert_eq!(
            allow.classify(&ImageRef::parse("bitnami/redis:7").unwrap()),
            RegistryVerdict::Private
        );
    }

    #[test]
    fn entries_that_can_never_match_say_why() {
        let never = |p: &str| RegistryPattern::parse(p).unwrap().never_matches();
        for (pattern, reason) in [
            (
                "regsitry-1.docker.io",
                "misspelling of registry-1.docker.io",
            ),
            ("dokcer.io", "misspelling of docker.io"),
            ("hub.docker.io", "misspelling of hub.docker.com"),
            ("index.docker.com", "misspelling of index.docker.io"),
            ("docker.com", "misspelling of docker.io"),
            ("mirror.docker.io", "not a name of Docker Hub's registry"),
            ("docker.io:443", "without a port"),
            ("*.10.0.0.1", "no sub-domains"),
            ("harbor.corp/TKG", "lower-case"),
        ] {
            let why = never(pattern).unwrap_or_else(|| panic!("{pattern} can match?"));
            assert!(why.contains(reason), "{pattern}: {why}");
        }
        for fine in [
            "docker.io",
            "registry.hub.docker.com",
            "*.docker.io",
            "harbor.corp.local",
            "docker.corp.local",
            "my-docker-mirror.example.com",
            "quay.io",
            "10.0.0.1:5000",
            "harbor.corp/tkg",
        ] {
            assert_eq!(never(fine), None, "{fine}");
        }
    }

    #[test]
    fn the_kind_can_be_given_instead_of_read_from_the_object() {
        // A Pod object without apiVersion and kind (admission names the kind in the request).
        let bare = json!({"spec": {"containers": [{"name": "a", "image": "nginx"}]}});
        assert!(find_images(&bare).is_empty());
        let found = find_images_of("", "Pod", &bare);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.containers[0].image");
        // pods/ephemeralcontainers before Kubernetes 1.23: an EphemeralContainers object.
        let legacy = json!({"ephemeralContainers": [{"name": "debugger", "image": "busybox"}]});
        let found = find_images_of("", "EphemeralContainers", &legacy);
        assert_eq!(found[0].path, "ephemeralContainers[0].image");
        assert_eq!(found[0].image, "busybox");
    }

    #[test]
    fn default_deny_list_is_what_parsing_the_built_in_patterns_gives() {
        // The built-in patterns skip the checks: they must pass them, and mean the same.
        assert_eq!(
            RegistryPolicy::default(),
            RegistryPolicy::deny(&default_public_registries().collect::<Vec<_>>())
                .expect("valid built-in patterns")
        );
    }

    #[test]
    fn policy_settings_round_trip_and_refuse_bad_patterns() {
        let p: RegistryPolicy =
            serde_json::from_value(json!({"allowList": ["harbor.corp", "*.corp"]})).unwrap();
        assert_eq!(
            p,
            RegistryPolicy::allow(&["harbor.corp", "*.corp"]).unwrap()
        );
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back, json!({"allowList": ["harbor.corp", "*.corp"]}));
        let err =
            serde_json::from_value::<RegistryPolicy>(json!({"denyList": ["a.*.com"]})).unwrap_err();
        assert!(
            err.to_string().contains("a wildcard is allowed only"),
            "{err}"
        );
    }

    fn pod_spec() -> Value {
        json!({
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "harbor.corp/b:1"}, {"name": "noimage"}],
            "ephemeralContainers": [{"name": "e", "image": "ghcr.io/debug:1"}]
        })
    }

    /// The images found, checked to be the same in `v` decoded with only [`IMAGE_FIELDS`].
    fn paths(v: &Value) -> Vec<(String, String)> {
        let found: Vec<(String, String)> = find_images(v)
            .into_iter()
            .map(|o| (o.path, o.image))
            .collect();
        let projected = supsvc_policy_sdk::Projection::new(IMAGE_FIELDS)
            .decode(&v.to_string())
            .expect("JSON");
        let in_projected: Vec<(String, String)> = find_images(&projected)
            .into_iter()
            .map(|o| (o.path, o.image))
            .collect();
        assert_eq!(in_projected, found, "projected {projected}");
        found
    }

    #[test]
    fn finds_images_in_every_pod_template_kind() {
        let expect = |base: &str| {
            vec![
                (
                    format!("{base}.initContainers[0].image"),
                    "busybox".to_owned(),
                ),
                (format!("{base}.containers[0].image"), "nginx".to_owned()),
                (
                    format!("{base}.containers[1].image"),
                    "harbor.corp/b:1".to_owned(),
                ),
                (
                    format!("{base}.ephemeralContainers[0].image"),
                    "ghcr.io/debug:1".to_owned(),
                ),
            ]
        };
        let template = json!({"template": {"spec": pod_spec()}});
        let cases = [
            (
                json!({"apiVersion": "v1", "kind": "Pod", "spec": pod_spec()}),
                "spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": template}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": template}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": template}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": template}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "Job", "spec": template}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": template}),
                "spec.template.spec",
            ),
            (
                json!({"apiVersion": "v1", "kind": "PodTemplate", "template": {"spec": pod_spec()}}),
                "template.spec",
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": template}}}),
                "spec.jobTemplate.spec.template.spec",
            ),
        ];
        for (obj, base) in cases {
            assert_eq!(paths(&obj), expect(base), "{}", obj["kind"]);
        }
    }

    #[test]
    fn finds_images_in_carvel_fetches() {
        let fetch = json!([
            {"imgpkgBundle": {"image": "projects.registry.vmware.com/tkg/bundle:1"}},
            {"git": {"url": "https://example.com/repo"}},
            {"image": {"url": "harbor.corp/img:1"}}
        ]);
        let pkg = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
                         "spec": {"template": {"spec": {"fetch": fetch}}}});
        assert_eq!(
            paths(&pkg),
            [
                (
                    "spec.template.spec.fetch[0].imgpkgBundle.image".to_owned(),
                    "projects.registry.vmware.com/tkg/bundle:1".to_owned()
                ),
                (
                    "spec.template.spec.fetch[2].image.url".to_owned(),
                    "harbor.corp/img:1".to_owned()
                ),
            ]
        );
        let app = json!({"apiVersion": "kappctrl.k14s.io/v1alpha1", "kind": "App", "spec": {"fetch": fetch}});
        assert_eq!(paths(&app)[0].0, "spec.fetch[0].imgpkgBundle.image");
        assert_eq!(paths(&app)[1].0, "spec.fetch[2].image.url");
        let repo = json!({"apiVersion": "packaging.carvel.dev/v1alpha1", "kind": "PackageRepository",
                          "spec": {"fetch": {"imgpkgBundle": {"image": "quay.io/repo:1"}}}});
        assert_eq!(
            paths(&repo),
            [(
                "spec.fetch.imgpkgBundle.image".to_owned(),
                "quay.io/repo:1".to_owned()
            )]
        );
    }

    #[test]
    fn other_kinds_and_malformed_objects_have_no_images() {
        for obj in [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "nginx"}}),
            json!({"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": {"spec": pod_spec()}}}),
            json!({"apiVersion": "v1", "kind": "Pod"}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "nope"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": 3}]}}),
            json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package", "spec": {"template": {"spec": {"fetch": {}}}}}),
            json!(null),
            json!([]),
        ] {
            assert!(find_images(&obj).is_empty(), "{obj}");
        }
    }

    #[test]
    fn offending_images_lists_public_and_unparseable() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
            {"image": "nginx"}, {"image": "harbor.corp/ok:1"}, {"image": "Bad Image"}
        ]}});
        let got = offending_images(&pod, &RegistryPolicy::default());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].path, "spec.containers[0].image");
        assert_eq!(
            got[0].normalized.as_deref(),
            Some("docker.io/library/nginx:latest")
        );
        assert_eq!(got[0].registry.as_deref(), Some("docker.io"));
        assert_eq!(
            got[0].verdict,
            Some(RegistryVerdict::Public {
                pattern: "docker.io".into()
            })
        );
        assert_eq!(got[1].path, "spec.containers[2].image");
        assert!(got[1].error.is_some());
    }
}
