//! Principals: who a caller is. Written `kind:name` everywhere a person
//! writes one: in `[[credentials]]` entries, in the subject CN of a client
//! certificate, in logs and in the `principal` label of metrics.

use std::fmt;

use x509_cert::Certificate;
use x509_cert::der::Decode;

use super::AuthError;
use crate::engine::model::Model;

/// Longest principal name.
const MAX_NAME: usize = 128;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// An integration service, by its name in the model's `[sources]`.
    Source(String),
    /// A team, by its name in the model's `teams`.
    Team(String),
    /// A person or tool that runs the node: may do everything.
    Operator(String),
    /// Any caller of a node that runs open (no credentials configured):
    /// operator rights, as before authentication existed.
    Anyone,
}

impl Principal {
    /// Parses `source:NAME`, `team:NAME` or `operator:NAME`.
    pub fn parse(text: &str) -> Result<Principal, AuthError> {
        let bad = |why: &str| AuthError::BadPrincipal {
            text: text.to_owned(),
            why: why.to_owned(),
        };
        let Some((kind, name)) = text.split_once(':') else {
            return Err(bad("it has no `:`"));
        };
        if name.is_empty() {
            return Err(bad("the name after `:` is empty"));
        }
        if name.chars().count() > MAX_NAME {
            return Err(bad(&format!(
                "the name is longer than {MAX_NAME} characters"
            )));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
        {
            return Err(bad(
                "a name has only letters, digits and `_`, `-`, `.`, `@`",
            ));
        }
        match kind {
            "source" => Ok(Principal::Source(name.to_owned())),
            "team" => Ok(Principal::Team(name.to_owned())),
            "operator" => Ok(Principal::Operator(name.to_owned())),
            other => Err(bad(&format!(
                "`{other}` is not a kind of principal (source, team or operator)"
            ))),
        }
    }

    /// Reads the principal from a client certificate's subject CN (the
    /// certificate itself was verified against `tls_client_ca` by TLS).
    pub fn from_certificate(der: &[u8]) -> Result<Principal, AuthError> {
        let cert = Certificate::from_der(der).map_err(|e| {
            AuthError::Certificate(format!("the client certificate cannot be read: {e}"))
        })?;
        let cn = cert
            .tbs_certificate()
            .subject()
            .common_name()
            .map_err(|e| {
                AuthError::Certificate(format!(
                    "the client certificate's subject CN is not a string: {e}"
                ))
            })?
            .ok_or_else(|| {
                AuthError::Certificate(
                    "the client certificate's subject has no CN: issue it with CN=source:NAME, team:NAME or operator:NAME"
                        .into(),
                )
            })?;
        Principal::parse(&String::from(cn))
            .map_err(|e| AuthError::Certificate(format!("the client certificate's subject CN {e}")))
    }

    /// Checks that a source or team is one the model declares.
    pub fn check_in(&self, model: &Model) -> Result<(), AuthError> {
        match self {
            Principal::Source(s) if model.source(s).is_none() => {
                Err(AuthError::NotInModel(format!(
                    "source `{s}` is not in the model's [sources] ({}): fix the name or the model",
                    model.spec.sources.join(", ")
                )))
            }
            Principal::Team(t) if model.team(t).is_none() => Err(AuthError::NotInModel(format!(
                "team `{t}` is not in the model's teams ({}): fix the name or the model",
                model.spec.teams.join(", ")
            ))),
            Principal::Source(_)
            | Principal::Team(_)
            | Principal::Operator(_)
            | Principal::Anyone => Ok(()),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Source(n) => write!(f, "source:{n}"),
            Principal::Team(n) => write!(f, "team:{n}"),
            Principal::Operator(n) => write!(f, "operator:{n}"),
            Principal::Anyone => f.write_str("anyone"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_round_trip_and_name_their_mistakes() {
        for text in [
            "source:billing",
            "team:cx_director",
            "operator:alice@example.com",
        ] {
            let p = Principal::parse(text).expect("valid");
            assert_eq!(p.to_string(), text);
        }
        for (text, says) in [
            ("billing", "no `:`"),
            ("source:", "empty"),
            ("robot:x", "not a kind"),
            ("team:a b", "only letters"),
        ] {
            let e = Principal::parse(text).expect_err(text).to_string();
            assert!(e.contains(says), "{text}: {e}");
            assert!(e.contains("source:NAME"), "{e}");
        }
    }

    #[test]
    fn a_certificate_names_its_principal_in_the_subject_cn() {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "team:provisioning");
        let cert = params.self_signed(&key).expect("a certificate");
        assert_eq!(
            Principal::from_certificate(cert.der()),
            Ok(Principal::Team("provisioning".into()))
        );

        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).expect("a certificate");
        let e = Principal::from_certificate(cert.der()).expect_err("no CN");
        assert!(e.to_string().contains("CN=source:NAME"), "{e}");
        assert!(Principal::from_certificate(b"not der").is_err());
    }
}
