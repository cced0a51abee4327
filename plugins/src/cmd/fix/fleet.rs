//! `fix` over several Supervisors at once (`--all-contexts`, several `--context`): every plan
//! first, one question, concurrent runs, a summary with a row per context. A Supervisor fix refuses
//! (a colleague's pause, a fault that is not the KB's) is reported in its row, never acted on.

use super::*;

/// The outcome on one cluster of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRow {
    pub context: String,
    pub cluster: String,
    pub result: std::result::Result<String, Failure>,
}

/// One summary for a fleet: a row per context, and the exit code of the worst outcome.
pub fn fleet_summary(rows: &[FleetRow]) -> (String, Option<Failure>) {
    let table = crate::output::table(
        &["CONTEXT", "CLUSTER", "RESULT"],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.context.clone(),
                    r.cluster.clone(),
                    match &r.result {
                        Ok(s) => truncate(s, 140),
                        Err(f) => format!("error: {}", truncate(&f.what, 140)),
                    },
                ]
            })
            .collect::<Vec<_>>(),
    );
    let failed: Vec<&FleetRow> = rows.iter().filter(|r| r.result.is_err()).collect();
    if failed.is_empty() {
        return (table, None);
    }
    let exit = if failed
        .iter()
        .any(|r| matches!(&r.result, Err(f) if f.exit == Exit::Interrupted))
    {
        Exit::Interrupted
    } else if failed
        .iter()
        .any(|r| matches!(&r.result, Err(f) if f.exit == Exit::Timeout))
    {
        Exit::Timeout
    } else {
        Exit::Failure
    };
    let names: Vec<&str> = failed.iter().map(|r| r.context.as_str()).collect();
    let failure = Failure::new(
        format!(
            "{} of {} Supervisors failed: {}",
            failed.len(),
            rows.len(),
            names.join(", ")
        ),
        "the table above says why; run `kubectl supsvc diagnose --context <context>` on each",
    )
    .with_exit(exit);
    (table, Some(failure))
}

/// `fix` on several clusters at once: every plan, one question, concurrent runs, one summary.
pub async fn run_fleet(
    clusters: Vec<(String, Result<SupervisorApi>)>,
    namespace: &str,
    args: &FixOptions,
) -> Result<()> {
    let service = args.service.as_str();
    let prepared = futures::future::join_all(clusters.into_iter().map(
        |(context, supervisor)| async move {
            let cluster = supervisor
                .as_ref()
                .map(|c| c.cluster.cluster.clone())
                .unwrap_or_default();
            let p = match supervisor {
                Ok(c) => prepare(c, namespace, args).await,
                Err(f) => Err(f),
            };
            (context, cluster, p)
        },
    ))
    .await;
    let mut rows = Vec::new();
    let mut todo = Vec::new();
    for (context, cluster, p) in prepared {
        match p {
            Err(f) => rows.push(FleetRow {
                context,
                cluster,
                result: Err(f),
            }),
            Ok(p) if p.plan.is_empty() => rows.push(FleetRow {
                context,
                cluster,
                result: Ok("healthy: nothing to do".into()),
            }),
            // Reported, not acted on: a pause someone else made stays, a fault fix does not repair is named.
            Ok(ref p) if let Some(r) = &p.preconditions.refusal => {
                out!(
                    "[{context}] {service}: fix refuses.\n{}",
                    render_preconditions(&p.preconditions)
                );
                // The row already names the context and cluster: it says only why.
                let mut refused = refusal_failure(service, &p.supervisor.cluster.describe(), r);
                refused.what = format!("refused, nothing changed: {}", r.why);
                rows.push(FleetRow {
                    context,
                    cluster,
                    result: Err(refused),
                });
            }
            Ok(p) => {
                out!("{}", p.plan_text(service));
                todo.push((context, cluster, p));
            }
        }
    }
    if !todo.is_empty()
        && args.dry_run == DryRun::None
        && !args.yes
        && !crate::output::confirm("Continue?")
    {
        return Err(Failure::new(
            "cancelled: nothing was changed",
            "answer y to go ahead, or pass -y",
        ));
    }
    let results = futures::future::join_all(todo.iter().map(|(context, _, p)| async move {
        let progress = ProgressPrinter::plain_lines(&format!("[{context}] "));
        match args.dry_run {
            DryRun::Client => Ok("dry run (client): plan printed, nothing sent".to_owned()),
            DryRun::Server => server_dry_run(p, &progress)
                .await
                .map(|()| "dry run (server): every write accepted, nothing changed".to_owned()),
            DryRun::None => execute(p, namespace, args, &progress).await,
        }
    }))
    .await;
    for ((context, cluster, _), result) in todo.into_iter().zip(results) {
        rows.push(FleetRow {
            context,
            cluster,
            result,
        });
    }
    rows.sort_by(|a, b| a.context.cmp(&b.context));
    let (table, failure) = fleet_summary(&rows);
    out!(
        "\nSummary for {service} on {} Supervisor(s):\n{table}",
        rows.len()
    );
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_summary_reports_every_context_and_the_worst_exit() {
        let row = |c: &str, r: std::result::Result<&str, Failure>| FleetRow {
            context: c.into(),
            cluster: format!("cl-{c}"),
            result: r.map(str::to_owned),
        };
        let ok = vec![
            row("a", Ok("Succeeded: x")),
            row("b", Ok("healthy: nothing to do")),
        ];
        let (table, failure) = fleet_summary(&ok);
        assert!(failure.is_none());
        assert_eq!(table.lines().count(), 3);
        assert!(table.starts_with("CONTEXT   CLUSTER   RESULT\n"), "{table}");

        let timeout = Failure::new("timed out", "").with_exit(Exit::Timeout);
        let broken = vec![
            row("a", Ok("Succeeded: x")),
            row("b", Err(Failure::new("forbidden", "h"))),
            row("c", Err(timeout)),
        ];
        let (table, failure) = fleet_summary(&broken);
        let failure = failure.unwrap();
        assert_eq!(failure.exit, Exit::Timeout);
        assert_eq!(failure.what, "2 of 3 Supervisors failed: b, c");
        assert!(table.contains("error: forbidden"), "{table}");
    }
}
