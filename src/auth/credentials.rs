//! Bearer tokens and the table that binds their hashes to principals.
//!
//! A token is `hnd_` and 64 hex digits: 256 bits from the operating
//! system's random source, made by `handoff token new`. The node keeps only
//! its SHA-256 hash (`[[credentials]]` in the config), so a config file or
//! backup that leaks gives no one a working token.
//!
//! Why SHA-256 and not argon2: argon2 (slow, memory-hard) protects
//! *passwords*, which people choose from a space small enough to search.
//! A token of 256 random bits cannot be searched, fast hash or slow, so
//! the slow hash would buy nothing and would cost tens of milliseconds on
//! every call (each gRPC call is authenticated). Looking a token up by its
//! hash also means a timing difference can only tell an attacker about
//! hash values, never about the token.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AuthError, Principal};
use crate::engine::model::Model;

/// Every token starts with this, so secret scanners and people recognise it.
pub const TOKEN_PREFIX: &str = "hnd_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// One `[[credentials]]` entry of the node's config: a token's hash and
/// who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// `source:NAME`, `team:NAME` or `operator:NAME`.
    pub principal: String,
    /// The token's SHA-256, 64 hex digits.
    pub sha256: String,
}

/// A fresh token: `hnd_` and 256 random bits in hex.
pub fn new_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// The token's SHA-256 in hex, as a `[[credentials]]` entry holds it.
pub fn token_hash_hex(token: &str) -> String {
    hex(&hash(token))
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// The tokens a node accepts: hash -> principal.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_hash: HashMap<[u8; 32], Principal>,
}

impl Credentials {
    /// Builds the table from the config's entries, checking each principal
    /// against the model (a credential for a source the model does not
    /// declare is a mistake to fix now, not a caller to refuse later).
    pub fn from_config(
        entries: &[CredentialConfig],
        model: &Model,
    ) -> Result<Credentials, AuthError> {
        let mut by_hash = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let bad = |why: String| AuthError::BadCredential {
                index: i + 1,
                principal: entry.principal.clone(),
                why,
            };
            let principal = Principal::parse(&entry.principal).map_err(|e| bad(e.to_string()))?;
            principal.check_in(model).map_err(|e| bad(e.to_string()))?;
            let Some(h) = parse_hash(&entry.sha256.to_ascii_lowercase()) else {
                return Err(bad(
                    "sha256 must be 64 hex digits: copy it from `handoff token new` (never put the token itself in the config)"
                        .into(),
                ));
            };
            if let Some(first) = by_hash.insert(h, principal) {
                return Err(bad(format!(
                    "the same token hash is already bound to {first}: a token names one principal; make a new token"
                )));
            }
        }
        Ok(Credentials { by_hash })
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Who holds this token, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        self.by_hash.get(&hash(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::load;

    fn model() -> Model {
        load("saas.toml", crate::cli::serve::DEFAULT_MODEL).expect("the reference model loads")
    }

    fn entry(principal: &str, token: &str) -> CredentialConfig {
        CredentialConfig {
            principal: principal.into(),
            sha256: token_hash_hex(token),
        }
    }

    #[test]
    fn tokens_are_fresh_256_bit_and_only_their_hash_is_kept() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        let h = token_hash_hex(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a[TOKEN_PREFIX.len()..]));
        assert_eq!(parse_hash(&h).map(|b| hex(&b)), Some(h));
        // A known vector: SHA-256("abc").
        assert_eq!(
            token_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_token_authenticates_as_its_principal_and_nothing_else_does() {
        let model = model();
        let c = Credentials::from_config(
            &[
                entry("source:billing", "t-billing"),
                entry("team:provisioning", "t-prov"),
                entry("operator:alice", "t-alice"),
            ],
            &model,
        )
        .expect("valid");
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.authenticate("t-billing"),
            Some(&Principal::Source("billing".into()))
        );
        assert_eq!(
            c.authenticate("t-prov"),
            Some(&Principal::Team("provisioning".into()))
        );
        assert_eq!(c.authenticate("t-billin"), None);
        assert_eq!(c.authenticate(""), None);
    }

    #[test]
    fn the_config_file_lists_credentials_as_a_table_array() {
        let c: crate::node::NodeConfig = toml::from_str(
            "[[credentials]]\nprincipal = \"source:billing\"\nsha256 = \"ab\"\n\n\
             [[credentials]]\nprincipal = \"operator:alice\"\nsha256 = \"cd\"\n",
        )
        .expect("valid");
        assert_eq!(c.credentials.len(), 2);
        assert_eq!(c.credentials[1].principal, "operator:alice");
        let e = toml::from_str::<crate::node::NodeConfig>(
            "[[credentials]]\nprincipal = \"source:billing\"\ntoken = \"hnd_x\"\n",
        )
        .expect_err("a token is never a config key");
        assert!(e.to_string().contains("token"), "{e}");
    }

    #[test]
    fn credentials_that_cannot_be_right_are_refused_with_the_fix() {
        let model = model();
        let e = Credentials::from_config(&[entry("source:payments", "x")], &model)
            .expect_err("not in the model");
        assert!(
            e.to_string().contains("entry 1") && e.to_string().contains("[sources]"),
            "{e}"
        );
        let e = Credentials::from_config(&[entry("team:pirates", "x")], &model)
            .expect_err("not in the model");
        assert!(e.to_string().contains("teams"), "{e}");
        let e = Credentials::from_config(
            &[CredentialConfig {
                principal: "team:support".into(),
                sha256: "hnd_secret".into(),
            }],
            &model,
        )
        .expect_err("not a hash");
        assert!(e.to_string().contains("64 hex digits"), "{e}");
        assert!(
            !e.to_string().contains("hnd_secret"),
            "never echo a token: {e}"
        );
        let e = Credentials::from_config(
            &[entry("team:support", "same"), entry("team:billing", "same")],
            &model,
        )
        .expect_err("one token, two principals");
        assert!(e.to_string().contains("entry 2"), "{e}");
    }
}
