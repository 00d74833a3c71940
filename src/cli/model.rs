//! `handoff model check FILE` and `handoff model graph FILE`: the model
//! author's tools. Both load the model the way the server does, so a model
//! that checks clean here loads there.

use std::path::Path;
use std::process::ExitCode;

use crate::engine::model::{GraphFormat, Model, ModelErrors, load_file, render_graph};

/// Prints every problem of the model (with lines); exit 1 if any.
///
/// On success, one summary line on stdout:
/// `FILE: ok (model NAME vVERSION: 3 regions, 11 states, 4 SLAs, 3 markets)`.
pub fn check(path: &Path) -> ExitCode {
    match load_file(path) {
        Ok(model) => {
            println!("{}: ok ({})", path.display(), summary(&model));
            ExitCode::SUCCESS
        }
        Err(errors) => report(path, &errors),
    }
}

/// Prints the model as a Mermaid or dot graph; exit 1 if it does not load.
pub fn graph(path: &Path, format: GraphFormat) -> ExitCode {
    match load_file(path) {
        Ok(model) => {
            print!("{}", render_graph(&model, format));
            ExitCode::SUCCESS
        }
        Err(errors) => report(path, &errors),
    }
}

/// `model saas v1: 3 regions, 11 states, 4 SLAs, 3 markets`.
fn summary(model: &Model) -> String {
    let spec = &model.spec;
    let states: usize = spec.regions.iter().map(|r| r.states.len()).sum();
    format!(
        "model {} v{}: {}, {}, {}, {}",
        spec.name,
        spec.version,
        count(spec.regions.len(), "region", "regions"),
        count(states, "state", "states"),
        count(spec.slas.len(), "SLA", "SLAs"),
        count(spec.markets.len(), "market", "markets"),
    )
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Every problem on stderr, one a line, then how many; exit 1.
fn report(path: &Path, errors: &ModelErrors) -> ExitCode {
    for error in &errors.0 {
        eprintln!("{error}");
    }
    let n = errors.0.len();
    eprintln!(
        "{}: {} found; the model was not loaded",
        path.display(),
        count(n, "problem", "problems")
    );
    ExitCode::FAILURE
}
