//! [`FjallStore`]: the node's [`Store`], on fjall, with group commit.
//!
//! One fjall database holds seven keyspaces: `customers`, `facts`, `timers`,
//! `escalations`, `idempotency` (the keys, and an index of them by arrival
//! time for pruning), `open` (open escalations by team) and `meta` (format
//! version, customer count). Each commit is one fjall write batch, atomic
//! across keyspaces, journaled and fsync'd (`PersistMode::SyncAll`) before
//! it is applied.
//!
//! **Group commit.** An fsync costs milliseconds whatever it carries, so
//! concurrent commits share them: every write goes to one committer thread
//! over a channel; the committer takes whatever is queued (up to
//! [`MAX_GROUP`] batches), nets it into one fjall batch, syncs once, and
//! then answers each caller. There is no timer and no artificial delay: a
//! lone commit is written at once, and batches queue up only while the
//! previous sync is in progress. The committer is also the only writer,
//! which makes its read-then-write steps (the customer count, pruning)
//! race-free.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use super::keys;
use super::{CommitCallback, Result, Store, StoreError, TimerKey, WriteBatch};

/// The on-disk layout this build reads and writes (`meta` key `format`).
const FORMAT_VERSION: u32 = 1;
const META_FORMAT: &[u8] = b"format";
const META_CUSTOMERS: &[u8] = b"customer_count";
/// Prefix of the node's own `meta` keys ([`Store::meta`]), apart from the
/// store's (`format`, `customer_count`).
const META_NODE: &str = "node/";

/// At most this many batches share one write and one fsync.
pub const MAX_GROUP: usize = 1024;

/// Pruning removes idempotency keys in writes of at most this many.
const PRUNE_CHUNK: usize = 10_000;

/// The journal (fjall's write-ahead log) is bounded to this: past it,
/// fjall flushes memtables to tables and drops the journal files they no
/// longer need. A crash replays at most this much at the next open, so it
/// bounds recovery time and the disk the journal takes (fjall's default,
/// 512 MiB, took about 5 s to replay on the benchmark machine).
const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// The store on disk. Cheap to share behind an `Arc`; dropping it lets the
/// committer finish every queued batch, then persists and closes fjall.
pub struct FjallStore {
    shared: Arc<Shared>,
    /// Feeds the committer thread. Dropping it (on drop of the store) is
    /// the committer's signal to drain the queue and stop.
    jobs: Option<mpsc::Sender<Job>>,
    /// Joined on drop, so that every accepted batch is answered first.
    committer: Option<JoinHandle<()>>,
}

/// How much group commit merged, since the store opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Batches committed (each one caller's `commit`).
    pub batches: u64,
    /// fjall writes (each one fsync) that carried them.
    pub writes: u64,
}

/// A unit of work for the committer thread.
enum Job {
    Commit(WriteBatch, CommitCallback),
    Prune(i64, Box<dyn FnOnce(Result<usize>) + Send>),
}

/// What both the store and its committer thread hold.
struct Shared {
    db: Database,
    customers: Keyspace,
    facts: Keyspace,
    timers: Keyspace,
    escalations: Keyspace,
    idempotency: Keyspace,
    /// Open escalations by team: `team \0 escalation id` -> ack byte + entry.
    open: Keyspace,
    meta: Keyspace,
    /// Customer records that exist; written to `meta` in the same batch
    /// that creates a customer, changed only by the committer.
    customer_count: AtomicU64,
    batches: AtomicU64,
    writes: AtomicU64,
}

