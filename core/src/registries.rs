//! The well-known public registries and source hosts, as data with a source per entry: the default
//! deny-lists of the registry guard, `diagnose` and `override-image` (one list, so they never disagree),
//! and the names Docker Hub answers under.
//!
//! What counts: a registry or host an air-gapped Supervisor cannot reach and that publishes images,
//! Helm charts or Carvel bundles to anyone. Decided, not forgotten:
//! - Cloud registries that are an organisation's *own* private registry, one per account, are not
//!   listed: Amazon ECR private (`<account>.dkr.ecr.<region>.amazonaws.com`) and Azure Container
//!   Registry (`<name>.azurecr.io`). On a Supervisor that reaches them they are private; an
//!   air-gapped Supervisor should run the guard with `allowedRegistries`, which refuses them too.
//! - Google's `gcr.io` and Artifact Registry (`*.pkg.dev`) are listed although they also host private
//!   repositories: that is where Google and Kubernetes publish (registry.k8s.io serves from
//!   `*.pkg.dev`), and gcr.io is being moved there.

/// The host names Docker Hub's registry answers under; an image, an `allowedRegistries` or a
/// `deniedRegistries` entry written with any of them means Docker Hub, and is compared as `docker.io`.
///
/// Sources: `docker.io` and `index.docker.io` are distribution/reference's `defaultDomain` and
/// `legacyDefaultDomain` (<https://github.com/distribution/reference/blob/main/normalize.go>, which
/// also notes the registry's real host is `registry-1.docker.io`); `registry.hub.docker.com` and
/// `hub.docker.com` are the Hub's older registry and web names, which clients still send
/// (<https://docs.docker.com/docker-hub/>).
pub const DOCKER_HUB_HOSTS: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
    "hub.docker.com",
];

/// The canonical name of Docker Hub, as images are normalised (`nginx` is `docker.io/library/nginx`).
pub const DOCKER_HUB: &str = "docker.io";

/// `docker.io` for any of [`DOCKER_HUB_HOSTS`] (ASCII case-insensitive), else `host` unchanged.
pub fn canonical_host(host: &str) -> &str {
    if DOCKER_HUB_HOSTS
        .iter()
        .any(|alias| alias.eq_ignore_ascii_case(host))
    {
        DOCKER_HUB
    } else {
        host
    }
}

/// Whether `host` is one of the names of Docker Hub.
pub fn is_docker_hub(host: &str) -> bool {
    canonical_host(host) == DOCKER_HUB
}

/// One well-known public registry or host: a pattern (`host`, or `*.domain` for every sub-domain),
/// who runs it, and where that is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicEntry {
    /// A registry pattern as settings take it (see `image::RegistryPattern`), without port or path.
    pub pattern: &'static str,
    /// Who publishes there.
    pub operator: &'static str,
    /// Where the entry comes from (a documentation page or a repository path).
    pub source: &'static str,
}

const fn entry(pattern: &'static str, operator: &'static str, source: &'static str) -> PublicEntry {
    PublicEntry {
        pattern,
        operator,
        source,
    }
}

