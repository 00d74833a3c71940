//! Who may say what. Ownership through constraints only holds if the
//! constraints bind real callers, so the node knows who is calling and
//! enforces the model on that identity.
//!
//! A caller is a [`Principal`]: a *source* (an integration service named in
//! the model's `[sources]`), a *team* (named in `teams`) or an *operator*.
//! It proves who it is with a bearer token (`authorization: Bearer ...`)
//! whose SHA-256 hash the node's config binds to one principal, or with a
//! client certificate whose subject CN names the principal
//! (`source:billing`). This module is pure (no tonic, no I/O but the random
//! token): the gRPC glue lives in `api/auth.rs`.
//!
//! - `principal.rs`: principals, their `kind:name` spelling, and reading
//!   one from a client certificate.
//! - `credentials.rs`: tokens (`handoff token new`), their hashes, and the
//!   table from hash to principal that the config declares.
//! - `rules.rs`: the rules, in one place: what each kind of principal may
//!   do with each call.
//! - [`admission`]: whether the node may listen where it is told to with
//!   the TLS and credentials it has.

mod credentials;
mod principal;
mod rules;

use std::net::SocketAddr;

pub use credentials::{CredentialConfig, Credentials, TOKEN_PREFIX, new_token, token_hash_hex};
pub use principal::Principal;
pub use rules::{Denial, Rule};

/// Why the node cannot admit callers as configured, or why a credential is
/// not acceptable; each says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A principal spelled wrong (`kind:name`).
    #[error("`{text}` is not a principal: {why}; write source:NAME, team:NAME or operator:NAME")]
    BadPrincipal { text: String, why: String },
    /// A principal the model does not know.
    #[error("{0}")]
    NotInModel(String),
    /// A `[[credentials]]` entry that cannot be used.
    #[error("credentials entry {index} ({principal}): {why}")]
    BadCredential {
        index: usize,
        principal: String,
        why: String,
    },
    /// A client certificate that names no principal.
    #[error("{0}")]
    Certificate(String),
    /// A non-loopback listener without TLS and credentials.
    #[error("{0}")]
    Exposed(String),
    /// A TLS file that cannot be read or used.
    #[error("{0}")]
    Tls(String),
    /// The operating system's random source failed.
    #[error("cannot draw a random token from the operating system: {0}")]
    Random(String),
}

/// How the node admits callers, decided once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Every call must carry a known token or client certificate.
    Authenticated,
    /// No credentials are configured: every caller has operator rights.
    /// Only on a loopback listener, or anywhere with `--insecure`.
    Open,
}

/// What the node is configured with, for [`admission`].
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    pub listen: SocketAddr,
    /// A server certificate and key are configured.
    pub tls: bool,
    /// Tokens or a client CA are configured.
    pub credentials: bool,
    /// `handoff serve --insecure`.
    pub insecure: bool,
}

/// Decides how the node admits callers, or refuses to listen: on a
/// non-loopback address the node needs TLS (tokens and data would cross
/// the network in clear text) and credentials (anyone who can reach it
/// could speak for any source or team), unless `--insecure` says a layer
/// the operator trusts provides them.
pub fn admission(e: Exposure) -> Result<Admission, AuthError> {
    let admission = if e.credentials {
        Admission::Authenticated
    } else {
        Admission::Open
    };
    if e.listen.ip().is_loopback() || e.insecure {
        return Ok(admission);
    }
    let mut missing = Vec::new();
    if !e.tls {
        missing.push("TLS (set tls_cert and tls_key in the config file)");
    }
    if !e.credentials {
        missing.push(
            "credentials (add [[credentials]] entries made with `handoff token new`, or tls_client_ca for client certificates)",
        );
    }
    if missing.is_empty() {
        return Ok(admission);
    }
    Err(AuthError::Exposed(format!(
        "refusing to listen on {} without {}: it is not a loopback address, so anyone who can reach it could \
         read and send as any source or team. Configure what is missing, listen on 127.0.0.1, or pass \
         --insecure if a layer you trust (a service mesh with mTLS, a private network) already does this",
        e.listen,
        missing.join(" and ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(listen: &str, tls: bool, credentials: bool, insecure: bool) -> Exposure {
        Exposure {
            listen: listen.parse().expect("an address"),
            tls,
            credentials,
            insecure,
        }
    }

    #[test]
    fn loopback_without_credentials_runs_open() {
        assert_eq!(
            admission(exposure("127.0.0.1:50051", false, false, false)),
            Ok(Admission::Open)
        );
        assert_eq!(
            admission(exposure("[::1]:50051", false, false, false)),
            Ok(Admission::Open)
        );
        assert_eq!(
            admission(exposure("127.0.0.1:50051", false, true, false)),
            Ok(Admission::Authenticated)
        );
    }

    #[test]
    fn a_public_listener_needs_tls_and_credentials_or_insecure() {
        let e = admission(exposure("0.0.0.0:50051", false, false, false)).expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("0.0.0.0:50051"), "{text}");
        assert!(
            text.contains("TLS") && text.contains("credentials"),
            "{text}"
        );
        assert!(text.contains("--insecure"), "{text}");
        let e = admission(exposure("10.0.0.5:50051", true, false, false)).expect_err("refused");
        assert!(
            !e.to_string().contains("TLS (set"),
            "only what is missing: {e}"
        );
        let e = admission(exposure("10.0.0.5:50051", false, true, false)).expect_err("refused");
        assert!(e.to_string().contains("tls_cert"), "{e}");
        assert_eq!(
            admission(exposure("10.0.0.5:50051", true, true, false)),
            Ok(Admission::Authenticated)
        );
        assert_eq!(
            admission(exposure("0.0.0.0:50051", false, false, true)),
            Ok(Admission::Open)
        );
    }
}
