//! SLAs at risk: `handoff_sla_breaches_due{sla, shard}`, the running SLA
//! instances whose next tier is the breach and comes due within
//! [`HORIZON`], unless their hand-off is done first.
//!
//! A running instance has one timer armed, for its next tier (the state's
//! `timers()`); the breach is a tier like the others (the `100%` tier, or
//! the silent breach mark of an SLA without one). So the count is read off
//! the timer window the service already holds, earliest first, stopping at
//! the horizon: no store read, at most every [`EVERY`], and labels bounded
//! by the model (SLA names) and the shard count, never a customer. An
//! instance whose warning tier is still ahead is counted once the warning
//! has fired; a paused instance has no timer and is not counted; markets
//! change `within`, not the tiers. The window holds a shard's earliest
//! timers, so the count is exact unless more than `timer_window` timers of
//! the shard come due within the horizon; then it is a lower bound, which
//! is what an alert on "more than N" needs.

use std::time::Duration as StdDuration;

use tokio::time::Instant;

use super::TimerWindow;
use crate::engine::Timer;
use crate::engine::model::Model;
use crate::store::TimerKey;

/// How far ahead a breach counts as at risk.
pub const HORIZON: StdDuration = StdDuration::from_secs(15 * 60);

/// How often the count is taken at most (and at least, while the service
/// waits: its sleep is capped at this).
pub const EVERY: StdDuration = StdDuration::from_secs(5);

/// One shard's view of which timers are breaches, and its gauge.
pub struct BreachesDue {
    shard: String,
    /// Per SLA id: its name and, per tier number, whether it is the breach.
    slas: Vec<(String, Vec<bool>)>,
    /// When the count was last taken; `None` before the first.
    last: Option<Instant>,
}

impl BreachesDue {
    pub fn new(shard: u32, model: &Model) -> BreachesDue {
        let slas = model
            .sla_ids()
            .map(|id| {
                let sla = model.sla_spec(id);
                let tiers = sla.tiers.iter().map(|t| t.is_breach()).collect();
                (sla.name.clone(), tiers)
            })
            .collect();
        BreachesDue {
            shard: shard.to_string(),
            slas,
            last: None,
        }
    }

    /// Whether a timer of SLA `sla` at tier `tier` is the instance's breach.
    fn is_breach(&self, sla: u16, tier: u16) -> bool {
        tier == Timer::BREACH_MARK
            || self
                .slas
                .get(sla as usize)
                .and_then(|(_, tiers)| tiers.get(tier as usize))
                .copied()
                .unwrap_or(false)
    }

    /// Breach timers among `keys` (earliest first) due at or before
    /// `until_us`, per SLA id.
    pub fn count<'a>(&self, keys: impl Iterator<Item = &'a TimerKey>, until_us: i64) -> Vec<u64> {
        let mut counts = vec![0u64; self.slas.len()];
        for k in keys.take_while(|k| k.deadline_us <= until_us) {
            if self.is_breach(k.sla, k.tier)
                && let Some(n) = counts.get_mut(k.sla as usize)
            {
                *n += 1;
            }
        }
        counts
    }

    /// Sets the gauge from `window` at `now_us`, if [`EVERY`] has passed
    /// since the last count (or there was none).
    pub fn report(&mut self, window: &TimerWindow, now_us: i64) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + EVERY) {
            return;
        }
        self.last = Some(now);
        let until = now_us.saturating_add(HORIZON.as_micros() as i64);
        let counts = self.count(window.keys(), until);
        self.set(&counts);
    }

    /// Sets every SLA's series to 0: the shard is no longer served here
    /// (another node, or none, fires its timers now).
    pub fn clear(&self) {
        self.set(&vec![0; self.slas.len()]);
    }

    fn set(&self, counts: &[u64]) {
        for ((name, _), n) in self.slas.iter().zip(counts) {
            metrics::gauge!(
                "handoff_sla_breaches_due",
                "sla" => name.clone(),
                "shard" => self.shard.clone(),
            )
            .set(*n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::load;

    fn key(deadline_us: i64, sla: u16, tier: u16) -> TimerKey {
        TimerKey {
            shard: 0,
            deadline_us,
            customer: format!("c{deadline_us}"),
            sla,
            tier,
            repeat: 0,
            instance: 1,
        }
    }

    #[test]
    fn counts_breaches_due_within_the_horizon_per_sla() {
        let model = load("fast.toml", include_str!("../../../tests/models/fast.toml"))
            .expect("the fast model loads");
        let ghost = model.sla("access_after_payment").expect("declared").0;
        let reply = model.sla("first_reply").expect("declared").0;
        let watch = BreachesDue::new(0, &model);
        // access_after_payment: tier 0 the 50% warning, tier 1 the breach,
        // tier 2 the repeat after it; first_reply: tier 0 the breach.
        let keys = [
            key(10, ghost, 0),
            key(20, ghost, 1),
            key(25, ghost, Timer::BREACH_MARK),
            key(30, ghost, 2),
            key(40, reply, 0),
            key(50, ghost, 1),
            key(60, reply, 0),
        ];
        let counts = watch.count(keys.iter(), 50);
        assert_eq!(counts[ghost as usize], 3, "two breaches and a mark by 50");
        assert_eq!(counts[reply as usize], 1, "the one at 60 is beyond");
        assert_eq!(counts.iter().sum::<u64>(), 4);
        assert!(watch.count(keys.iter(), 5).iter().all(|&n| n == 0));
    }
}
