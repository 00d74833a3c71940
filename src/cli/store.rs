//! `handoff store compact`: offline maintenance of a node's data directory.

use std::path::Path;
use std::process::ExitCode;

use crate::store::FjallStore;

/// Compacts the store in `data` (the node must be stopped: the directory
/// is locked while a node has it open) and prints its size before and after.
pub fn compact(data: &Path) -> ExitCode {
    if !data.join("keyspaces").is_dir() {
        eprintln!(
            "handoff: {} is not a handoff data directory (no keyspaces/ in it); \
             give the directory the node was started with (--data)",
            data.display()
        );
        return ExitCode::from(1);
    }
    let store = match FjallStore::open(data) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("handoff: {e}");
            return ExitCode::from(1);
        }
    };
    match store.compact() {
        Ok((before, after)) => {
            println!(
                "compacted {}: {} bytes before, {} bytes after",
                data.display(),
                before,
                after
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("handoff: compacting {}: {e}", data.display());
            ExitCode::from(1)
        }
    }
}
