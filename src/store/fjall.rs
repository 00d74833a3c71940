//! [`FjallStore`]: the node's [`Store`], on fjall.
//!
//! One fjall database holds eight keyspaces: `customers`, `facts` (each
//! customer's history), `fact_ages` (the same facts by decision time, for
//! their retention), `timers`, `escalations` (the log, by shard and
//! sequence), `open` (open escalations by team), `customer_index` (the
//! secondary indexes of customer queries, keys laid out by
//! `state::index`, empty values) and `meta` (format version, the node's
//! metadata such as the model catalog). A directory of an older build gets
//! `customer_index` created empty at open; the node backfills it once
//! (`node::queries`), with no change of format. Each commit is one fjall
//! write batch, atomic across keyspaces, journaled and fsync'd
//! (`PersistMode::SyncAll`) before it returns; or, for the journal, which
//! writes a group in chunks and syncs it once (`Store::defers_sync`), a
//! batch journaled without the fsync, and one `persist` for all of them.
//! Group commit is the journal's (one caller); the store writes what it
//! is given on the caller's thread, netted so no key reaches fjall twice.
//!
//! **Memtables are freed here, not under fjall's lock.** When a keyspace's
//! memtable is flushed, fjall's version GC (`SuperVersions::maintenance`,
//! run with the tree's version-history write lock held) drops the last
//! reference to it and frees its skip list node by node: 100-250 ms for a
//! 64 MiB table, during which every insert into that keyspace (which takes
//! the same lock to find the active memtable) waits, and so did every group
//! commit and every timer firing behind it. The store holds a reference
//! of its own to each memtable it has written to ([`Memtables`]), so
//! fjall's GC only lets go of it, and hands memtables fjall no longer
//! holds to a thread of its own (`store-free`) that frees them.
//!
//! **fjall is patched** (`vendor/fjall/PATCHED.md`) for two defects of its
//! background workers. Its first worker spun on its own channel while the
//! others compacted, 12.8% of the node's CPU samples at 1,000,000
//! customers; it now hands compaction requests to a channel only the
//! other workers read. And writers filled the workers' channel with
//! repeated rotation requests, into which a rotating worker then waited
//! forever to send (the node hung at shutdown); a keyspace now has one
//! rotation request out at a time, and a rotation never waits to send.
//!
//! Data directories written by older builds also hold an `idempotency`
//! keyspace; it is no longer opened (idempotency keys live in the customer
//! record) and costs nothing.
//!
//! **Facts, one key per entry.** Each journal entry's facts (a run of
//! consecutive seqs of one customer, decided at one instant) are stored
//! under one `facts` key, that of the first seq: a single fact is its
//! `FactRecord`, as builds before runs wrote every fact; a longer run is
//! marked by a leading zero byte (no `FactRecord` encoding starts with one)
//! and holds its last seq and each record ([`encode_run`]). Directories of
//! older builds hold a key per fact; both are read alike (a single fact is
//! a run of one), so nothing is rewritten. An older build does not read
//! runs, so opening a directory marks it format 2, which older builds
//! refuse with a message naming the format.
//!
//! **Fact retention.** Each run also gets one `fact_ages` key (`shard |
//! decided at | customer | first seq`, the last seq as its value, empty
//! when it is the first), written in the same batch: one key per entry
//! rather than one per fact, which is what keeps retention off the ingest
//! bill. [`Store::prune_facts`] range-scans a shard's keys below the
//! horizon and removes each with its run of facts, in one batch (a run
//! longer than the call's limit loses its head and is stored and indexed
//! again from its new first seq). Facts written by a build before
//! `fact_ages` existed have no key there and are **never pruned**: opening
//! such a directory creates the keyspace empty, and the format version
//! stays as it was. A fact rewritten under the same seq with another decision time
//! would keep its first age key too and go by the earlier time; the
//! journal reuses a seq only when its first write did not land, so this
//! does not happen.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Slice};

use super::keys;
use super::{Result, ScannedFact, Store, StoreError, TimerKey, WriteBatch};

/// The on-disk layout this build writes (`meta` key `format`): 2 stores a
/// journal entry's facts under one key (a run). It also reads format 1 (a
/// key per fact), and marks such a directory 2 when it opens it, so that
/// an older build, which cannot read runs, refuses it instead of
/// misreading a customer's history.
const FORMAT_VERSION: u32 = 2;
/// The older layouts this build reads (and upgrades in place).
const FORMAT_READS: &[u32] = &[1];
const META_FORMAT: &[u8] = b"format";
/// Prefix of the node's own `meta` keys ([`Store::meta`]), apart from the
/// store's own (`format`; `customer_count` in directories of older builds).
const META_NODE: &str = "node/";

/// The journal (fjall's write-ahead log) is bounded to this: past it,
/// fjall flushes memtables to tables and drops the journal files they no
/// longer need. A crash replays at most this much at the next open, so it
/// bounds recovery time and the disk the journal takes (fjall's default,
/// 512 MiB, took about 5 s to replay on the benchmark machine).
const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// The store on disk. Cheap to share behind an `Arc`; dropping it persists
/// and closes fjall.
pub struct FjallStore {
    shared: Arc<Shared>,
}

/// The database and its keyspaces.
struct Shared {
    db: Database,
    customers: Keyspace,
    facts: Keyspace,
    /// The facts by age: `shard | decided at | customer | seq` -> empty.
    fact_ages: Keyspace,
    timers: Keyspace,
    escalations: Keyspace,
    /// Open escalations by team: `team \0 escalation id` -> ack byte + entry.
    open: Keyspace,
    /// Customer query indexes: `state::index` key -> empty.
    index: Keyspace,
    meta: Keyspace,
    /// Every counter's value as the store holds it (read at open): a
    /// batch writes its counters' new values blind, with no read, and
    /// [`Store::counters`] answers from here. Held across a commit with
    /// counters, so two batches never add to the same old value. `None`
    /// after a failed commit (the store may or may not hold the batch):
    /// read again from the store before it is used.
    counters: std::sync::Mutex<Option<BTreeMap<String, i64>>>,
    /// Every memtable written to, until fjall no longer holds it.
    memtables: Memtables,
}