/// Which keyspace a netted write goes to (ordered like the batch fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Customers,
    Facts,
    Timers,
    Escalations,
    Idempotency,
    Open,
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
            timers: keyspace("timers")?,
            escalations: keyspace("escalations")?,
            idempotency: keyspace("idempotency")?,
            open: keyspace("open")?,
            meta: keyspace("meta")?,
            db,
            customer_count: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        };
        shared.check_format(&dir)?;
        let count = match shared.meta.get(META_CUSTOMERS) {
            Ok(None) => 0,
            Ok(Some(v)) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StoreError::corrupt("customer count", format!("{} bytes, not 8", v.len()))
            })?),
            Err(e) => return Err(StoreError::backend("reading the customer count", e)),
        };
        shared.customer_count.store(count, Ordering::Relaxed);

        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel();
        let for_thread = Arc::clone(&shared);
        let committer = std::thread::Builder::new()
            .name("handoff-store-committer".into())
            .spawn(move || run_committer(&for_thread, &rx))
            .map_err(|e| StoreError::Open {
                dir: dir.clone(),
                reason: format!("cannot start the committer thread: {e}"),
            })?;
        Ok(FjallStore {
            shared,
            jobs: Some(tx),
            committer: Some(committer),
        })
    }

    /// How much group commit merged so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            writes: self.shared.writes.load(Ordering::Relaxed),
        }
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
        Ok(())
    }

    /// Queues a job for the committer; hands it back if the committer is gone.
    fn send(&self, job: Job) -> Option<Job> {
        match &self.jobs {
            Some(tx) => tx.send(job).err().map(|mpsc::SendError(job)| job),
            None => Some(job),
        }
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(committer) = self.committer.take() {
            // A panicked committer already failed its callers; nothing to add.
            let _ = committer.join();
        }
        // fjall persists its journal (SyncAll) when the database drops.
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

/// The committer thread: takes what is queued, writes it with one fsync,
/// answers; until the store drops its sender and the queue is empty.
fn run_committer(shared: &Shared, jobs: &mpsc::Receiver<Job>) {
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(mpsc::RecvError) => return,
            },
        };
        match job {
            Job::Prune(older_than, done) => {
                let result = shared.prune(older_than);
                answer(move || done(result));
            }
            Job::Commit(batch, done) => {
                let mut group = vec![batch];
                let mut dones = vec![done];
                while group.len() < MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(Job::Commit(batch, done)) => {
                            group.push(batch);
                            dones.push(done);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let result = shared.write(group);
                for done in dones {
                    let result = result.clone();
                    answer(move || done(result));
                }
            }
        }
    }
}

/// Runs a caller's callback. One that panics must not stop the committer:
/// every other caller waits on it. (The panic message is already printed.)
fn answer(callback: impl FnOnce()) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(callback));
}

impl Shared {
    /// Every keyspace.
    fn all(&self) -> [&Keyspace; 7] {
        [
            &self.customers,
            &self.facts,
            &self.timers,
            &self.escalations,
            &self.idempotency,
            &self.open,
            &self.meta,
        ]
    }

    fn keyspace(&self, part: Part) -> &Keyspace {
        match part {
            Part::Customers => &self.customers,
            Part::Facts => &self.facts,
            Part::Timers => &self.timers,
            Part::Escalations => &self.escalations,
            Part::Idempotency => &self.idempotency,
            Part::Open => &self.open,
        }
    }

    /// Writes the format version into a new store; refuses another one's.
    fn check_format(&self, dir: &Path) -> Result<()> {
        let found = self
            .meta
            .get(META_FORMAT)
            .map_err(|e| StoreError::backend("reading the format version", e))?;
        match found {
            None => self
                .meta
                .insert(META_FORMAT, FORMAT_VERSION.to_be_bytes())
                .and_then(|()| self.db.persist(PersistMode::SyncAll))
                .map_err(|e| StoreError::backend("writing the format version", e)),
            Some(v) if v.as_ref() == FORMAT_VERSION.to_be_bytes() => Ok(()),
            Some(v) => Err(StoreError::Open {
                dir: dir.to_path_buf(),
                reason: format!(
                    "its layout is format {v:?}, this handoff reads format {FORMAT_VERSION}; \
                     use the handoff release that wrote it"
                ),
            }),
        }
    }

