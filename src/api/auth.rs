//! Authentication at the gRPC edge. An interceptor turns the bearer token
//! (`authorization: Bearer ...`) or the verified client certificate of each
//! call into a [`Principal`] carried with the request; the services read it
//! with [`caller`] and apply the rules of `crate::auth` through [`enforce`],
//! which counts and logs every denial. [`Edge`] holds the listener's TLS
//! set-up and how it admits callers, decided once at start-up.
//!
//! A token never reaches a log line, a metric or an error message: only
//! the principal it stands for does.

use std::path::Path;
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};

use crate::auth::{
    Admission, AuthError, Credentials, Denial, Exposure, Principal, Rule, admission,
};
use crate::engine::model::Model;
use crate::node::{NodeConfig, NodeError};

/// The listener's security: TLS, and how callers are admitted.
pub struct Edge {
    pub(super) authenticate: Authenticate,
    pub(super) tls: Option<ServerTlsConfig>,
    admission: Admission,
    /// One line for the start-up log: how this node admits callers.
    summary: String,
}

impl Edge {
    /// No TLS, every caller has operator rights (the node as it was before
    /// authentication; in-process tests use it).
    pub fn open() -> Edge {
        Edge {
            authenticate: Authenticate(Arc::new(Guard {
                credentials: Credentials::default(),
                model: None,
                open: true,
            })),
            tls: None,
            admission: Admission::Open,
            summary: "running open: every caller has operator rights".into(),
        }
    }

    /// Reads the credentials and TLS files of the config and decides how
    /// the node admits callers; refuses a non-loopback listener without
    /// TLS and credentials unless `insecure`.
    pub fn from_config(
        config: &NodeConfig,
        model: &Arc<Model>,
        insecure: bool,
    ) -> Result<Edge, AuthError> {
        let credentials = Credentials::from_config(&config.credentials, model)?;
        let client_ca = config.tls_client_ca.as_deref();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key, client_ca)?),
            _ => None,
        };
        let admission = admission(Exposure {
            listen: config.listen,
            tls: tls.is_some(),
            credentials: !credentials.is_empty() || client_ca.is_some(),
            insecure,
        })?;
        let listen = config.listen;
        let summary = match admission {
            Admission::Open if listen.ip().is_loopback() => format!(
                "running open: no credentials are configured, so every caller has operator rights \
                 (allowed on {listen}, a loopback address; add [[credentials]] from `handoff token new` to require them)"
            ),
            Admission::Open => format!(
                "running open on {listen} with --insecure: no credentials are configured, so everyone who can reach it has operator rights"
            ),
            Admission::Authenticated => format!(
                "callers authenticate with {} token(s){}; TLS {}",
                credentials.len(),
                if client_ca.is_some() {
                    " or a client certificate signed by tls_client_ca"
                } else {
                    ""
                },
                if tls.is_some() {
                    "on"
                } else {
                    "off (tokens travel in clear text)"
                }
            ),
        };
        Ok(Edge {
            authenticate: Authenticate(Arc::new(Guard {
                credentials,
                model: client_ca.map(|_| model.clone()),
                open: admission == Admission::Open,
            })),
            tls,
            admission,
            summary,
        })
    }

    /// The interceptor that admits callers, for another listener that
    /// must admit them the same way (the dashboard, `crate::web`).
    pub fn authenticator(&self) -> Authenticate {
        self.authenticate.clone()
    }

    pub fn admission(&self) -> Admission {
        self.admission
    }

    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Says once, in the log, how this node admits callers.
    pub fn announce(&self, insecure: bool) {
        if insecure {
            tracing::warn!("{}", self.summary);
        } else {
            tracing::info!("{}", self.summary);
        }
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path)
        .map_err(|e| AuthError::Tls(format!("cannot read {what} {}: {e}", path.display())))
}

/// Every cause of an error, for a message that says what is wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn tls_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, AuthError> {
    let identity = Identity::from_pem(read("tls_cert", cert)?, read("tls_key", key)?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = client_ca {
        // Optional at the TLS layer so that callers with a token, and
        // health probes, connect without a certificate; the interceptor
        // then requires one credential or the other.
        tls = tls
            .client_ca_root(Certificate::from_pem(read("tls_client_ca", ca)?))
            .client_auth_optional(true);
    }
    // Build it once now, so a bad file is an error at start-up.
    tonic::transport::Server::builder()
        .tls_config(tls.clone())
        .map_err(|e| {
            AuthError::Tls(format!(
                "TLS files (tls_cert {}, tls_key {}{}) cannot be used ({}): they must be PEM: the node's certificate chain, \
                 its private key{}",
                cert.display(),
                key.display(),
                client_ca
                    .map(|c| format!(", tls_client_ca {}", c.display()))
                    .unwrap_or_default(),
                chain(&e),
                if client_ca.is_some() {
                    " and the CA certificate(s) that sign client certificates"
                } else {
                    ""
                }
            ))
        })?;
    Ok(tls)
}

