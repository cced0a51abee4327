//! The built-in kinds from data: group, version, kind, plural (`URL_PATH_SEGMENT`) and scope come from
//! k8s-openapi's `Resource` metadata (generated from Kubernetes' own OpenAPI document), so the simulator
//! serves what a real 1.33 server serves under the same names. What k8s-openapi does not carry is given
//! beside each type, as the real server's discovery document lists it (`kubectl api-resources`): short
//! names, categories and whether the kind has a `status` subresource.
//!
//! The kinds with their own printer columns ([`super::registry::RESOURCES`]) keep them; every other kind
//! prints `NAME` and `AGE`, as kube-apiserver's default table convertor does.

use std::sync::OnceLock;

use k8s_openapi::api::{
    apps, autoscaling, certificates, coordination, core, discovery, flowcontrol, networking, rbac,
    scheduling, storage,
};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};

use super::Gvr;
use super::registry::{Cell, Column, NAME, RESOURCES, ResourceType};

/// Whether a k8s-openapi scope type is namespaced.
pub trait Scoped {
    const NAMESPACED: bool;
}
impl Scoped for ClusterResourceScope {
    const NAMESPACED: bool = false;
}
impl Scoped for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

/// The group, version and plural of a k8s-openapi type.
pub const fn gvr_of<T: Resource>() -> Gvr {
    Gvr {
        group: T::GROUP,
        version: T::VERSION,
        resource: T::URL_PATH_SEGMENT,
    }
}

/// One built-in kind: k8s-openapi's metadata and what discovery adds to it.
#[derive(Debug)]
struct Kind {
    gvr: Gvr,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
}

const fn kind<T: Resource>(
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
) -> Kind
where
    T::Scope: Scoped,
{
    Kind {
        gvr: gvr_of::<T>(),
        kind: T::KIND,
        namespaced: <T::Scope as Scoped>::NAMESPACED,
        short_names,
        categories,
        status,
    }
}

/// The kinds a client meets on any cluster, beyond those with their own columns.
const KINDS: &[Kind] = &[
    kind::<core::v1::Node>(&["no"], &[], true),
    kind::<core::v1::PersistentVolume>(&["pv"], &[], true),
    kind::<core::v1::Endpoints>(&["ep"], &[], false),
    kind::<core::v1::LimitRange>(&["limits"], &[], false),
    kind::<core::v1::ResourceQuota>(&["quota"], &[], true),
    kind::<core::v1::PodTemplate>(&[], &[], false),
    kind::<apps::v1::ControllerRevision>(&[], &[], false),
    kind::<autoscaling::v2::HorizontalPodAutoscaler>(&["hpa"], &["all"], true),
    kind::<certificates::v1::CertificateSigningRequest>(&["csr"], &[], true),
    kind::<coordination::v1::Lease>(&[], &[], false),
    kind::<discovery::v1::EndpointSlice>(&[], &[], false),
    kind::<networking::v1::Ingress>(&["ing"], &[], true),
    kind::<networking::v1::IngressClass>(&[], &[], false),
    kind::<networking::v1::NetworkPolicy>(&["netpol"], &[], false),
    kind::<rbac::v1::Role>(&[], &[], false),
    kind::<rbac::v1::RoleBinding>(&[], &[], false),
    kind::<rbac::v1::ClusterRole>(&[], &[], false),
    kind::<rbac::v1::ClusterRoleBinding>(&[], &[], false),
    kind::<scheduling::v1::PriorityClass>(&["pc"], &[], false),
    kind::<storage::v1::StorageClass>(&["sc"], &[], false),
    kind::<storage::v1::CSIDriver>(&[], &[], false),
    kind::<storage::v1::CSINode>(&[], &[], false),
    kind::<storage::v1::VolumeAttachment>(&[], &[], true),
    kind::<apiregistration::v1::APIService>(&[], &["api-extensions"], true),
    kind::<flowcontrol::v1::FlowSchema>(&[], &[], true),
    kind::<flowcontrol::v1::PriorityLevelConfiguration>(&[], &[], true),
];

const AGE: Column = Column {
    name: "Age",
    kind: "string",
    description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
    priority: 0,
    cell: Cell::Age("metadata.creationTimestamp"),
};

/// Every built-in kind: the hand-written ones with their columns, then the others of [`KINDS`]. Made once
/// per process.
pub fn types() -> &'static [&'static ResourceType] {
    static TYPES: OnceLock<Vec<&'static ResourceType>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut out: Vec<&'static ResourceType> = RESOURCES.iter().collect();
        for k in KINDS {
            if out.iter().any(|r| r.gvr == k.gvr) {
                continue;
            }
            let rt = ResourceType {
                gvr: k.gvr,
                kind: k.kind,
                singular: Box::leak(k.kind.to_lowercase().into_boxed_str()),
                namespaced: k.namespaced,
                short_names: k.short_names,
                categories: k.categories,
                status_subresource: k.status,
                has_generation: true,
                custom: false,
                scale: None,
                columns: &[NAME, AGE],
            };
            out.push(Box::leak(Box::new(rt)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kinds_a_client_meets_are_served_with_k8s_openapi_names() {
        let find = |g: &str, r: &str| {
            types()
                .iter()
                .find(|t| t.gvr.group == g && t.gvr.resource == r)
        };
        let node = find("", "nodes").unwrap();
        assert!(!node.namespaced && node.kind == "Node" && node.singular == "node");
        let csr = find("certificates.k8s.io", "certificatesigningrequests").unwrap();
        assert_eq!((csr.gvr.version, csr.short_names), ("v1", &["csr"][..]));
        let api_service = find("apiregistration.k8s.io", "apiservices").unwrap();
        assert!(!api_service.namespaced);
        // A hand-written kind keeps its columns; no kind is served twice.
        assert!(find("", "pods").unwrap().columns.len() > 2);
        for t in types() {
            assert_eq!(
                types().iter().filter(|x| x.gvr == t.gvr).count(),
                1,
                "{:?}",
                t.gvr
            );
        }
    }
}