/// A memtable, held without naming lsm-tree's type.
type Memtable = Arc<dyn std::any::Any + Send + Sync>;

/// The store's own references to fjall's memtables, so that a flushed
/// one is freed on the `store-free` thread rather than by fjall's version
/// GC under the tree's lock (see the module docs). Looked at after every
/// write: one read of each keyspace's active memtable, no allocation
/// unless one was rotated.
struct Memtables {
    held: std::sync::Mutex<HeldMemtables>,
    /// To the `store-free` thread; it ends when the store is dropped.
    free: std::sync::mpsc::Sender<Vec<Memtable>>,
    /// Memtables freed there so far.
    #[cfg(test)]
    freed: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct HeldMemtables {
    /// Each keyspace's active memtable when last looked at, by keyspace id.
    active: Vec<(u64, Memtable)>,
    /// Memtables no longer active, until fjall lets go of them.
    retired: Vec<Memtable>,
}

impl Memtables {
    fn new() -> Memtables {
        let (free, freeing) = std::sync::mpsc::channel::<Vec<Memtable>>();
        let freed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = freed.clone();
        #[cfg(not(test))]
        drop(freed);
        let spawned = std::thread::Builder::new()
            .name("store-free".into())
            .spawn(move || {
                for batch in freeing {
                    let n = batch.len() as u64;
                    drop(batch);
                    count.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            });
        if let Err(e) = spawned {
            // Without the thread the channel is closed, and `keep` frees
            // the memtables on the writer's thread (outside fjall's lock,
            // but in the committer's time): slower, nothing wrong.
            tracing::warn!(error = %e, "cannot start the store-free thread");
        }
        Memtables {
            held: Default::default(),
            free,
            #[cfg(test)]
            freed,
        }
    }

    /// Takes a reference to the active memtable of each keyspace just
    /// `written` to (only those: looking at one takes its version lock,
    /// which fjall may hold while it persists a version), and sends the
    /// memtables fjall no longer holds to be freed.
    fn keep<'a>(&self, written: impl IntoIterator<Item = &'a Keyspace>) {
        use fjall::AbstractTree;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let held = &mut *held;
        for keyspace in written {
            let active: Memtable = keyspace.tree.active_memtable();
            let id = keyspace.id();
            match held.active.iter_mut().find(|(k, _)| *k == id) {
                Some((_, m)) if Arc::ptr_eq(m, &active) => {}
                Some((_, m)) => held.retired.push(std::mem::replace(m, active)),
                None => held.active.push((id, active)),
            }
        }
        if held.retired.iter().any(|m| Arc::strong_count(m) == 1) {
            // Ours alone: fjall has flushed it and let go, and cannot get
            // it back (it only finds memtables through its versions).
            let (done, kept) = std::mem::take(&mut held.retired)
                .into_iter()
                .partition(|m| Arc::strong_count(m) == 1);
            held.retired = kept;
            if let Err(std::sync::mpsc::SendError(done)) = self.free.send(done) {
                drop(done);
            }
        }
    }
}

/// Where counters live in the `meta` keyspace (their value: an i64,
/// big-endian).
const META_COUNTER: &str = "counter/";

/// A batch's writes, in the order they were made: netted by key before
/// they reach fjall ([`Writes::netted`]), the last write of a key
/// winning, so no key reaches fjall twice in one batch.
#[derive(Default)]
struct Writes(Vec<Write>);

/// One write: where, and the value (`None`: a removal).
type Write = ((Part, Vec<u8>), Option<Vec<u8>>);

impl Writes {
    /// A write (`None`: a removal); a later one of the same key wins.
    fn insert(&mut self, key: (Part, Vec<u8>), op: Option<Vec<u8>>) {
        self.0.push((key, op));
    }

    /// The writes, one per key: the last made of each, in the order
    /// they were made. A batch's keys are mostly distinct (a key repeats
    /// only for a customer with two entries in one group), so this
    /// hashes each key once and drops nothing when none repeats: cheaper
    /// than sorting a batch of thousands of keys.
    fn netted(self) -> impl Iterator<Item = Write> {
        let writes = self.0;
        let keep: Option<Vec<bool>> = {
            let mut last: rustc_hash::FxHashMap<&(Part, Vec<u8>), usize> =
                rustc_hash::FxHashMap::with_capacity_and_hasher(writes.len(), Default::default());
            for (i, (key, _)) in writes.iter().enumerate() {
                last.insert(key, i);
            }
            (last.len() < writes.len()).then(|| {
                let mut keep = vec![false; writes.len()];
                for &i in last.values() {
                    keep[i] = true;
                }
                keep
            })
        };
        writes
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| keep.as_ref().is_none_or(|k| k[*i]))
            .map(|(_, w)| w)
    }
}

/// Which keyspace a netted write goes to (ordered like the batch fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Part {
    Customers,
    Facts,
    FactAges,
    Timers,
    Escalations,
    Open,
    Meta,
    Index,
}

