//! Durable storage behind a narrow trait.
//!
//! What the engine decides becomes durable here as one atomic
//! [`WriteBatch`] per journal group: customer records, their facts (each
//! customer's history, each fact with when it was decided, by which
//! [`Store::prune_facts`] bounds it), timer keys set and cleared,
//! escalation log rows and the open-escalation index. The rows are laid out by the state layer
//! (`state::apply_committed`); values are opaque bytes to the store, and
//! [`codec`] turns engine types into the prost records of
//! `proto/handoff/v1/store.proto` and back.
//!
//! Three implementations pass the same contract tests (`contract_tests`
//! below): [`FjallStore`] (a single node's, embedded, on disk),
//! [`PgStore`] (a cluster's: PostgreSQL, shared by every node, with shard
//! leases and fenced commits) and [`MemoryStore`] (for unit tests).

pub mod codec;
mod fjall;
mod keys;
mod memory;
mod pb;
pub mod postgres;

#[cfg(test)]
mod contract_tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use fjall::FjallStore;
pub use memory::MemoryStore;
pub use postgres::{PgOptions, PgStore};

/// What can go wrong below the engine. Every message says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A stored value (or key) does not decode: the data directory is
    /// damaged, or a newer handoff wrote it.
    #[error(
        "stored {what} is corrupt: {reason}; the data directory is damaged or was written \
         by a newer handoff: upgrade handoff, or restore the directory from a replica or backup"
    )]
    Corrupt { what: String, reason: String },

    /// The data directory could not be opened.
    #[error("cannot open the data directory {dir}: {reason}")]
    Open { dir: PathBuf, reason: String },

    /// The storage engine failed; durability of the operation is unknown.
    #[error(
        "storage failed while {op}: {source}; check free disk space and the data directory's \
         permissions, then restart the node (it recovers from its journal)"
    )]
    Backend {
        op: &'static str,
        #[source]
        source: Arc<::fjall::Error>,
    },

    /// The store was shut down (or its committer stopped) while a write
    /// was pending; the write may or may not be durable.
    #[error("the store is shut down; restart the node and retry")]
    Closed,

    /// The cluster database failed or cannot be reached; nothing of the
    /// operation was written.
    #[error(
        "the database failed to {op}: {reason}; calls answer UNAVAILABLE until it is back \
         (retry: same event id)"
    )]
    Database { op: &'static str, reason: String },

    /// The database's schema or shard layout is not this node's, or the
    /// node cannot reach it at start (the message says what to check).
    #[error("{0}")]
    Schema(String),

    /// These `(shard, epoch)` leases are no longer this node's (another
    /// node took the shard over, or the lease was given back): the writes
    /// were refused and nothing of the batch was written.
    #[error(
        "shards {shards:?} (shard, epoch) are no longer leased to this node; their writes were \
         refused: retry: same event id (the shard's new owner answers)"
    )]
    Fenced { shards: Vec<(u32, u64)> },

    /// The connection was lost while the database committed: the batch
    /// may or may not be durable.
    #[error(
        "the database connection was lost during a commit, so its outcome is unknown ({reason}): \
         retry: same event id (a retry never applies an event twice)"
    )]
    Unknown { reason: String },
}

