//! `handoff simulate`: the real engine in virtual time, JSON lines in and out.
//!
//! Each input line is one step at a virtual instant (`at`); the clock only
//! moves forward. Before a step runs, every timer due at or before its `at`
//! fires, in (due, customer, SLA, tier, repeat) order, each printed at its
//! due instant; then the step's result; then the escalation events the step
//! caused. After the last step the clock runs to `--until`, if given, and
//! in any case fires what was due by the last step (docs/model.md, FAQ 10).
//!
//! Same `decide` and `apply` as the server: no disk, no network, no clock.
//! A malformed line (FAQ 18) stops the run with its line number; anything
//! a sender could get wrong in an event's *data* is a `rejected` result.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::engine::model::Model;
use crate::engine::view::{self, CustomerView};
use crate::engine::{
    Decision, Escalation, Event, Fact, Input, Limits, Timestamp, parse_escalation_id,
};
use crate::virtual_time::VirtualTime;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("reading or writing: {0}")]
    Io(#[from] std::io::Error),
}

/// What a caller watches of a run besides its output (`handoff model
/// diff` compares two runs through it): the steps, every committed
/// decision with its facts, and every output line as JSON.
pub trait Observer {
    /// Input line `line` is about to run (the timers due by its `at` fire
    /// first); `event` is its event, for an ingest step.
    fn step(&mut self, line: usize, event: Option<&Event>);
    /// A decision for `customer` was committed (a step's or a timer's).
    fn decision(&mut self, customer: &str, decision: &Decision);
    /// An output line (JSON, no newline), as it is written.
    fn output(&mut self, line: &str);
}

/// The engine, every customer and one timer queue, in virtual time.
pub struct Simulator<'m, W: Write> {
    model: &'m Model,
    /// The customers and the timer queue (shared with loadgen's expectations).
    vt: VirtualTime<'m>,
    /// The latest step's instant.
    clock: Option<Timestamp>,
    out: W,
    /// Told of every step, decision and output line, when set.
    observer: Option<&'m mut dyn Observer>,
}

impl<'m, W: Write> Simulator<'m, W> {
    pub fn new(model: &'m Model, limits: Limits, out: W) -> Self {
        Simulator {
            model,
            vt: VirtualTime::new(model, limits),
            clock: None,
            out,
            observer: None,
        }
    }

    /// A simulator that also tells `observer` what happens.
    pub fn observed(
        model: &'m Model,
        limits: Limits,
        out: W,
        observer: &'m mut dyn Observer,
    ) -> Self {
        Simulator {
            observer: Some(observer),
            ..Simulator::new(model, limits, out)
        }
    }

