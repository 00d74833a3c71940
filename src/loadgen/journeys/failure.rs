//! The deliberate failures a journey may carry, and the rewrites of its
//! steps that plant the two that need no planning: a duplicate delivery and
//! two events out of order. (SLA failures are planned with the engine, in
//! the generator.)

use super::journey::{Occurred, Step, When};
use super::rng::Rng;
use crate::engine::model::Duration;

/// The deliberate failures a journey may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    NeverStopped,
    StoppedLate,
    Duplicate,
    OutOfOrder,
}

impl FailureKind {
    pub const ALL: [FailureKind; 4] = [
        FailureKind::NeverStopped,
        FailureKind::StoppedLate,
        FailureKind::Duplicate,
        FailureKind::OutOfOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NeverStopped => "never_stopped",
            FailureKind::StoppedLate => "stopped_late",
            FailureKind::Duplicate => "duplicate",
            FailureKind::OutOfOrder => "out_of_order",
        }
    }
}

/// Delivers one of the steps twice: a copy somewhere after the original.
pub(super) fn duplicate(steps: &mut Vec<Step>, rng: &mut Rng) {
    if steps.is_empty() {
        return;
    }
    let k = rng.below(steps.len());
    let at = k + 1 + rng.below(steps.len() - k);
    let original = steps[k];
    steps.insert(
        at,
        Step {
            when: When::Gap,
            occurred: Occurred::SameAs(k as u16),
            ..original
        },
    );
    // Steps after the insertion point moved by one: fix references to them.
    for s in steps.iter_mut().skip(at + 1) {
        if let Occurred::SameAs(i) | Occurred::Before { step: i, .. } = &mut s.occurred
            && *i as usize >= at
        {
            *i += 1;
        }
        if let When::AfterOccurred { step: i, .. } = &mut s.when
            && *i as usize >= at
        {
            *i += 1;
        }
    }
}

/// Swaps two adjacent steps (not the first): the later one is sent first,
/// and the earlier one follows with an `occurred_at` half a gap before it.
pub(super) fn swap(steps: &mut [Step], rng: &mut Rng, gap: Duration) -> bool {
    if steps.len() < 3 {
        return false;
    }
    let k = 1 + rng.below(steps.len() - 2);
    steps.swap(k, k + 1);
    steps[k + 1].occurred = Occurred::Before {
        step: k as u16,
        by: Duration((gap.0 / 2).max(1)),
    };
    true
}
