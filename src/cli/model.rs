//! `handoff model check FILE`, `handoff model graph FILE` and `handoff
//! model scale FILE --by F`: the model author's tools. They load the model
//! the way the server does, so a model that checks clean here loads there.

use std::path::Path;
use std::process::ExitCode;

use crate::engine::calendar::tzdb_version;
use crate::engine::model::{
    GraphFormat, Model, ModelErrors, catalog, load, load_file, open_hours_text, open_per_week,
    render_graph, scale_model_text,
};

/// Prints every problem of the model (with lines); exit 1 if any.
///
/// On success, on stdout: a summary line
/// `FILE: ok (model NAME vVERSION: 3 regions, 11 states, 4 SLAs, 3 markets, ...)`,
/// the version of the tz database bundled in this binary (local times of
/// calendars follow its rules, so a node on another build may differ), and
/// a line per calendar: `calendar NAME: ZONE, open 39h a week (mon-fri
/// 09:00-17:00), 4 closed dates, used by SLA first_reply (and market BR)`.
pub fn check(path: &Path) -> ExitCode {
    match load_file(path) {
        Ok(model) => {
            println!("{}: ok ({})", path.display(), summary(&model));
            println!("tz database {} (bundled)", tzdb_version());
            for line in calendar_lines(&model) {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => report(path, &errors),
    }
}

/// One line per declared calendar: zone, open hours a week, closed dates,
/// the SLAs that count on it.
fn calendar_lines(model: &Model) -> Vec<String> {
    let spec = &model.spec;
    spec.calendars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut users: Vec<String> = spec
                .slas
                .iter()
                .filter(|s| s.calendar == Some(i))
                .map(|s| format!("SLA {}", s.name))
                .collect();
            for m in &spec.markets {
                for (s, o) in &m.overlay.slas {
                    if o.calendar == Some(i) {
                        users.push(format!(
                            "SLA {} in market {}",
                            spec.slas[s.idx()].name,
                            m.name
                        ));
                    }
                }
            }
            let used = if users.is_empty() {
                "used by no SLA".to_owned()
            } else {
                format!("used by {}", users.join(", "))
            };
            format!(
                "calendar {}: {}, open {} a week ({}), {}, {used}",
                c.name,
                c.zone_name,
                open_per_week(c),
                open_hours_text(c),
                count(c.closed().len(), "closed date", "closed dates"),
            )
        })
        .collect()
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

/// Prints the model with every SLA duration divided by `by` (rounded up
/// to whole seconds, at least 1s): the file to start a node with for a
/// load test that compresses time. Exit 1 if the model (or the scaled one)
/// does not load.
pub fn scale(path: &Path, by: f64) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read the model file {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if let Err(errors) = load(&path.display().to_string(), &text) {
        return report(path, &errors);
    }
    let scaled = match scale_model_text(&text, by) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("--by: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = format!("{} scaled by {by}", path.display());
    if let Err(errors) = load(&name, &scaled) {
        return report(path, &errors);
    }
    let header = format!(
        "# {} with every SLA duration divided by {by} (rounded up to whole seconds),\n\
         # written by `handoff model scale`: serve this file and give it to loadgen.\n",
        path.display()
    );
    print!("{header}{scaled}");
    ExitCode::SUCCESS
}

/// `model saas v1: 3 regions, 11 states, 4 SLAs, 3 markets, fingerprint
/// 0123456789ab` (the fingerprint a node prints when it serves the model).
fn summary(model: &Model) -> String {
    let spec = &model.spec;
    let states: usize = spec.regions.iter().map(|r| r.states.len()).sum();
    // Only mentioned when declared, so the line of a model without them
    // stays as it was.
    let calendars = match spec.calendars.len() {
        0 => String::new(),
        n => format!(", {}", count(n, "calendar", "calendars")),
    };
    format!(
        "model {} v{}: {}, {}, {}, {}{}, fingerprint {}",
        spec.name,
        spec.version,
        count(spec.regions.len(), "region", "regions"),
        count(states, "state", "states"),
        count(spec.slas.len(), "SLA", "SLAs"),
        count(spec.markets.len(), "market", "markets"),
        calendars,
        catalog::short(&catalog::fingerprint(spec)),
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