/// The principal of a call, as the interceptor found it.
#[derive(Debug, Clone)]
struct Caller(Principal);

/// The interceptor on every `handoff.v1` service and reflection (health
/// stays open for probes).
#[derive(Clone)]
pub struct Authenticate(Arc<Guard>);

struct Guard {
    credentials: Credentials,
    /// Set when client certificates are accepted: their principals are
    /// checked against it.
    model: Option<Arc<Model>>,
    /// No credentials configured: every caller is [`Principal::Anyone`].
    open: bool,
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.0.identify(&request)?;
        request.extensions_mut().insert(Caller(principal));
        Ok(request)
    }
}

impl Guard {
    fn identify(&self, request: &Request<()>) -> Result<Principal, Status> {
        if self.open {
            return Ok(Principal::Anyone);
        }
        let refuse = |reason: &'static str, message: String| {
            metrics::counter!("handoff_unauthenticated_total", "reason" => reason).increment(1);
            let peer = request
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::info!(reason, peer, "unauthenticated call refused");
            Status::unauthenticated(message)
        };
        let by_token = match request.metadata().get("authorization") {
            None => None,
            Some(value) => {
                let Some(token) = bearer(value) else {
                    return Err(refuse(
                        "bad_header",
                        "the authorization metadata is not `Bearer <token>`: send exactly that"
                            .into(),
                    ));
                };
                match self.credentials.authenticate(token) {
                    Some(p) => Some(p.clone()),
                    None => {
                        return Err(refuse(
                            "unknown_token",
                            "the bearer token is not one this node accepts: check that it was copied whole and that \
                             its sha256 (printed by `handoff token new`) is in the node's [[credentials]]"
                                .into(),
                        ));
                    }
                }
            }
        };
        let by_cert = match (&self.model, request.peer_certs()) {
            (Some(model), Some(certs)) if !certs.is_empty() => {
                let p = Principal::from_certificate(&certs[0])
                    .and_then(|p| p.check_in(model).map(|()| p))
                    .map_err(|e| refuse("bad_certificate", e.to_string()))?;
                Some(p)
            }
            _ => None,
        };
        match (by_token, by_cert) {
            (Some(t), Some(c)) if t != c => Err(refuse(
                "mismatch",
                format!(
                    "the bearer token is for {t} but the client certificate is for {c}: present credentials of one principal"
                ),
            )),
            (Some(p), _) | (None, Some(p)) => Ok(p),
            (None, None) => Err(refuse(
                "missing",
                "this node requires credentials: send `authorization: Bearer <token>` metadata \
                 (the CLI's --token or HANDOFF_TOKEN) or a client certificate"
                    .into(),
            )),
        }
    }
}

/// The token of `Bearer <token>` (the scheme in any case).
fn bearer(value: &MetadataValue<tonic::metadata::Ascii>) -> Option<&str> {
    let text = value.to_str().ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Who is calling (set by the interceptor; a call without it was served
/// without authentication, a bug, and is refused).
pub fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| {
            Status::internal(
                "the call reached a service without passing authentication: the node is served wrongly (a bug)",
            )
        })
}

/// Applies a rule's answer: a denial is counted by principal and rule,
/// logged (never with a token) and returned as PERMISSION_DENIED.
pub fn enforce<T>(caller: &Principal, decided: Result<T, Denial>) -> Result<T, Status> {
    decided.map_err(|d| denied(caller, d))
}

fn denied(caller: &Principal, d: Denial) -> Status {
    metrics::counter!(
        "handoff_denied_total",
        "principal" => caller.to_string(),
        "rule" => d.rule.as_str()
    )
    .increment(1);
    tracing::info!(principal = %caller, rule = d.rule.as_str(), "permission denied");
    Status::permission_denied(d.to_string())
}

/// The node's own permission check (acknowledge: the notified team or
/// the SLA's owner) goes through the same counting as the edge's rules.
pub fn node_denial(caller: &Principal, e: NodeError) -> Status {
    match e {
        NodeError::PermissionDenied(reason) => {
            denied(caller, Denial::new(Rule::NotifiedOrOwner, reason))
        }
        other => Status::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> MetadataValue<tonic::metadata::Ascii> {
        MetadataValue::try_from(s).expect("ascii")
    }

    #[test]
    fn a_bearer_header_gives_its_token() {
        assert_eq!(bearer(&value("Bearer hnd_abc")), Some("hnd_abc"));
        assert_eq!(bearer(&value("bearer  hnd_abc ")), Some("hnd_abc"));
        assert_eq!(bearer(&value("Basic hnd_abc")), None);
        assert_eq!(bearer(&value("hnd_abc")), None);
        assert_eq!(bearer(&value("Bearer ")), None);
    }
}