impl StoreError {
    pub(crate) fn backend(op: &'static str, e: ::fjall::Error) -> StoreError {
        StoreError::Backend {
            op,
            source: Arc::new(e),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// The prefix of a transient counter's name: see [`WriteBatch::counters`].
pub const TRANSIENT_COUNTER: &str = "~";

/// One stored fact: `(shard, customer, seq, FactRecord bytes)`.
pub type ScannedFact = (u32, String, u64, Vec<u8>);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A durable timer: the next tier of one SLA instance of one customer.
///
/// Field order is firing order: the derived `Ord` and the byte encoding
/// (big-endian, sign bit of the deadline flipped, customer escaped and
/// terminated; see `keys`) sort the same way, so a range scan of one shard
/// yields timers earliest first, ties by customer, SLA, tier, repeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey {
    pub shard: u32,
    /// When it is due, in microseconds since the Unix epoch (may be negative).
    pub deadline_us: i64,
    pub customer: String,
    pub sla: u16,
    /// The tier; `u16::MAX` for the silent breach mark.
    pub tier: u16,
    pub repeat: u32,
    pub instance: u32,
}

impl TimerKey {
    /// The smallest key of `shard`: every timer of the shard sorts after it.
    pub fn first_of(shard: u32) -> TimerKey {
        TimerKey {
            shard,
            deadline_us: i64::MIN,
            customer: String::new(),
            sla: 0,
            tier: 0,
            repeat: 0,
            instance: 0,
        }
    }
}

/// The lease a writer decided under: a store that fences (PostgreSQL)
/// commits a batch only if each of its shards is still leased to this node
/// under this epoch. The embedded store has no leases and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fence {
    pub shard: u32,
    pub epoch: u64,
}

/// One atomic, durable unit: everything one journal group changes.
///
/// Applied in this order, so that within one batch a later write of the
/// same key wins: customers, facts, `timers_cleared`, `timers_set`,
/// escalations, `open_cleared`, `open_set`, `index_cleared`, `index_set`.
/// A timer both cleared and set in one batch therefore stays set: a stray
/// timer is harmless (firing it decides nothing) where a lost one would
/// lose an escalation. The state layer nets index keys so that no key is
/// both cleared and set by one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// `(shard, customer, CustomerRecord bytes)`: replaces the record.
    pub customers: Vec<(u32, String, Vec<u8>)>,
    /// `(shard, customer, fact seq, decided at (microseconds since the
    /// Unix epoch), FactRecord bytes)`: the customer's history, one key per
    /// fact. The decision time is what [`Store::prune_facts`] goes by.
    pub facts: Vec<(u32, String, u64, i64, Vec<u8>)>,
    pub timers_set: Vec<TimerKey>,
    pub timers_cleared: Vec<TimerKey>,
    /// `(shard, seq per shard, EscalationRecord bytes)`.
    pub escalations: Vec<(u32, u64, Vec<u8>)>,
    /// Open escalations (fired, not yet resolved), indexed by team:
    /// written when a tier fires or is acknowledged.
    pub open_set: Vec<OpenRow>,
    /// `(team, escalation id)`: removed when the escalation is resolved.
    pub open_cleared: Vec<(String, String)>,
    /// `(shard, name, delta)`: added to the named counter with the batch,
    /// (a counter whose name starts with [`TRANSIENT_COUNTER`] is removed
    /// when it comes back to zero, where a store can: a gauge of passing
    /// things, such as open escalations by time slot, must not pile up;
    /// others stay, at zero),
    /// so a count kept this way is exactly what committed batches say,
    /// across crashes (see [`Store::counters`]). The shard is whose entry
    /// changed it: a store may keep a counter per shard (and sum them on
    /// read), so that writers of different shards never wait on one row.
    pub counters: Vec<(u32, String, i64)>,
    /// The leases the entries were decided under (see [`Fence`]).
    pub fences: Vec<Fence>,
    /// Secondary index keys of customers (`state::index`: opaque ordered
    /// bytes, global across shards, empty values) written with the facts
    /// that change them, so a query is exact at the moment it reads.
    pub index_set: Vec<Vec<u8>>,
    /// Index keys removed (the customer left that state or status).
    pub index_cleared: Vec<Vec<u8>>,
}

/// One open escalation in the by-team index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRow {
    pub team: String,
    pub escalation_id: String,
    /// `EscalationRecord` bytes.
    pub entry: Vec<u8>,
    pub acknowledged: bool,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.facts.is_empty()
            && self.timers_set.is_empty()
            && self.timers_cleared.is_empty()
            && self.escalations.is_empty()
            && self.open_set.is_empty()
            && self.open_cleared.is_empty()
            && self.counters.is_empty()
            && self.index_set.is_empty()
            && self.index_cleared.is_empty()
    }

    /// Appends `other`'s writes after this batch's (later writes win).
    pub fn extend(&mut self, other: WriteBatch) {
        self.customers.extend(other.customers);
        self.facts.extend(other.facts);
        self.timers_set.extend(other.timers_set);
        self.timers_cleared.extend(other.timers_cleared);
        self.escalations.extend(other.escalations);
        self.open_set.extend(other.open_set);
        self.open_cleared.extend(other.open_cleared);
        self.counters.extend(other.counters);
        self.fences.extend(other.fences);
        self.index_set.extend(other.index_set);
        self.index_cleared.extend(other.index_cleared);
    }
}

