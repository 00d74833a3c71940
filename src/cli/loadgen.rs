//! `handoff loadgen`: drives a running node with simulated customers and
//! checks its escalations against the engine (see `crate::loadgen`).
//!
//! The node runs a model; loadgen must read the same one (`--model`, the
//! built-in reference model by default). To compress time, scale the model
//! once and give the scaled file to both:
//!
//! ```text
//! handoff model scale examples/saas.toml --by 3600 > fast.toml
//! handoff serve --model fast.toml &
//! handoff loadgen --model fast.toml --customers 100000
//! ```
//!
//! (`--sla-scale F` on loadgen does the same scaling in memory, for a node
//! started on the output of `handoff model scale FILE --by F`.)

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::serve::DEFAULT_MODEL;
use super::target::{Authed, Target};
use crate::api::MAX_BATCH;
use crate::clock::{Clock, SystemClock};
use crate::engine::model::{Duration, MarketId, Model, load, scale_model_text};
use crate::loadgen::driver::DriveOptions;
use crate::loadgen::journeys::{FailureKind, JourneyOptions};
use crate::loadgen::{self, Config};

/// Flags of `handoff loadgen`.
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    #[command(flatten)]
    pub target: Target,
    /// The model the node serves (default: the built-in reference model).
    /// Give loadgen the very file the node was started with.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// How many simulated customers (each sends at least 3 events).
    #[arg(long)]
    pub customers: u64,
    /// Target events per second (default: flat out).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Send IngestBatch calls of up to SIZE events (default: one unary
    /// Ingest per event).
    #[arg(long, value_name = "SIZE")]
    pub batch: Option<usize>,
    /// Divide every SLA duration of --model by F (rounded up to whole
    /// seconds): the node must run `handoff model scale MODEL --by F`.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub sla_scale: f64,
    /// Percent of customers with one deliberate failure: a stop that never
    /// comes, a stop after the deadline, a duplicate, an out-of-order
    /// delivery (in equal parts, or of --failure-kinds).
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub failures: f64,
    /// Percent of customers that, while an SLA that pauses (`pause_in`)
    /// runs, enter one of its pause states and leave it again later
    /// (waiting on the customer, then the customer replies).
    #[arg(long, value_name = "PCT", default_value_t = 20.0)]
    pub pauses: f64,
    /// Which failures to plan, comma-separated (default: all four).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS")]
    pub failure_kinds: Vec<FailureKindArg>,
    /// Seed of the journeys: the same seed, model and options give the
    /// same journeys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds to wait, after the last escalation is due, for late ones.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub settle: f64,
    /// Seconds after the last event to wait, at most, for SLAs left running
    /// to reach their deadline (escalations due later are not compared).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub max_wait: f64,
    /// Milliseconds between one customer's events (default: a twentieth of
    /// the model's shortest tier, between 1 and 100 ms).
    #[arg(long, value_name = "MS")]
    pub gap_ms: Option<f64>,
    /// The node's Prometheus address, to sample its memory and disk.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub metrics: String,
    /// Customers mid-journey at once, at most.
    #[arg(long, default_value_t = 100_000)]
    pub max_active: usize,
    /// Tries of one event before it is given up, when the node answers
    /// UNAVAILABLE, RESOURCE_EXHAUSTED or the like (same event id each
    /// time; the wait doubles from 20 ms up to 1.28 s). The default, 10,
    /// rides through a cluster's failover (about 5 s: a lease running
    /// out and a new owner starting).
    #[arg(long, default_value_t = 10)]
    pub attempts: u32,
    /// Percent of the customers that may be set aside (an event and a
    /// due tier crossed within the timing the node allows, so either
    /// order is right) before the check is inconclusive. 1 by default; a
    /// run that kills a node on purpose holds calls for seconds, and sets
    /// more aside.
    #[arg(long, value_name = "PCT", default_value_t = 1.0)]
    pub max_set_aside: f64,
    /// Customer ids are `lg-RUN-N` (default: a fresh RUN from the clock, so
    /// runs against the same node never share customers).
    #[arg(long, value_name = "RUN")]
    pub run_id: Option<String>,
    /// Print the report as one JSON object, and no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// The deliberate failures, as `--failure-kinds` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailureKindArg {
    /// An SLA's stop never comes: it escalates until the run ends.
    NeverStopped,
    /// An SLA's stop comes after its deadline.
    StoppedLate,
    /// An event is delivered twice.
    Duplicate,
    /// Two events are delivered swapped.
    OutOfOrder,
}

impl From<FailureKindArg> for FailureKind {
    fn from(k: FailureKindArg) -> FailureKind {
        match k {
            FailureKindArg::NeverStopped => FailureKind::NeverStopped,
            FailureKindArg::StoppedLate => FailureKind::StoppedLate,
            FailureKindArg::Duplicate => FailureKind::Duplicate,
            FailureKindArg::OutOfOrder => FailureKind::OutOfOrder,
        }
    }
}

/// Loads `--model` (or the built-in one), scaled by `--sla-scale`.
fn model(args: &LoadgenArgs) -> anyhow::Result<Model> {
    let (name, text) = match &args.model {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the model file {}: pass the file the node serves with --model",
                    path.display()
                )
            })?,
        ),
        None => (
            "examples/saas.toml (built in)".to_owned(),
            DEFAULT_MODEL.to_owned(),
        ),
    };
    let text = if args.sla_scale == 1.0 {
        text
    } else {
        scale_model_text(&text, args.sla_scale).map_err(|e| anyhow::anyhow!("--sla-scale: {e}"))?
    };
    load(&name, &text).map_err(|problems| {
        anyhow::anyhow!(
            "{problems}\nthe model does not load: fix the problems above (handoff model check)"
        )
    })
}

