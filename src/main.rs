//! The `handoff` binary: parses arguments, calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use handoff::cli;
use handoff::cli::loadgen::LoadgenArgs;
use handoff::cli::serve::ServeArgs;
use handoff::engine::model::GraphFormat;

/// jemalloc: the node allocates many small, short-lived buffers per event
/// (requests, facts, encoded records, store keys), most of them on the
/// runtime's threads and freed on the journal's committer (or the other
/// way round). glibc's malloc spent about a third of the node's CPU on
/// them under load; mimalloc, which replaced it, still spent a quarter of
/// the actors' time taking blocks and collecting those other threads had
/// freed. jemalloc returns a freed block to its thread's cache whatever
/// thread made it: at 1,000,000 customers the node's peak is 100-150 MiB
/// lower and batch ingest a little faster (README, "Ninth round").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (before `main`; an operator's
/// `_RJEM_MALLOC_CONF` still goes over them):
///
/// - `dirty_decay_ms:10000`: freed memory stays mapped 10 s before it goes
///   back to the operating system. Under ingest the journal's group commit
///   frees and allocates buffers of hundreds of KiB every few
///   milliseconds; given back after 1 s (mimalloc's default), they came
///   back as fresh pages, each zeroed by the kernel on first touch: 30,000
///   page faults in a 60,000-customer ingest and a tenth of the committer
///   thread's time (README, "Ingest with the query indexes"). Memory still
///   goes back once the load drops.
/// - `thp:never`: no transparent huge pages for jemalloc's own regions. A
///   page given back and touched again was a 2 MiB page zeroed whole, about
///   14 GiB zeroed in a 100,000-customer ingest against 1.2 GiB in 4 KiB
///   pages, and the huge pages' unused parts are resident (README, "Memory
///   at 1,000,000 customers"). [`tune_allocator`] turns them off for the
///   rest of the process too.
///
/// jemalloc reads the C string this symbol points at (the crate builds it
/// with the `_rjem_` prefix).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"dirty_decay_ms:10000,muzzy_decay_ms:0,thp:never\0"[0];

