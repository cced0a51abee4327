//! Read-only views of the Carvel objects (PackageInstall, App, Package) as kapp-controller writes them.

/// API group and version of PackageInstall.
pub const PACKAGING_API_VERSION: &str = "packaging.carvel.dev/v1alpha1";
/// API group and version of App.
pub const KAPPCTRL_API_VERSION: &str = "kappctrl.k14s.io/v1alpha1";
/// API group and version of Package.
pub const DATA_PACKAGING_API_VERSION: &str = "data.packaging.carvel.dev/v1alpha1";

/// Where a Supervisor keeps the PackageInstalls of its Supervisor Services.
pub const SUPERVISOR_SERVICES_NAMESPACE: &str = "vmware-system-supervisor-services";