/// The shortest SLA target of any market.
fn shortest_within(model: &Model) -> Option<Duration> {
    let markets = model.spec.markets.len().max(1);
    (0..markets)
        .flat_map(|m| {
            model
                .rules(MarketId(m as u16))
                .slas
                .iter()
                .map(|s| s.within)
        })
        .min()
}

fn check(args: &LoadgenArgs) -> anyhow::Result<()> {
    if args.customers == 0 {
        bail!("--customers must be at least 1");
    }
    if let Some(b) = args.batch
        && !(1..=MAX_BATCH).contains(&b)
    {
        bail!("--batch {b}: a batch holds 1 to {MAX_BATCH} events");
    }
    if let Some(r) = args.rate
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--rate {r}: give events per second, more than 0 (leave it out for flat out)");
    }
    if !(0.0..=100.0).contains(&args.failures) {
        bail!("--failures {}: a percentage, 0 to 100", args.failures);
    }
    if !(0.0..=100.0).contains(&args.pauses) {
        bail!("--pauses {}: a percentage, 0 to 100", args.pauses);
    }
    if !(args.settle.is_finite() && args.settle >= 0.0) {
        bail!("--settle {}: seconds, 0 or more", args.settle);
    }
    if !(args.max_wait.is_finite() && args.max_wait >= 0.0) {
        bail!("--max-wait {}: seconds, 0 or more", args.max_wait);
    }
    if !(args.max_set_aside.is_finite() && (0.0..=100.0).contains(&args.max_set_aside)) {
        bail!(
            "--max-set-aside {}: a percentage, 0 to 100",
            args.max_set_aside
        );
    }
    if args.concurrency == 0 || args.max_active == 0 || args.attempts == 0 {
        bail!("--concurrency, --max-active and --attempts must be at least 1");
    }
    Ok(())
}

fn progress_bar(args: &LoadgenArgs) -> ProgressBar {
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(args.customers);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} customers  {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Runs loadgen: exit 0 when the node did exactly what the model says,
/// 1 when not (or when the run could not be made).
pub async fn run(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    check(&args)?;
    let model = Arc::new(model(&args)?);
    let mut journeys = JourneyOptions::for_model(&model, args.seed);
    journeys.failure_share = args.failures / 100.0;
    journeys.pause_share = args.pauses / 100.0;
    // Planned from now: business calendars see the hours of the real run.
    journeys.epoch = SystemClock.now();
    if !args.failure_kinds.is_empty() {
        journeys.failure_kinds = args.failure_kinds.iter().map(|k| (*k).into()).collect();
        journeys.failure_kinds.sort();
        journeys.failure_kinds.dedup();
    }
    journeys.max_sla = Duration((args.max_wait * 1e6) as i64);
    if !args.json && shortest_within(&model).is_none_or(|w| w > journeys.max_sla) {
        eprintln!(
            "handoff loadgen: no SLA of the model has a target within --max-wait ({} s), so no \
             deliberate SLA failure can be seen to breach: they become duplicate deliveries. \
             Compress time with --sla-scale (and serve `handoff model scale` of the same file).",
            args.max_wait
        );
    }
    if let Some(ms) = args.gap_ms {
        if !(ms.is_finite() && ms >= 0.0) {
            bail!("--gap-ms {ms}: milliseconds, 0 or more");
        }
        journeys.gap = Duration((ms * 1000.0) as i64);
    }
    // Two connections: enough streams for any concurrency, and no single
    // HTTP/2 connection's flow control in the way.
    // With a token (an operator's: loadgen sends every source's events and
    // subscribes to every team's escalations) on every call.
    let bearer = args.target.bearer()?;
    let mut channels = Vec::with_capacity(2);
    for _ in 0..2 {
        channels.push(Authed::new(args.target.channel().await?, bearer.clone()));
    }
    let run_id = args.run_id.clone().unwrap_or_else(loadgen::fresh_run_id);
    let config = Config {
        drive: DriveOptions {
            customers: args.customers,
            concurrency: args.concurrency,
            batch: args.batch,
            rate: args.rate,
            max_active: args.max_active,
            prefix: format!("lg-{run_id}-"),
            attempts: args.attempts,
            gap: journeys.gap,
        },
        journeys,
        settle: std::time::Duration::from_secs_f64(args.settle),
        max_wait: Duration((args.max_wait * 1e6) as i64),
        metrics: (!args.metrics.is_empty()).then(|| args.metrics.clone()),
        run_id,
        max_set_aside_pct: args.max_set_aside,
    };
    let report = loadgen::run(model, channels, config, progress_bar(&args)).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.exact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    /// `check` of the flags as a user types them.
    fn checked(flags: &[&str]) -> Result<(), String> {
        let cli = Cli::try_parse_from(std::iter::once("loadgen").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())?;
        check(&cli.args).map_err(|e| e.to_string())
    }

    #[test]
    fn retries_and_the_set_aside_allowance_say_what_to_give() {
        assert_eq!(checked(&["--customers", "10"]), Ok(()));
        assert_eq!(
            checked(&[
                "--customers",
                "10",
                "--attempts",
                "1",
                "--max-set-aside",
                "10"
            ]),
            Ok(())
        );
        let e = checked(&["--customers", "10", "--attempts", "0"]).unwrap_err();
        assert!(e.contains("--attempts must be at least 1"), "{e}");
        let e = checked(&["--customers", "10", "--max-set-aside", "150"]).unwrap_err();
        assert_eq!(e, "--max-set-aside 150: a percentage, 0 to 100");
    }
}
