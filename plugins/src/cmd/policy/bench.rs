//! `kubectl supsvc policy bench`: per-evaluation latency of one policy on one request, through the
//! webhook's own evaluation path (`Policy::validate`: a fresh store and instance every time, the
//! policy's memory cap and deadline), on one thread.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchArgs;
use super::eval::{self, RequestSummary};
use crate::error::Result;
use crate::output;

const DEFAULT_DURATION: Duration = Duration::from_secs(3);

/// Latencies in microseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub policy: String,
    pub sha256: String,
    pub request: RequestSummary,
    /// `allowed` or `denied`: the verdict every measured evaluation gave.
    pub verdict: String,
    pub evaluations: u64,
    pub seconds: f64,
    pub evaluations_per_second: f64,
    pub latency_micros: Latency,
    /// Compiling the module and running `validate_settings`, once.
    pub load_millis: f64,
    /// WebAssembly instructions executed by one evaluation (wasmtime fuel): the policy's cost
    /// independent of the machine and its load, to compare two builds of a policy.
    pub instructions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// How long to measure: a number of evaluations or a time.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Iterations(u64),
    Time(Duration),
}

impl Budget {
    fn warm_up(self) -> Self {
        match self {
            Budget::Iterations(n) => Budget::Iterations(n / 10),
            Budget::Time(t) => Budget::Time(t / 10),
        }
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) {
        errln!(
            "warning: this kubectl-supsvc is a debug build: the host's own code runs unoptimised and \
             evaluations take several times as long as in supsvc-webhook; measure with a release build \
             (cargo install --path plugins --features full)"
        );
    }
    let loaded = eval::load(&args.eval)?;
    let evaluate = || {
        loaded
            .policy
            .validate(&loaded.request)
            .map(|verdict| verdict.accepted)
            .map_err(|e| eval::evaluation_failure(&e, &args.eval))
    };
    let budget = match (args.iterations, args.duration) {
        (Some(n), _) => Budget::Iterations(n),
        (None, Some(t)) => Budget::Time(t),
        (None, None) => Budget::Time(DEFAULT_DURATION),
    };
    let accepted = evaluate()?;
    measure(budget.warm_up(), evaluate)?;
    let started = Instant::now();
    let samples = measure(budget, || {
        let now = evaluate()?;
        if now != accepted {
            return Err(crate::error::Failure::new(
                format!(
                    "policy {} changed its verdict between evaluations of the same request",
                    loaded.policy.name()
                ),
                "a policy must decide from the request and its settings alone; supsvc-webhook gives it a fresh instance every time",
            ));
        }
        Ok(accepted)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let instructions = loaded.instructions(&args.eval)?;

    let report = Report {
        policy: loaded.policy.name().to_owned(),
        sha256: loaded.policy.sha256().to_owned(),
        request: loaded.about.clone(),
        verdict: if accepted { "allowed" } else { "denied" }.to_owned(),
        evaluations: samples.len() as u64,
        seconds,
        evaluations_per_second: samples.len() as f64 / seconds.max(f64::MIN_POSITIVE),
        latency_micros: latency(samples),
        load_millis: loaded.load_time.as_secs_f64() * 1e3,
        instructions,
    };
    let text = match args.output {
        Some(format) => output::render(format, &report)?,
        None => human(&report),
    };
    out!("{text}");
    Ok(())
}

/// Runs `evaluate` within `budget`, timing each call; at least one call for a time budget.
fn measure(budget: Budget, mut evaluate: impl FnMut() -> Result<bool>) -> Result<Vec<Duration>> {
    let mut samples = Vec::new();
    let started = Instant::now();
    loop {
        let done = match budget {
            Budget::Iterations(n) => samples.len() as u64 >= n,
            Budget::Time(t) => !samples.is_empty() && started.elapsed() >= t,
        };
        if done {
            return Ok(samples);
        }
        let one = Instant::now();
        evaluate()?;
        samples.push(one.elapsed());
    }
}

/// Nearest-rank percentiles, mean, min and max, in microseconds.
fn latency(mut samples: Vec<Duration>) -> Latency {
    if samples.is_empty() {
        samples.push(Duration::ZERO);
    }
    samples.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let rank = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        micros(samples[index])
    };
    let total: Duration = samples.iter().sum();
    Latency {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        mean: micros(total) / samples.len() as f64,
        min: micros(samples[0]),
        max: micros(samples[samples.len() - 1]),
    }
}

fn human(report: &Report) -> String {
    let l = &report.latency_micros;
    let lines = [
        (
            "Policy",
            format!("{} (sha256 {})", report.policy, &report.sha256[..12]),
        ),
        ("Request", report.request.describe()),
        ("Verdict", report.verdict.clone()),
        (
            "Evaluations",
            format!(
                "{} in {:.2} s: {:.0}/s on one thread, a fresh instance each",
                report.evaluations, report.seconds, report.evaluations_per_second
            ),
        ),
        (
            "Latency",
            format!("p50 {}   p90 {}   p99 {}", us(l.p50), us(l.p90), us(l.p99)),
        ),
        (
            "",
            format!(
                "mean {}   min {}   max {}",
                us(l.mean),
                us(l.min),
                us(l.max)
            ),
        ),
        (
            "Instructions",
            format!(
                "{} WebAssembly instructions per evaluation (the same on any machine)",
                report.instructions
            ),
        ),
        (
            "Load",
            format!("{:.1} ms (compile, validate_settings)", report.load_millis),
        ),
    ];
    lines
        .iter()
        .map(|(label, value)| {
            let label = if label.is_empty() {
                String::new()
            } else {
                format!("{label}:")
            };
            format!("{label:<13} {value}\n")
        })
        .collect()
}

/// `212.4 µs`, `1.35 ms`.
fn us(micros: f64) -> String {
    if micros >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.1} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let l = latency(samples);
        assert_eq!((l.p50, l.p90, l.p99), (50.0, 90.0, 99.0));
        assert_eq!((l.min, l.max, l.mean), (1.0, 100.0, 50.5));
        let one = latency(vec![Duration::from_micros(7)]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(latency(Vec::new()).p50, 0.0);
    }

    #[test]
    fn budgets() {
        let mut calls = 0;
        let samples = measure(Budget::Iterations(25), || {
            calls += 1;
            Ok(true)
        })
        .unwrap();
        assert_eq!((samples.len(), calls), (25, 25));
        assert_eq!(
            measure(Budget::Iterations(0), || Ok(true)).unwrap().len(),
            0
        );
        let timed = measure(Budget::Time(Duration::ZERO), || Ok(true)).unwrap();
        assert_eq!(timed.len(), 1, "a time budget measures at least once");
        let failing = measure(Budget::Iterations(3), || {
            Err(crate::error::Failure::new("boom", ""))
        });
        assert!(failing.is_err());
    }

    #[test]
    fn microseconds_read_well() {
        assert_eq!(us(212.44), "212.4 µs");
        assert_eq!(us(1350.0), "1.35 ms");
    }
}