impl FjallStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<FjallStore> {
        let dir = dir.as_ref().to_path_buf();
        let db = Database::builder(&dir)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(|e| open_error(&dir, e))?;
        let keyspace = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(|e| open_error(&dir, e))
        };
        let shared = Shared {
            customers: keyspace("customers")?,
            facts: keyspace("facts")?,
            fact_ages: keyspace("fact_ages")?,
            timers: keyspace("timers")?,
            escalations: keyspace("escalations")?,
            open: keyspace("open")?,
            index: keyspace("customer_index")?,
            meta: keyspace("meta")?,
            counters: Default::default(),
            memtables: Memtables::new(),
            db,
        };
        shared.check_format(&dir)?;
        // The active memtables, replayed from fjall's journal, are held too.
        shared.memtables.keep(shared.all());
        // The counters are read once, at open.
        drop(shared.lock_counters()?);
        Ok(FjallStore {
            shared: Arc::new(shared),
        })
    }

    /// Folds the journal into the tables and compacts every keyspace into
    /// one sorted run, dropping overwritten records and removed keys; for
    /// an operator, with the node stopped (`handoff store compact`).
    /// Returns the bytes on disk before and after.
    ///
    /// Uses fjall's `rotate_memtable_and_wait` and `major_compact`, public
    /// but hidden in its docs; pinned with fjall 3.1.
    pub fn compact(&self) -> Result<(u64, u64)> {
        let before = self.disk_bytes()?;
        self.checkpoint()?;
        for keyspace in self.shared.all() {
            keyspace
                .major_compact()
                .map_err(|e| StoreError::backend("compacting a keyspace", e))?;
        }
        Ok((before, self.disk_bytes()?))
    }

    /// Writes every memtable to tables, so that the journal holds nothing
    /// that is not already in them (the next open has nothing to apply).
    fn checkpoint(&self) -> Result<()> {
        self.shared
            .db
            .persist(PersistMode::SyncAll)
            .map_err(|e| StoreError::backend("flushing the journal", e))?;
        for keyspace in self.shared.all() {
            keyspace
                .rotate_memtable_and_wait()
                .map_err(|e| StoreError::backend("writing memtables to tables", e))?;
        }
        // The flushed memtables go now, not at the next write.
        self.shared.memtables.keep(self.shared.all());
        Ok(())
    }
}

fn open_error(dir: &Path, e: fjall::Error) -> StoreError {
    let reason = match &e {
        fjall::Error::Locked => "another process has it open: stop that handoff node, or \
                                 give this one another data directory"
            .to_owned(),
        fjall::Error::InvalidVersion(v) => format!(
            "it was written by an incompatible storage format ({v:?}); use the handoff \
             release that wrote it"
        ),
        other => format!("{other}; check that the path is a directory you may write to"),
    };
    StoreError::Open {
        dir: dir.to_path_buf(),
        reason,
    }
}

impl Shared {
    /// Every keyspace.
    fn all(&self) -> [&Keyspace; 8] {
        [
            &self.index,
            &self.customers,
            &self.facts,
            &self.fact_ages,
            &self.timers,
            &self.escalations,
            &self.open,
            &self.meta,
        ]
    }

    fn keyspace(&self, part: Part) -> &Keyspace {
        match part {
            Part::Customers => &self.customers,
            Part::Facts => &self.facts,
            Part::FactAges => &self.fact_ages,
            Part::Timers => &self.timers,
            Part::Escalations => &self.escalations,
            Part::Open => &self.open,
            Part::Meta => &self.meta,
            Part::Index => &self.index,
        }
    }

