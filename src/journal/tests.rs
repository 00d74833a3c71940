//! The journal's numbering and lanes, over stores that fail, block and
//! record on demand.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::*;
use crate::engine::model::Model;
use crate::state::testing::{Customer, MIN, T0, saas};
use crate::store::{MemoryStore, TimerKey, WriteBatch};

/// A memory store that fails commits while `fail` is set, holds a commit
/// while `hold` is set (until released), and records every batch.
#[derive(Default)]
pub(crate) struct TestStore {
    inner: MemoryStore,
    fail: AtomicBool,
    pub(crate) hold: Mutex<bool>,
    released: Condvar,
    batches: Mutex<Vec<WriteBatch>>,
    /// A shard whose writes are refused as fenced (its lease moved).
    fenced: Mutex<Option<u32>>,
    /// Commit lanes the store asks for (0: the default, one).
    lanes: usize,
    /// A shard whose batches wait in `commit` until it is set to `None`.
    hold_shard: Mutex<Option<u32>>,
    shard_released: Condvar,
    /// Syncs apart from its writes ([`Store::defers_sync`]), as fjall.
    defers: bool,
    /// Fails syncs while set.
    fail_sync: AtomicBool,
    /// Holds a sync while set (until released).
    hold_sync: Mutex<bool>,
    sync_released: Condvar,
    /// What reached the store, in order: `<how> <customers>` per batch
    /// (`write` unsynced, `commit` synced) and `sync` per sync.
    log: Mutex<Vec<String>>,
}

impl TestStore {
    /// Holds, fails or fences as set, then records and applies `batch`
    /// (`how` it came: `commit` or `write`).
    fn apply(&self, batch: WriteBatch, how: &str) -> Result<(), StoreError> {
        let mut held = self.hold.lock().expect("not poisoned");
        while *held {
            held = self.released.wait(held).expect("not poisoned");
        }
        drop(held);
        let mut held = self.hold_shard.lock().expect("not poisoned");
        while held.is_some_and(|s| batch.escalations.iter().any(|e| e.0 == s)) {
            held = self.shard_released.wait(held).expect("not poisoned");
        }
        drop(held);
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if let Some(shard) = *self.fenced.lock().expect("not poisoned") {
            let lost: Vec<(u32, u64)> = batch
                .fences
                .iter()
                .filter(|f| f.shard == shard)
                .map(|f| (f.shard, f.epoch))
                .collect();
            if !lost.is_empty() {
                return Err(StoreError::Fenced { shards: lost });
            }
        }
        let names: Vec<&str> = batch.customers.iter().map(|c| c.1.as_str()).collect();
        self.log
            .lock()
            .expect("not poisoned")
            .push(format!("{how} {}", names.join(",")));
        self.batches
            .lock()
            .expect("not poisoned")
            .push(batch.clone());
        self.inner.commit(batch)
    }

    fn release_sync(&self) {
        *self.hold_sync.lock().expect("not poisoned") = false;
        self.sync_released.notify_all();
    }

    fn logged(&self, line: &str) -> bool {
        self.log
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|l| l == line)
    }

    pub(crate) fn release(&self) {
        *self.hold.lock().expect("not poisoned") = false;
        self.released.notify_all();
    }
}

impl Store for TestStore {
    fn defers_sync(&self) -> bool {
        self.defers
    }

    fn write_unsynced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if !self.defers {
            return self.commit(batch);
        }
        self.apply(batch, "write")
    }

    fn sync(&self) -> Result<(), StoreError> {
        let mut held = self.hold_sync.lock().expect("not poisoned");
        while *held {
            held = self.sync_released.wait(held).expect("not poisoned");
        }
        drop(held);
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        self.log.lock().expect("not poisoned").push("sync".into());
        Ok(())
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.apply(batch, "commit")
    }
    fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.customer(shard, customer)
    }
    fn last_fact_seq(&self, shard: u32, customer: &str) -> Result<Option<u64>, StoreError> {
        self.inner.last_fact_seq(shard, customer)
    }
    fn timers(
        &self,
        shard: u32,
        from: Option<&TimerKey>,
        limit: usize,
    ) -> Result<Vec<TimerKey>, StoreError> {
        self.inner.timers(shard, from, limit)
    }
    fn escalations(
        &self,
        shard: u32,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.escalations(shard, after_seq, limit)
    }
    fn last_escalation_seq(&self, shard: u32) -> Result<Option<u64>, StoreError> {
        self.inner.last_escalation_seq(shard)
    }
    fn prune_escalations(
        &self,
        shard: u32,
        before_seq: u64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.inner.prune_escalations(shard, before_seq, limit)
    }
    fn prune_facts(&self, shard: u32, before_us: i64, limit: usize) -> Result<u64, StoreError> {
        self.inner.prune_facts(shard, before_us, limit)
    }
    fn open_escalations(&self, team: Option<&str>) -> Result<Vec<(Vec<u8>, bool)>, StoreError> {
        self.inner.open_escalations(team)
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta(key)
    }
    fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.inner.put_meta(key, value)
    }
    fn index_keys(
        &self,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.index_keys(low, high, reverse, limit)
    }
    fn customers_after(
        &self,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<(u32, String, Vec<u8>)>, StoreError> {
        self.inner.customers_after(after, limit)
    }
    fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn commit_lanes(&self) -> usize {
        self.lanes.max(1)
    }
}