    /// Runs every line of `input`, then the clock to `until`.
    pub fn run(
        mut self,
        input: impl BufRead,
        until: Option<Timestamp>,
    ) -> Result<W, SimulateError> {
        for (i, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            self.step(i + 1, &line)
                .map_err(|reason| SimulateError::Malformed {
                    line: i + 1,
                    reason,
                })??;
        }
        let end = match (self.clock, until) {
            (Some(c), Some(u)) => Some(c.max(u)),
            (c, u) => c.or(u),
        };
        if let Some(end) = end {
            self.fire_until(end)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Runs one input line. The outer error is a malformed line.
    fn step(&mut self, number: usize, line: &str) -> Result<Result<(), SimulateError>, String> {
        let step = parse_step(line)?;
        if let Some(c) = self.clock
            && step.at < c
        {
            return Err(format!(
                "`at` {} is earlier than the previous step's {c}: steps must be in time order",
                step.at
            ));
        }
        self.clock = Some(step.at);
        if let Some(o) = self.observer.as_mut() {
            let event = match &step.op {
                Op::Ingest(e) => Some(e),
                Op::Authorize { .. }
                | Op::CheckMessage { .. }
                | Op::Get { .. }
                | Op::Ack { .. } => None,
            };
            o.step(number, event);
        }
        Ok(self.fire_until(step.at).and_then(|()| self.run_op(step)))
    }

    fn fire_until(&mut self, until: Timestamp) -> Result<(), SimulateError> {
        while let Some(fired) = self.vt.fire_next(until) {
            if let Some(o) = self.observer.as_mut() {
                o.decision(&fired.customer, &fired.decision);
            }
            self.print_escalations(&fired.customer, &fired.decision, fired.at)?;
        }
        Ok(())
    }

    fn run_op(&mut self, step: Step) -> Result<(), SimulateError> {
        let at = step.at;
        match step.op {
            Op::Ingest(event) => {
                let customer = event.customer.clone();
                let d = self.vt.run(&customer, &Input::Event(event), at);
                if let Some(o) = self.observer.as_mut() {
                    o.decision(&customer, &d);
                }
                let outcome = d.outcome.expect("an event's decision has an outcome");
                let reason = d.reason.clone();
                let states = self
                    .vt
                    .customer(&customer)
                    .filter(|s| s.exists)
                    .map(|s| view::states(self.model, s))
                    .unwrap_or_default();
                self.print(&IngestLine {
                    at,
                    op: "ingest",
                    customer: &customer,
                    outcome: outcome.as_str(),
                    reason,
                    states: Ordered(states),
                })?;
                self.print_escalations(&customer, &d, at)
            }
            Op::Authorize {
                customer,
                team,
                action,
            } => {
                let d = self
                    .vt
                    .decide(&customer, &Input::Authorize { team, action }, at);
                let (allowed, reason) = (d.allowed == Some(true), d.reason.clone());
                let reason = if self.known(&customer) {
                    reason
                } else {
                    Some(format!("unknown customer `{customer}`"))
                };
                self.vt.commit(&customer, &d);
                if let Some(o) = self.observer.as_mut() {
                    o.decision(&customer, &d);
                }
                self.print(&DecisionLine {
                    at,
                    op: "authorize",
                    customer: &customer,
                    allowed,
                    reason,
                })
            }
            Op::CheckMessage { customer, class } => {
                let (allowed, reason) = match self.vt.customer(&customer).filter(|s| s.exists) {
                    Some(s) => view::check_message(self.model, s, &class),
                    None => (false, Some(format!("unknown customer `{customer}`"))),
                };
                self.print(&DecisionLine {
                    at,
                    op: "check_message",
                    customer: &customer,
                    allowed,
                    reason,
                })
            }
            Op::Get {
                customer,
                timeline_limit,
            } => {
                let view = self
                    .vt
                    .customer(&customer)
                    .filter(|s| s.exists)
                    .map(|s| view::customer_view(self.model, s, timeline_limit, at));
                let reason = view
                    .is_none()
                    .then(|| format!("unknown customer `{customer}`"));
                self.print(&GetLine {
                    at,
                    op: "get",
                    customer: &customer,
                    view,
                    reason,
                })
            }
            Op::Ack {
                escalation_id,
                team,
                note,
            } => {
                let customer = parse_escalation_id(&escalation_id).map(|r| r.customer.to_owned());
                // An id that names no customer is decided as for an unknown
                // one ("" is never a customer: empty ids are malformed).
                let d = self.vt.decide(
                    customer.as_deref().unwrap_or(""),
                    &Input::Acknowledge {
                        escalation_id: escalation_id.clone(),
                        team,
                        note,
                    },
                    at,
                );
                let (acknowledged, reason) = (d.allowed == Some(true), d.reason.clone());
                let reason = match (&customer, acknowledged) {
                    (None, _) => Some(format!(
                        "`{escalation_id}` is not an escalation id (customer:sla:instance:tier:repeat)"
                    )),
                    _ => reason,
                };
                if let Some(c) = &customer {
                    self.vt.commit(c, &d);
                    if let Some(o) = self.observer.as_mut() {
                        o.decision(c, &d);
                    }
                }
                self.print(&AckLine {
                    at,
                    op: "ack",
                    escalation_id: &escalation_id,
                    customer: customer.as_deref(),
                    acknowledged,
                    reason,
                })
            }
        }
    }

    fn known(&self, customer: &str) -> bool {
        self.vt.known(customer)
    }

    fn print(&mut self, line: &impl Serialize) -> Result<(), SimulateError> {
        if let Some(o) = self.observer.as_mut() {
            let text = serde_json::to_string(line).map_err(std::io::Error::from)?;
            o.output(&text);
            self.out.write_all(text.as_bytes())?;
        } else {
            serde_json::to_writer(&mut self.out, line).map_err(std::io::Error::from)?;
        }
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// One line per escalation fact of a decision, in fact order.
    fn print_escalations(
        &mut self,
        customer: &str,
        d: &Decision,
        at: Timestamp,
    ) -> Result<(), SimulateError> {
        for f in &d.facts {
            if let Fact::Escalated(e) = f {
                let line = EscalationLine {
                    at,
                    escalation: EscalationOut::new(self.model, customer, e),
                };
                self.print(&line)?;
            }
        }
        Ok(())
    }
}

/// A parsed input line.
struct Step {
    at: Timestamp,
    op: Op,
}

enum Op {
    Ingest(Event),
    Authorize {
        customer: String,
        team: String,
        action: String,
    },
    CheckMessage {
        customer: String,
        class: String,
    },
    Get {
        customer: String,
        timeline_limit: usize,
    },
    Ack {
        escalation_id: String,
        team: String,
        note: String,
    },
}

const OPS: [&str; 5] = ["ingest", "authorize", "check_message", "get", "ack"];

/// Parses one line; `Err` is a malformed line's reason (FAQ 18).
fn parse_step(line: &str) -> Result<Step, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("a step is a JSON object like {\"at\":\"...\",\"ingest\":{...}}".into());
    };
    let at = match obj.get("at") {
        Some(Value::String(s)) => Timestamp::parse_rfc3339(s).map_err(|e| format!("`at`: {e}"))?,
        Some(_) => return Err("`at` must be an RFC 3339 string".into()),
        None => return Err("the step has no `at`: give its instant (RFC 3339)".into()),
    };
    let ops: Vec<&str> = OPS
        .iter()
        .copied()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if ops.len() != 1 {
        return Err(format!(
            "a step has exactly one of ingest, authorize, check_message, get, ack; this one has {}",
            if ops.is_empty() {
                "none".to_owned()
            } else {
                ops.join(" and ")
            }
        ));
    }
    if let Some(k) = obj
        .keys()
        .find(|k| *k != "at" && !OPS.contains(&k.as_str()))
    {
        return Err(format!("unknown key `{k}` in the step"));
    }
    let name = ops[0];
    let Some(Value::Object(body)) = obj.get(name) else {
        return Err(format!("`{name}` must be an object"));
    };
    let op = match name {
        "ingest" => {
            let b = Body::new(
                name,
                body,
                &[
                    "id",
                    "source",
                    "type",
                    "customer",
                    "market",
                    "occurred_at",
                    "attributes",
                ],
            )?;
            let occurred_at = match b.string("occurred_at")? {
                Some(s) => {
                    Timestamp::parse_rfc3339(&s).map_err(|e| format!("`occurred_at`: {e}"))?
                }
                None => at,
            };
            Op::Ingest(Event {
                id: b.string("id")?.unwrap_or_default(),
                source: b.string("source")?.unwrap_or_default(),
                event_type: b.string("type")?.unwrap_or_default(),
                customer: b.string("customer")?.unwrap_or_default(),
                market: b.string("market")?.unwrap_or_default(),
                occurred_at,
                attributes: b.attributes()?,
            })
        }
        "authorize" => {
            let b = Body::new(name, body, &["customer", "team", "action"])?;
            Op::Authorize {
                customer: b.string("customer")?.unwrap_or_default(),
                team: b.string("team")?.unwrap_or_default(),
                action: b.string("action")?.unwrap_or_default(),
            }
        }
        "check_message" => {
            let b = Body::new(name, body, &["customer", "class"])?;
            Op::CheckMessage {
                customer: b.string("customer")?.unwrap_or_default(),
                class: b.string("class")?.unwrap_or_default(),
            }
        }
        "get" => {
            let b = Body::new(name, body, &["customer", "timeline_limit"])?;
            let timeline_limit = match body.get("timeline_limit") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .ok_or("`get.timeline_limit` must be a non-negative integer")?
                    as usize,
            };
            Op::Get {
                customer: b.string("customer")?.unwrap_or_default(),
                timeline_limit,
            }
        }
        _ => {
            let b = Body::new(name, body, &["escalation_id", "team", "note"])?;
            Op::Ack {
                escalation_id: b.string("escalation_id")?.unwrap_or_default(),
                team: b.string("team")?.unwrap_or_default(),
                note: b.string("note")?.unwrap_or_default(),
            }
        }
    };
    Ok(Step { at, op })
}

