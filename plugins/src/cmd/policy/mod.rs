//! `kubectl supsvc policy ...`: write, try and measure admission policies for supsvc-webhook.
//!
//! - `run` evaluates a `.wasm` policy on one AdmissionReview (or bare AdmissionRequest), like
//!   `kwctl run`, through the host supsvc-webhook runs ([`supsvc_policy_host`]).
//! - `bench` times the webhook's evaluation path (a fresh store per evaluation) on one request.
//! - `new` scaffolds a policy crate that builds and passes its own test out of the box.
//! - `push` and `pull` move a module to and from an OCI registry as Kubewarden distributes
//!   policies (config `application/vnd.wasm.config.v1+json`, one `application/vnd.wasm.content.layer.v1+wasm`
//!   layer), through [`supsvc_oci`]: the webhook loads them as `registry://` modules.
//!
//! `run` and `bench` need the cargo feature `policy-host` (off by default, on with `full`): it links
//! supsvc-policy-host, and with it wasmtime and Cranelift, which the operator's binary leaves out.
//! The unit tests build them whatever the features, so `cargo test --workspace` covers them.

#[cfg(any(feature = "policy-host", test))]
mod bench;
#[cfg(any(feature = "policy-host", test))]
mod eval;
mod new;
#[cfg(any(feature = "registry", test))]
pub(crate) mod registry;
#[cfg(any(feature = "policy-host", test))]
mod run;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::cli::{Output, parse_duration};
use crate::error::Result;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  kubectl supsvc policy new my-policy\n  \
  kubectl supsvc policy run -r review.json -s '{\"deniedNames\":[\"nginx\"]}' my_policy.wasm\n  \
  kubectl supsvc policy run -r review.json -s settings.yaml -o yaml my_policy.wasm\n  \
  kubectl supsvc policy bench -r review.json -s settings.yaml --duration 10s my_policy.wasm\n  \
  kubectl supsvc policy push my_policy.wasm registry://registry.example.com/policies/my-policy:v1\n  \
  kubectl supsvc policy pull registry://registry.example.com/policies/my-policy:v1 -o my_policy.wasm")]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a WASM policy on one admission request and print its verdict (like `kwctl run`).
    Run(RunArgs),
    /// Measure a WASM policy's per-evaluation latency, as supsvc-webhook evaluates it.
    Bench(BenchArgs),
    /// Create a policy crate (Rust, for wasm32-unknown-unknown) that builds and passes its test.
    New(NewArgs),
    /// Push a .wasm policy to an OCI registry (Kubewarden's artifact format, as `kwctl push`).
    Push(PushArgs),
    /// Pull a policy from an OCI registry into a .wasm file, verifying its digests.
    Pull(PullArgs),
}

/// How to reach the registry: credentials, trust, plain HTTP.
#[derive(Debug, Clone, Args)]
pub struct RegistryAccess {
    /// A docker config.json with the registry's credentials (default: $DOCKER_CONFIG/config.json,
    /// else ~/.docker/config.json). $SUPSVC_REGISTRY_USERNAME and $SUPSVC_REGISTRY_PASSWORD, when
    /// both set, are used for every registry instead.
    #[arg(long, env = "SUPSVC_REGISTRY_CONFIG", value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// PEM certificate(s) of a private CA that signed the registry's certificate (trusted in
    /// addition to the system's roots).
    #[arg(long, value_name = "FILE")]
    pub registry_ca_file: Option<PathBuf>,
    /// Reach this registry (HOST[:PORT]) over plain HTTP; repeatable. Others are HTTPS only.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Prints the reference pinned to the pushed manifest's digest     (registry://HOST/REPO:TAG@sha256:...): give that to the webhook to load exactly this module."
)]
pub struct PushArgs {
    /// The policy module to push.
    #[arg(value_name = "MODULE.wasm")]
    pub module: PathBuf,
    /// Where: [registry://]HOST[:PORT]/REPOSITORY:TAG.
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub access: RegistryAccess,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The manifest is checked against a pinned digest (REF@sha256:...), the module     against the manifest's layer digest; a mismatch writes nothing."
)]
pub struct PullArgs {
    /// What: [registry://]HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST].
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The file to write (default: the repository's last component with .wasm, here).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub access: RegistryAccess,
}

/// What to evaluate: a module, its settings, a request, and the webhook's per-policy limits.
#[derive(Debug, Clone, Args)]
pub struct Evaluation {
    /// The policy module (a waPC `.wasm`, built with supsvc-policy-sdk, Kubewarden's SDKs or by hand).
    #[arg(value_name = "MODULE.wasm")]
    pub module: PathBuf,
    /// An AdmissionReview (admission.k8s.io/v1) or a bare AdmissionRequest, as JSON ("-" for stdin).
    #[arg(short = 'r', long, value_name = "FILE")]
    pub request: PathBuf,
    /// The policy's settings: inline JSON (`{"key": ...}`), or a JSON or YAML file ("-" for stdin).
    /// Default: `{}`, as in the webhook's configuration.
    #[arg(short = 's', long, value_name = "FILE|JSON")]
    pub settings: Option<String>,
    /// The policy's name in messages (the webhook's `policies[].name`). Default: the module's file name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long one evaluation may run (the webhook's `timeout`), e.g. 50ms, 2s.
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// The policy's linear memory cap (the webhook's `memoryLimit`), e.g. 16Mi.
    #[arg(long, default_value = "64Mi", value_name = "QUANTITY")]
    pub memory_limit: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when the policy gave a verdict, allowed or denied (1 for denied with \
    --fail-on-deny); 1 when the module cannot be loaded, validate_settings refuses the settings or the \
    evaluation fails (trap, invalid output, memory limit); 3 when it times out; 2 for a request or \
    settings that cannot be read."
)]
pub struct RunArgs {
    #[command(flatten)]
    pub eval: Evaluation,
    /// Print the AdmissionReview response supsvc-webhook would send for this policy alone.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Exit 1 when the policy denies the request (default: 0 for any verdict).
    #[arg(long)]
    pub fail_on_deny: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub eval: Evaluation,
    /// Measure this many evaluations (after a tenth as many unmeasured to warm up).
    #[arg(long, value_name = "N", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Measure for this long (after a tenth of it to warm up). Default: 3s.
    #[arg(short = 'd', long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
}

