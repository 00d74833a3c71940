//! Where a node is and how to prove who we are: the flags every client
//! command takes (`--target`, `--token`, `--ca`, `--cert`/`--key`), and
//! the authenticated gRPC clients they make.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::api::pb::escalations_client::EscalationsClient;
use crate::api::pb::lifecycle_client::LifecycleClient;

pub use crate::client::{Authed, Bearer};

/// Where the node is and how to prove who we are (every client command
/// takes it).
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The node's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub target: String,
    /// Bearer token for a node that requires credentials (`handoff token new`).
    #[arg(long, env = "HANDOFF_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// CA certificate (PEM) that signed the node's certificate: connect with TLS.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; its subject CN names who we are.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
}

/// A token: never shown by `Debug`, so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))
}

impl Target {
    fn tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let Some(ca) = &self.ca else {
            bail!(
                "--target {} uses https: pass --ca FILE, the CA certificate (PEM) that signed the node's certificate",
                self.target
            );
        };
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca", ca)?));
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(
                read("--cert", cert)?,
                read("--key", key)?,
            ));
        }
        Ok(tls)
    }

    /// The token as call metadata (marked sensitive: never indexed by
    /// HTTP/2 header compression, never printed).
    pub fn bearer(&self) -> anyhow::Result<Bearer> {
        let Some(Secret(token)) = &self.token else {
            return Ok(Bearer(None));
        };
        let mut value =
            MetadataValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| {
                anyhow::anyhow!(
                    "--token (or HANDOFF_TOKEN) has characters no token has: copy it again"
                )
            })?;
        value.set_sensitive(true);
        Ok(Bearer(Some(value)))
    }

    pub async fn lifecycle(&self) -> anyhow::Result<LifecycleClient<Authed>> {
        Ok(LifecycleClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }

    pub async fn escalations(&self) -> anyhow::Result<EscalationsClient<Authed>> {
        Ok(EscalationsClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }

    /// A connection (TLS with `--ca` or an https target); the token is
    /// added by [`Target::lifecycle`] and [`Target::escalations`].
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        self.endpoint()?.connect().await.with_context(|| {
            format!(
                "cannot reach a node at {}: is `handoff serve` running?",
                self.target
            )
        })
    }

    /// Where and how to connect, without connecting: what is wrong here
    /// (an address or TLS file) stays wrong, unlike an unreachable node.
    pub fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let tls = self.ca.is_some() || self.target.starts_with("https://");
        let uri = if self.target.contains("://") {
            self.target.clone()
        } else if tls {
            format!("https://{}", self.target)
        } else {
            format!("http://{}", self.target)
        };
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .with_context(|| format!("--target {} is not an address", self.target))?;
        if tls {
            endpoint = endpoint
                .tls_config(self.tls()?)
                .context("the TLS settings (--ca, --cert, --key) cannot be used")?;
        }
        Ok(endpoint.connect_timeout(Duration::from_secs(5)))
    }
}
