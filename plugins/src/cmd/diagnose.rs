//! `kubectl supsvc diagnose [SERVICE]`: what is wrong, the evidence, what to run.

use serde::Serialize;
use supsvc_core::diagnose::{Finding, Severity, diagnose};
use supsvc_core::fix::preconditions::{self, Ground, Overrides, Preconditions};
use supsvc_core::image::RegistryPolicy;

use crate::cli::DiagnoseArgs;
use crate::cli::Output;
use crate::cmd::Session;
use crate::error::{Exit, Failure, Result};
use crate::observe;
use crate::output::{render, truncate};

/// The registry settings from the flags: an allow-list, a deny-list, or the default deny-list.
pub fn policy(args: &DiagnoseOptions) -> Result<RegistryPolicy> {
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let policy = if !args.allow_registries.is_empty() {
        RegistryPolicy::allow(&refs(&args.allow_registries))
    } else if !args.deny_registries.is_empty() {
        RegistryPolicy::deny(&refs(&args.deny_registries))
    } else {
        Ok(RegistryPolicy::default())
    };
    policy.map_err(|e| Failure::usage(e.to_string(), "a pattern is a host (`harbor.corp`), a host and port, `*.example.com`, or a host and repository prefix"))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report<'a> {
    pub service: &'a str,
    pub namespace: &'a str,
    pub cluster: &'a str,
    pub context: &'a str,
    pub domain_namespaces: Vec<String>,
    pub children: Vec<String>,
    pub findings: &'a [Finding],
    /// Whether `kubectl supsvc fix` would act here, on which ground, or why it would refuse.
    pub fix_preconditions: Preconditions,
}

/// One paragraph: would `fix` act, on which ground, or why not.
pub fn render_preconditions(p: &Preconditions, service: &str) -> String {
    let mut out = String::new();
    match (&p.ground, &p.refusal) {
        // Reconciled: "would act" would read as if something were broken.
        (Some(g @ Ground::NothingToRepair), _) => out.push_str(&format!(
            "kubectl supsvc fix {service}: nothing to repair; it would only remove what an earlier run left, if anything (precondition held: {})\n",
            g.as_str()
        )),
        (Some(g), _) => out.push_str(&format!(
            "kubectl supsvc fix {service}: would act (precondition held: {})\n",
            g.as_str()
        )),
        (None, Some(r)) => out.push_str(&format!(
            "kubectl supsvc fix {service}: would refuse ({}): {}\n  override: {}\n",
            serde_json::to_value(r.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            r.why,
            r.override_flag
        )),
        (None, None) => {}
    }
    for pause in &p.foreign_pauses {
        out.push_str(&format!("  existing pause: {}\n", pause.describe()));
    }
    out
}

/// The human report.
pub fn render_text(report: &Report<'_>) -> String {
    let mut out = format!(
        "Service {} in {} on cluster \"{}\" (context \"{}\"): {} child PackageInstall(s){}\n",
        report.service,
        report.namespace,
        report.cluster,
        report.context,
        report.children.len(),
        if report.domain_namespaces.is_empty() {
            String::new()
        } else {
            format!(" in {}", report.domain_namespaces.join(", "))
        }
    );
    if report.findings.is_empty() {
        out.push_str("No problems found.\n");
        out.push_str(&render_preconditions(
            &report.fix_preconditions,
            report.service,
        ));
        return out;
    }
    for f in report.findings {
        let level = match f.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        };
        out.push_str(&format!(
            "\n{level} [{}] {}\n",
            serde_json::to_value(f.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            f.what
        ));
        if !f.evidence.is_empty() {
            out.push_str("  evidence:\n");
            for e in &f.evidence {
                out.push_str(&format!(
                    "    {}  {}: {}\n",
                    e.object,
                    e.field,
                    truncate(&e.value, 240)
                ));
            }
        }
        if !f.remedy.is_empty() {
            out.push_str("  run:\n");
            for r in &f.remedy {
                out.push_str(&format!("    {r}\n"));
            }
        }
    }
    out.push('\n');
    out.push_str(&render_preconditions(
        &report.fix_preconditions,
        report.service,
    ));
    out
}
/// What `diagnose` is asked to do: built from clap's [`crate::cli::DiagnoseArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// The Supervisor Service (its PackageInstall's name).
    pub service: String,
    /// Domain namespaces of the children, when kapp's data cannot say (empty: from kapp's data).
    pub domain_namespaces: Vec<String>,
    /// Output format.
    pub output: Option<Output>,
    /// Registries that are private (an allow-list; repeatable). Default: a deny-list of public registries.
    pub allow_registries: Vec<String>,
    /// Registries that are public (replaces the default deny-list; repeatable).
    pub deny_registries: Vec<String>,
}

