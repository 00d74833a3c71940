//! `handoff model check FILE` and `handoff model graph FILE`.

use std::path::Path;
use std::process::ExitCode;

use crate::engine::model::GraphFormat;

/// Prints every problem of the model (with lines); exit 1 if any.
pub fn check(path: &Path) -> ExitCode {
    let _ = path;
    unimplemented!("model check: being written")
}

/// Prints the model as a Mermaid or dot graph; exit 1 if it does not load.
pub fn graph(path: &Path, format: GraphFormat) -> ExitCode {
    let _ = (path, format);
    unimplemented!("model graph: being written")
}
