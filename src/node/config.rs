//! The node's configuration: a TOML file (`handoff serve --config FILE`),
//! overridden by flags, with the defaults of API.md.
//!
//! `examples/node.toml` is every key with its default and what it means
//! (a unit test keeps the two in step).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::Limits;
use crate::engine::model::{Duration, parse_duration};

/// Settings of one node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
    pub data: PathBuf,
    pub model: Option<PathBuf>,
    pub shards: u32,
    pub max_active_actors: usize,
    /// Calls in flight before the node sheds load (RESOURCE_EXHAUSTED).
    pub max_in_flight: usize,
    /// Ingested events accepted and not yet answered before ingest is shed
    /// (RESOURCE_EXHAUSTED; an IngestBatch is admitted whole or not at all).
    pub max_queued_events: usize,
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    pub timer_window: usize,
    /// How long an event's idempotency key is remembered (at least).
    #[serde(deserialize_with = "duration")]
    pub idempotency_retention: Duration,
    /// How long an escalation stays in the log (by when it fired) before
    /// the retention pass prunes it; `earliest` replays from what is left.
    #[serde(deserialize_with = "duration")]
    pub escalation_retention: Duration,
    /// How long a customer's facts (its history) are kept, by when they
    /// were decided, before the retention pass prunes them.
    #[serde(deserialize_with = "duration")]
    pub fact_retention: Duration,
    pub max_len: usize,
    #[serde(deserialize_with = "duration")]
    pub max_future: Duration,
    /// An event whose `occurred_at` is older than this, by the node's
    /// clock, is refused as malformed.
    #[serde(deserialize_with = "duration")]
    pub max_past: Duration,
    /// Who may call, by token hash; empty (and no `tls_client_ca`): the
    /// node runs open, on a loopback address only (see `auth`).
    pub credentials: Vec<crate::auth::CredentialConfig>,
    /// The gRPC listener's certificate chain and key (PEM): TLS when set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CA of client certificates whose subject CN names a principal.
    pub tls_client_ca: Option<PathBuf>,
    /// Where the data lives: absent or `fjall`, the embedded store in
    /// `data` (a single node); `postgres://...`, a cluster's shared
    /// database (the node joins the cluster).
    pub store: Option<String>,
    /// This node's name in the cluster (unique among live nodes).
    pub node_id: Option<String>,
    /// The address peers forward calls to (`host:port` of this node's
    /// gRPC listener as they reach it).
    pub advertise: Option<String>,
    /// CA certificate (PEM) that signed the other nodes' gRPC certificates:
    /// a cluster whose nodes serve TLS forwards calls over TLS, verified
    /// against it.
    pub peer_ca: Option<PathBuf>,
    /// How long a shard lease lasts without renewal (database time): a
    /// dead node's shards move after at most this long.
    #[serde(deserialize_with = "duration")]
    pub lease_ttl: Duration,
    /// How often a node renews its leases (and heartbeats).
    #[serde(deserialize_with = "duration")]
    pub lease_renew: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9464)),
            data: PathBuf::from("./data"),
            model: None,
            shards: 16,
            max_active_actors: 50_000,
            max_in_flight: 100_000,
            max_queued_events: 20_000,
            idle_timeout: Duration::from_secs(30),
            timer_window: 10_000,
            idempotency_retention: Duration::from_secs(7 * 86_400),
            escalation_retention: Duration::from_secs(30 * 86_400),
            // A year and a margin: past `max_past`, the oldest an event may be.
            fact_retention: Duration::from_secs(400 * 86_400),
            max_len: 256,
            max_future: Duration::from_secs(300),
            max_past: Limits::default().max_past,
            credentials: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            store: None,
            node_id: None,
            advertise: None,
            peer_ca: None,
            lease_ttl: Duration::from_secs(3),
            lease_renew: Duration::from_secs(1),
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