impl From<&DiagnoseArgs> for DiagnoseOptions {
    fn from(args: &DiagnoseArgs) -> Self {
        DiagnoseOptions {
            service: args.service.clone(),
            domain_namespaces: args.discovery.domain_namespaces.clone(),
            output: args.output,
            allow_registries: args.allow_registries.clone(),
            deny_registries: args.deny_registries.clone(),
        }
    }
}

pub async fn run(session: &Session, args: &DiagnoseOptions) -> Result<()> {
    let (supervisor, namespace) = (&session.supervisor, session.namespace.as_str());
    let policy = policy(args)?;
    let observed = observe::service(
        supervisor,
        namespace,
        &args.service,
        &args.domain_namespaces,
    )
    .await?;
    let input = observed.input;
    let domain_namespaces = observed.domain_namespaces;
    let findings = diagnose(&input, &policy);
    let fix_preconditions = preconditions::check(&input, &findings, Overrides::default());
    let report = Report {
        service: &args.service,
        namespace,
        cluster: &supervisor.cluster.cluster,
        context: &supervisor.cluster.context,
        domain_namespaces,
        children: input
            .children
            .iter()
            .map(|c| format!("{}/{}", c.metadata.ns(), c.metadata.name))
            .collect(),
        findings: &findings,
        fix_preconditions,
    };
    match args.output {
        Some(format) => out!("{}", render(format, &report)?),
        None => out!("{}", render_text(&report)),
    }
    let problems = findings.iter().filter(|f| f.is_problem()).count();
    if problems > 0 {
        // The report is the explanation; the exit code tells scripts.
        return Err(Failure {
            what: format!("{problems} problem(s) found in {}", args.service),
            hint: String::new(),
            exit: Exit::Failure,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use supsvc_core::diagnose::{Code, Evidence};

    #[test]
    fn text_report() {
        let findings = vec![Finding {
            code: Code::ReconcileDeadlock,
            severity: Severity::Error,
            what: "stuck".into(),
            evidence: vec![Evidence {
                object: "pkgi/a -n b".into(),
                field: "status.usefulErrorMessage".into(),
                value: "line1\nline2".into(),
            }],
            remedy: vec!["kubectl supsvc fix a".into()],
        }];
        let report = Report {
            service: "a",
            namespace: "b",
            cluster: "c",
            context: "d",
            domain_namespaces: vec!["dom".into()],
            children: vec!["dom/x".into()],
            findings: &findings,
            fix_preconditions: Preconditions {
                ground: Some(Ground::KbSignature),
                checks: Vec::new(),
                foreign_pauses: Vec::new(),
                refusal: None,
            },
        };
        let text = render_text(&report);
        assert!(text.starts_with("Service a in b on cluster \"c\" (context \"d\"): 1 child PackageInstall(s) in dom\n"), "{text}");
        assert!(text.contains("ERROR [reconcile-deadlock] stuck\n"));
        assert!(text.contains("    pkgi/a -n b  status.usefulErrorMessage: line1 line2\n"));
        assert!(text.contains("  run:\n    kubectl supsvc fix a\n"));
        assert!(
            text.ends_with("kubectl supsvc fix a: would act (precondition held: kb-signature)\n"),
            "{text}"
        );
        let clean = Report {
            findings: &[],
            fix_preconditions: report.fix_preconditions.clone(),
            ..report
        };
        assert!(render_text(&clean).contains("No problems found.\n"));
        let healthy = Preconditions {
            ground: Some(Ground::NothingToRepair),
            ..report.fix_preconditions.clone()
        };
        let line = render_preconditions(&healthy, "a");
        assert!(
            line.starts_with("kubectl supsvc fix a: nothing to repair;")
                && !line.contains("would act"),
            "a reconciled service is not one fix would act on: {line}"
        );
    }
}
