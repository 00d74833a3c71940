//! `handoff history export`: every customer's recorded inputs as
//! `handoff simulate` input lines, from a running node (`--target`, an
//! operator's call) or from a stopped node's data directory (`--data`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::api::pb;
use crate::api::pb::models_client::ModelsClient;
use crate::cli::print::status_error;
use crate::cli::target::Target;
use crate::replay::export;
use crate::store::FjallStore;

/// `handoff history export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Read a stopped node's data directory instead of asking a running
    /// node (the directory is locked while a node has it open).
    #[arg(long, conflicts_with = "target")]
    pub data: Option<PathBuf>,
    /// Only this market's customers.
    #[arg(long)]
    pub market: Option<String>,
    /// Write the lines here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub target: Target,
}

/// Writes the history; a summary goes to stderr.
pub async fn export_history(args: ExportArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("--out {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let (steps, customers, pruned) = match &args.data {
        Some(dir) => {
            if !dir.join("keyspaces").is_dir() {
                bail!(
                    "{} is not a handoff data directory (no keyspaces/ in it); give the \
                     directory the node was started with (--data)",
                    dir.display()
                );
            }
            let store = FjallStore::open(dir)?;
            let history = export(&store, args.market.as_deref())?;
            for line in &history.lines {
                writeln!(out, "{line}")?;
            }
            (history.lines.len(), history.customers, history.pruned)
        }
        None => {
            let mut client =
                ModelsClient::with_interceptor(args.target.channel().await?, args.target.bearer()?)
                    .max_decoding_message_size(64 * 1024 * 1024);
            let mut stream = client
                .export_history(pb::ExportHistoryRequest {
                    market: args.market.clone().unwrap_or_default(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let (mut steps, mut customers, mut pruned) = (0, 0, 0);
            while let Some(msg) = stream.message().await.map_err(status_error)? {
                if msg.line.is_empty() {
                    customers = msg.customers as usize;
                    pruned = msg.pruned as usize;
                } else {
                    writeln!(out, "{}", msg.line)?;
                    steps += 1;
                }
            }
            (steps, customers, pruned)
        }
    };
    out.flush()?;
    eprintln!("exported {steps} steps of {customers} customers");
    if pruned > 0 {
        eprintln!(
            "left out {pruned} customers whose first facts the fact retention pruned \
             (they cannot be replayed from their start)"
        );
    }
    Ok(())
}
