//! Pauses as the customer's history has them (FAQ 39, 40): a start that
//! arrives late skips the pauses since its moment, whatever order the
//! events came in.

use super::*;

const DESK: &str = r#"
teams = ["support"]

[model]
name = "desk"
version = 1

[sources]
desk = ["ticket_opened", "agent_replied", "waiting_on_customer", "customer_replied"]

[regions.support]
initial = "idle"
default_owner = "support"
states = { idle = {}, open = {}, waiting = {} }
transitions = [
  { from = "*", to = "waiting", on = "desk.waiting_on_customer" },
  { from = "waiting", to = "open", on = "desk.customer_replied" },
]

[slas.first_reply]
owner = "support"
start = ["desk.ticket_opened"]
stop = ["desk.agent_replied"]
within = "60m"
pause_in = ["support.waiting"]
tiers = [{ at = "100%", severity = "high" }]

[markets.US]
"#;

fn desk() -> Harness {
    Harness::new(load("desk.toml", DESK).expect("the desk model loads"))
}

fn first_reply(h: &Harness, c: &str) -> view::SlaView {
    view::customer_view(&h.model, h.state(c), 0, t(30))
        .slas
        .into_iter()
        .find(|s| s.sla == "first_reply")
        .expect("running")
}

#[test]
fn a_late_start_skips_the_pause_that_came_and_went_before_it_arrived() {
    let mut h = desk();
    // Waiting on the customer from minute 10 to 20, then the ticket
    // that opened at minute 0 arrives at 30: 10 minutes ran before the
    // pause and 10 after it, so the hour ends at minute 70.
    h.ev("c1", "w1", "desk.waiting_on_customer", 10, 10);
    h.ev("c1", "r1", "desk.customer_replied", 20, 20);
    h.ev("c1", "t1", "desk.ticket_opened", 0, 30);
    let sla = first_reply(&h, "c1");
    assert_eq!(sla.deadline, Some(t(70)));
    assert_eq!(sla.original_deadline, t(60));
    assert_eq!(sla.elapsed, 20.0 * 60.0);
    assert!(!sla.paused);
    let fired = h.fire_until("c1", 100);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].due, t(70));
    assert_eq!(fired[0].kind, EscalationKind::Breached);
}

#[test]
fn a_late_start_during_a_pause_starts_paused_from_its_own_moment() {
    let mut h = desk();
    // Waiting since minute 10; the ticket opened at 5 arrives at 30: it
    // ran 5 minutes, and is paused since 10.
    h.ev("c1", "w1", "desk.waiting_on_customer", 10, 10);
    h.ev("c1", "t1", "desk.ticket_opened", 5, 30);
    let sla = first_reply(&h, "c1");
    assert!(sla.paused);
    assert_eq!(sla.deadline, None);
    assert_eq!(sla.elapsed, 5.0 * 60.0);
    assert_eq!(sla.paused_since, Some(t(10)));
    assert!(
        h.fire_until("c1", 1_000).is_empty(),
        "paused: nothing fires"
    );
    // The reply at 40 starts the clock: 55 minutes left, due at 95.
    h.ev("c1", "r1", "desk.customer_replied", 40, 40);
    let fired = h.fire_until("c1", 1_000);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].due, t(95));
}

const TWO: &str = r#"
teams = ["ops"]

[model]
name = "two"
version = 1

[sources]
x = ["open", "a_wait", "a_back", "b_wait", "b_back", "done"]

[regions.a]
initial = "idle"
default_owner = "ops"
states = { idle = {}, waiting = {} }
transitions = [
  { from = "idle", to = "waiting", on = "x.a_wait" },
  { from = "waiting", to = "idle", on = "x.a_back" },
]

[regions.b]
initial = "idle"
default_owner = "ops"
states = { idle = {}, waiting = {} }
transitions = [
  { from = "idle", to = "waiting", on = "x.b_wait" },
  { from = "waiting", to = "idle", on = "x.b_back" },
]

[slas.s]
owner = "ops"
start = ["x.open"]
stop = ["x.done"]
within = "10h"
pause_in = ["a.waiting", "b.waiting"]
tiers = [{ at = "100%", severity = "high" }]

[markets.US]
"#;

#[test]
fn pauses_of_two_regions_add_up_whatever_order_they_arrive_in() {
    // Region a pauses 120-180 on time; region b's pause 60-90 arrives at
    // 240. At 300, 300 - 60 - 30 = 210 minutes counted, as if in order.
    let elapsed = |late: bool| {
        let mut h = Harness::new(load("two.toml", TWO).expect("loads"));
        h.ev("c", "o", "x.open", 0, 0);
        if !late {
            h.ev("c", "bw", "x.b_wait", 60, 60);
            h.ev("c", "bb", "x.b_back", 90, 90);
        }
        h.ev("c", "aw", "x.a_wait", 120, 120);
        h.ev("c", "ab", "x.a_back", 180, 180);
        if late {
            h.ev("c", "bw", "x.b_wait", 60, 240);
            h.ev("c", "bb", "x.b_back", 90, 240);
        }
        let v = view::customer_view(&h.model, h.state("c"), 0, t(300));
        (v.slas[0].elapsed, v.slas[0].deadline)
    };
    assert_eq!(elapsed(false), (210.0 * 60.0, Some(t(690))));
    assert_eq!(elapsed(true), elapsed(false));
}