    /// Writes the format version into a new store; refuses another one's.
    fn check_format(&self, dir: &Path) -> Result<()> {
        let found = self
            .meta
            .get(META_FORMAT)
            .map_err(|e| StoreError::backend("reading the format version", e))?;
        let write = || {
            self.meta
                .insert(META_FORMAT, FORMAT_VERSION.to_be_bytes())
                .and_then(|()| self.db.persist(PersistMode::SyncAll))
                .map_err(|e| StoreError::backend("writing the format version", e))
        };
        match found {
            None => write(),
            Some(v) if v.as_ref() == FORMAT_VERSION.to_be_bytes() => Ok(()),
            Some(v) if FORMAT_READS.iter().any(|f| v.as_ref() == f.to_be_bytes()) => write(),
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref()).map_or_else(
                    |_| format!("{:?}", v.as_ref()),
                    |b| u32::from_be_bytes(b).to_string(),
                );
                let reads: Vec<String> = FORMAT_READS
                    .iter()
                    .chain([&FORMAT_VERSION])
                    .map(u32::to_string)
                    .collect();
                Err(StoreError::Open {
                    dir: dir.to_path_buf(),
                    reason: format!(
                        "its layout is format {found}, this handoff reads formats {}; use the \
                         handoff release that wrote it",
                        reads.join(" and ")
                    ),
                })
            }
        }
    }

    /// Nets a batch (the last write of a key wins, as if its parts were
    /// applied one after another) and writes it, with one fsync when
    /// `sync` says so (else the next `persist` makes it durable).
    ///
    /// Netting is not only a saving: fjall stamps every item of a batch
    /// with one seqno, and which of two writes of one key with the same
    /// seqno survives is not part of its documented contract (today the
    /// memtable keeps the later one), so no key reaches fjall twice.
    fn write(&self, b: WriteBatch, sync: Option<PersistMode>) -> Result<()> {
        let mut ops = Writes::default();
        {
            for (shard, customer, record) in b.customers {
                ops.insert(
                    (Part::Customers, keys::customer(shard, &customer)),
                    Some(record),
                );
            }
            // Facts netted by key (the last write of a fact wins, so a
            // fact written twice in one batch goes by its last decision
            // time), then one age key per run of consecutive seqs of one
            // customer decided at one instant: one journal entry's facts.
            let mut facts = b.facts;
            facts.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
            let mut run: Option<AgeRun> = None;
            let mut i = 0;
            while i < facts.len() {
                // The last of the equal keys wins (the sort is stable).
                while i + 1 < facts.len()
                    && (facts[i].0, &facts[i].1, facts[i].2)
                        == (facts[i + 1].0, &facts[i + 1].1, facts[i + 1].2)
                {
                    i += 1;
                }
                let (shard, customer, seq, at_us, record) = std::mem::take(&mut facts[i]);
                i += 1;
                match &mut run {
                    Some(r) if r.extends(shard, &customer, seq, at_us) => {
                        r.last = seq;
                        r.records.push(record);
                    }
                    _ => {
                        if let Some(done) = run.take() {
                            done.put(&mut ops);
                        }
                        run = Some(AgeRun {
                            shard,
                            customer,
                            at_us,
                            first: seq,
                            last: seq,
                            records: vec![record],
                        });
                    }
                }
            }
            if let Some(done) = run {
                done.put(&mut ops);
            }
            for t in &b.timers_cleared {
                ops.insert((Part::Timers, t.encode()), None);
            }
            for t in &b.timers_set {
                ops.insert((Part::Timers, t.encode()), Some(Vec::new()));
            }
            for (shard, seq, record) in b.escalations {
                ops.insert(
                    (Part::Escalations, keys::escalation(shard, seq)),
                    Some(record),
                );
            }
            for (team, id) in &b.open_cleared {
                ops.insert((Part::Open, open_key(team, id)), None);
            }
            for row in b.open_set {
                let mut value = Vec::with_capacity(row.entry.len() + 1);
                value.push(u8::from(row.acknowledged));
                value.extend_from_slice(&row.entry);
                ops.insert(
                    (Part::Open, open_key(&row.team, &row.escalation_id)),
                    Some(value),
                );
            }
            for key in b.index_cleared {
                ops.insert((Part::Index, key), None);
            }
            for key in b.index_set {
                ops.insert((Part::Index, key), Some(Vec::new()));
            }
        }

        let mut counters = match b.counters.is_empty() {
            true => None,
            false => Some(self.lock_counters()?),
        };
        // Hashed, not ordered: a group repeats a few hundred names
        // thousands of times, and names of one family share long prefixes.
        let mut deltas: rustc_hash::FxHashMap<String, i64> = Default::default();
        for (_, name, delta) in b.counters {
            *deltas.entry(name).or_default() += delta;
        }
        // A counter the batch leaves where it was costs no write.
        let mut moved = Vec::new();
        if let Some(Some(totals)) = counters.as_deref() {
            for (name, delta) in deltas.into_iter().filter(|(_, d)| *d != 0) {
                let value = totals.get(&name).copied().unwrap_or(0) + delta;
                // A transient counter back at zero is removed (absent
                // reads as zero).
                let gone = value == 0 && name.starts_with(super::TRANSIENT_COUNTER);
                let key = format!("{META_COUNTER}{name}").into_bytes();
                ops.insert(
                    (Part::Meta, key),
                    (!gone).then(|| value.to_be_bytes().to_vec()),
                );
                moved.push((name, (!gone).then_some(value)));
            }
        }
        let mut batch = self.db.batch().durability(sync);
        // The keyspaces written, each once.
        let mut written: Vec<Part> = Vec::with_capacity(8);
        for ((part, key), op) in ops.netted() {
            if !written.contains(&part) {
                written.push(part);
            }
            let keyspace = self.keyspace(part);
            match op {
                Some(value) => batch.insert(keyspace, key, value),
                None => batch.remove(keyspace, key),
            }
        }
        let committed = batch
            .commit()
            .map_err(|e| StoreError::backend("committing a batch", e));
        self.memtables
            .keep(written.into_iter().map(|p| self.keyspace(p)));
        if let Some(slot) = counters.as_deref_mut() {
            match (&committed, slot.as_mut()) {
                (Ok(()), Some(totals)) => {
                    for (name, value) in moved {
                        match value {
                            Some(v) => totals.insert(name, v),
                            None => totals.remove(&name),
                        };
                    }
                }
                // The batch may or may not be in the store: its values
                // are read from the store again before the next use.
                _ => *slot = None,
            }
        }
        committed
    }

    /// The counters, read from the store first if they are not known.
    fn lock_counters(&self) -> Result<std::sync::MutexGuard<'_, Option<BTreeMap<String, i64>>>> {
        let mut totals = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if totals.is_none() {
            *totals = Some(self.read_counters()?);
        }
        Ok(totals)
    }

    /// Every counter, read from the `meta` keyspace.
    fn read_counters(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for guard in self.meta.prefix(META_COUNTER.as_bytes()) {
            let (key, value) = guard
                .into_inner()
                .map_err(|e| StoreError::backend("reading counters", e))?;
            let name = String::from_utf8_lossy(&key[META_COUNTER.len()..]).into_owned();
            out.insert(name, counter_value(&value)?);
        }
        Ok(out)
    }
}

fn counter_value(bytes: &[u8]) -> Result<i64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt("a counter", format!("{} bytes, not 8", bytes.len())))?;
    Ok(i64::from_be_bytes(array))
}

/// Consecutive facts of one customer decided at one instant (one journal
/// entry's facts, as a rule): stored under one `facts` key, that of the
/// first seq (see [`encode_run`]), and indexed by one `fact_ages` key,
/// `shard | decided at | customer | first seq`, whose value is the last
/// seq (an empty value, as written before runs were indexed, means the
/// first).
struct AgeRun {
    shard: u32,
    customer: String,
    at_us: i64,
    first: u64,
    last: u64,
    /// The `FactRecord` bytes of `first..=last`, in order (empty when the
    /// facts are not being written, only their age key).
    records: Vec<Vec<u8>>,
}

impl AgeRun {
    fn extends(&self, shard: u32, customer: &str, seq: u64, at_us: i64) -> bool {
        (self.shard, self.customer.as_str(), self.at_us) == (shard, customer, at_us)
            && self.last.checked_add(1) == Some(seq)
    }

    /// The run's `fact_ages` key and value.
    fn entry(&self) -> (Vec<u8>, Vec<u8>) {
        let key = keys::fact_age(self.shard, self.at_us, &self.customer, self.first);
        let value = if self.last == self.first {
            Vec::new()
        } else {
            self.last.to_be_bytes().to_vec()
        };
        (key, value)
    }

    /// The run's facts and its age key, into the batch's writes.
    fn put(self, ops: &mut Writes) {
        let (key, value) = self.entry();
        ops.insert((Part::FactAges, key), Some(value));
        let key = keys::fact(self.shard, &self.customer, self.first);
        ops.insert(
            (Part::Facts, key),
            Some(encode_run(self.last, self.records)),
        );
    }
}

/// Marks a `facts` value that holds a run of facts rather than one
/// `FactRecord` (whose encoding never starts with a zero byte: field
/// number 0 does not exist).
const RUN: u8 = 0;

