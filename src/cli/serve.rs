//! `handoff serve`: runs a node on the embedded store, or (with `--store
//! postgres://...`) as a member of a cluster.
//!
//! Defaults (API.md): the reference model compiled into the binary, data in
//! `./data`, gRPC on 127.0.0.1:50051, metrics on 127.0.0.1:9464. A config
//! file sets the rest; flags override it. SIGTERM or SIGINT: stop
//! accepting, finish in-flight calls, end open streams, flush, exit 0.
//!
//! Who may call is decided before anything is opened: with no credentials
//! on a loopback address the node runs open and says so; it refuses a
//! non-loopback address without TLS and credentials unless `--insecure`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::cluster::Member;
use crate::engine::model::{Model, catalog, load, load_file};
use crate::node::{Node, NodeConfig};
use crate::store::{FjallStore, PgOptions, PgStore, Store};

/// The reference model, built in so `handoff serve` works from anywhere.
pub const DEFAULT_MODEL: &str = include_str!("../../examples/saas.toml");

/// Flags of `handoff serve`; each overrides the config file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML config file (see the README's "Running the node").
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The lifecycle model (default: the built-in reference model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The data directory (default ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// gRPC address (default 127.0.0.1:50051; port 0 picks a free one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Prometheus metrics address (default 127.0.0.1:9464; port 0 picks one).
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
    /// The store: `fjall` (the embedded store in --data, the default) or a
    /// cluster's PostgreSQL, postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    /// (from the environment, it stays out of `ps`).
    #[arg(long, env = "HANDOFF_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// This node's name in the cluster (with --store postgres://...).
    #[arg(long)]
    pub node_id: Option<String>,
    /// The address peers forward calls to (default: the listen address).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Listen on a non-loopback address without TLS or credentials
    /// (only behind a layer that provides them, e.g. a service mesh).
    #[arg(long)]
    pub insecure: bool,
}

impl ServeArgs {
    /// The effective configuration.
    pub fn config(&self) -> anyhow::Result<NodeConfig> {
        let mut c = match &self.config {
            Some(path) => NodeConfig::load(path).map_err(anyhow::Error::msg)?,
            None => NodeConfig::default(),
        };
        if let Some(m) = &self.model {
            c.model = Some(m.clone());
        }
        if let Some(d) = &self.data {
            c.data = d.clone();
        }
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(m) = self.metrics {
            c.metrics = m;
        }
        if let Some(s) = &self.store {
            c.store = Some(s.clone());
        }
        if let Some(n) = &self.node_id {
            c.node_id = Some(n.clone());
        }
        if let Some(a) = &self.advertise {
            c.advertise = Some(a.clone());
        }
        Ok(c)
    }
}

fn model(path: Option<&Path>) -> anyhow::Result<Model> {
    let loaded = match path {
        Some(p) => load_file(p),
        None => load("examples/saas.toml (built in)", DEFAULT_MODEL),
    };
    loaded.map_err(|problems| {
        anyhow::anyhow!(
            "{problems}\nthe model does not load: fix the problems above (handoff model check)"
        )
    })
}

/// Records the shard count in a new data directory and refuses another
/// one later: the shard is part of every durable key.
fn check_layout(data: &Path, shards: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let meta = data.join("handoff-layout.toml");
    match std::fs::read_to_string(&meta) {
        Ok(text) => {
            let stored: toml::Table =
                toml::from_str(&text).with_context(|| format!("{} is damaged", meta.display()))?;
            let was = stored
                .get("shards")
                .and_then(|v| v.as_integer())
                .unwrap_or(-1);
            if was != i64::from(shards) {
                bail!(
                    "the data directory {} was created with shards = {was}; this node is configured with {shards}: \
                     the shard count is fixed when a data directory is created, so set shards = {was}",
                    data.display()
                );
            }
        }
        Err(_) => {
            std::fs::write(
                &meta,
                format!("# written by handoff when the directory was created\nshards = {shards}\n"),
            )
            .with_context(|| format!("cannot write {}", meta.display()))?;
        }
    }
    Ok(())
}

/// Runs a node until SIGTERM/SIGINT.
///
/// Everything that can fail without touching the data directory (config,
/// model, credentials, the gRPC and metrics ports) is done first; a start
/// that fails after creating the data directory removes it again, so a
/// failed first start leaves nothing behind.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    config.check().map_err(anyhow::Error::msg)?;
    let model_name = config.model.as_deref().map_or_else(
        || "examples/saas.toml (built in)".to_owned(),
        |p| p.display().to_string(),
    );
    let model = Arc::new(model(config.model.as_deref())?);
    let fingerprint = catalog::fingerprint(&model.spec);
    let edge = crate::api::Edge::from_config(&config, &model, args.insecure)?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}: is another node running there? (--listen picks another \
             address; port 0 any free port)",
            config.listen
        )
    })?;
    let listen = listener.local_addr()?;
    let installed = crate::metrics::install(config.metrics)?;
    let upkeep = crate::metrics::spawn_upkeep(installed.handle.clone());
    // `/metrics` is served from now on; the dashboard once the node is open.
    let http = crate::web::serve(installed.listener, installed.handle)
        .context("cannot serve the metrics listener")?;
    let metrics = http.addr;
    let started = std::time::Instant::now();
    let (node, store, member) = if config.postgres_url().is_some() {
        let advertise = config.advertised(listen);
        let (node, store, member) = open_cluster(&config, model, advertise).await?;
        (node, store, Some(member))
    } else {
        let created = !config.data.exists();
        match open(&config, model).await {
            Ok((node, store)) => (node, store, None),
            Err(e) => {
                if created {
                    let _ = std::fs::remove_dir_all(&config.data);
                }
                return Err(e);
            }
        }
    };
    let where_data = match &member {
        Some(m) => format!(
            "cluster database {} as node {} (peers reach it at {})",
            m.1,
            m.0.node_id(),
            m.0.advertise()
        ),
        None => format!("data {}", config.data.display()),
    };
    let usage = crate::metrics::spawn_usage_gauges(store);
    let model = node.versions().started();
    tracing::info!(
        model = %model.spec.name,
        version = model.spec.version,
        file = %model_name,
        fingerprint = %fingerprint,
        data = %where_data,
        grpc = %listen,
        tls = edge.tls(),
        metrics = %metrics,
        startup_ms = started.elapsed().as_millis() as u64,
        "handoff is serving"
    );
    edge.announce(args.insecure);
    let refused = crate::web::refusal(metrics, edge.admission(), args.insecure);
    if let Some(why) = &refused {
        tracing::warn!("{why}");
    }
    // One plain line for people and scripts (tests read it for the port).
    println!(
        "handoff serving {listen} (metrics http://{metrics}/metrics, model {} v{} from {model_name} \
         [{}], {where_data})",
        model.spec.name,
        model.spec.version,
        catalog::short(&fingerprint),
    );

    let (stop_leases, leases_stopped) = tokio::sync::watch::channel(false);
    let (fatal_tx, fatal) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let leases = member.as_ref().map(|(m, _)| {
        let m = m.clone();
        tokio::spawn(async move {
            if let Err(e) = m.run(leases_stopped).await {
                let _ = fatal_tx.send(e);
            }
        })
    });
    let stopping = node.clone();
    let (fatal_seen, mut fatal_error) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let signal = async move {
        tokio::select! {
            _ = wait_for_signal() => {}
            Ok(e) = fatal => {
                tracing::error!(error = %e, "stopping");
                let _ = fatal_seen.send(e);
            }
        }
        tracing::info!("stopping: finishing in-flight calls, ending streams");
        stopping.stop_streams();
    };
    let peer_tls = match &config.peer_ca {
        Some(ca) => Some(
            tonic::transport::ClientTlsConfig::new().ca_certificate(
                tonic::transport::Certificate::from_pem(
                    std::fs::read(ca)
                        .with_context(|| format!("cannot read peer_ca {}", ca.display()))?,
                ),
            ),
        ),
        None => None,
    };
    let routing = member.as_ref().map(|(m, _)| {
        let routing =
            crate::api::Routing::new(m.clone() as Arc<dyn crate::api::Locate>, m.advertise());
        Arc::new(match &peer_tls {
            Some(tls) => routing.with_tls(tls.clone()),
            None => routing,
        })
    });
    http.open(crate::web::Dashboard {
        node: node.clone(),
        routing: routing.clone(),
        authenticate: edge.authenticator(),
        refused,
    });
    crate::api::serve_routed(node.clone(), listener, signal, edge, routing).await?;
    // The dashboard's event streams hold the node: they end with it.
    http.stop().await;
    upkeep.abort();
    if let Some((m, _)) = &member {
        let _ = stop_leases.send(true);
        if let Some(l) = leases {
            let _ = l.await;
        }
        m.leave().await;
    }
    if member.is_some() {
        // The membership's tasks may still hold the node for a moment;
        // the database needs no flush.
        node.shutdown().await;
    } else {
        let node = Arc::try_unwrap(node)
            .map_err(|_| anyhow::anyhow!("calls still hold the node at shutdown"))?;
        node.shutdown().await;
    }
    if let Ok(e) = fatal_error.try_recv() {
        usage.abort();
        return Err(e);
    }
    usage.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Opens the data directory: the layout check, the store, the node (which
/// binds the model to the directory's catalog).
async fn open(
    config: &NodeConfig,
    model: Arc<Model>,
) -> anyhow::Result<(Arc<Node>, Arc<dyn Store>)> {
    check_layout(&config.data, config.shards)?;
    let store: Arc<dyn Store> = Arc::new(
        FjallStore::open(&config.data)
            .with_context(|| format!("opening the store in {}", config.data.display()))?,
    );
    let node = Node::open(config.clone(), model, store.clone(), Arc::new(SystemClock)).await?;
    Ok((Arc::new(node), store))
}

/// Joins the cluster in the database at `store`: the schema, the node
/// (serving no shard until it holds leases), the membership.
async fn open_cluster(
    config: &NodeConfig,
    model: Arc<Model>,
    advertise: String,
) -> anyhow::Result<(Arc<Node>, Arc<dyn Store>, (Arc<Member>, String))> {
    let url = config
        .postgres_url()
        .expect("invariant: called for a cluster config");
    let pg = Arc::new(PgStore::open(PgOptions {
        url: url.to_owned(),
        node_id: config
            .node_id
            .clone()
            .expect("invariant: config.check() requires node_id with a postgres store"),
        shards: config.shards,
        pool_size: 16,
    })?);
    let target = pg.target().to_owned();
    let store: Arc<dyn Store> = pg.clone();
    let node = Arc::new(
        Node::open_unowned(config.clone(), model, store.clone(), Arc::new(SystemClock)).await?,
    );
    let member = Member::join(
        pg,
        node.clone(),
        advertise,
        config.lease_ttl(),
        config.lease_renew(),
    )
    .await?;
    Ok((node, store, (member, target)))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Structured logs to stderr; `RUST_LOG` filters (default `info`, storage
/// internals at `warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn,tokio_postgres=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