/// The well-known public container (OCI) registries: the registry guard's default `deniedRegistries`,
/// and what `diagnose` and `override-image` call public. Images, imgpkg bundles, `image` fetches and
/// OCI Helm charts (`oci://`) are judged against it.
pub const PUBLIC_REGISTRIES: &[PublicEntry] = &[
    // Docker Hub: every alias of DOCKER_HUB_HOSTS is compared as docker.io.
    entry(
        "docker.io",
        "Docker Hub",
        "https://github.com/distribution/reference/blob/main/normalize.go",
    ),
    entry(
        "*.docker.io",
        "Docker Hub (index., registry-1.)",
        "https://github.com/distribution/reference/blob/main/normalize.go",
    ),
    // Where the Supervisor Services, their imgpkg bundles and the TKG/VKS packages are published.
    entry(
        "projects.registry.vmware.com",
        "VMware (Supervisor Services, TKG packages; before Broadcom)",
        "https://github.com/vsphere-tmm/Supervisor-Services",
    ),
    entry(
        "packages.broadcom.com",
        "Broadcom (VCF, vSphere Supervisor Services)",
        "https://github.com/vsphere-tmm/Supervisor-Services",
    ),
    entry(
        "*.packages.broadcom.com",
        "Broadcom (projects.packages.broadcom.com: Supervisor Services, VKS packages)",
        "https://github.com/vsphere-tmm/Supervisor-Services",
    ),
    entry(
        "registry.tanzu.vmware.com",
        "VMware Tanzu Network registry",
        "https://docs.vmware.com/en/VMware-Tanzu-Application-Platform/",
    ),
    // Kubernetes and the clouds.
    entry(
        "registry.k8s.io",
        "Kubernetes",
        "https://kubernetes.io/blog/2023/03/10/image-registry-redirect/",
    ),
    entry(
        "k8s.gcr.io",
        "Kubernetes (frozen predecessor of registry.k8s.io)",
        "https://kubernetes.io/blog/2023/03/10/image-registry-redirect/",
    ),
    entry(
        "gcr.io",
        "Google Container Registry",
        "https://cloud.google.com/container-registry/docs/overview",
    ),
    entry(
        "*.gcr.io",
        "Google Container Registry (us., eu., asia., mirror.)",
        "https://cloud.google.com/container-registry/docs/pushing-and-pulling",
    ),
    entry(
        "*.pkg.dev",
        "Google Artifact Registry (<region>-docker.pkg.dev)",
        "https://cloud.google.com/artifact-registry/docs/docker/pushing-and-pulling",
    ),
    entry(
        "public.ecr.aws",
        "Amazon ECR Public",
        "https://docs.aws.amazon.com/AmazonECR/latest/public/public-registries.html",
    ),
    entry(
        "mcr.microsoft.com",
        "Microsoft Artifact Registry",
        "https://github.com/microsoft/containerregistry",
    ),
    entry(
        "ghcr.io",
        "GitHub Container Registry",
        "https://docs.github.com/en/packages/working-with-a-github-packages-registry/working-with-the-container-registry",
    ),
    entry(
        "docker.pkg.github.com",
        "GitHub Packages Docker registry (legacy)",
        "https://docs.github.com/en/packages/working-with-a-github-packages-registry/working-with-the-docker-registry",
    ),
    entry(
        "registry.gitlab.com",
        "GitLab.com container registry",
        "https://docs.gitlab.com/ee/user/packages/container_registry/",
    ),
    entry("quay.io", "Red Hat Quay.io", "https://docs.quay.io/"),
    entry(
        "registry.redhat.io",
        "Red Hat (authenticated)",
        "https://access.redhat.com/RegistryAuthentication",
    ),
    entry(
        "registry.access.redhat.com",
        "Red Hat (public)",
        "https://access.redhat.com/RegistryAuthentication",
    ),
    entry(
        "nvcr.io",
        "NVIDIA NGC",
        "https://docs.nvidia.com/ngc/gpu-cloud/ngc-user-guide/index.html",
    ),
    entry(
        "docker.elastic.co",
        "Elastic",
        "https://www.docker.elastic.co/",
    ),
    entry(
        "cgr.dev",
        "Chainguard Images",
        "https://edu.chainguard.dev/chainguard/chainguard-images/overview/",
    ),
    entry(
        "container-registry.oracle.com",
        "Oracle",
        "https://container-registry.oracle.com/",
    ),
    entry(
        "icr.io",
        "IBM Cloud Container Registry (public images)",
        "https://cloud.ibm.com/docs/Registry?topic=Registry-registry_overview",
    ),
    entry("registry.suse.com", "SUSE", "https://registry.suse.com/"),
];

