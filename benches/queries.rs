//! `ListCustomers` and `GetReport` at scale, on N customers (default
//! 100,000; `QUERIES_CUSTOMERS` sets N) in the embedded store: a page of
//! 100 read the way the node reads it (`node::queries::list`: one index
//! range, each customer's record read and checked), and the report read
//! the way the node reads it (`node::reports::read`: every counter, and
//! the open-escalation index).
//!
//! Customers of the reference model are decided by the real engine (a deal
//! won, a payment that starts `access_after_payment`; every tenth one's
//! SLA fired to its breach; every fourth one granted access, within the
//! hour or, if breached, after), turned into rows (and counters) by the
//! state layer and committed 1,000 entries a batch. Then each query runs
//! 200 times (the report 50) and its p50/p99 are printed. Not a criterion
//! bench: it measures reads of a store that takes minutes to fill, once.
//!
//! `cargo bench --bench queries` (`-- --test` only checks that it runs,
//! on 2,000 customers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use handoff::engine::model::{Model, load};
use handoff::engine::{CustomerState, Event, Input, Limits, Timestamp, decide};
use handoff::journal::Entry;
use handoff::node::queries::{self, ListRequest};
use handoff::node::reports::{self, ReportQuery};
use handoff::state::{Committed, apply_committed, index};
use handoff::store::{FjallStore, Store};

const T0: i64 = 1_767_225_600_000_000;
const MIN: i64 = 60_000_000;

fn step(
    model: &Arc<Model>,
    state: &mut Option<CustomerState>,
    shard: u32,
    input: Input,
    at: i64,
) -> Entry {
    let d = decide(
        model,
        &Limits::default(),
        state.as_ref(),
        &input,
        Timestamp(at),
    );
    let index_before = state
        .as_ref()
        .map(|s| index::memberships(model, s))
        .unwrap_or_default();
    let name = match &input {
        Input::Event(e) => e.customer.clone(),
        _ => state.as_ref().expect("exists").customer.to_string(),
    };
    let mut s = state
        .take()
        .unwrap_or_else(|| CustomerState::empty(model, &name));
    for f in &d.facts {
        s.apply(model, f);
    }
    let fired = match input {
        Input::Timer(t) => Some(t),
        _ => None,
    };
    let e = Entry {
        shard,
        epoch: 0,
        customer: name,
        model_version: 1,
        model: model.clone(),
        seq: 1,
        facts: d.facts,
        at: Timestamp(at),
        timers: d.timers,
        fired,
        state: s.clone(),
        index_before,
        index_after: None,
    };
    *state = Some(s);
    e
}

fn event(customer: &str, source: &str, ty: &str, market: &str, at: i64) -> Input {
    Input::Event(Event {
        id: format!("{ty}-{customer}"),
        source: source.into(),
        event_type: ty.into(),
        customer: customer.into(),
        market: market.into(),
        occurred_at: Timestamp(at),
        attributes: Default::default(),
    })
}