    /// Nets a group of batches (the last write of a key wins, as if they
    /// were applied one after another) and writes it with one fsync.
    ///
    /// Netting is not only a saving: fjall stamps every item of a batch
    /// with one seqno, and which of two writes of one key with the same
    /// seqno survives is not part of its documented contract (today the
    /// memtable keeps the later one), so no key reaches fjall twice.
    fn write(&self, group: Vec<WriteBatch>) -> Result<()> {
        let n = group.len() as u64;
        let created: u64 = group.iter().map(|b| b.new_customers).sum();
        let mut ops: BTreeMap<(Part, Vec<u8>), Option<Vec<u8>>> = BTreeMap::new();
        for b in group {
            for (shard, customer, record) in b.customers {
                ops.insert(
                    (Part::Customers, keys::customer(shard, &customer)),
                    Some(record),
                );
            }
            for (shard, customer, seq, record) in b.facts {
                ops.insert(
                    (Part::Facts, keys::fact(shard, &customer, seq)),
                    Some(record),
                );
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
            for (shard, customer, source, id, received) in b.idempotency {
                ops.insert(
                    (
                        Part::Idempotency,
                        keys::idem(shard, &customer, &source, &id),
                    ),
                    Some(received.to_be_bytes().to_vec()),
                );
                ops.insert(
                    (
                        Part::Idempotency,
                        keys::idem_by_time(received, shard, &customer, &source, &id),
                    ),
                    Some(Vec::new()),
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
        }

        // The writer says how many customers it creates: no read per write.

        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        for ((part, key), op) in ops {
            let keyspace = self.keyspace(part);
            match op {
                Some(value) => batch.insert(keyspace, key, value),
                None => batch.remove(keyspace, key),
            }
        }
        let count = self.customer_count.load(Ordering::Relaxed) + created;
        if created > 0 {
            batch.insert(&self.meta, META_CUSTOMERS, count.to_be_bytes());
        }
        batch
            .commit()
            .map_err(|e| StoreError::backend("committing a batch", e))?;
        self.customer_count.store(count, Ordering::Relaxed);
        self.batches.fetch_add(n, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets idempotency keys received before `older_than`, walking the
    /// by-time index. A key re-recorded later has a newer index entry; the
    /// old entry goes, the key stays.
    fn prune(&self, older_than: i64) -> Result<usize> {
        let err = |e| StoreError::backend("pruning idempotency keys", e);
        let lo = vec![keys::IDEM_BY_TIME];
        let hi = keys::idem_by_time_bound(older_than);
        let mut forgotten = 0;
        loop {
            let snapshot = self.db.snapshot();
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
            let mut scanned = 0;
            for guard in snapshot
                .range(&self.idempotency, lo.clone()..hi.clone())
                .take(PRUNE_CHUNK)
            {
                let key = guard.key().map_err(err)?;
                let (received, by_key) = keys::parse_idem_by_time(&key)?;
                if let Some(v) = snapshot.get(&self.idempotency, &by_key).map_err(err)?
                    && keys::decode_received(&v)? == received
                {
                    batch.remove(&self.idempotency, by_key);
                    forgotten += 1;
                }
                batch.remove(&self.idempotency, key);
                scanned += 1;
            }
            if scanned == 0 {
                return Ok(forgotten);
            }
            batch.commit().map_err(err)?;
            if scanned < PRUNE_CHUNK {
                return Ok(forgotten);
            }
        }
    }
}

impl Store for FjallStore {
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            batch,
            Box::new(move |result| {
                // The caller waits on `rx` below; it cannot be gone.
                let _ = tx.send(result);
            }),
        );
        // A dropped callback (committer panicked) means the outcome is unknown.
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    fn submit(&self, batch: WriteBatch, done: CommitCallback) {
        if batch.is_empty() {
            return done(Ok(()));
        }
        if let Some(Job::Commit(_, done)) = self.send(Job::Commit(batch, done)) {
            done(Err(StoreError::Closed));
        }
    }

    fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>> {
        self.shared
            .db
            .snapshot()
            .get(&self.shared.customers, keys::customer(shard, customer))
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| StoreError::backend("reading a customer", e))
    }

    fn facts(&self, shard: u32, customer: &str, from_seq: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let err = |e| StoreError::backend("reading facts", e);
        let prefix = keys::facts_prefix(shard, customer);
        let start = keys::fact(shard, customer, from_seq);
        let mut out = Vec::new();
        for guard in self.shared.db.snapshot().range(&self.shared.facts, start..) {
            let (key, value) = guard.into_inner().map_err(err)?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push((keys::fact_seq(&key, prefix.len())?, value.to_vec()));
        }
        Ok(out)
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
                let key = guard
                    .key()
                    .map_err(|e| StoreError::backend("reading facts", e))?;
                Ok(Some(keys::fact_seq(&key, prefix.len())?))
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

    fn seen(
        &self,
        shard: u32,
        customer: &str,
        source: &str,
        event_id: &str,
    ) -> Result<Option<i64>> {
        self.shared
            .db
            .snapshot()
            .get(
                &self.shared.idempotency,
                keys::idem(shard, customer, source, event_id),
            )
            .map_err(|e| StoreError::backend("reading an idempotency key", e))?
            .map(|v| keys::decode_received(&v))
            .transpose()
    }

    fn prune_idempotency(&self, older_than_us: i64) -> Result<usize> {
        let (tx, rx) = mpsc::sync_channel(1);
        let done = Box::new(move |result| {
            let _ = tx.send(result);
        });
        if self.send(Job::Prune(older_than_us, done)).is_some() {
            return Err(StoreError::Closed);
        }
        rx.recv().unwrap_or(Err(StoreError::Closed))
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

    fn customer_count(&self) -> Result<u64> {
        Ok(self.shared.customer_count.load(Ordering::Relaxed))
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