/// Where customers, their histories, timers and escalations are kept.
///
/// # Contract
///
/// - **Atomic.** [`commit`](Store::commit) applies all of a batch or none
///   of it, across every kind of record; a reader never sees part of a
///   batch.
/// - **Durable.** When `commit` returns `Ok`, the batch is on stable
///   storage (fsync'd) and survives a crash or power loss. On `Err` the
///   batch may or may not be durable; the caller treats the command as
///   failed and lets its client retry (idempotency makes that harmless).
/// - **Ordered.** Batches become visible in the order they are committed;
///   within one batch, in the order documented on [`WriteBatch`].
/// - **Concurrent.** Any number of threads may commit at once, each batch
///   atomic. (The node commits from one thread, the journal's, which
///   groups commands; the store adds no grouping of its own.)
/// - **Shards are separate keyspaces.** Every key carries its shard; reads
///   of one shard never return another's records.
/// - **Numbers.** Fact and escalation sequence numbers stay below 2^63
///   (PostgreSQL's `int8`; a log never comes near it).
/// - **Values are opaque.** The store never decodes customers, facts or
///   escalations; only keys it writes itself (timers) are parsed, and a key
///   that does not parse is [`StoreError::Corrupt`].
pub trait Store: Send + Sync + 'static {
    /// Applies `batch` atomically and durably; returns once it is durable.
    /// Blocks the calling thread (an fsync).
    fn commit(&self, batch: WriteBatch) -> Result<()>;

    /// Whether a commit may be split into [`write_unsynced`] and
    /// [`sync`]: true for a store whose commit is a local write and an
    /// fsync (fjall), so that the journal writes a group in chunks and
    /// syncs it once; false (the default) where each commit is one
    /// transaction.
    ///
    /// [`write_unsynced`]: Store::write_unsynced
    /// [`sync`]: Store::sync
    fn defers_sync(&self) -> bool {
        false
    }

    /// Applies `batch` atomically, without waiting for it to be durable:
    /// it is durable once a later [`sync`](Store::sync) returns `Ok`.
    /// Readers may see it before then; a crash before then keeps it whole
    /// or loses it whole (with every batch written after it). Nothing
    /// written this way may be acknowledged before the sync. The default
    /// commits it (durable at once).
    fn write_unsynced(&self, batch: WriteBatch) -> Result<()> {
        self.commit(batch)
    }

    /// Makes every batch written so far durable. On `Err` they may or may
    /// not be, and the store refuses further writes (as a failed fsync
    /// leaves no way to know what reached the disk).
    ///
    /// May run on another thread while [`write_unsynced`] writes more:
    /// it makes durable every batch whose write returned before the sync
    /// began (and maybe some written during it), and does not hold
    /// those writes back for the time of the fsync (the journal's sync
    /// runs beside its writes).
    ///
    /// [`write_unsynced`]: Store::write_unsynced
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// The `CustomerRecord` bytes of one customer.
    fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>>;

    /// Several customers' records, `(shard, customer)` each, answered in
    /// the order asked, each as [`customer`](Store::customer) would.
    fn customers(&self, keys: &[(u32, String)]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|(s, c)| self.customer(*s, c)).collect()
    }

    /// How many group commits the journal may have in flight at once
    /// (each over its own shards). 1 for a store whose commit is a local
    /// fsync; more where a commit is a round trip to a server that runs
    /// transactions side by side.
    fn commit_lanes(&self) -> usize {
        1
    }

    /// Up to `limit` customer records of `shard`, `(customer, record)` in
    /// customer id order, strictly after `after` when given (resume a scan
    /// from the last id seen). A scan for commands that visit every
    /// customer of a shard (`customers migrate`), a page at a time; it is
    /// [`customers_after`](Store::customers_after) kept to one shard
    /// (customer ids are never empty, so `(shard, "")` is before them all).
    fn customer_page(
        &self,
        shard: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = self.customers_after(Some((shard, after.unwrap_or(""))), limit)?;
        Ok(rows
            .into_iter()
            .take_while(|(s, _, _)| *s == shard)
            .map(|(_, customer, record)| (customer, record))
            .collect())
    }

    /// Whether each read is a round trip to a server, so that reads are
    /// worth batching with [`customers`](Store::customers) (the node then
    /// loads customers through `shard::loader`).
    fn batches_reads(&self) -> bool {
        false
    }

    /// The highest fact seq of the customer, if it has any facts.
    fn last_fact_seq(&self, shard: u32, customer: &str) -> Result<Option<u64>>;

    /// Up to `limit` timers of `shard`, earliest first, strictly after
    /// `from` when given (resume a scan from the last key seen). A `from`
    /// of a lower shard starts at the shard's beginning; of a higher shard,
    /// finds nothing.
    fn timers(&self, shard: u32, from: Option<&TimerKey>, limit: usize) -> Result<Vec<TimerKey>>;

    /// Up to `limit` escalations of `shard` with seq strictly greater than
    /// `after_seq` (from the oldest when `None`), in seq order.
    fn escalations(
        &self,
        shard: u32,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>>;

    /// The highest escalation seq of `shard`, if it has any.
    fn last_escalation_seq(&self, shard: u32) -> Result<Option<u64>>;

    /// Removes up to `limit` of the oldest escalations of `shard` with seq
    /// strictly below `before_seq`, atomically and durably; returns how
    /// many it removed.
    ///
    /// The shard's newest escalation is never removed, whatever
    /// `before_seq` says: the journal continues numbering from
    /// [`last_escalation_seq`](Store::last_escalation_seq) when it starts,
    /// so a log pruned empty would number from 1 again and every cursor
    /// past that point would be wrong. Only a prefix of the log is ever
    /// removed, so what remains is the contiguous run from the oldest
    /// retained seq to the newest, and a reader that finds its next seq
    /// missing knows exactly how many entries were pruned. The store does
    /// not decide what is old (values are opaque): the caller passes the
    /// first seq to keep.
    fn prune_escalations(&self, shard: u32, before_seq: u64, limit: usize) -> Result<u64>;

    /// Removes up to `limit` facts of `shard` decided before `before_us`
    /// (microseconds since the Unix epoch, by the decision time their
    /// [`WriteBatch`] carried), oldest first, atomically and durably;
    /// returns how many it removed. Facts decided at the same instant go
    /// in any order; other shards and facts decided at or after
    /// `before_us` are untouched.
    ///
    /// A customer's history is written, never read back, by the node: the
    /// customer record says the seq of its last fact, so a customer goes on
    /// numbering where it was even when all of its facts are gone, and
    /// [`last_fact_seq`](Store::last_fact_seq) answers from the facts that
    /// remain (a customer with a newer fact still has its highest seq). The
    /// store does not decide what is old: the caller passes the horizon.
    /// Facts written before a store kept decision times are the store's
    /// to document: [`FjallStore`] never prunes them, [`PgStore`] reads
    /// them as decided at the Unix epoch (so they go first).
    fn prune_facts(&self, shard: u32, before_us: i64, limit: usize) -> Result<u64>;

    /// Up to `limit` facts of every shard, as `(shard, customer, seq,
    /// FactRecord bytes)`, in `(shard, customer, seq)` order (a customer's
    /// history is contiguous, oldest first), strictly after `after` when
    /// given (resume a scan from the last fact seen).
    ///
    /// The node never reads facts back; this is for reading whole
    /// histories offline or on an operator's request (`handoff history
    /// export`). Facts pruned by the fact retention are gone. A store
    /// that cannot scan them answers [`StoreError::Schema`] saying so (the
    /// default; every store of this crate scans).
    fn scan_facts(
        &self,
        after: Option<(u32, &str, u64)>,
        limit: usize,
    ) -> Result<Vec<ScannedFact>> {
        let _ = (after, limit);
        Err(StoreError::Schema(
            "this store cannot list customers' histories: export them from a node whose store \
             can, or from a stopped node's data directory (`handoff history export --data DIR`)"
                .into(),
        ))
    }

    /// The open escalations of `team` (of every team when `None`), as
    /// `(EscalationRecord bytes, acknowledged)`, ordered by team then id.
    fn open_escalations(&self, team: Option<&str>) -> Result<Vec<(Vec<u8>, bool)>>;

    /// A value the node keeps about the data itself (the model catalog:
    /// which names stored ids stand for; the published model versions and
    /// the rollout table, see `crate::versions`), by key; `None` if never
    /// written.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes a [`meta`](Store::meta) value; returns once it is durable.
    /// Not ordered with [`commit`](Store::commit)ted batches: write it
    /// before anything that depends on it.
    fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<()>;

    /// Every counter committed batches added to
    /// ([`WriteBatch::counters`]), by name; `None` for a store that does
    /// not keep counters (it drops their deltas; every store of this crate
    /// keeps them).
    fn counters(&self) -> Result<Option<std::collections::BTreeMap<String, i64>>> {
        Ok(None)
    }

    /// Adds each `(shard, name, delta)` to its counter, all at once and
    /// durably, outside any shard's lease: for one-time maintenance at
    /// start (the report counters' recount from the records), never for
    /// what entries decide (those go with their facts, fenced). The
    /// default commits a batch of only these counters.
    fn add_counters(&self, deltas: Vec<(u32, String, i64)>) -> Result<()> {
        self.commit(WriteBatch {
            counters: deltas,
            ..WriteBatch::default()
        })
    }
    /// Up to `limit` secondary index keys `k` with `low <= k < high` (byte
    /// order), ascending, or descending when `reverse`: a page of one index
    /// family, resumed by narrowing the range past the last key seen.
    /// Index keys are global (no shard of their own) and opaque to the
    /// store; only `state::index` lays them out.
    fn index_keys(
        &self,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>>;

    /// Up to `limit` customer records, `(shard, customer, CustomerRecord
    /// bytes)`, ordered by shard then customer id (bytes), strictly after
    /// `after` when given: a full pass over every customer, resumed from
    /// the last one seen (for one-time maintenance such as the index
    /// backfill; never on a request path).
    fn customers_after(
        &self,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<(u32, String, Vec<u8>)>>;

    /// Bytes on disk (0 for a store that keeps nothing on disk).
    fn disk_bytes(&self) -> Result<u64>;

    /// Makes everything written so far durable (for shutdown; every
    /// committed batch already is) and, for a store with a write-ahead
    /// log, folds the log into its tables so the next open replays nothing.
    fn flush(&self) -> Result<()>;
}