/// The `facts` value of the facts `first..=last` (their records in
/// order), stored under the key of `first`: one fact is its record, as
/// builds before runs wrote every fact; more are `RUN | last (u64 BE) |
/// (length (u32 BE) | record)...`. One key per journal entry rather than
/// one per fact keeps the history off the ingest bill.
fn encode_run(last: u64, records: Vec<Vec<u8>>) -> Vec<u8> {
    if records.len() == 1 {
        return records.into_iter().next().expect("one record");
    }
    let len = 9 + records.iter().map(|r| 4 + r.len()).sum::<usize>();
    let mut v = Vec::with_capacity(len);
    v.push(RUN);
    v.extend_from_slice(&last.to_be_bytes());
    for r in records {
        v.extend_from_slice(&(r.len() as u32).to_be_bytes());
        v.extend_from_slice(&r);
    }
    v
}

/// The facts of a `facts` value stored under the key of `first`: `(seq,
/// FactRecord bytes)` in order.
fn decode_run(first: u64, value: &[u8]) -> Result<Vec<(u64, &[u8])>> {
    let corrupt = |why: &str| StoreError::corrupt("a run of facts", why.to_owned());
    let Some((&RUN, rest)) = value.split_first() else {
        return Ok(vec![(first, value)]);
    };
    let (last, mut rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("no last seq"))?;
    let last = u64::from_be_bytes(*last);
    let mut out = Vec::new();
    let mut seq = first;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("a cut length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let record = tail.get(..len).ok_or_else(|| corrupt("a cut record"))?;
        out.push((seq, record));
        (seq, rest) = (seq + 1, &tail[len..]);
    }
    if out.len() < 2 || seq != last + 1 {
        return Err(corrupt("its records do not match its last seq"));
    }
    Ok(out)
}

impl FjallStore {
    /// Removes `keys` in one synced batch; returns how many (0 writes
    /// nothing).
    fn remove_durably(&self, keys: Vec<(&Keyspace, Slice)>, op: &'static str) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let n = keys.len() as u64;
        let mut batch = self
            .shared
            .db
            .batch()
            .durability(Some(PersistMode::SyncAll));
        let mut written: Vec<&Keyspace> = Vec::new();
        for (keyspace, key) in keys {
            if !written.iter().any(|w| w.id() == keyspace.id()) {
                written.push(keyspace);
            }
            batch.remove(keyspace, key);
        }
        let committed = batch.commit().map_err(|e| StoreError::backend(op, e));
        self.shared.memtables.keep(written);
        committed?;
        Ok(n)
    }
}

