//! The engine alone: `decide` + `apply` per event on the reference model.
//!
//! A batch of customers each goes through a full journey (lead, deal,
//! payment, access, a ticket and its reply, a duplicate delivery); the
//! measured time covers deciding and applying every event of the batch,
//! with customer states in a map as a shard would hold them. Setup (model
//! load, event construction) is outside the timed closure.
//!
//! A second case, `decide_apply_per_event_calendar`, runs the same journeys
//! with every SLA of the model on a business calendar (Berlin office hours,
//! a lunch break, closed dates), so each SLA start and each tier works out
//! where the elapsed SLA time reaches it.
//!
//! `cargo bench --bench engine`; throughput is reported in events/s.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use handoff::engine::model::{Model, load};
use handoff::engine::{CustomerState, Event, Input, Limits, Timestamp, decide};

const SAAS: &str = include_str!("../examples/saas.toml");
const CUSTOMERS: usize = 2_000;
const T0: i64 = 1_767_225_600_000_000;
const MIN: i64 = 60_000_000;

fn journey(c: usize) -> Vec<(Event, Timestamp)> {
    let customer = format!("cust-{c:07}");
    let steps: [(&str, &str, &str, i64); 7] = [
        ("crm", "lead_created", "l", 0),
        ("crm", "deal_won", "d", 10),
        ("billing", "payment_succeeded", "p", 20),
        ("access", "access_granted", "a", 25),
        ("support", "ticket_opened", "t", 30),
        ("support", "agent_replied", "r", 40),
        ("access", "access_granted", "a", 41), // duplicate delivery
    ];
    steps
        .iter()
        .map(|(source, ty, id, m)| {
            let at = Timestamp(T0 + m * MIN);
            (
                Event {
                    id: format!("{id}-{c}"),
                    source: (*source).into(),
                    event_type: (*ty).into(),
                    customer: customer.clone(),
                    market: if *m == 0 { "US".into() } else { String::new() },
                    occurred_at: at,
                    attributes: Default::default(),
                },
                at,
            )
        })
        .collect()
}

fn run(model: &Model, events: &[(Input, Timestamp)]) -> HashMap<String, CustomerState> {
    let limits = Limits::default();
    let mut states: HashMap<String, CustomerState> = HashMap::with_capacity(CUSTOMERS);
    for (input, now) in events {
        let Input::Event(event) = input else {
            continue;
        };
        let state = states.get(&event.customer);
        let d = decide(model, &limits, state, input, *now);
        if !d.facts.is_empty() {
            if !states.contains_key(&event.customer) {
                let fresh = CustomerState::empty(model, &event.customer);
                states.insert(event.customer.clone(), fresh);
            }
            let s = states
                .get_mut(&event.customer)
                .expect("inserted above when missing");
            for f in &d.facts {
                s.apply(model, f);
            }
        }
        black_box(&d.outcome);
    }
    states
}

/// The reference model with every SLA on a Berlin office calendar.
fn on_office_hours(text: &str) -> String {
    let mut doc: toml_edit::DocumentMut = text.parse().expect("the reference model is TOML");
    let slas = doc["slas"].as_table_mut().expect("[slas]");
    let names: Vec<String> = slas.iter().map(|(k, _)| k.to_owned()).collect();
    for name in names {
        slas[&name]["calendar"] = toml_edit::value("bench_office");
    }
    let mut text = doc.to_string();
    text.push_str(
        r#"
[calendars.bench_office]
time_zone = "Europe/Berlin"
closed = ["2026-01-01", "2026-04-03", "2026-04-06", "2026-12-25"]

[calendars.bench_office.open]
mon = ["09:00-12:00", "13:00-17:00"]
tue = ["09:00-12:00", "13:00-17:00"]
wed = ["09:00-12:00", "13:00-17:00"]
thu = ["09:00-12:00", "13:00-17:00"]
fri = ["09:00-12:00", "13:00-17:00"]
"#,
    );
    text
}

fn engine(c: &mut Criterion) {
    let model = load("examples/saas.toml", SAAS).expect("the reference model loads");
    let office = on_office_hours(SAAS);
    let calendar_model = load("saas-office.toml", &office).expect("the calendar variant loads");
    // Interleave customers, as traffic does: step k of every customer, then k+1.
    let journeys: Vec<_> = (0..CUSTOMERS).map(journey).collect();
    let mut events = Vec::new();
    for k in 0..journeys[0].len() {
        for j in &journeys {
            let (event, at) = j[k].clone();
            events.push((Input::Event(event), at));
        }
    }
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("decide_apply_per_event", |b| {
        b.iter_batched(|| (), |()| run(&model, &events), BatchSize::PerIteration)
    });
    g.bench_function("decide_apply_per_event_calendar", |b| {
        b.iter_batched(
            || (),
            |()| run(&calendar_model, &events),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
