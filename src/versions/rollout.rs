//! Which version a new customer starts on: per market, a stable version
//! and optionally a candidate for a cohort of new customers.
//!
//! The cohort is a stable hash of the customer id into [`BUCKETS`]
//! buckets ([`bucket`]); a customer is in the cohort when its bucket is
//! below the percent's share of them. Raising the percent only adds
//! buckets, so it only adds customers; the bucket of a customer never
//! changes. A market without an entry of its own uses `default`.
//!
//! Pure: no I/O. The version registry (`versions.rs`) keeps the table in
//! the store and applies it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Buckets of the cohort hash: a percent has two decimals of precision.
pub const BUCKETS: u32 = 10_000;

/// The market name of the default entry.
pub const DEFAULT_MARKET: &str = "default";

/// The cohort bucket of a customer, `0..BUCKETS`: the first 8 bytes of
/// SHA-256(`"handoff-cohort:" + customer id`), big-endian, modulo
/// [`BUCKETS`]. Independent of the shard hash (FNV-1a), so a cohort spreads
/// over every shard.
pub fn bucket(customer: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(b"handoff-cohort:")
        .chain_update(customer.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(BUCKETS)) as u32
}

/// A percent (0-100, two decimals) as a number of buckets.
pub fn buckets_of(percent: f64) -> Option<u32> {
    (percent.is_finite() && (0.0..=100.0).contains(&percent))
        .then(|| (percent * f64::from(BUCKETS) / 100.0).round() as u32)
}

/// One market's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The version new customers start on, outside the cohort.
    pub stable: u32,
    pub candidate: Option<Candidate>,
}

/// A candidate version and the share of new customers that start on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub version: u32,
    /// Customers whose [`bucket`] is below this start on the candidate
    /// (`percent * 100`).
    pub buckets: u32,
}

impl Candidate {
    pub fn percent(&self) -> f64 {
        f64::from(self.buckets) * 100.0 / f64::from(BUCKETS)
    }
}

impl Rollout {
    pub fn stable(version: u32) -> Rollout {
        Rollout {
            stable: version,
            candidate: None,
        }
    }

    /// The version a new customer with this id starts on.
    pub fn version_for(&self, customer: &str) -> u32 {
        match self.candidate {
            Some(c) if bucket(customer) < c.buckets => c.version,
            _ => self.stable,
        }
    }

    /// The versions the entry names.
    pub fn versions(&self) -> impl Iterator<Item = u32> {
        std::iter::once(self.stable).chain(self.candidate.map(|c| c.version))
    }
}

impl fmt::Display for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.stable)?;
        if let Some(c) = self.candidate {
            write!(f, ", candidate v{} for {}%", c.version, c.percent())?;
        }
        Ok(())
    }
}

/// The whole table: the default entry and one per named market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollouts {
    pub default: Rollout,
    pub markets: BTreeMap<String, Rollout>,
}

impl Rollouts {
    /// Every market on `version`, no candidate.
    pub fn new(version: u32) -> Rollouts {
        Rollouts {
            default: Rollout::stable(version),
            markets: BTreeMap::new(),
        }
    }

    /// The entry that applies to a market code (the default one for an
    /// empty or unnamed market).
    pub fn entry(&self, market: &str) -> &Rollout {
        self.markets.get(market).unwrap_or(&self.default)
    }

    /// The version a new customer of `market` starts on.
    pub fn version_for(&self, market: &str, customer: &str) -> u32 {
        self.entry(market).version_for(customer)
    }

    /// Replaces the entry of `market` ([`DEFAULT_MARKET`] for the default).
    pub fn set(&mut self, market: &str, rollout: Rollout) {
        if market == DEFAULT_MARKET {
            self.default = rollout;
        } else {
            self.markets.insert(market.to_owned(), rollout);
        }
    }

    /// `(market, entry)`, the default first.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Rollout)> {
        std::iter::once((DEFAULT_MARKET, &self.default))
            .chain(self.markets.iter().map(|(m, r)| (m.as_str(), r)))
    }

    /// The highest version any entry names, with its market.
    pub fn highest(&self) -> (u32, &str) {
        self.entries()
            .flat_map(|(m, r)| r.versions().map(move |v| (v, m)))
            .max_by_key(|(v, _)| *v)
            .expect("invariant: there is always the default entry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        // Pinned: a customer's cohort must never change across builds.
        assert_eq!(bucket("c1"), bucket("c1"));
        let pinned: Vec<u32> = ["c1", "c2", "acme"].iter().map(|c| bucket(c)).collect();
        assert_eq!(pinned, PINNED);
        let mut counts = [0u32; 10];
        for i in 0..20_000 {
            let b = bucket(&format!("cust-{i}"));
            assert!(b < BUCKETS);
            counts[(b / 1000) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (1_700..2_300).contains(c)),
            "{counts:?}"
        );
    }

    const PINNED: [u32; 3] = [5821, 173, 1675];

    #[test]
    fn raising_the_percent_only_adds_customers() {
        let ids: Vec<String> = (0..2_000).map(|i| format!("c{i}")).collect();
        let cohort = |percent: f64| -> Vec<&String> {
            let r = Rollout {
                stable: 1,
                candidate: Some(Candidate {
                    version: 2,
                    buckets: buckets_of(percent).expect("in range"),
                }),
            };
            ids.iter().filter(|c| r.version_for(c) == 2).collect()
        };
        let (ten, twenty) = (cohort(10.0), cohort(20.0));
        assert!(ten.iter().all(|c| twenty.contains(c)));
        assert!((120..280).contains(&ten.len()), "{}", ten.len());
        assert!(cohort(0.0).is_empty());
        assert_eq!(cohort(100.0).len(), ids.len());
    }

    #[test]
    fn percents_outside_0_to_100_have_no_buckets() {
        assert_eq!(buckets_of(10.0), Some(1_000));
        assert_eq!(buckets_of(0.25), Some(25));
        assert_eq!(buckets_of(100.0), Some(BUCKETS));
        assert_eq!(buckets_of(-1.0), None);
        assert_eq!(buckets_of(100.5), None);
        assert_eq!(buckets_of(f64::NAN), None);
    }

    #[test]
    fn unnamed_markets_use_the_default_entry() {
        let mut r = Rollouts::new(1);
        r.set("BR", Rollout::stable(3));
        assert_eq!(r.version_for("BR", "x"), 3);
        assert_eq!(r.version_for("DE", "x"), 1);
        assert_eq!(r.version_for("", "x"), 1);
        r.set(DEFAULT_MARKET, Rollout::stable(2));
        assert_eq!(r.version_for("DE", "x"), 2);
        assert_eq!(r.highest(), (3, "BR"));
        let json = serde_json::to_string(&r).expect("serializes");
        assert_eq!(serde_json::from_str::<Rollouts>(&json).expect("parses"), r);
    }
}
