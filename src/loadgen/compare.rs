//! The escalation check: what a subscriber received against what the
//! engine says must happen, by escalation id and kind.
//!
//! Three ways to be wrong, each reported on its own: an expected
//! escalation never received (missing), one received that was not
//! expected (unexpected), and one received more than once (duplicated:
//! the log records each escalation once, and a subscriber that never
//! reconnects must see each once). The comparison is exact only when all
//! three are empty.

use crate::engine::EscalationKind;
use crate::engine::model::{Model, SlaId};

/// The kind of an escalation, ordered so keys sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    TierReached,
    Breached,
    Resolved,
}

impl From<EscalationKind> for Kind {
    fn from(k: EscalationKind) -> Kind {
        match k {
            EscalationKind::TierReached => Kind::TierReached,
            EscalationKind::Breached => Kind::Breached,
            EscalationKind::Resolved => Kind::Resolved,
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TierReached => "tier_reached",
            Kind::Breached => "breached",
            Kind::Resolved => "resolved",
        }
    }
}

/// An escalation id (`customer:sla:instance:tier:repeat`) and kind, with
/// the customer as loadgen's index: 24 bytes instead of a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EscalationKey {
    pub customer: u64,
    pub sla: SlaId,
    pub instance: u32,
    pub tier: u16,
    pub repeat: u32,
    pub kind: Kind,
}

impl EscalationKey {
    /// `customer:sla:instance:tier:repeat kind`, as the node names it.
    pub fn describe(&self, model: &Model, prefix: &str) -> String {
        format!(
            "{prefix}{}:{}:{}:{}:{} {}",
            self.customer,
            model.sla_spec(self.sla).name,
            self.instance,
            self.tier,
            self.repeat,
            self.kind.as_str()
        )
    }
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison<K> {
    pub expected: usize,
    pub received: usize,
    /// Expected, never received (one entry per missing copy).
    pub missing: Vec<K>,
    /// Received, never expected (once per key).
    pub unexpected: Vec<K>,
    /// Received more often than expected (at least twice): key, copies.
    pub duplicated: Vec<(K, usize)>,
}

impl<K> Comparison<K> {
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.duplicated.is_empty()
    }
}

/// Compares two multisets of keys.
pub fn compare<K: Ord + Clone>(mut expected: Vec<K>, mut received: Vec<K>) -> Comparison<K> {
    expected.sort_unstable();
    received.sort_unstable();
    let mut out = Comparison {
        expected: expected.len(),
        received: received.len(),
        missing: Vec::new(),
        unexpected: Vec::new(),
        duplicated: Vec::new(),
    };
    let (mut i, mut j) = (0, 0);
    while i < expected.len() || j < received.len() {
        let key = match (expected.get(i), received.get(j)) {
            (Some(e), Some(r)) => e.min(r).clone(),
            (Some(e), None) => e.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => break,
        };
        let want = run_length(&expected, &mut i, &key);
        let got = run_length(&received, &mut j, &key);
        if got < want {
            out.missing
                .extend(std::iter::repeat_n(key.clone(), want - got));
        }
        if want == 0 && got > 0 {
            out.unexpected.push(key.clone());
        }
        if got > want.max(1) {
            out.duplicated.push((key, got));
        }
    }
    out
}

/// How many copies of `key` start at `*at` (sorted input); moves past them.
fn run_length<K: Ord>(sorted: &[K], at: &mut usize, key: &K) -> usize {
    let start = *at;
    while *at < sorted.len() && sorted[*at] == *key {
        *at += 1;
    }
    *at - start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(customer: u64, tier: u16, kind: Kind) -> EscalationKey {
        EscalationKey {
            customer,
            sla: SlaId(0),
            instance: 1,
            tier,
            repeat: 0,
            kind,
        }
    }

    fn stream() -> Vec<EscalationKey> {
        vec![
            key(1, 0, Kind::TierReached),
            key(1, 1, Kind::Breached),
            key(1, 0, Kind::Resolved),
            key(1, 1, Kind::Resolved),
            key(2, 1, Kind::Breached),
        ]
    }

    #[test]
    fn the_same_stream_in_any_order_is_exact() {
        let mut received = stream();
        received.reverse();
        let c = compare(stream(), received);
        assert!(c.is_exact(), "{c:?}");
        assert_eq!((c.expected, c.received), (5, 5));
    }

    #[test]
    fn a_missing_escalation_is_reported() {
        let mut received = stream();
        received.remove(1);
        let c = compare(stream(), received);
        assert!(!c.is_exact());
        assert_eq!(c.missing, vec![key(1, 1, Kind::Breached)]);
        assert!(c.unexpected.is_empty() && c.duplicated.is_empty());
    }

    #[test]
    fn an_unexpected_escalation_is_reported() {
        let mut received = stream();
        received.push(key(3, 1, Kind::Breached));
        let c = compare(stream(), received);
        assert!(!c.is_exact());
        assert_eq!(c.unexpected, vec![key(3, 1, Kind::Breached)]);
        assert!(c.missing.is_empty() && c.duplicated.is_empty());
    }

    #[test]
    fn the_same_key_with_another_kind_is_both_missing_and_unexpected() {
        let mut received = stream();
        received[1] = key(1, 1, Kind::TierReached);
        let c = compare(stream(), received);
        assert_eq!(c.missing, vec![key(1, 1, Kind::Breached)]);
        assert_eq!(c.unexpected, vec![key(1, 1, Kind::TierReached)]);
    }

    #[test]
    fn a_repeated_escalation_is_reported() {
        let mut received = stream();
        received.push(key(2, 1, Kind::Breached));
        received.push(key(2, 1, Kind::Breached));
        let c = compare(stream(), received);
        assert!(!c.is_exact());
        assert_eq!(c.duplicated, vec![(key(2, 1, Kind::Breached), 3)]);
        assert!(c.missing.is_empty() && c.unexpected.is_empty());
    }

    #[test]
    fn an_unexpected_repeat_is_unexpected_and_duplicated() {
        let extra = key(9, 0, Kind::TierReached);
        let mut received = stream();
        received.extend([extra, extra]);
        let c = compare(stream(), received);
        assert_eq!(c.unexpected, vec![extra]);
        assert_eq!(c.duplicated, vec![(extra, 2)]);
    }

    #[test]
    fn every_kind_of_fault_at_once() {
        let mut received = stream();
        received.remove(0); // missing
        received.push(key(4, 0, Kind::Resolved)); // unexpected
        received.push(key(1, 0, Kind::Resolved)); // duplicated
        let c = compare(stream(), received);
        assert_eq!(c.missing.len(), 1);
        assert_eq!(c.unexpected.len(), 1);
        assert_eq!(c.duplicated.len(), 1);
    }

    #[test]
    fn nothing_expected_nothing_received_is_exact() {
        let c: Comparison<EscalationKey> = compare(Vec::new(), Vec::new());
        assert!(c.is_exact());
    }
}
