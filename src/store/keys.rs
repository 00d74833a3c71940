//! Key layouts of the on-disk keyspaces: big-endian, order-preserving, and
//! unambiguous to parse back.
//!
//! - Integers are big-endian; signed ones (instants) have their sign bit
//!   flipped, so negative values sort before positive ones.
//! - Strings inside composite keys are escaped and terminated (`0x00` is
//!   written `0x00 0xFF`, the end is `0x00 0x00`), the tuple encoding of
//!   FoundationDB: byte order of encoded strings equals byte order of the
//!   strings, a prefix sorts first, and any byte (even `0x00`) is allowed.
//!
//! Every key starts with its shard, so one shard is one contiguous range.

use super::{Result, StoreError, TimerKey};

pub fn push_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_be_bytes());
}

pub fn push_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

pub fn push_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// An `i64` that sorts as a signed number under byte order.
pub fn push_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

/// A string, escaped and terminated.
pub fn push_str(buf: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        buf.push(b);
        if b == 0 {
            buf.push(0xFF);
        }
    }
    buf.extend_from_slice(&[0, 0]);
}

/// Reads the parts of a key back, front to back.
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { bytes, what }
    }

    fn bad(&self, reason: impl Into<String>) -> StoreError {
        StoreError::corrupt(format!("{} key", self.what), reason)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(self.bad(format!(
                "expected {N} more bytes, found {}",
                self.bytes.len()
            )));
        };
        self.bytes = rest;
        Ok(*head)
    }

    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take()?))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok((u64::from_be_bytes(self.take()?) ^ (1 << 63)) as i64)
    }

    pub fn str(&mut self) -> Result<String> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match (self.bytes.get(i), self.bytes.get(i + 1)) {
                (Some(0), Some(0)) => break,
                (Some(0), Some(0xFF)) => {
                    out.push(0);
                    i += 2;
                }
                (Some(0), next) => {
                    return Err(
                        self.bad(format!("bad escape in a string: 0x00 followed by {next:?}"))
                    );
                }
                (Some(&b), _) => {
                    out.push(b);
                    i += 1;
                }
                (None, _) => return Err(self.bad("unterminated string")),
            }
        }
        self.bytes = &self.bytes[i + 2..];
        String::from_utf8(out).map_err(|e| self.bad(format!("string is not UTF-8: {e}")))
    }

    /// Fails unless every byte was read.
    pub fn end(self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.bad(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

pub fn shard_prefix(shard: u32) -> Vec<u8> {
    shard.to_be_bytes().to_vec()
}

pub fn customer(shard: u32, customer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + customer.len());
    push_u32(&mut k, shard);
    push_str(&mut k, customer);
    k
}

/// Every fact key of one customer starts with this.
/// (The customer's own key: its terminator keeps "a" from prefixing "ab".)
pub fn facts_prefix(shard: u32, customer_id: &str) -> Vec<u8> {
    customer(shard, customer_id)
}

pub fn fact(shard: u32, customer: &str, seq: u64) -> Vec<u8> {
    let mut k = facts_prefix(shard, customer);
    push_u64(&mut k, seq);
    k
}

/// The seq of a fact key whose prefix is `prefix`.
pub fn fact_seq(key: &[u8], prefix_len: usize) -> Result<u64> {
    let mut r = Reader::new(key.get(prefix_len..).unwrap_or(&[]), "fact");
    let seq = r.u64()?;
    r.end()?;
    Ok(seq)
}

/// Every fact of `shard` decided before `at_us` sorts before this in the
/// `fact_ages` keyspace (and every one decided at or after, after it).
pub fn fact_ages_from(shard: u32, at_us: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    push_u32(&mut k, shard);
    push_i64(&mut k, at_us);
    k
}

/// A fact by age: `shard | decided at | customer | seq`, so a range scan
/// of one shard yields its facts oldest first.
pub fn fact_age(shard: u32, at_us: i64, customer: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(22 + customer.len());
    push_u32(&mut k, shard);
    push_i64(&mut k, at_us);
    push_str(&mut k, customer);
    push_u64(&mut k, seq);
    k
}

/// The `(shard, decided at, customer, seq)` of a [`fact_age`] key.
pub fn parse_fact_age(key: &[u8]) -> Result<(u32, i64, String, u64)> {
    let mut r = Reader::new(key, "fact age");
    let shard = r.u32()?;
    let at_us = r.i64()?;
    let customer = r.str()?;
    let seq = r.u64()?;
    r.end()?;
    Ok((shard, at_us, customer, seq))
}

pub fn escalation(shard: u32, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    push_u32(&mut k, shard);
    push_u64(&mut k, seq);
    k
}

/// The `(shard, seq)` of an escalation key.
pub fn parse_escalation(key: &[u8]) -> Result<(u32, u64)> {
    let mut r = Reader::new(key, "escalation");
    let shard = r.u32()?;
    let seq = r.u64()?;
    r.end()?;
    Ok((shard, seq))
}

impl TimerKey {
    /// `shard | deadline | customer | sla | tier | repeat | instance`.
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(26 + self.customer.len());
        push_u32(&mut k, self.shard);
        push_i64(&mut k, self.deadline_us);
        push_str(&mut k, &self.customer);
        push_u16(&mut k, self.sla);
        push_u16(&mut k, self.tier);
        push_u32(&mut k, self.repeat);
        push_u32(&mut k, self.instance);
        k
    }

    /// Parses a key made by [`TimerKey::encode`].
    pub fn decode(bytes: &[u8]) -> Result<TimerKey> {
        let mut r = Reader::new(bytes, "timer");
        let key = TimerKey {
            shard: r.u32()?,
            deadline_us: r.i64()?,
            customer: r.str()?,
            sla: r.u16()?,
            tier: r.u16()?,
            repeat: r.u32()?,
            instance: r.u32()?,
        };
        r.end()?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timer() -> impl Strategy<Value = TimerKey> {
        (
            0u32..3,
            prop_oneof![
                Just(i64::MIN),
                Just(-1i64),
                Just(0i64),
                Just(i64::MAX),
                -5i64..5,
                any::<i64>()
            ],
            prop_oneof![
                Just(String::new()),
                Just("\0".to_owned()),
                Just("a\0".to_owned()),
                "[a\\x00\\x01\\xff:é]{0,4}",
                any::<String>()
            ],
            0u16..3,
            prop_oneof![Just(u16::MAX), 0u16..3],
            0u32..3,
            0u32..3,
        )
            .prop_map(
                |(shard, deadline_us, customer, sla, tier, repeat, instance)| TimerKey {
                    shard,
                    deadline_us,
                    customer,
                    sla,
                    tier,
                    repeat,
                    instance,
                },
            )
    }

    proptest! {
        #[test]
        fn timer_keys_round_trip(k in timer()) {
            prop_assert_eq!(TimerKey::decode(&k.encode()).expect("decodes"), k);
        }

        #[test]
        fn timer_key_bytes_sort_like_timer_keys(a in timer(), b in timer()) {
            prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
        }

    }

    proptest! {
        #[test]
        fn fact_age_keys_round_trip_and_sort_by_age(
            a in timer(),
            b in timer(),
            seq_a in any::<u64>(),
            seq_b in any::<u64>(),
        ) {
            // The timer strategy's shard, instant and customer serve here.
            let key = |t: &TimerKey, seq| fact_age(t.shard, t.deadline_us, &t.customer, seq);
            let (ka, kb) = (key(&a, seq_a), key(&b, seq_b));
            prop_assert_eq!(
                parse_fact_age(&ka).expect("decodes"),
                (a.shard, a.deadline_us, a.customer.clone(), seq_a)
            );
            prop_assert_eq!(
                ka.cmp(&kb),
                (a.shard, a.deadline_us, &a.customer, seq_a)
                    .cmp(&(b.shard, b.deadline_us, &b.customer, seq_b))
            );
            // The bound of a shard and an instant splits its keys there.
            let bound = fact_ages_from(b.shard, b.deadline_us);
            prop_assert_eq!(
                ka < bound,
                (a.shard, a.deadline_us) < (b.shard, b.deadline_us)
            );
        }
    }

    #[test]
    fn bad_keys_are_corrupt_not_panics() {
        for bytes in [
            &b""[..],
            &[0, 0, 0, 1][..],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'a'][..],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'a', 0, 7][..],
        ] {
            assert!(matches!(
                TimerKey::decode(bytes),
                Err(StoreError::Corrupt { .. })
            ));
        }
        let mut k = TimerKey {
            shard: 1,
            deadline_us: 5,
            customer: "c".into(),
            sla: 0,
            tier: 0,
            repeat: 0,
            instance: 1,
        }
        .encode();
        k.push(9);
        assert!(TimerKey::decode(&k).is_err());
    }

    #[test]
    fn negative_deadlines_sort_first() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        push_i64(&mut a, -1);
        push_i64(&mut b, 0);
        assert!(a < b);
    }
}