/// Which SDK a new policy is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Sdk {
    /// supsvc-policy-sdk (not on crates.io: a path dependency on a supsvc checkout, see --sdk-path).
    #[default]
    Supsvc,
    /// crates.io's kubewarden-policy-sdk, as Kubewarden's rust-policy-template uses it.
    Kubewarden,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The crate is its own workspace, with a test, an AdmissionRequest in test_data/ and a \
    README saying how to build, test, run, bench and deploy it.\n\n\
    supsvc-policy-sdk is not on crates.io: the crate depends on it by path. --sdk-path (or $SUPSVC_SDK_PATH) \
    names a supsvc checkout or its policies/sdk; without it, the checkout this kubectl-supsvc was built from is \
    used when it is still there. --sdk kubewarden needs no checkout: it depends on crates.io only."
)]
pub struct NewArgs {
    /// The crate's name (letters, digits, - and _), e.g. required-labels.
    pub name: String,
    /// The directory to create (default: ./NAME). It must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The SDK the policy is written with.
    #[arg(long, value_enum, default_value_t)]
    pub sdk: Sdk,
    /// Where supsvc-policy-sdk is: a supsvc checkout, or its policies/sdk directory.
    #[arg(long, env = "SUPSVC_SDK_PATH", value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

pub fn run(args: &PolicyArgs) -> Result<()> {
    match &args.command {
        PolicyCommand::New(args) => new::run(args),
        #[cfg(any(feature = "policy-host", test))]
        PolicyCommand::Run(args) => run::run(args),
        #[cfg(any(feature = "policy-host", test))]
        PolicyCommand::Bench(args) => bench::run(args),
        #[cfg(not(any(feature = "policy-host", test)))]
        PolicyCommand::Run(_) | PolicyCommand::Bench(_) => Err(without_host()),
        #[cfg(any(feature = "registry", test))]
        PolicyCommand::Push(args) => registry::push(args),
        #[cfg(any(feature = "registry", test))]
        PolicyCommand::Pull(args) => registry::pull(args),
        #[cfg(not(any(feature = "registry", test)))]
        PolicyCommand::Push(_) | PolicyCommand::Pull(_) => Err(without_registry()),
    }
}

#[cfg(not(any(feature = "registry", test)))]
fn without_registry() -> crate::error::Failure {
    crate::error::Failure::new(
        "this kubectl-supsvc was built without registry support (cargo feature `registry`): \
         `policy push` and `policy pull` need an OCI client",
        "install a build with it from a supsvc checkout: `cargo install --path plugins --features registry` \
         (or `--features full`); `kwctl push|pull` and `oras` move the same artifacts",
    )
}

#[cfg(not(any(feature = "policy-host", test)))]
fn without_host() -> crate::error::Failure {
    crate::error::Failure::new(
        "this kubectl-supsvc was built without the policy host (cargo feature `policy-host`): \
         `policy run` and `policy bench` need wasmtime, which the binary krew ships leaves out",
        "install a build with it from a supsvc checkout: `cargo install --path plugins --features policy-host` \
         (or `--features full`, with the demo too)",
    )
}