/// An op's body, with its keys checked.
struct Body<'a> {
    op: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Body<'a> {
    fn new(op: &'a str, map: &'a Map<String, Value>, keys: &[&str]) -> Result<Self, String> {
        if let Some(k) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!(
                "unknown key `{k}` in `{op}`; its keys are {}",
                keys.join(", ")
            ));
        }
        Ok(Body { op, map })
    }

    /// A string field; absent or null is `None`, any other type is malformed.
    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{}.{key}` must be a string", self.op)),
        }
    }

    fn attributes(&self) -> Result<std::collections::BTreeMap<String, String>, String> {
        match self.map.get("attributes") {
            None | Some(Value::Null) => Ok(Default::default()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(format!("`{}.attributes.{k}` must be a string", self.op)),
                })
                .collect(),
            Some(_) => Err(format!(
                "`{}.attributes` must be an object of strings",
                self.op
            )),
        }
    }
}

/// A map that serializes in the order given (regions in file order).
struct Ordered(Vec<(String, String)>);

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct IngestLine<'a> {
    at: Timestamp,
    op: &'static str,
    customer: &'a str,
    outcome: &'static str,
    reason: Option<String>,
    states: Ordered,
}

#[derive(Serialize)]
struct DecisionLine<'a> {
    at: Timestamp,
    op: &'static str,
    customer: &'a str,
    allowed: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct GetLine<'a> {
    at: Timestamp,
    op: &'static str,
    customer: &'a str,
    view: Option<CustomerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct AckLine<'a> {
    at: Timestamp,
    op: &'static str,
    escalation_id: &'a str,
    customer: Option<&'a str>,
    acknowledged: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct EscalationLine {
    at: Timestamp,
    escalation: EscalationOut,
}

#[derive(Serialize)]
struct EscalationOut {
    escalation_id: String,
    kind: &'static str,
    customer: String,
    sla: String,
    tier: u16,
    team: String,
    severity: &'static str,
    deadline: Timestamp,
    late_attach: bool,
}

impl EscalationOut {
    fn new(model: &Model, customer: &str, e: &Escalation) -> Self {
        let sla = &model.sla_spec(e.sla).name;
        EscalationOut {
            escalation_id: e.id(customer, sla),
            kind: e.kind.as_str(),
            customer: customer.to_owned(),
            sla: sla.clone(),
            tier: e.tier,
            team: model.team_name(e.team).to_owned(),
            severity: e.severity.as_str(),
            deadline: e.deadline,
            late_attach: e.late_attach,
        }
    }
}