/// The well-known public hosts of `http`, `git` and Helm repository (`https://`) fetches: the registry
/// guard's default `deniedHosts`. A Carvel fetch from one of them fails on an air-gapped Supervisor
/// exactly as a pull from a public registry does.
pub const PUBLIC_SOURCE_HOSTS: &[PublicEntry] = &[
    entry(
        "github.com",
        "GitHub (git, release downloads)",
        "https://docs.github.com/en/get-started/using-git/about-remote-repositories",
    ),
    entry(
        "raw.githubusercontent.com",
        "GitHub raw file downloads",
        "https://docs.github.com/en/repositories/working-with-files/using-files/viewing-a-file",
    ),
    entry(
        "objects.githubusercontent.com",
        "GitHub release assets",
        "https://docs.github.com/en/repositories/releasing-projects-on-github/about-releases",
    ),
    entry(
        "*.github.io",
        "GitHub Pages (most Helm chart repositories)",
        "https://helm.sh/docs/howto/chart_releaser_action/",
    ),
    entry(
        "gitlab.com",
        "GitLab.com",
        "https://docs.gitlab.com/ee/user/project/repository/",
    ),
    entry(
        "bitbucket.org",
        "Bitbucket Cloud",
        "https://support.atlassian.com/bitbucket-cloud/docs/clone-a-git-repository/",
    ),
    entry(
        "charts.bitnami.com",
        "Bitnami Helm charts",
        "https://github.com/bitnami/charts",
    ),
    entry(
        "charts.helm.sh",
        "Helm stable and incubator (archived)",
        "https://helm.sh/blog/new-location-stable-incubator-charts/",
    ),
    entry(
        "artifacthub.io",
        "Artifact Hub",
        "https://artifacthub.io/docs/",
    ),
    entry(
        "*.storage.googleapis.com",
        "Google Cloud Storage (chart and release buckets)",
        "https://cloud.google.com/storage/docs/request-endpoints",
    ),
    entry(
        "storage.googleapis.com",
        "Google Cloud Storage",
        "https://cloud.google.com/storage/docs/request-endpoints",
    ),
    entry(
        "dl.k8s.io",
        "Kubernetes release downloads",
        "https://kubernetes.io/releases/download/",
    ),
    entry(
        "packages.broadcom.com",
        "Broadcom downloads",
        "https://github.com/vsphere-tmm/Supervisor-Services",
    ),
    entry(
        "*.packages.broadcom.com",
        "Broadcom downloads (projects.packages.broadcom.com/artifactory)",
        "https://github.com/vsphere-tmm/Supervisor-Services",
    ),
    entry(
        "vmwaresaas.jfrog.io",
        "VMware's former public Artifactory (Supervisor Service definitions)",
        "https://github.com/vsphere-tmm/Supervisor-Services",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_docker_hub_is_docker_io_and_nothing_else_is() {
        for host in DOCKER_HUB_HOSTS {
            assert_eq!(canonical_host(host), DOCKER_HUB, "{host}");
            assert_eq!(canonical_host(&host.to_ascii_uppercase()), DOCKER_HUB);
        }
        for host in [
            "docker.com",
            "hub.docker.io",
            "docker.io.example.com",
            "quay.io",
        ] {
            assert_eq!(canonical_host(host), host);
        }
    }

    #[test]
    fn every_entry_is_a_valid_pattern_with_a_source_and_none_is_listed_twice() {
        for list in [PUBLIC_REGISTRIES, PUBLIC_SOURCE_HOSTS] {
            let mut seen = std::collections::BTreeSet::new();
            for e in list {
                crate::image::RegistryPattern::parse(e.pattern)
                    .unwrap_or_else(|err| panic!("{}: {err}", e.pattern));
                assert!(!e.pattern.contains(['/', ':']), "{}", e.pattern);
                assert!(e.source.starts_with("https://"), "{}", e.pattern);
                assert!(!e.operator.is_empty(), "{}", e.pattern);
                assert!(seen.insert(e.pattern), "{} listed twice", e.pattern);
                // RegistryPattern::known_host takes `docker.io` as the one name of Docker Hub.
                assert!(
                    !is_docker_hub(e.pattern) || e.pattern == DOCKER_HUB,
                    "{}: write docker.io",
                    e.pattern
                );
            }
        }
    }
}