/// No transparent huge pages for this process (see [`MALLOC_CONF`]): what
/// is left is memory the allocator does not manage (fjall's block cache
/// and tables' buffers go through it; thread stacks and the kernel's own
/// mappings do not).
fn tune_allocator() {
    // SAFETY: sets a flag of this process's address space; no pointers.
    // An old kernel without it refuses (EINVAL): then huge pages stay on.
    // (Before logging is set up: nothing to tell.)
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

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
    /// Check or draw a lifecycle model file; publish versions to a node.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Run the engine in virtual time over JSON-lines steps (no server, no disk).
    Simulate {
        /// The lifecycle model (TOML).
        #[arg(long)]
        model: PathBuf,
        /// Steps, one JSON object per line (`-` for standard input).
        #[arg(long)]
        input: PathBuf,
        /// Run the clock on to this instant (RFC 3339) after the last step.
        #[arg(long)]
        until: Option<String>,
    },
    /// Run a node: gRPC, durable customer actors, SLA timers, escalations.
    Serve(ServeArgs),
    /// Send one event to a running node; the exit status says what became of it.
    #[command(after_help = cli::ingest::INGEST_EXIT_STATUS)]
    Ingest(cli::ingest::IngestArgs),
    /// Look at a customer on a running node.
    Customer {
        #[command(subcommand)]
        command: CustomerCommand,
    },
    /// Find customers on a running node by market, version, state, SLA
    /// status, owner and age; migrate a market's customers to another
    /// model version.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Follow, list or acknowledge escalations on a running node.
    Escalations {
        #[command(subcommand)]
        command: EscalationsCommand,
    },
    /// Exact counts from a running node: customers per state, SLAs open
    /// and ended per day (compliance, elapsed percentiles), transitions,
    /// escalations open by team with their ages.
    Report(cli::report::ReportArgs),
    /// Which model version new customers of each market start on.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Make credentials for the node's callers.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Drive a running node with simulated customers; check its escalations.
    Loadgen(LoadgenArgs),
    /// Customers' recorded inputs, for replaying them (`handoff model diff`).
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Maintain a stopped node's data directory.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Fold the journal into the tables and compact them (the node must be
    /// stopped); prints the bytes on disk before and after.
    Compact {
        /// The node's data directory.
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum HistoryCommand {
    /// Every customer's recorded inputs as `simulate` input lines, from a
    /// running node (operators) or a stopped node's --data directory.
    Export(cli::history::ExportArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// A new bearer token for a source, team or operator: printed once,
    /// with the [[credentials]] entry (its hash) for the node's config.
    New(handoff::cli::token::NewArgs),
}

#[derive(Subcommand)]
enum CustomerCommand {
    /// The unified view: states, owners, proofs, SLAs, escalations, timeline.
    Get(cli::customer::CustomerGetArgs),
}

#[derive(Subcommand)]
enum CustomersCommand {
    /// Customers matching every filter given, a page at a time, newest
    /// first (by when they entered the state or status filtered on).
    List(cli::customers::ListArgs),
    /// Re-pin a market's customers (or a cohort) from one model version to
    /// another; lists those that cannot move, with why (operators only).
    Migrate(cli::migrate::MigrateArgs),
}

#[derive(Subcommand)]
enum EscalationsCommand {
    /// Follow the escalation stream, reconnecting through restarts of the node.
    #[command(after_help = cli::escalations::tail::TAIL_RECONNECT)]
    Tail(cli::escalations::tail::TailArgs),
    /// Open escalations, of one team or all.
    List(cli::escalations::list::ListArgs),
    /// Acknowledge an escalation (its notified team or the SLA's owner).
    Ack(cli::escalations::ack::AckArgs),
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
    /// Replay recorded inputs through two versions and compare them per
    /// market; exit 1 when a market diverges over the bound.
    Diff(cli::model_diff::DiffArgs),
    /// Print the model with every SLA duration divided by F (rounded up to
    /// whole seconds, at least 1s): to serve and load-test in compressed time.
    Scale {
        file: PathBuf,
        /// The factor (3600 turns hours into seconds).
        #[arg(long, value_name = "F")]
        by: f64,
    },
    /// Check a model file and publish it as a new version on a running
    /// node (operators only); the same version with the same content is
    /// a no-op.
    Publish(cli::publish::PublishArgs),
    /// The model versions a node serves.
    List(cli::publish::ListArgs),
}

#[derive(Subcommand)]
enum RolloutCommand {
    /// Set which version new customers of a market start on, and an
    /// optional candidate for a percent of them (operators only).
    Set(cli::rollout::SetArgs),
    /// The rollout of every market (or one).
    Show(cli::rollout::ShowArgs),
}

/// Runs an async command on a fresh runtime; errors go to stderr, exit 1.
fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("handoff: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handoff: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs an async command that chooses its own exit status; errors go to
/// stderr, exit 1.
fn block_on_status(f: impl std::future::Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let mut code = ExitCode::from(1);
    let status = block_on(async {
        code = f.await?;
        Ok(())
    });
    if status == ExitCode::SUCCESS {
        code
    } else {
        status
    }
}

/// Loadgen's exit status says whether the check passed (0) or not (1).
fn run_loadgen(args: LoadgenArgs) -> ExitCode {
    block_on_status(handoff::cli::loadgen::run(args))
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Model { command } => match command {
            ModelCommand::Check { file } => handoff::cli::model::check(&file),
            ModelCommand::Graph { file, format } => handoff::cli::model::graph(&file, format),
            ModelCommand::Scale { file, by } => handoff::cli::model::scale(&file, by),
            ModelCommand::Diff(args) => cli::model_diff::run(args),
            ModelCommand::Publish(args) => block_on(cli::publish::publish(args)),
            ModelCommand::List(args) => block_on(cli::publish::list(args)),
        },
        Command::Simulate {
            model,
            input,
            until,
        } => handoff::cli::simulate::run(&model, &input, until.as_deref()),
        Command::Serve(args) => {
            handoff::cli::serve::init_logging();
            block_on(handoff::cli::serve::run(args))
        }
        Command::Ingest(args) => block_on_status(cli::ingest::ingest(args)),
        Command::Customer { command } => match command {
            CustomerCommand::Get(args) => block_on(cli::customer::customer_get(args)),
        },
        Command::Rollout { command } => match command {
            RolloutCommand::Set(args) => block_on(cli::rollout::set(args)),
            RolloutCommand::Show(args) => block_on(cli::rollout::show(args)),
        },
        Command::Customers { command } => match command {
            CustomersCommand::List(args) => block_on(cli::customers::list(args)),
            CustomersCommand::Migrate(args) => block_on(cli::migrate::migrate(args)),
        },
        Command::Escalations { command } => match command {
            EscalationsCommand::Tail(args) => block_on(cli::escalations::tail::tail(args)),
            EscalationsCommand::List(args) => block_on(cli::escalations::list::list(args)),
            EscalationsCommand::Ack(args) => block_on(cli::escalations::ack::ack(args)),
        },
        Command::Token { command } => match command {
            TokenCommand::New(args) => match handoff::cli::token::new(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("handoff: {e:#}");
                    ExitCode::from(1)
                }
            },
        },
        Command::Report(args) => block_on(cli::report::report(args)),
        Command::Loadgen(args) => run_loadgen(args),
        Command::History { command } => match command {
            HistoryCommand::Export(args) => block_on(cli::history::export_history(args)),
        },
        Command::Store { command } => match command {
            StoreCommand::Compact { data } => handoff::cli::store::compact(&data),
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap's own checks of the command tree (a name or alias used twice,
    /// a flag that clashes), which otherwise panic only when run.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// One of jemalloc's options, as it read them at start.
    fn jemalloc_option<T: Copy>(name: &str) -> T {
        let name = std::ffi::CString::new(name).expect("an option name");
        let mut value = std::mem::MaybeUninit::<T>::uninit();
        let mut len = std::mem::size_of::<T>();
        // SAFETY: `mallctl` reads the option into `value`, of the size
        // given; it fails (non-zero) rather than write another size.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, 0, "mallctl {name:?} failed ({rc})");
        assert_eq!(len, std::mem::size_of::<T>());
        // SAFETY: written by `mallctl`, which succeeded.
        unsafe { value.assume_init() }
    }

    /// jemalloc read `MALLOC_CONF` (freed memory kept 10 s, no huge
    /// pages of its own), and the process has transparent huge pages off.
    #[test]
    fn the_allocator_keeps_freed_memory_ten_seconds_in_small_pages() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_none() {
            assert_eq!(
                jemalloc_option::<isize>("opt.dirty_decay_ms"),
                10_000,
                "jemalloc did not read the node's malloc_conf"
            );
            assert_eq!(jemalloc_option::<isize>("opt.muzzy_decay_ms"), 0);
            let thp: *const std::ffi::c_char = jemalloc_option("opt.thp");
            // SAFETY: jemalloc's option strings are static C strings.
            let thp = unsafe { std::ffi::CStr::from_ptr(thp) };
            assert_eq!(thp.to_str(), Ok("never"));
        }
        super::tune_allocator();
        // SAFETY: reads a flag of this process.
        let thp_off = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(thp_off, 1, "transparent huge pages are still on");
    }
}
