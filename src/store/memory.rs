//! [`MemoryStore`]: the [`Store`] contract in ordered maps behind one
//! mutex, for unit tests. Atomic because every
//! batch is applied under the lock; "durable" for as long as the process
//! lives.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use super::{Result, ScannedFact, Store, TimerKey, WriteBatch};

/// Everything in memory, in the same order the on-disk keys sort.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    customers: BTreeMap<(u32, String), Vec<u8>>,
    /// `(shard, customer, seq)` -> (decided at, in microseconds; record).
    facts: BTreeMap<(u32, String, u64), (i64, Vec<u8>)>,
    /// The facts by age: `(shard, decided at, customer, seq)`, as the
    /// embedded store's `fact_ages` keyspace sorts.
    fact_ages: BTreeSet<(u32, i64, String, u64)>,
    timers: BTreeSet<TimerKey>,
    escalations: BTreeMap<(u32, u64), Vec<u8>>,
    /// `(team, escalation id)` -> (entry, acknowledged).
    open: BTreeMap<(String, String), (Vec<u8>, bool)>,
    meta: BTreeMap<String, Vec<u8>>,
    counters: BTreeMap<String, i64>,
    /// Secondary index keys (`state::index`).
    index: BTreeSet<Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied batch
        // visible to tests that go on (they fail anyway); keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let mut s = self.lock();
        for (shard, customer, record) in batch.customers {
            s.customers.insert((shard, customer), record);
        }
        for (shard, customer, seq, at_us, record) in batch.facts {
            s.fact_ages.insert((shard, at_us, customer.clone(), seq));
            let old = s
                .facts
                .insert((shard, customer.clone(), seq), (at_us, record));
            if let Some((old_at, _)) = old.filter(|(old_at, _)| *old_at != at_us) {
                s.fact_ages.remove(&(shard, old_at, customer, seq));
            }
        }
        for t in &batch.timers_cleared {
            s.timers.remove(t);
        }
        s.timers.extend(batch.timers_set);
        for (shard, seq, record) in batch.escalations {
            s.escalations.insert((shard, seq), record);
        }
        for key in batch.open_cleared {
            s.open.remove(&key);
        }
        for row in batch.open_set {
            s.open
                .insert((row.team, row.escalation_id), (row.entry, row.acknowledged));
        }
        for (_, name, delta) in batch.counters {
            let value = s.counters.entry(name.clone()).or_default();
            *value += delta;
            if *value == 0 && name.starts_with(super::TRANSIENT_COUNTER) {
                s.counters.remove(&name);
            }
        }
        for key in &batch.index_cleared {
            s.index.remove(key);
        }
        s.index.extend(batch.index_set);
        Ok(())
    }

    fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .customers
            .get(&(shard, customer.to_owned()))
            .cloned())
    }

    fn last_fact_seq(&self, shard: u32, customer: &str) -> Result<Option<u64>> {
        let c = customer.to_owned();
        Ok(self
            .lock()
            .facts
            .range((shard, c.clone(), 0)..=(shard, c, u64::MAX))
            .next_back()
            .map(|((_, _, seq), _)| *seq))
    }

    fn timers(&self, shard: u32, from: Option<&TimerKey>, limit: usize) -> Result<Vec<TimerKey>> {
        let first = TimerKey::first_of(shard);
        let start = match from {
            Some(f) if *f >= first => Bound::Excluded(f.clone()),
            _ => Bound::Included(first),
        };
        Ok(self
            .lock()
            .timers
            .range((start, Bound::Unbounded))
            .take_while(|t| t.shard == shard)
            .take(limit)
            .cloned()
            .collect())
    }

    fn escalations(
        &self,
        shard: u32,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let start = match after_seq {
            None => 0,
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(seq) => seq + 1,
        };
        Ok(self
            .lock()
            .escalations
            .range((shard, start)..=(shard, u64::MAX))
            .take(limit)
            .map(|((_, seq), v)| (*seq, v.clone()))
            .collect())
    }

    fn last_escalation_seq(&self, shard: u32) -> Result<Option<u64>> {
        Ok(self
            .lock()
            .escalations
            .range((shard, 0)..=(shard, u64::MAX))
            .next_back()
            .map(|((_, seq), _)| *seq))
    }

    fn prune_escalations(&self, shard: u32, before_seq: u64, limit: usize) -> Result<u64> {
        let mut s = self.lock();
        let Some(((_, newest), _)) = s
            .escalations
            .range((shard, 0)..=(shard, u64::MAX))
            .next_back()
        else {
            return Ok(0);
        };
        let end = before_seq.min(*newest);
        let doomed: Vec<(u32, u64)> = s
            .escalations
            .range((shard, 0)..(shard, end))
            .take(limit)
            .map(|(k, _)| *k)
            .collect();
        for k in &doomed {
            s.escalations.remove(k);
        }
        Ok(doomed.len() as u64)
    }

    fn prune_facts(&self, shard: u32, before_us: i64, limit: usize) -> Result<u64> {
        let mut s = self.lock();
        let range = (shard, i64::MIN, String::new(), 0)..(shard, before_us, String::new(), 0);
        let doomed: Vec<(u32, i64, String, u64)> =
            s.fact_ages.range(range).take(limit).cloned().collect();
        let n = doomed.len() as u64;
        for key in doomed {
            s.fact_ages.remove(&key);
            let (shard, _, customer, seq) = key;
            s.facts.remove(&(shard, customer, seq));
        }
        Ok(n)
    }

    fn scan_facts(
        &self,
        after: Option<(u32, &str, u64)>,
        limit: usize,
    ) -> Result<Vec<ScannedFact>> {
        let start = match after {
            None => Bound::Unbounded,
            Some((shard, customer, seq)) => Bound::Excluded((shard, customer.to_owned(), seq)),
        };
        Ok(self
            .lock()
            .facts
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|((shard, customer, seq), (_, record))| {
                (*shard, customer.clone(), *seq, record.clone())
            })
            .collect())
    }

    fn open_escalations(&self, team: Option<&str>) -> Result<Vec<(Vec<u8>, bool)>> {
        Ok(self
            .lock()
            .open
            .iter()
            .filter(|((t, _), _)| team.is_none_or(|want| t == want))
            .map(|(_, (entry, ack))| (entry.clone(), *ack))
            .collect())
    }

    fn counters(&self) -> Result<Option<BTreeMap<String, i64>>> {
        Ok(Some(self.lock().counters.clone()))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.lock().meta.insert(key.to_owned(), value);
        Ok(())
    }

    fn index_keys(
        &self,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        if low >= high {
            return Ok(Vec::new());
        }
        let s = self.lock();
        let range = s
            .index
            .range::<[u8], _>((Bound::Included(low), Bound::Excluded(high)));
        Ok(if reverse {
            range.rev().take(limit).cloned().collect()
        } else {
            range.take(limit).cloned().collect()
        })
    }

    fn customers_after(
        &self,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<(u32, String, Vec<u8>)>> {
        let s = self.lock();
        let start = match after {
            // String order is byte order, as the other stores sort ids.
            Some((shard, c)) => Bound::Excluded((shard, c.to_owned())),
            None => Bound::Unbounded,
        };
        Ok(s.customers
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|((shard, c), v)| (*shard, c.clone(), v.clone()))
            .collect())
    }

    fn disk_bytes(&self) -> Result<u64> {
        Ok(0)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
