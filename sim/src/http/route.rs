//! URL routing: from a request path to what it addresses (pure; tested with tables).

use crate::api::registry::{Registry, ResourceType};

/// What a request path addresses.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    Health,
    Version,
    /// `GET /metrics`
    Metrics,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    Resources {
        group: String,
        version: String,
    },
    /// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`
    AccessReview,
    /// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews`
    WhoAmI,
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3 {
        group: String,
        version: String,
    },
    Faults,
    /// `GET /_sim/audit`
    Audit,
    /// A resource URL.
    Object(Target),
    NotFound,
}

/// A resource collection or object.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

fn served_version(registry: &Registry, group: &str, version: &str) -> bool {
    super::discovery::REVIEWS
        .iter()
        .any(|(g, v, _, _)| *g == group && *v == version)
        || registry.serves_version(group, version)
}

/// Routes `path` (without the query) among the kinds `registry` serves.
pub fn route(registry: &Registry, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["version"] => Route::Version,
        ["metrics"] => Route::Metrics,
        ["_sim", "faults"] => Route::Faults,
        ["_sim", "audit"] => Route::Audit,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", "api", "v1"] => Route::OpenApiV3 {
            group: String::new(),
            version: "v1".into(),
        },
        ["openapi", "v3", "apis", g, v] if served_version(registry, g, v) => Route::OpenApiV3 {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => Route::AccessReview,
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] => Route::WhoAmI,
        ["apis", g]
            if super::discovery::all_groups(registry)
                .iter()
                .any(|x| x.name == *g) =>
        {
            Route::Group(g.to_string())
        }
        ["api", "v1"] => Route::Resources {
            group: String::new(),
            version: "v1".into(),
        },
        ["apis", g, v] if served_version(registry, g, v) => Route::Resources {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["api", "v1", rest @ ..] => resource_route(registry, "", "v1", rest),
        ["apis", g, v, rest @ ..] => resource_route(registry, g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(registry: &Registry, group: &str, version: &str, rest: &[&str]) -> Route {
    let find = |r: &str| registry.lookup_path(group, version, r);
    let target =
        |rt: &'static ResourceType, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
            if rt.namespaced != ns.is_some() && (ns.is_some() || name.is_some()) {
                return Route::NotFound;
            }
            if sub.is_some_and(|s| !rt.has_subresource(s)) {
                return Route::NotFound;
            }
            Route::Object(Target {
                rt,
                namespace: ns.map(String::from),
                name: name.map(String::from),
                subresource: sub.map(String::from),
            })
        };
    match rest {
        ["namespaces", ns, r, tail @ ..] if let Some(rt) = find(r).filter(|rt| rt.namespaced) => {
            match tail {
                [] => target(rt, Some(ns), None, None),
                [name] => target(rt, Some(ns), Some(name), None),
                [name, sub] => target(rt, Some(ns), Some(name), Some(sub)),
                _ => Route::NotFound,
            }
        }
        [r, tail @ ..] => match find(r) {
            Some(rt) => match tail {
                // A namespaced kind across all namespaces.
                [] => Route::Object(Target {
                    rt,
                    namespace: None,
                    name: None,
                    subresource: None,
                }),
                [name] if !rt.namespaced => target(rt, None, Some(name), None),
                [name, sub] if !rt.namespaced => target(rt, None, Some(name), Some(sub)),
                _ => Route::NotFound,
            },
            None => Route::NotFound,
        },
        [] => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiServer, gvr};

    /// The kinds of a server with its shipped CRDs.
    fn registry() -> &'static Registry {
        static API: std::sync::OnceLock<std::sync::Arc<ApiServer>> = std::sync::OnceLock::new();
        API.get_or_init(ApiServer::new).registry()
    }

    type Routed = (
        crate::api::Gvr,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn object(path: &str) -> Option<Routed> {
        match route(registry(), path) {
            Route::Object(t) => Some((t.rt.gvr, t.namespace, t.name, t.subresource)),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            object("/api/v1/namespaces"),
            Some((gvr::NAMESPACES, None, None, None))
        );
        assert_eq!(
            object("/api/v1/namespaces/a"),
            Some((gvr::NAMESPACES, None, s("a"), None))
        );
        assert_eq!(
            object("/api/v1/namespaces/a/status"),
            Some((gvr::NAMESPACES, None, s("a"), s("status")))
        );
        assert_eq!(
            object("/api/v1/namespaces/a/configmaps"),
            Some((gvr::CONFIG_MAPS, s("a"), None, None))
        );
        assert_eq!(
            object("/api/v1/namespaces/a/configmaps/b"),
            Some((gvr::CONFIG_MAPS, s("a"), s("b"), None))
        );
        assert_eq!(
            object("/api/v1/configmaps"),
            Some((gvr::CONFIG_MAPS, None, None, None))
        );
        assert_eq!(object("/api/v1/configmaps/b"), None);
        assert_eq!(object("/api/v1/namespaces/a/configmaps/b/status"), None);
        assert_eq!(
            object("/apis/packaging.carvel.dev/v1alpha1/namespaces/n/packageinstalls/p/status"),
            Some((gvr::PACKAGE_INSTALLS, s("n"), s("p"), s("status")))
        );
        assert_eq!(
            object("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/w"),
            Some((gvr::VALIDATING_WEBHOOK_CONFIGURATIONS, None, s("w"), None))
        );
        assert_eq!(object("/apis/apps/v1/namespaces/n/widgets"), None);
        assert_eq!(
            object("/apis/apps/v1/namespaces/n/statefulsets/db/scale"),
            Some((gvr::STATEFUL_SETS, s("n"), s("db"), s("scale")))
        );
        assert_eq!(
            object("/api/v1/namespaces/n/persistentvolumeclaims/d/scale"),
            None
        );
        assert_eq!(
            object("/api/v1/namespaces/n/pods/p/ephemeralcontainers"),
            Some((gvr::PODS, s("n"), s("p"), s("ephemeralcontainers")))
        );
        assert_eq!(
            object("/api/v1/namespaces/n/configmaps/c/ephemeralcontainers"),
            None
        );
        assert_eq!(
            object("/apis/batch/v1/namespaces/n/cronjobs/c"),
            Some((gvr::CRON_JOBS, s("n"), s("c"), None))
        );
        assert_eq!(
            object("/apis/packaging.carvel.dev/v1alpha1/namespaces/n/packagerepositories/r/status"),
            Some((gvr::PACKAGE_REPOSITORIES, s("n"), s("r"), s("status")))
        );
        assert_eq!(route(registry(), "/apis/apps/v2"), Route::NotFound);
        assert_eq!(
            route(registry(), "/apis/apps/v1"),
            Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(route(registry(), "/readyz"), Route::Health);
        assert_eq!(route(registry(), "/nope"), Route::NotFound);
    }
}