impl Store for FjallStore {
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.shared.write(batch, Some(PersistMode::SyncAll))
    }

    fn defers_sync(&self) -> bool {
        true
    }

    fn write_unsynced(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.shared.write(batch, None)
    }

    fn sync(&self) -> Result<()> {
        // fjall fsyncs its journal, where every batch is written before
        // it reaches a memtable (and a sealed journal file is fsync'd
        // when it is sealed); a failed fsync poisons the database.
        self.shared
            .db
            .persist(PersistMode::SyncAll)
            .map_err(|e| StoreError::backend("syncing the journal", e))
    }

    fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>> {
        self.shared
            .db
            .snapshot()
            .get(&self.shared.customers, keys::customer(shard, customer))
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| StoreError::backend("reading a customer", e))
    }

    fn last_fact_seq(&self, shard: u32, customer: &str) -> Result<Option<u64>> {
        let prefix = keys::facts_prefix(shard, customer);
        let last = self
            .shared
            .db
            .snapshot()
            .prefix(&self.shared.facts, &prefix)
            .next_back();
        match last {
            None => Ok(None),
            Some(guard) => {
                let (key, value) = guard
                    .into_inner()
                    .map_err(|e| StoreError::backend("reading facts", e))?;
                let first = keys::fact_seq(&key, prefix.len())?;
                let run = decode_run(first, &value)?;
                Ok(run.last().map(|(seq, _)| *seq))
            }
        }
    }

    fn timers(&self, shard: u32, from: Option<&TimerKey>, limit: usize) -> Result<Vec<TimerKey>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = keys::shard_prefix(shard);
        let start = match from {
            Some(f) if f.shard > shard => return Ok(Vec::new()),
            Some(f) if f.shard == shard => Bound::Excluded(f.encode()),
            _ => Bound::Included(prefix.clone()),
        };
        let mut out = Vec::new();
        for guard in self
            .shared
            .db
            .snapshot()
            .range(&self.shared.timers, (start, Bound::Unbounded))
        {
            let key = guard
                .key()
                .map_err(|e| StoreError::backend("scanning timers", e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(TimerKey::decode(&key)?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn escalations(
        &self,
        shard: u32,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let err = |e| StoreError::backend("reading escalations", e);
        let start = match after_seq {
            None => Bound::Included(keys::escalation(shard, 0)),
            Some(seq) => Bound::Excluded(keys::escalation(shard, seq)),
        };
        let mut out = Vec::new();
        for guard in self
            .shared
            .db
            .snapshot()
            .range(&self.shared.escalations, (start, Bound::Unbounded))
        {
            let (key, value) = guard.into_inner().map_err(err)?;
            let (key_shard, seq) = keys::parse_escalation(&key)?;
            if key_shard != shard {
                break;
            }
            out.push((seq, value.to_vec()));
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn last_escalation_seq(&self, shard: u32) -> Result<Option<u64>> {
        let last = self
            .shared
            .db
            .snapshot()
            .prefix(&self.shared.escalations, keys::shard_prefix(shard))
            .next_back();
        match last {
            None => Ok(None),
            Some(guard) => {
                let key = guard
                    .key()
                    .map_err(|e| StoreError::backend("reading escalations", e))?;
                Ok(Some(keys::parse_escalation(&key)?.1))
            }
        }
    }

    fn prune_escalations(&self, shard: u32, before_seq: u64, limit: usize) -> Result<u64> {
        // Only this shard's keys below `end` go, and `end` is at most the
        // newest seq, read first: a commit meanwhile only adds higher ones.
        let Some(newest) = self.last_escalation_seq(shard)? else {
            return Ok(0);
        };
        let end = before_seq.min(newest);
        let err = |e| StoreError::backend("pruning escalations", e);
        let range = keys::escalation(shard, 0)..keys::escalation(shard, end);
        let mut doomed = Vec::new();
        for guard in self
            .shared
            .db
            .snapshot()
            .range(&self.shared.escalations, range)
            .take(limit)
        {
            doomed.push(guard.key().map_err(err)?);
        }
        let escalations = &self.shared.escalations;
        self.remove_durably(
            doomed.into_iter().map(|key| (escalations, key)).collect(),
            "pruning escalations",
        )
    }

    fn prune_facts(&self, shard: u32, before_us: i64, limit: usize) -> Result<u64> {
        let err = |e| StoreError::backend("pruning facts", e);
        let range = keys::fact_ages_from(shard, i64::MIN)..keys::fact_ages_from(shard, before_us);
        let (ages, facts) = (&self.shared.fact_ages, &self.shared.facts);
        let mut batch = self
            .shared
            .db
            .batch()
            .durability(Some(PersistMode::SyncAll));
        let mut n = 0u64;
        let snapshot = self.shared.db.snapshot();
        for guard in snapshot.range(ages, range) {
            let budget = (limit as u64).saturating_sub(n);
            if budget == 0 {
                break;
            }
            let (age, value) = guard.into_inner().map_err(err)?;
            let (_, at_us, customer, first) = keys::parse_fact_age(&age)?;
            let last =
                match value.as_ref() {
                    [] => first,
                    v => u64::from_be_bytes(v.try_into().map_err(|_| {
                        StoreError::corrupt("fact age", "a value that is not 8 bytes")
                    })?),
                };
            // A run longer than the budget loses its head; the rest keeps
            // its decision time under a key for its new first seq.
            let end = last.min(first.saturating_add(budget - 1));
            let head = keys::fact(shard, &customer, first);
            let stored = snapshot.get(facts, &head).map_err(err)?;
            let mut rest = AgeRun {
                shard,
                customer,
                at_us,
                first: end + 1,
                last,
                records: Vec::new(),
            };
            match stored.as_deref() {
                // One key holds the run (as this build writes them): the
                // rest of it, if any, is written again under its new first.
                Some(v) if v.first() == Some(&RUN) => {
                    batch.remove(facts, head);
                    if end < last {
                        rest.records = decode_run(first, v)?
                            .into_iter()
                            .filter(|(seq, _)| *seq > end)
                            .map(|(_, r)| r.to_vec())
                            .collect();
                        let key = keys::fact(shard, &rest.customer, rest.first);
                        batch.insert(facts, key, encode_run(last, rest.records));
                        rest.records = Vec::new();
                    }
                }
                // A key per fact (one fact, or a run written by an older
                // build).
                _ => {
                    for seq in first..=end {
                        batch.remove(facts, keys::fact(shard, &rest.customer, seq));
                    }
                }
            }
            batch.remove(ages, age);
            if end < last {
                let (key, value) = rest.entry();
                batch.insert(ages, key, value);
            }
            n += end - first + 1;
        }
        if n > 0 {
            let committed = batch
                .commit()
                .map_err(|e| StoreError::backend("pruning facts", e));
            self.shared.memtables.keep([ages, facts]);
            committed?;
        }
        Ok(n)
    }

    fn scan_facts(
        &self,
        after: Option<(u32, &str, u64)>,
        limit: usize,
    ) -> Result<Vec<ScannedFact>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let err = |e| StoreError::backend("scanning facts", e);
        let snapshot = self.shared.db.snapshot();
        let facts = &self.shared.facts;
        let mut out = Vec::new();
        // Appends a stored value's facts after `after`, up to the limit.
        let mut take = |key: &[u8], value: &[u8], after: Option<u64>| -> Result<bool> {
            let mut r = keys::Reader::new(key, "fact");
            let (shard, customer, first) = (r.u32()?, r.str()?, r.u64()?);
            r.end()?;
            for (seq, record) in decode_run(first, value)? {
                if after.is_some_and(|a| seq <= a) {
                    continue;
                }
                out.push((shard, customer.clone(), seq, record.to_vec()));
                if out.len() == limit {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let start = match after {
            None => Bound::Unbounded,
            Some((shard, customer, seq)) => {
                // The rest of the run `after` is in, if it began before it.
                let key = keys::fact(shard, customer, seq);
                if let Some(guard) = snapshot.range(facts, ..=key.clone()).next_back() {
                    let (k, v) = guard.into_inner().map_err(err)?;
                    let prefix = keys::facts_prefix(shard, customer);
                    if k.starts_with(&prefix)
                        && k.len() == prefix.len() + 8
                        && !take(&k, &v, Some(seq))?
                    {
                        return Ok(out);
                    }
                }
                Bound::Excluded(key)
            }
        };
        for guard in snapshot.range(facts, (start, Bound::Unbounded)) {
            let (key, value) = guard.into_inner().map_err(err)?;
            if !take(&key, &value, None)? {
                break;
            }
        }
        Ok(out)
    }

    fn counters(&self) -> Result<Option<BTreeMap<String, i64>>> {
        Ok(self.shared.lock_counters()?.clone())
    }

    fn open_escalations(&self, team: Option<&str>) -> Result<Vec<(Vec<u8>, bool)>> {
        let err = |e| StoreError::backend("reading open escalations", e);
        let prefix = team.map(|t| open_key(t, "")).unwrap_or_default();
        let mut out = Vec::new();
        for guard in self.shared.db.snapshot().prefix(&self.shared.open, prefix) {
            let (_, value) = guard.into_inner().map_err(err)?;
            let Some((ack, entry)) = value.split_first() else {
                return Err(StoreError::corrupt("open escalation", "an empty value"));
            };
            out.push((entry.to_vec(), *ack != 0));
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = format!("{META_NODE}{key}");
        self.shared
            .meta
            .get(key.as_bytes())
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| StoreError::backend("reading the store's metadata", e))
    }

    fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<()> {
        let key = format!("{META_NODE}{key}");
        self.shared
            .meta
            .insert(key.as_bytes(), value)
            .and_then(|()| self.shared.db.persist(PersistMode::SyncAll))
            .map_err(|e| StoreError::backend("writing the store's metadata", e))
    }

    fn index_keys(
        &self,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        if low >= high || limit == 0 {
            return Ok(Vec::new());
        }
        let err = |e| StoreError::backend("scanning a customer index", e);
        let snapshot = self.shared.db.snapshot();
        let range = snapshot.range(&self.shared.index, low.to_vec()..high.to_vec());
        let mut out = Vec::new();
        let mut push = |guard: fjall::Guard| -> Result<bool> {
            out.push(guard.key().map_err(err)?.to_vec());
            Ok(out.len() < limit)
        };
        if reverse {
            for guard in range.rev() {
                if !push(guard)? {
                    break;
                }
            }
        } else {
            for guard in range {
                if !push(guard)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn customers_after(
        &self,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<(u32, String, Vec<u8>)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let err = |e| StoreError::backend("reading customers", e);
        let start = match after {
            Some((shard, c)) => Bound::Excluded(keys::customer(shard, c)),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for guard in self
            .shared
            .db
            .snapshot()
            .range(&self.shared.customers, (start, Bound::Unbounded))
        {
            let (key, value) = guard.into_inner().map_err(err)?;
            let mut r = keys::Reader::new(&key, "customer");
            let shard = r.u32()?;
            let customer = r.str()?;
            r.end()?;
            out.push((shard, customer, value.to_vec()));
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn disk_bytes(&self) -> Result<u64> {
        self.shared
            .db
            .disk_space()
            .map_err(|e| StoreError::backend("measuring disk use", e))
    }

    fn flush(&self) -> Result<()> {
        self.checkpoint()
    }
}

/// The key of an open escalation: team names hold no NUL (the model's
/// names are `[A-Za-z0-9_-]`), so the team prefix is unambiguous.
fn open_key(team: &str, escalation_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(team.len() + 1 + escalation_id.len());
    k.extend_from_slice(team.as_bytes());
    k.push(0);
    k.extend_from_slice(escalation_id.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_s_writes_are_netted_to_the_last_write_of_each_key() {
        let mut w = Writes::default();
        let k = |part, key: &str| (part, key.as_bytes().to_vec());
        w.insert(k(Part::Index, "b"), Some(vec![1]));
        w.insert(k(Part::Customers, "z"), Some(vec![2]));
        w.insert(k(Part::Index, "a"), None);
        w.insert(k(Part::Index, "b"), None);
        w.insert(k(Part::Index, "a"), Some(vec![3]));
        w.insert(k(Part::Index, "b"), Some(vec![4]));
        // Same bytes, another keyspace: another key.
        w.insert(k(Part::Customers, "a"), None);
        let netted: Vec<_> = w.netted().collect();
        assert_eq!(
            netted,
            vec![
                (k(Part::Customers, "z"), Some(vec![2])),
                (k(Part::Index, "a"), Some(vec![3])),
                (k(Part::Index, "b"), Some(vec![4])),
                (k(Part::Customers, "a"), None),
            ]
        );
        // Distinct keys: all of them, as made.
        let mut w = Writes::default();
        w.insert(k(Part::Index, "b"), None);
        w.insert(k(Part::Index, "a"), Some(vec![1]));
        let netted: Vec<_> = w.netted().collect();
        assert_eq!(
            netted,
            vec![
                (k(Part::Index, "b"), None),
                (k(Part::Index, "a"), Some(vec![1]))
            ]
        );
    }

    /// A fact's bytes in these tests (never starting with a zero byte, as
    /// no `FactRecord` does).
    fn record(customer: &str, seq: u64) -> Vec<u8> {
        format!("{customer}#{seq}").into_bytes()
    }

    fn facts(customer: &str, seqs: std::ops::RangeInclusive<u64>, at_us: i64) -> WriteBatch {
        WriteBatch {
            facts: seqs
                .map(|seq| (2, customer.to_owned(), seq, at_us, record(customer, seq)))
                .collect(),
            ..WriteBatch::default()
        }
    }

    /// Every fact of the store, read in pages of `page`.
    fn scan_all(s: &FjallStore, page: usize) -> Vec<(String, u64, Vec<u8>)> {
        let mut out: Vec<(String, u64, Vec<u8>)> = Vec::new();
        loop {
            let after = out.last().map(|(c, seq, _)| (2, c.as_str(), *seq));
            let rows = s.scan_facts(after, page).expect("scans");
            if rows.is_empty() {
                return out;
            }
            assert!(rows.len() <= page);
            out.extend(rows.into_iter().map(|(_, c, seq, r)| (c, seq, r)));
        }
    }

    /// Batches written without a sync are read at once, each whole with
    /// its counters, and one sync makes them all durable (a reopened
    /// store has them).
    #[test]
    fn chunks_written_unsynced_are_durable_after_one_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FjallStore::open(dir.path()).expect("opens");
        assert!(s.defers_sync());
        for i in 0..3 {
            let batch = WriteBatch {
                customers: vec![(0, format!("c{i}"), vec![i as u8 + 1])],
                counters: vec![(0, "customers created".to_owned(), 1)],
                ..Default::default()
            };
            s.write_unsynced(batch).expect("writes");
            assert_eq!(
                s.customer(0, &format!("c{i}")).expect("reads"),
                Some(vec![i as u8 + 1])
            );
        }
        s.sync().expect("syncs");
        drop(s);
        let s = FjallStore::open(dir.path()).expect("opens again");
        for i in 0..3 {
            assert_eq!(
                s.customer(0, &format!("c{i}")).expect("reads"),
                Some(vec![i as u8 + 1])
            );
        }
        assert_eq!(
            s.counters()
                .expect("reads")
                .expect("kept")
                .get("customers created"),
            Some(&3)
        );
    }

    /// A flushed memtable is freed by the store's `store-free` thread, so
    /// fjall's version GC, which holds the tree's lock, never frees one.
    #[test]
    fn a_flushed_memtable_is_freed_by_the_store_not_under_fjall_s_lock() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FjallStore::open(dir.path()).expect("opens");
        let write = |i: usize| {
            let batch = WriteBatch {
                customers: vec![(0, format!("c{i}"), vec![7u8; 4096])],
                ..Default::default()
            };
            s.commit(batch).expect("commits");
        };
        write(0);
        assert_eq!(s.shared.memtables.freed.load(Ordering::Relaxed), 0);
        // Rotate as a full memtable would be (fjall's `rotate_memtable`,
        // public but hidden), and write on: fjall flushes the sealed
        // memtables and its version GC lets go of them, at a pace of its
        // own (a GC keeps versions a while), with nothing to wait on.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut i = 1;
        while s.shared.memtables.freed.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{i} memtables rotated and flushed, none freed by the store in a minute"
            );
            s.shared.customers.rotate_memtable().expect("rotates");
            write(i);
            i += 1;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(s.shared.customers.disk_space() > 0, "flushed to a table");
        // Every record is still there.
        for c in 0..i {
            assert!(s.customer(0, &format!("c{c}")).expect("reads").is_some());
        }
    }

    #[test]
    fn an_entry_s_facts_are_one_key_and_older_per_fact_keys_read_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FjallStore::open(dir.path()).expect("opens");
        // `old`: 1..=3 as a build before runs wrote them (a key per fact,
        // one age key for the three).
        for seq in 1..=3 {
            s.shared
                .facts
                .insert(keys::fact(2, "old", seq), record("old", seq))
                .expect("writes");
        }
        s.shared
            .fact_ages
            .insert(keys::fact_age(2, 10, "old", 1), 3u64.to_be_bytes())
            .expect("writes");
        // Then this build: `old` 4..=5, `new` 1..=3 (one entry) and 4.
        s.commit(facts("old", 4..=5, 20)).expect("commits");
        s.commit(facts("new", 1..=3, 10)).expect("commits");
        s.commit(facts("new", 4..=4, 30)).expect("commits");
        let stored = |c: &str| {
            s.shared
                .facts
                .prefix(keys::facts_prefix(2, c))
                .filter_map(|g| g.key().ok())
                .count()
        };
        assert_eq!(stored("new"), 2, "a key per entry, not per fact");
        assert_eq!(stored("old"), 4);
        assert_eq!(s.last_fact_seq(2, "old").expect("reads"), Some(5));
        assert_eq!(s.last_fact_seq(2, "new").expect("reads"), Some(4));
        let all: Vec<(String, u64, Vec<u8>)> = [("new", 1..=4), ("old", 1..=5)]
            .into_iter()
            .flat_map(|(c, seqs)| seqs.map(move |seq| (c.to_owned(), seq, record(c, seq))))
            .collect();
        for page in 1..=10 {
            assert_eq!(scan_all(&s, page), all, "pages of {page}");
        }

        // Pruning before 25 with a budget of 2 at a time: `new` 1..=2 go
        // (its run keeps 3 under a key of its own), then `new` 3 and `old`
        // 1, then `old` 2..=3, then `old` 4..=5; `new` 4 (at 30) stays.
        assert_eq!(s.prune_facts(2, 25, 2).expect("prunes"), 2);
        let left = |s: &FjallStore| -> Vec<(String, u64)> {
            scan_all(s, 3)
                .into_iter()
                .map(|(c, seq, _)| (c, seq))
                .collect()
        };
        let named = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(c, seq)| ((*c).to_owned(), *seq)).collect()
        };
        assert_eq!(
            left(&s),
            named(&[
                ("new", 3),
                ("new", 4),
                ("old", 1),
                ("old", 2),
                ("old", 3),
                ("old", 4),
                ("old", 5)
            ])
        );
        assert_eq!(s.prune_facts(2, 25, 2).expect("prunes"), 2);
        assert_eq!(s.prune_facts(2, 25, 2).expect("prunes"), 2);
        assert_eq!(s.prune_facts(2, 25, 2).expect("prunes"), 2);
        assert_eq!(s.prune_facts(2, 25, 2).expect("prunes"), 0);
        assert_eq!(left(&s), named(&[("new", 4)]));
        assert_eq!(s.last_fact_seq(2, "new").expect("reads"), Some(4));
        assert_eq!(s.last_fact_seq(2, "old").expect("reads"), None);
        drop(s);
        let s = FjallStore::open(dir.path()).expect("reopens");
        assert_eq!(left(&s), named(&[("new", 4)]));
    }

    #[test]
    fn a_format_1_directory_is_upgraded_and_an_unknown_format_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FjallStore::open(dir.path()).expect("opens");
        s.shared
            .meta
            .insert(META_FORMAT, 1u32.to_be_bytes())
            .expect("writes");
        drop(s);
        let s = FjallStore::open(dir.path()).expect("a format 1 directory opens");
        let format = s.shared.meta.get(META_FORMAT).expect("reads");
        assert_eq!(format.as_deref(), Some(&2u32.to_be_bytes()[..]));
        s.shared
            .meta
            .insert(META_FORMAT, 9u32.to_be_bytes())
            .expect("writes");
        drop(s);
        let Err(e) = FjallStore::open(dir.path()) else {
            panic!("format 9 must be refused");
        };
        let e = e.to_string();
        assert!(
            e.contains("format 9, this handoff reads formats 1 and 2")
                && e.contains("release that wrote it"),
            "{e}"
        );
    }

    #[test]
    fn a_run_that_does_not_add_up_is_corrupt() {
        let good = encode_run(7, vec![b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(
            decode_run(6, &good).expect("decodes"),
            vec![(6, &b"a"[..]), (7, &b"bc"[..])]
        );
        assert_eq!(
            encode_run(3, vec![b"x".to_vec()]),
            b"x",
            "one fact is its record"
        );
        assert!(
            decode_run(5, &good).is_err(),
            "last seq 7 from first 5 is three facts"
        );
        assert!(decode_run(6, &good[..good.len() - 1]).is_err(), "cut");
    }
}
