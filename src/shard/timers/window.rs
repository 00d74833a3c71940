//! The timer service's in-memory window: the earliest timers of one shard.
//!
//! The store's timer index is the truth; the window holds a bounded prefix
//! of it, so memory does not grow with the number of pending timers. It
//! knows how far its prefix reaches (its *coverage*): a timer armed beyond
//! the coverage stays only in the store until a later refill scan reaches
//! it, and when arming pushes the window past twice its capacity the
//! latest keys are dropped and the coverage moves back to the last key
//! kept. When the window runs empty, [`TimerWindow::needs_refill`] says
//! where the next scan starts, and [`TimerWindow::refilled`] takes its keys.
//!
//! The window is pure: no store, no clock, no channels. [`super::TimerService`]
//! does the I/O around it; tests and `benches/timers.rs` drive it directly.

use std::collections::BTreeSet;

use super::TimerUpdate;
use crate::store::TimerKey;

/// Which stored timers the window holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Coverage {
    /// Every stored timer is in the window (or in flight).
    All,
    /// Every stored timer up to and including this key is in the window
    /// (or in flight); later ones are only in the store.
    UpTo(TimerKey),
}

/// Where the next refill scan of the store starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefillFrom {
    /// No scan has been taken in yet: from the shard's first timer.
    Start,
    /// Strictly after this key, the last one the window covers.
    After(TimerKey),
}

impl RefillFrom {
    /// The `from` argument of [`crate::store::Store::timers`].
    pub fn key(&self) -> Option<&TimerKey> {
        match self {
            RefillFrom::Start => None,
            RefillFrom::After(k) => Some(k),
        }
    }
}

/// The earliest timers of one shard, in firing order, bounded to twice
/// `capacity` keys.
#[derive(Debug, Clone)]
pub struct TimerWindow {
    keys: BTreeSet<TimerKey>,
    coverage: Coverage,
    /// How many keys a refill loads; the window holds at most twice this.
    capacity: usize,
    /// Whether a refill scan has been taken in; until then the next scan
    /// starts at the shard's beginning.
    scanned: bool,
}

impl TimerWindow {
    /// An empty window of `shard` that covers nothing yet: the first
    /// refill scans from the shard's first timer. A `capacity` of zero is
    /// taken as one.
    pub fn new(shard: u32, capacity: usize) -> TimerWindow {
        TimerWindow {
            keys: BTreeSet::new(),
            coverage: Coverage::UpTo(TimerKey::first_of(shard)),
            capacity: capacity.max(1),
            scanned: false,
        }
    }

    /// How many keys a refill scan should load.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Where to scan the store from, when the window is empty and the
    /// store may hold timers it does not; `None` when no scan is needed.
    pub fn needs_refill(&self) -> Option<RefillFrom> {
        if !self.keys.is_empty() {
            return None;
        }
        match &self.coverage {
            Coverage::All => None,
            Coverage::UpTo(_) if !self.scanned => Some(RefillFrom::Start),
            Coverage::UpTo(k) => Some(RefillFrom::After(k.clone())),
        }
    }

    /// Takes in the result of the scan [`TimerWindow::needs_refill`] asked
    /// for (at most [`TimerWindow::capacity`] keys, in order). Fewer keys
    /// than the capacity means the scan reached the end of the shard, so
    /// the window now covers every stored timer.
    pub fn refilled(&mut self, keys: Vec<TimerKey>) {
        self.scanned = true;
        self.coverage = match keys.last() {
            Some(last) if keys.len() >= self.capacity => Coverage::UpTo(last.clone()),
            _ => Coverage::All,
        };
        self.keys.extend(keys);
    }

    /// Applies what a durable commit armed and cleared: cleared keys leave
    /// the window, armed keys within the coverage join it, and if it then
    /// holds more than twice the capacity the latest keys are dropped (they
    /// are still in the store) and the coverage ends at the last key kept.
    pub fn apply(&mut self, update: TimerUpdate) {
        for k in &update.cleared {
            self.keys.remove(k);
        }
        for k in update.armed {
            let covered = match &self.coverage {
                Coverage::All => true,
                Coverage::UpTo(last) => k <= *last,
            };
            if covered {
                self.keys.insert(k);
            }
        }
        while self.keys.len() > 2 * self.capacity {
            self.keys.pop_last();
            let last = self
                .keys
                .last()
                .cloned()
                .expect("the window held more than 2 * capacity >= 2 keys before the pop");
            self.coverage = Coverage::UpTo(last);
        }
    }

    /// Removes and returns the earliest key if it is due at `now_us`
    /// (its deadline is at or before it).
    pub fn pop_due(&mut self, now_us: i64) -> Option<TimerKey> {
        match self.keys.first() {
            Some(first) if first.deadline_us <= now_us => self.keys.pop_first(),
            _ => None,
        }
    }

    /// The deadline of the earliest key, in microseconds since the epoch.
    pub fn next_deadline(&self) -> Option<i64> {
        self.keys.first().map(|k| k.deadline_us)
    }

    /// The keys the window holds, earliest first.
    pub fn keys(&self) -> impl Iterator<Item = &TimerKey> {
        self.keys.iter()
    }

    /// How many keys the window holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the window holds no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARD: u32 = 3;

