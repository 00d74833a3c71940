//! The `handoff` binary: parses arguments, calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use handoff::engine::model::GraphFormat;

#[derive(Parser)]
#[command(
    name = "handoff",
    version,
    about = "Customer lifecycles as shared, objective state machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check or draw a lifecycle model file.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Print every problem in a model file, with its line; exit 1 if any.
    Check { file: PathBuf },
    /// Draw a model: states, transitions, owners, SLA hand-offs.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormat,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Model { command } => match command {
            ModelCommand::Check { file } => handoff::cli::model::check(&file),
            ModelCommand::Graph { file, format } => handoff::cli::model::graph(&file, format),
        },
    }
}
