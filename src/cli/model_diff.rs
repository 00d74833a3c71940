//! `handoff model diff OLD NEW --history FILE`: the replay gate's command
//! (`crate::replay::diff`). Exit 0 when every market is within the bound,
//! 1 when one is over it, 2 when the diff could not be made (a model that
//! does not load, an unreadable history, a malformed line, an unknown
//! market), so a CI step can tell "diverges" from "broken".

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::engine::model::{Model, load_file};
use crate::replay::{DiffError, DiffReport, diff};

/// `handoff model diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The model version customers run on now (TOML).
    pub old: PathBuf,
    /// The candidate version (TOML).
    pub new: PathBuf,
    /// Recorded inputs, `simulate` lines (`handoff history export`).
    #[arg(long)]
    pub history: PathBuf,
    /// Only this market's customers.
    #[arg(long)]
    pub market: Option<String>,
    /// Most diverging customers a market may have, in percent of its
    /// replayed customers (default 0: any difference fails).
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub max_divergence: f64,
    /// Print one JSON document (for CI pipelines).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DiffArgs) -> ExitCode {
    if !(0.0..=100.0).contains(&args.max_divergence) {
        eprintln!(
            "--max-divergence {}: a percentage, 0 to 100",
            args.max_divergence
        );
        return ExitCode::from(2);
    }
    let (Some(old), Some(new)) = (load("OLD", &args.old), load("NEW", &args.new)) else {
        return ExitCode::from(2);
    };
    let history = match std::fs::read_to_string(&args.history) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot read the history {}: {e}", args.history.display());
            return ExitCode::from(2);
        }
    };
    let report = match diff(
        &old,
        &new,
        &history,
        args.market.as_deref(),
        args.max_divergence,
    ) {
        Ok(r) => r,
        Err(DiffError::Malformed { line, reason }) => {
            eprintln!(
                "{}:{line}: malformed step: {reason}",
                args.history.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("model diff: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("invariant: a report is plain data")
        );
    } else {
        print_text(&report, &args);
    }
    if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn load(which: &str, path: &Path) -> Option<Model> {
    match load_file(path) {
        Ok(m) => Some(m),
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!(
                "{which} ({}) does not load: fix the problems above (handoff model check)",
                path.display()
            );
            None
        }
    }
}

fn print_text(r: &DiffReport, args: &DiffArgs) {
    println!(
        "{} version {} -> {} version {}: {} steps of {} replayed",
        r.old.name,
        r.old.version,
        r.new.name,
        r.new.version,
        r.steps,
        args.history.display()
    );
    for m in &r.markets {
        let market = if m.market.is_empty() {
            "(no market)"
        } else {
            &m.market
        };
        println!(
            "market {market}: {} customers replayed, {} diverging ({:.2}%): {}",
            m.customers,
            m.diverging,
            m.divergence_pct,
            if m.pass {
                "within the bound".to_owned()
            } else {
                format!("OVER the bound of {}%", r.max_divergence_pct)
            }
        );
        for (kind, n) in &m.kinds {
            if *n > 0 {
                println!("  {kind}: {n} customers");
            }
        }
        for e in &m.examples {
            println!(
                "  first difference of {} ({}), history line {}, {}:",
                e.customer,
                e.kind.as_str(),
                e.line,
                e.at
            );
            println!("    old: {}", e.old);
            println!("    new: {}", e.new);
        }
        if !m.unexercised_transitions.is_empty() {
            println!("  transitions of NEW no replayed customer took:");
            for t in &m.unexercised_transitions {
                println!("    {t}");
            }
        }
        if !m.unexercised_tiers.is_empty() {
            println!("  tiers of NEW no replayed customer reached:");
            for t in &m.unexercised_tiers {
                println!("    {t}");
            }
        }
    }
    println!(
        "{}",
        if r.pass {
            "PASS: every market within the bound"
        } else {
            "FAIL: a market diverges over the bound"
        }
    );
}