    fn key(deadline_us: i64, customer: &str) -> TimerKey {
        TimerKey {
            shard: SHARD,
            deadline_us,
            customer: customer.into(),
            sla: 0,
            tier: 0,
            repeat: 0,
            instance: 1,
        }
    }

    fn armed(keys: &[TimerKey]) -> TimerUpdate {
        TimerUpdate {
            armed: keys.to_vec(),
            cleared: Vec::new(),
        }
    }

    fn drain(w: &mut TimerWindow, now_us: i64) -> Vec<TimerKey> {
        std::iter::from_fn(|| w.pop_due(now_us)).collect()
    }

    #[test]
    fn a_new_window_scans_from_the_start_and_holds_nothing_armed() {
        let mut w = TimerWindow::new(SHARD, 4);
        assert_eq!(w.needs_refill(), Some(RefillFrom::Start));
        w.apply(armed(&[key(10, "a")]));
        assert!(w.is_empty(), "nothing is covered before the first scan");
        assert_eq!(w.needs_refill().as_ref().and_then(|r| r.key()), None);
    }

    #[test]
    fn a_short_refill_covers_everything() {
        let mut w = TimerWindow::new(SHARD, 4);
        w.refilled(vec![key(10, "a"), key(20, "b")]);
        assert_eq!(w.len(), 2);
        // Any deadline is covered now, however late.
        w.apply(armed(&[key(i64::MAX, "z")]));
        assert_eq!(w.len(), 3);
        assert_eq!(drain(&mut w, i64::MAX).len(), 3);
        assert_eq!(w.needs_refill(), None, "an empty store needs no scan");
    }

    #[test]
    fn an_empty_refill_covers_everything() {
        let mut w = TimerWindow::new(SHARD, 4);
        w.refilled(Vec::new());
        assert_eq!(w.needs_refill(), None);
        w.apply(armed(&[key(5, "a")]));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_key_armed_beyond_coverage_is_not_held() {
        let mut w = TimerWindow::new(SHARD, 2);
        w.refilled(vec![key(10, "a"), key(20, "b")]);
        w.apply(armed(&[key(15, "c"), key(20, "b2"), key(25, "d")]));
        // "b2" sorts after "b" at the same deadline: beyond coverage too.
        assert_eq!(
            drain(&mut w, i64::MAX),
            [key(10, "a"), key(15, "c"), key(20, "b")]
        );
        // The next scan resumes after the last covered key, where the store
        // still has "b2" and "d".
        assert_eq!(w.needs_refill(), Some(RefillFrom::After(key(20, "b"))));
    }

    #[test]
    fn trimming_drops_the_latest_keys_and_moves_coverage_back() {
        let mut w = TimerWindow::new(SHARD, 2);
        w.refilled(Vec::new());
        w.apply(armed(&[
            key(50, "e"),
            key(10, "a"),
            key(40, "d"),
            key(20, "b"),
            key(30, "c"),
            key(60, "f"),
        ]));
        assert_eq!(w.len(), 4, "at most twice the capacity");
        // Coverage ends at "d" now: a later key is left to the store, an
        // earlier one still joins (and pushes "d" out).
        w.apply(armed(&[key(45, "x")]));
        assert_eq!(w.len(), 4);
        w.apply(armed(&[key(5, "y")]));
        assert_eq!(
            drain(&mut w, i64::MAX),
            [key(5, "y"), key(10, "a"), key(20, "b"), key(30, "c")]
        );
        assert_eq!(w.needs_refill(), Some(RefillFrom::After(key(30, "c"))));
    }

    #[test]
    fn cleared_keys_leave_before_armed_ones_join() {
        let mut w = TimerWindow::new(SHARD, 4);
        w.refilled(vec![key(10, "a"), key(20, "b")]);
        w.apply(TimerUpdate {
            armed: vec![key(30, "a")],
            cleared: vec![key(10, "a"), key(99, "never-armed")],
        });
        assert_eq!(drain(&mut w, i64::MAX), [key(20, "b"), key(30, "a")]);
    }

    #[test]
    fn pop_due_yields_due_keys_in_deadline_order_and_no_others() {
        let mut w = TimerWindow::new(SHARD, 8);
        w.refilled(Vec::new());
        w.apply(armed(&[
            key(30, "c"),
            key(10, "b"),
            key(10, "a"),
            key(31, "d"),
            key(-5, "early"),
        ]));
        assert_eq!(w.next_deadline(), Some(-5));
        assert_eq!(
            drain(&mut w, 30),
            [key(-5, "early"), key(10, "a"), key(10, "b"), key(30, "c")]
        );
        assert_eq!(w.pop_due(30), None, "31 is not due at 30");
        assert_eq!(w.next_deadline(), Some(31));
        assert_eq!(w.pop_due(31), Some(key(31, "d")));
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn a_full_refill_resumes_after_its_last_key() {
        let mut w = TimerWindow::new(SHARD, 2);
        w.refilled(vec![key(10, "a"), key(20, "b")]);
        assert_eq!(w.needs_refill(), None, "not while it holds keys");
        drain(&mut w, 20);
        assert_eq!(w.needs_refill(), Some(RefillFrom::After(key(20, "b"))));
        w.refilled(vec![key(30, "c")]);
        drain(&mut w, i64::MAX);
        assert_eq!(w.needs_refill(), None, "the short scan reached the end");
    }
}
