//! `handoff simulate --model FILE --input STEPS.jsonl [--until RFC3339]`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::process::ExitCode;

use crate::engine::model::load_file;
use crate::engine::{Limits, Timestamp};
use crate::simulate::{SimulateError, Simulator};

/// Runs the steps; exit 0, 2 on a malformed line, 1 if the model or the
/// input cannot be read.
pub fn run(model: &Path, input: &Path, until: Option<&str>) -> ExitCode {
    let model = match load_file(model) {
        Ok(m) => m,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("the model does not load: fix the problems above (handoff model check)");
            return ExitCode::from(1);
        }
    };
    let until = match until.map(Timestamp::parse_rfc3339).transpose() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("--until: {e}");
            return ExitCode::from(2);
        }
    };
    let reader: Box<dyn io::BufRead> = if input == Path::new("-") {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        match File::open(input) {
            Ok(f) => Box::new(BufReader::new(f)),
            Err(e) => {
                eprintln!("cannot read the input {}: {e}", input.display());
                return ExitCode::from(1);
            }
        }
    };
    let out = BufWriter::new(io::stdout().lock());
    match Simulator::new(&model, Limits::default(), out).run(reader, until) {
        Ok(_) => ExitCode::SUCCESS,
        Err(SimulateError::Malformed { line, reason }) => {
            eprintln!("{}:{line}: malformed step: {reason}", input.display());
            ExitCode::from(2)
        }
        Err(SimulateError::Io(e)) => {
            eprintln!("simulate: {e}");
            ExitCode::from(1)
        }
    }
}