/// A firing entry (one escalation) of a fresh customer `name` on shard 3.
fn firing(model: &Model, name: &str) -> Entry {
    let mut c = Customer::new(name);
    c.event(model, "crm", "deal_won", T0);
    c.event(model, "billing", "payment_succeeded", T0 + MIN);
    let e = c.fire(model);
    assert_eq!(e.escalations(), 1);
    e
}

fn start(store: Arc<TestStore>) -> LocalJournal {
    LocalJournal::start(store, 8).expect("starts")
}

#[tokio::test]
async fn sequences_follow_commit_order_and_continue_after_a_restart() {
    let model = saas();
    let store = Arc::new(TestStore::default());
    let journal = start(store.clone());
    assert_eq!(journal.durable_seq(3), 0);
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let appended = journal.append(firing(&model, name)).await.expect("durable");
        assert_eq!(appended.escalation_seqs, vec![i as u64 + 1]);
        assert_eq!(journal.durable_seq(3), i as u64 + 1);
    }
    assert_eq!(journal.durable_seq(2), 0, "sequences are per shard");
    drop(journal);
    // A new journal on the same store goes on from the log's last.
    let journal = start(store.clone());
    assert_eq!(journal.durable_seq(3), 3);
    let appended = journal.append(firing(&model, "d")).await.expect("durable");
    assert_eq!(appended.escalation_seqs, vec![4]);
    let logged: Vec<u64> = store
        .escalations(3, None, 10)
        .expect("reads")
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(logged, [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_failed_commit_gives_its_sequences_back() {
    let model = saas();
    let store = Arc::new(TestStore::default());
    let journal = start(store.clone());
    journal.append(firing(&model, "a")).await.expect("durable");
    let mut watch = journal.commits();
    let seen = *watch.borrow_and_update();

    store.fail.store(true, Ordering::SeqCst);
    let err = journal
        .append(firing(&model, "b"))
        .await
        .expect_err("fails");
    assert!(matches!(err, StoreError::Closed), "{err}");
    assert_eq!(
        journal.durable_seq(3),
        1,
        "nothing of the failed group is durable"
    );
    assert!(!watch.has_changed().expect("open"), "no commit announced");
    assert_eq!(*watch.borrow(), seen);

    store.fail.store(false, Ordering::SeqCst);
    let appended = journal.append(firing(&model, "c")).await.expect("durable");
    assert_eq!(
        appended.escalation_seqs,
        vec![2],
        "no gap where the failure was"
    );
    assert!(watch.has_changed().expect("open"));
    let logged: Vec<u64> = store
        .escalations(3, None, 10)
        .expect("reads")
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(logged, [1, 2]);
}

type Appending = tokio::task::JoinHandle<Result<Appended, StoreError>>;

/// Holds the committer in the commit (or write) of a first ingest entry,
/// then queues `n` ingest entries (`ingest-0`, ...) and a firing (`late`)
/// behind it, and returns once all of them wait; the caller releases.
async fn held_behind_a_first_commit(
    journal: &LocalJournal,
    store: &TestStore,
    model: &Model,
    n: usize,
) -> (Appending, Vec<Appending>, Appending) {
    *store.hold.lock().expect("not poisoned") = true;
    let mut c = Customer::new("first");
    let first = tokio::spawn(journal.append(c.event(model, "crm", "lead_created", T0)));
    // The committer has taken it and is held in its commit.
    while !journal.queue(3).lock().others.is_empty() {
        tokio::task::yield_now().await;
    }
    let mut ingest = Vec::new();
    for i in 0..n {
        let mut c = Customer::new(&format!("ingest-{i}"));
        ingest.push(tokio::spawn(journal.append(c.event(
            model,
            "crm",
            "lead_created",
            T0,
        ))));
    }
    let fire = tokio::spawn(journal.append(firing(model, "late")));
    // Wait until all of it is queued (the first commit is under way).
    let queued = || {
        let lanes = journal.queue(3).lock();
        lanes.firings.len() == 1 && lanes.others.len() == n
    };
    while !queued() {
        tokio::task::yield_now().await;
    }
    (first, ingest, fire)
}

#[tokio::test]
async fn a_waiting_firing_is_committed_before_waiting_ingest() {
    let model = saas();
    let store = Arc::new(TestStore::default());
    let journal = start(store.clone());
    let (first, ingest, fire) = held_behind_a_first_commit(&journal, &store, &model, 50).await;
    store.release();
    first.await.expect("joins").expect("durable");
    fire.await.expect("joins").expect("durable");
    for i in ingest {
        i.await.expect("joins").expect("durable");
    }
    let batches = store.batches.lock().expect("not poisoned");
    let writers =
        |b: &WriteBatch| -> Vec<String> { b.customers.iter().map(|c| c.1.clone()).collect() };
    assert_eq!(writers(&batches[0]), ["first"], "the held commit");
    assert_eq!(
        writers(&batches[1]),
        ["late"],
        "the firing alone, ahead of the queued ingest"
    );
    assert_eq!(
        batches[2].customers.len(),
        50,
        "then the ingest, as one group"
    );
}

#[tokio::test]
async fn a_fenced_shard_fails_alone_and_a_resumed_shard_numbers_on() {
    let model = saas();
    let store = Arc::new(TestStore::default());
    let journal = start(store.clone());
    // Held, so that the three entries meet in the committer's groups.
    *store.hold.lock().expect("not poisoned") = true;
    let a = journal.append(firing(&model, "a"));
    let b = journal.append(firing(&model, "b"));
    let mut moved = firing(&model, "c");
    moved.shard = 5;
    moved.epoch = 7;
    let c = journal.append(moved);
    *store.fenced.lock().expect("not poisoned") = Some(5);
    store.release();
    assert_eq!(a.await.expect("durable").escalation_seqs, vec![1]);
    assert_eq!(
        b.await
            .expect("committed without the fenced entry")
            .escalation_seqs,
        vec![2]
    );
    let err = c.await.expect_err("its shard moved");
    assert!(
        matches!(&err, StoreError::Fenced { shards } if shards == &vec![(5, 7)]),
        "{err}"
    );
    assert_eq!(journal.durable_seq(5), 0, "no sequence of shard 5 is used");

    // The shard comes back (to this node) after another wrote 40 entries.
    *store.fenced.lock().expect("not poisoned") = None;
    journal.resume_shard(5, 40);
    assert_eq!(journal.durable_seq(5), 40);
    let mut back = firing(&model, "d");
    back.shard = 5;
    back.epoch = 8;
    assert_eq!(
        journal.append(back).await.expect("durable").escalation_seqs,
        vec![41]
    );

    // Another node's commits are announced to this node's readers.
    let mut watch = journal.commits();
    watch.borrow_and_update();
    journal.observe(3, 10);
    assert_eq!(journal.durable_seq(3), 10);
    assert!(watch.has_changed().expect("open"));
    watch.borrow_and_update();
    journal.observe(3, 9);
    assert_eq!(journal.durable_seq(3), 10, "a watermark never goes back");
    assert!(!watch.has_changed().expect("open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_commit_their_shards_side_by_side_each_in_order() {
    let model = saas();
    let store = Arc::new(TestStore {
        lanes: 2,
        ..TestStore::default()
    });
    let journal = Arc::new(start(store.clone()));
    let on = |shard: u32, name: &str| {
        let mut e = firing(&model, name);
        e.shard = shard;
        e
    };
    // Shard 3's lane is stuck in a commit; shard 2's lane goes on.
    *store.hold_shard.lock().expect("not poisoned") = Some(3);
    let stuck = {
        let (journal, e) = (journal.clone(), on(3, "a"));
        tokio::spawn(async move { journal.append(e).await })
    };
    for (i, name) in ["b", "c"].into_iter().enumerate() {
        // With one lane this would wait for shard 3's commit for good.
        let appended = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            journal.append(on(2, name)),
        )
        .await;
        let Ok(appended) = appended else {
            // Let the held commit go, so the journal can be dropped.
            *store.hold_shard.lock().expect("not poisoned") = None;
            store.shard_released.notify_all();
            panic!("held up by the other lane's commit");
        };
        let appended = appended.expect("durable");
        assert_eq!(appended.escalation_seqs, vec![i as u64 + 1]);
    }
    assert_eq!(journal.durable_seq(2), 2);
    assert_eq!(journal.durable_seq(3), 0, "still in flight");
    assert!(!stuck.is_finished());
    // Shard 3's next entry waits behind its first, in order.
    let next = {
        let (journal, e) = (journal.clone(), on(3, "d"));
        tokio::spawn(async move { journal.append(e).await })
    };
    *store.hold_shard.lock().expect("not poisoned") = None;
    store.shard_released.notify_all();
    let first = stuck.await.expect("joins").expect("durable");
    let second = next.await.expect("joins").expect("durable");
    assert_eq!(
        (first.escalation_seqs, second.escalation_seqs),
        (vec![1], vec![2])
    );
    assert_eq!((journal.durable_seq(2), journal.durable_seq(3)), (2, 2));
    // A restart numbers every shard on from the log, whatever its lane.
    drop(journal);
    let journal = start(store.clone());
    let appended = journal.append(on(3, "e")).await.expect("durable");
    assert_eq!(appended.escalation_seqs, vec![3]);
    let appended = journal.append(on(2, "f")).await.expect("durable");
    assert_eq!(appended.escalation_seqs, vec![3]);
}

#[tokio::test]
async fn the_answer_carries_the_customer_s_index_keys_after_the_entry() {
    // The actor keeps them as its next entry's keys before: they must be
    // exactly what the state layer would work out from the state after.
    let model = saas();
    let store = Arc::new(TestStore::default());
    let journal = start(store.clone());
    let mut c = Customer::new("k");
    for entry in [
        c.event(&model, "crm", "deal_won", T0),
        c.event(&model, "billing", "payment_succeeded", T0 + MIN),
    ] {
        let appended = journal.append(entry).await.expect("durable");
        let memberships = crate::state::index::memberships(&model, &appended.state);
        assert!(!memberships.is_empty());
        assert_eq!(appended.index, Some(memberships));
    }
    // A firing with no facts changes no keys and says so (`None`): the
    // actor keeps the keys it has.
    let mut stale = c.fire(&model);
    stale.facts.clear();
    let appended = journal.append(stale).await.expect("durable");
    assert_eq!(appended.index, None);
}

/// A store that syncs apart from its writes gets a group in chunks of at
/// most [`CHUNK`] and one sync; a firing that arrives meanwhile is
/// written after the chunk under way and synced at once, with the chunks
/// before it; the rest of the group follows. (The syncs are held here
/// until every chunk is written: they run beside the writes, so where
/// they would land among the writes depends on the threads.)
#[tokio::test]
async fn chunks_are_synced_once_and_a_firing_is_synced_as_soon_as_it_is_written() {
    let model = saas();
    let store = Arc::new(TestStore {
        defers: true,
        ..TestStore::default()
    });
    let journal = start(store.clone());
    let n = CHUNK * 2 + 5;
    assert!(n + 2 < MAX_GROUP, "one sync would do, but for the firing");
    let (first, ingest, fire) = held_behind_a_first_commit(&journal, &store, &model, n).await;
    *store.hold_sync.lock().expect("not poisoned") = true;
    store.release();
    let chunk = |i: usize| {
        let names: Vec<String> = (i * CHUNK..((i + 1) * CHUNK).min(n))
            .map(|i| format!("ingest-{i}"))
            .collect();
        format!("write {}", names.join(","))
    };
    while !store.logged(&chunk(2)) {
        tokio::task::yield_now().await;
    }
    assert!(!fire.is_finished(), "answered before its sync returned");
    store.release_sync();
    first.await.expect("joins").expect("durable");
    let fired = fire.await.expect("joins").expect("durable");
    assert_eq!(fired.escalation_seqs, vec![1]);
    for i in ingest {
        i.await.expect("joins").expect("durable");
    }
    let log = store.log.lock().expect("not poisoned").clone();
    assert_eq!(
        log,
        [
            "write first".to_owned(),
            "write late".to_owned(),
            chunk(0),
            chunk(1),
            chunk(2),
            "sync".to_owned(),
            "sync".to_owned(),
        ],
        "the held chunk, the firing, then the queued ingest in chunks; two syncs"
    );
    assert_eq!(
        journal.stats(),
        CommitStats {
            entries: n as u64 + 2,
            commits: 2
        }
    );
}

/// The sync runs beside the writes: while a sync is under way (held
/// here), the committer writes what arrives next; the entries of the
/// held sync are answered only once it returns, and the next sync
/// follows it.
#[tokio::test]
async fn the_next_chunk_is_written_while_a_sync_is_under_way() {
    let model = saas();
    let store = Arc::new(TestStore {
        defers: true,
        ..TestStore::default()
    });
    let journal = start(store.clone());
    journal.append(firing(&model, "a")).await.expect("durable");

    *store.hold_sync.lock().expect("not poisoned") = true;
    let held = tokio::spawn(journal.append(firing(&model, "b")));
    while !store.logged("write b") {
        tokio::task::yield_now().await;
    }
    let mut c = Customer::new("c");
    let next = tokio::spawn(journal.append(c.event(&model, "crm", "lead_created", T0)));
    // Written while the sync of "b" is held.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while !store.logged("write c") {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the next chunk is written while a sync is under way");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(!held.is_finished(), "answered before its sync returned");
    assert!(!next.is_finished(), "answered before any sync of it");
    assert_eq!(
        journal.durable_seq(3),
        1,
        "nothing of the held sync is durable"
    );

    store.release_sync();
    let held = held.await.expect("joins").expect("durable");
    assert_eq!(held.escalation_seqs, vec![2]);
    next.await.expect("joins").expect("durable");
    assert_eq!(journal.durable_seq(3), 2);
    let log = store.log.lock().expect("not poisoned").clone();
    assert_eq!(
        log,
        ["write a", "sync", "write b", "write c", "sync", "sync"],
        "one sync for each: the second after the first"
    );
}

/// A sync that fails while the next chunk is written fails that chunk
/// too (the store refuses writes after a failed sync), and every
/// sequence handed out since the failed sync's first chunk is handed
/// out again.
#[tokio::test]
async fn a_sync_that_fails_under_the_next_chunk_fails_it_too() {
    let model = saas();
    let store = Arc::new(TestStore {
        defers: true,
        ..TestStore::default()
    });
    let journal = start(store.clone());
    journal.append(firing(&model, "a")).await.expect("durable");

    *store.hold_sync.lock().expect("not poisoned") = true;
    store.fail_sync.store(true, Ordering::SeqCst);
    let held = tokio::spawn(journal.append(firing(&model, "b")));
    while !store.logged("write b") {
        tokio::task::yield_now().await;
    }
    let next = tokio::spawn(journal.append(firing(&model, "c")));
    while !store.logged("write c") {
        tokio::task::yield_now().await;
    }
    store.release_sync();
    let err = held.await.expect("joins").expect_err("its sync failed");
    assert!(matches!(err, StoreError::Closed), "{err}");
    let err = next
        .await
        .expect("joins")
        .expect_err("written after a failed sync");
    assert!(matches!(err, StoreError::Closed), "{err}");
    assert_eq!(journal.durable_seq(3), 1);

    store.fail_sync.store(false, Ordering::SeqCst);
    let appended = journal.append(firing(&model, "d")).await.expect("durable");
    assert_eq!(
        appended.escalation_seqs,
        vec![2],
        "the sequences of both failed chunks are handed out again"
    );
}

/// A failed sync fails every entry written since the last sync, gives
/// their sequences back, and announces nothing.
#[tokio::test]
async fn a_failed_sync_gives_the_sequences_of_every_unsynced_chunk_back() {
    let model = saas();
    let store = Arc::new(TestStore {
        defers: true,
        ..TestStore::default()
    });
    let journal = start(store.clone());
    journal.append(firing(&model, "a")).await.expect("durable");
    let mut watch = journal.commits();
    watch.borrow_and_update();

    store.fail_sync.store(true, Ordering::SeqCst);
    let err = journal
        .append(firing(&model, "b"))
        .await
        .expect_err("not durable");
    assert!(matches!(err, StoreError::Closed), "{err}");
    assert_eq!(journal.durable_seq(3), 1, "nothing of it is durable");
    assert!(!watch.has_changed().expect("open"), "no commit announced");

    store.fail_sync.store(false, Ordering::SeqCst);
    let appended = journal.append(firing(&model, "c")).await.expect("durable");
    assert_eq!(
        appended.escalation_seqs,
        vec![2],
        "the failed sync's sequence is handed out again"
    );
    assert_eq!(journal.durable_seq(3), 2);
    assert!(watch.has_changed().expect("open"));
}