impl NodeConfig {
    /// Reads a config file; the error names the file and what to fix.
    pub fn load(path: &Path) -> Result<NodeConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        let config: NodeConfig =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        config
            .check()
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn check(&self) -> Result<(), String> {
        if self.shards == 0 || self.shards > 4096 {
            return Err(format!(
                "shards = {} must be between 1 and 4096",
                self.shards
            ));
        }
        if self.max_in_flight == 0 {
            return Err("max_in_flight must be at least 1".into());
        }
        if self.max_queued_events == 0 || self.max_queued_events > u32::MAX as usize {
            return Err(format!(
                "max_queued_events = {} must be between 1 and {}",
                self.max_queued_events,
                u32::MAX
            ));
        }
        if self.max_active_actors == 0 {
            return Err("max_active_actors must be at least 1".into());
        }
        if self.timer_window == 0 {
            return Err("timer_window must be at least 1".into());
        }
        if self.idempotency_retention.0 <= 0 {
            return Err("idempotency_retention must be positive".into());
        }
        if self.escalation_retention.0 <= 0 {
            return Err(
                "escalation_retention must be positive (it is how long a fired escalation stays \
                 in the log for Subscribe to replay, e.g. \"30d\")"
                    .into(),
            );
        }
        if self.fact_retention.0 <= 0 {
            return Err(
                "fact_retention must be positive (it is how long a customer's history, its facts, \
                 is kept by when they were decided, e.g. \"400d\")"
                    .into(),
            );
        }
        if self.max_past.0 <= 0 {
            return Err(
                "max_past must be positive (it is how old an event's occurred_at may be, e.g. \"365d\")"
                    .into(),
            );
        }
        if self.idle_timeout.0 <= 0 {
            return Err("idle_timeout must be positive".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(
                "set both tls_cert and tls_key (the certificate and its key), or neither".into(),
            );
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err("tls_client_ca needs TLS: set tls_cert and tls_key too".into());
        }
        if self.lease_renew.0 <= 0 || self.lease_renew.0 * 2 > self.lease_ttl.0 {
            return Err(format!(
                "lease_renew ({}) must be positive and at most half of lease_ttl ({}), so that \
                 a lease is renewed at least twice before it ends",
                self.lease_renew, self.lease_ttl
            ));
        }
        if let Some(url) = self.postgres_url() {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(format!(
                    "store = \"{url}\" is neither \"fjall\" (the embedded store) nor a \
                     postgres:// URL (a cluster's database)"
                ));
            }
            let Some(id) = self.node_id.as_deref() else {
                return Err(
                    "a cluster node needs a name: set --node-id (node_id), unique among the \
                     cluster's nodes"
                        .into(),
                );
            };
            if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_control()) {
                return Err(format!(
                    "node_id `{id}` must be 1 to 64 characters, without control characters"
                ));
            }
            if self.tls_cert.is_some() && self.peer_ca.is_none() {
                return Err(
                    "a cluster node that serves TLS forwards calls to its peers over TLS: set \
                     peer_ca to the CA certificate (PEM) that signed the nodes' certificates"
                        .into(),
                );
            }
        } else if self.node_id.is_some() || self.advertise.is_some() {
            return Err(
                "--node-id and --advertise are for a cluster: set --store postgres://... too (or \
                 drop them for a single node)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The cluster database's URL, if the node runs in a cluster.
    pub fn postgres_url(&self) -> Option<&str> {
        self.store.as_deref().filter(|s| *s != "fjall")
    }

    /// The address peers reach this node at: `advertise`, else the
    /// listen address.
    pub fn advertised(&self, listen: SocketAddr) -> String {
        self.advertise.clone().unwrap_or_else(|| listen.to_string())
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_len: self.max_len,
            max_future: self.max_future,
            max_past: self.max_past,
        }
    }

    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.idle_timeout.0.max(0) as u64)
    }

    pub fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.lease_ttl.0.max(0) as u64)
    }

    pub fn lease_renew(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.lease_renew.0.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_overrides_defaults_and_names_mistakes() {
        let c: NodeConfig = toml::from_str("shards = 4\nidle_timeout = \"2m\"").expect("valid");
        assert_eq!(c.shards, 4);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.listen, NodeConfig::default().listen);
        let e = toml::from_str::<NodeConfig>("shard = 4").expect_err("typo");
        assert!(e.to_string().contains("shard"), "{e}");
        let e = toml::from_str::<NodeConfig>("idle_timeout = \"soon\"").expect_err("bad");
        assert!(e.to_string().contains("not a duration"), "{e}");
    }

    #[test]
    fn the_shipped_example_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node.toml");
        let example = NodeConfig::load(&path).expect("examples/node.toml loads");
        assert_eq!(
            example,
            NodeConfig::default(),
            "keep examples/node.toml in step"
        );
    }

    #[test]
    fn escalation_retention_defaults_to_30_days_and_must_be_positive() {
        let c = NodeConfig::default();
        assert_eq!(c.escalation_retention, Duration::from_secs(30 * 86_400));
        let c: NodeConfig = toml::from_str("escalation_retention = \"12h\"").expect("valid");
        assert_eq!(c.escalation_retention, Duration::from_secs(12 * 3600));
        let c: NodeConfig = toml::from_str("escalation_retention = \"0s\"").expect("parses");
        let e = c.check().expect_err("zero");
        assert!(e.contains("escalation_retention"), "{e}");
    }

    #[test]
    fn fact_retention_defaults_to_400_days_and_must_be_positive() {
        let c = NodeConfig::default();
        assert_eq!(c.fact_retention, Duration::from_secs(400 * 86_400));
        assert!(c.fact_retention.0 > c.max_past.0, "past the oldest event");
        let c: NodeConfig = toml::from_str("fact_retention = \"90d\"").expect("valid");
        assert_eq!(c.fact_retention, Duration::from_secs(90 * 86_400));
        c.check().expect("a shorter history is allowed");
        let c: NodeConfig = toml::from_str("fact_retention = \"0s\"").expect("parses");
        let e = c.check().expect_err("zero");
        assert!(e.contains("fact_retention") && e.contains("history"), "{e}");
    }

    #[test]
    fn cluster_settings_are_checked_together() {
        let cluster = |extra: &str| -> Result<(), String> {
            toml::from_str::<NodeConfig>(&format!("store = \"postgres://h@db/handoff\"\n{extra}"))
                .expect("parses")
                .check()
        };
        let e = cluster("").expect_err("no node id");
        assert!(e.contains("--node-id"), "{e}");
        cluster("node_id = \"n1\"").expect("a cluster node");
        let e =
            cluster("node_id = \"n1\"\ntls_cert = \"a\"\ntls_key = \"b\"").expect_err("no peer_ca");
        assert!(e.contains("peer_ca"), "{e}");
        cluster("node_id = \"n1\"\ntls_cert = \"a\"\ntls_key = \"b\"\npeer_ca = \"c\"")
            .expect("TLS between peers");
        let e = cluster("node_id = \"n1\"\nlease_ttl = \"1s\"").expect_err("renew > ttl / 2");
        assert!(e.contains("lease_renew"), "{e}");
        let e = toml::from_str::<NodeConfig>("store = \"mysql://x\"\nnode_id = \"n\"")
            .expect("parses")
            .check()
            .expect_err("not postgres");
        assert!(e.contains("postgres://"), "{e}");
        let e = toml::from_str::<NodeConfig>("node_id = \"n\"")
            .expect("parses")
            .check()
            .expect_err("a node id without a cluster");
        assert!(e.contains("--store"), "{e}");
        toml::from_str::<NodeConfig>("store = \"fjall\"")
            .expect("parses")
            .check()
            .expect("the embedded store, by name");
    }

    #[test]
    fn max_past_defaults_to_a_year_and_must_be_positive() {
        let c = NodeConfig::default();
        assert_eq!(c.limits().max_past, Duration::from_secs(365 * 86_400));
        let c: NodeConfig = toml::from_str("max_past = \"2d\"").expect("valid");
        assert_eq!(c.limits().max_past, Duration::from_secs(2 * 86_400));
        let c: NodeConfig = toml::from_str("max_past = \"0s\"").expect("parses");
        let e = c.check().expect_err("zero");
        assert!(e.contains("max_past"), "{e}");
    }
}
