//! A timer that came due: the tier fires if the instance still waits for
//! it.

use super::super::fact::Fact;
use super::super::input::Timer;
use super::super::model::Model;
use super::super::state::CustomerState;
use super::super::time::Timestamp;
use super::work::Work;
use super::*;

pub(super) fn decide_timer(
    model: &Model,
    s: &CustomerState,
    timer: &Timer,
    now: Timestamp,
) -> Decision {
    let Some(inst) = s.core.running(timer.sla) else {
        return Decision::default();
    };
    if inst.number != timer.instance {
        return Decision::default();
    }
    let mut w = Work::new(model, s.market, Some(s), now);
    if timer.tier == Timer::BREACH_MARK {
        if inst.breach_mark == Some(timer.due) {
            w.emit(Fact::Breached {
                sla: timer.sla,
                instance: timer.instance,
                at: now,
            });
        }
    } else {
        let Some(slot) = inst.tiers.get(timer.tier as usize) else {
            return Decision::default();
        };
        if slot.next == Some(timer.due) && slot.repeat == timer.repeat {
            w.fire(
                timer.sla,
                inst.number,
                inst.deadline,
                timer.tier,
                timer.repeat,
                timer.due,
                false,
            );
        }
    }
    w.finish(Some(s))
}