fn fill(model: &Arc<Model>, store: &dyn Store, n: usize) {
    let markets = ["US", "DE", "BR"];
    let mut pending: Vec<Entry> = Vec::new();
    let mut esc_seq = 0u64;
    let flush = |pending: &mut Vec<Entry>, esc_seq: &mut u64| {
        let seqs: Vec<Vec<u64>> = pending
            .iter()
            .map(|e| {
                (0..e.escalations())
                    .map(|_| {
                        *esc_seq += 1;
                        *esc_seq
                    })
                    .collect()
            })
            .collect();
        let committed: Vec<Committed<'_>> = pending
            .iter()
            .zip(&seqs)
            .map(|(entry, s)| Committed {
                entry,
                escalation_seqs: s,
            })
            .collect();
        let (batch, _) = apply_committed(&committed);
        store.commit(batch).expect("commits");
        pending.clear();
    };
    for i in 0..n {
        let c = format!("cust-{i:07}");
        let shard = (i % 16) as u32;
        let at = T0 + i as i64 * 1_000_000;
        let mut s = None;
        let market = markets[i % 3];
        pending.push(step(
            model,
            &mut s,
            shard,
            event(&c, "crm", "deal_won", market, at),
            at,
        ));
        pending.push(step(
            model,
            &mut s,
            shard,
            event(&c, "billing", "payment_succeeded", "", at + MIN),
            at + MIN,
        ));
        if i % 10 == 0 {
            for _ in 0..2 {
                let t = s
                    .as_ref()
                    .and_then(|s: &CustomerState| s.timers().min())
                    .expect("armed");
                pending.push(step(model, &mut s, shard, Input::Timer(t), t.due.0));
            }
        }
        if i % 4 == 0 {
            // Met within the hour, or missed after the breach (which
            // resolves its escalations).
            let late = if i % 10 == 0 { 300 } else { 20 };
            pending.push(step(
                model,
                &mut s,
                shard,
                event(&c, "access", "access_granted", "", at + late * MIN),
                at + late * MIN,
            ));
        }
        if pending.len() >= 1000 {
            flush(&mut pending, &mut esc_seq);
        }
    }
    flush(&mut pending, &mut esc_seq);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let n: usize = if test {
        2_000
    } else {
        std::env::var("QUERIES_CUSTOMERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000)
    };
    let model = Arc::new(load("saas", include_str!("../examples/saas.toml")).expect("loads"));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a bench directory");
    let store = FjallStore::open(dir.path()).expect("opens");
    let t = Instant::now();
    fill(&model, &store, n);
    println!(
        "{n} customers written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let now = Timestamp(T0 + n as i64 * 1_000_000 + 30 * 24 * 60 * MIN);
    let cases: Vec<(&str, ListRequest)> = vec![
        ("every customer, newest first", ListRequest::default()),
        (
            "--sla access_after_payment=breached",
            ListRequest {
                sla: "access_after_payment".into(),
                sla_status: "breached".into(),
                ..ListRequest::default()
            },
        ),
        (
            "--state lifecycle=paid --market DE --oldest-first",
            ListRequest {
                region: "lifecycle".into(),
                state: "paid".into(),
                market: "DE".into(),
                oldest_first: true,
                ..ListRequest::default()
            },
        ),
        (
            "--owner provisioning --older-than 1h",
            ListRequest {
                owner: "provisioning".into(),
                older_than_us: Some(60 * MIN),
                ..ListRequest::default()
            },
        ),
        (
            // Two states (active, at_risk), their families merged.
            "--owner success",
            ListRequest {
                owner: "success".into(),
                ..ListRequest::default()
            },
        ),
    ];
    for (name, r) in cases {
        let q = queries::resolve(&model, &r, now).expect("a valid query");
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..if test { 3 } else { 200 } {
            let t = Instant::now();
            let page = queries::list(&model, &store, &q, 100, "").expect("lists");
            times.push(t.elapsed());
            rows = page.customers.len();
        }
        times.sort();
        println!(
            "{name}: {rows} rows, p50 {:.2} ms, p99 {:.2} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3
        );
    }
    let reports: Vec<(&str, ReportQuery)> = vec![
        ("report, everything", ReportQuery::default()),
        (
            "report --market DE --days 7",
            ReportQuery {
                market: Some("DE".into()),
                days: 7,
                ..ReportQuery::default()
            },
        ),
    ];
    // The window ends on the last day anything ended.
    let until = Timestamp(T0 + n as i64 * 1_000_000 + 300 * MIN);
    for (name, mut q) in reports {
        q.until = Some(until);
        let mut times = Vec::new();
        let mut summary = String::new();
        for _ in 0..if test { 3 } else { 50 } {
            let t = Instant::now();
            let r = reports::read(&model, &[1], &store, &q, now).expect("reports");
            times.push(t.elapsed());
            let customers: u64 = r
                .states
                .iter()
                .filter(|s| s.region == "lifecycle")
                .map(|s| s.customers)
                .sum();
            let ended: u64 = r.slas.iter().map(|s| s.met + s.missed).sum();
            let open: u64 = r.escalations.iter().map(|t| t.open).sum();
            summary = format!(
                "{customers} customers, {ended} SLA instances ended, {open} escalations open"
            );
        }
        times.sort();
        println!(
            "{name}: {summary}, p50 {:.2} ms, p99 {:.2} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3
        );
    }
}
