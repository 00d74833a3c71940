//! One customer's actor: the only writer of that customer's state.
//!
//! It holds the state while the customer is active, decides every input on
//! it with the engine, hands the facts to the journal and answers only once
//! they are durable. Messages are handled one at a time, so a customer's
//! events are applied exactly once and in order. An idle actor is stopped
//! by its shard (passivation); its state is already durable, and the next
//! message re-activates it from the store.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::ShardMsg;
use super::context::ShardContext;
use crate::engine::model::{Duration, SlaId};
use crate::engine::view::{self, CustomerView};
use crate::engine::{
    CustomerState, Decision, Escalation, Event, Fact, Input, Refusal, SlaEnd, Timer, Timestamp,
    decide,
};
use crate::journal::Entry;
use crate::reply::{DecisionReply, IngestReply, NodeError, RegionMove, SlaChange, SlaChangeKind};
use crate::state;

/// What a customer actor is asked.
pub enum CustomerMsg {
    Ingest {
        event: Event,
        reply: RpcReplyPort<Result<IngestReply, NodeError>>,
    },
    /// A timer of this customer came due (from the shard's timer service).
    Timer(Timer),
    Authorize {
        team: String,
        action: String,
        reply: RpcReplyPort<Result<DecisionReply, NodeError>>,
    },
    CheckMessage {
        class: String,
        reply: RpcReplyPort<Result<DecisionReply, NodeError>>,
    },
    Get {
        timeline_limit: usize,
        reply: RpcReplyPort<Result<CustomerView, NodeError>>,
    },
    Acknowledge {
        escalation_id: String,
        team: String,
        note: String,
        reply: RpcReplyPort<Result<DecisionReply, NodeError>>,
    },
    /// Stop after the messages already queued (sent by the shard only).
    Passivate,
}

/// The actor; its state is [`CustomerSlot`].
pub struct CustomerActor {
    pub ctx: Arc<ShardContext>,
    pub shard: ActorRef<ShardMsg>,
}

/// What a customer actor holds.
pub struct CustomerSlot {
    customer: String,
    /// `None` for a customer that does not exist (yet).
    state: Option<CustomerState>,
    /// The last fact sequence number written to the journal.
    fact_seq: u64,
}

impl Actor for CustomerActor {
    type Msg = CustomerMsg;
    type State = CustomerSlot;
    type Arguments = String;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        customer: String,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (state, fact_seq) = self.ctx.load(&customer)?;
        metrics::gauge!("handoff_active_actors").increment(1.0);
        Ok(CustomerSlot {
            customer,
            state,
            fact_seq,
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        slot: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        metrics::gauge!("handoff_active_actors").decrement(1.0);
        let _ = self.shard.send_message(ShardMsg::Stopped {
            customer: std::mem::take(&mut slot.customer),
            actor: myself.get_id(),
        });
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        slot: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CustomerMsg::Ingest { event, reply } => {
                let started = std::time::Instant::now();
                let result = self.ingest(&myself, slot, event).await;
                metrics::histogram!("handoff_ingest_seconds")
                    .record(started.elapsed().as_secs_f64());
                let _ = reply.send(result);
            }
            CustomerMsg::Timer(timer) => self.timer(&myself, slot, timer).await,
            CustomerMsg::Authorize {
                team,
                action,
                reply,
            } => {
                let result = self
                    .answer(&myself, slot, Input::Authorize { team, action })
                    .await;
                let _ = reply.send(result);
            }
            CustomerMsg::CheckMessage { class, reply } => {
                let result = match &slot.state {
                    Some(s) => {
                        let (allowed, reason) = view::check_message(&self.ctx.model, s, &class);
                        Ok(self.decision_reply(s, allowed, reason, None))
                    }
                    None => Err(NodeError::unknown_customer(&slot.customer)),
                };
                let _ = reply.send(result);
            }
            CustomerMsg::Get {
                timeline_limit,
                reply,
            } => {
                let result = match &slot.state {
                    Some(s) => Ok(view::customer_view(
                        &self.ctx.model,
                        s,
                        timeline_limit,
                        self.ctx.clock.now(),
                    )),
                    None => Err(NodeError::unknown_customer(&slot.customer)),
                };
                let _ = reply.send(result);
            }
            CustomerMsg::Acknowledge {
                escalation_id,
                team,
                note,
                reply,
            } => {
                let input = Input::Acknowledge {
                    escalation_id,
                    team,
                    note,
                };
                let result = self.answer(&myself, slot, input).await;
                let _ = reply.send(result);
            }
            CustomerMsg::Passivate => myself.stop(None),
        }
        Ok(())
    }
}

impl CustomerActor {
    async fn ingest(
        &self,
        myself: &ActorRef<CustomerMsg>,
        slot: &mut CustomerSlot,
        event: Event,
    ) -> Result<IngestReply, NodeError> {
        let now = self.ctx.clock.now();
        let ctx = &self.ctx;
        let d = decide(
            &ctx.model,
            &ctx.limits,
            slot.state.as_ref(),
            &Input::Event(event.clone()),
            now,
        );
        let outcome = d.outcome.expect("an event's decision has an outcome");
        metrics::counter!("handoff_events_total", "outcome" => outcome.as_str()).increment(1);
        let transitions = moves(&ctx.model, &d);
        let sla_changes = sla_changes(&ctx.model, &d);
        let d_reason = d.reason.clone();
        self.commit(myself, slot, d, now, None).await?;
        let states = slot
            .state
            .as_ref()
            .map(|s| view::states(&ctx.model, s))
            .unwrap_or_default();
        Ok(IngestReply {
            outcome,
            reason: d_reason,
            states,
            transitions,
            sla_changes,
        })
    }

    async fn timer(&self, myself: &ActorRef<CustomerMsg>, slot: &mut CustomerSlot, timer: Timer) {
        let now = self.ctx.clock.now();
        let d = decide(
            &self.ctx.model,
            &self.ctx.limits,
            slot.state.as_ref(),
            &Input::Timer(timer),
            now,
        );
        let lateness = (now - timer.due).micros().max(0) as f64 / 1e6;
        metrics::histogram!("handoff_timer_lateness_seconds").record(lateness);
        if let Err(e) = self.commit(myself, slot, d, now, Some(timer)).await {
            // The timer stays in the store; it fires again on restart or
            // when the shard's timer service next refills.
            tracing::warn!(customer = %slot.customer, error = %e, "timer firing not committed");
        }
    }

    async fn answer(
        &self,
        myself: &ActorRef<CustomerMsg>,
        slot: &mut CustomerSlot,
        input: Input,
    ) -> Result<DecisionReply, NodeError> {
        if slot.state.is_none() {
            return Err(NodeError::unknown_customer(&slot.customer));
        }
        let now = self.ctx.clock.now();
        let d = decide(
            &self.ctx.model,
            &self.ctx.limits,
            slot.state.as_ref(),
            &input,
            now,
        );
        let allowed = d.allowed == Some(true);
        let (reason, refusal) = (d.reason.clone(), d.refusal);
        self.commit(myself, slot, d, now, None).await?;
        let s = slot
            .state
            .as_ref()
            .expect("checked above: the customer exists");
        Ok(self.decision_reply(s, allowed, reason, refusal))
    }

    fn decision_reply(
        &self,
        s: &CustomerState,
        allowed: bool,
        reason: Option<String>,
        refusal: Option<Refusal>,
    ) -> DecisionReply {
        DecisionReply {
            allowed,
            reason,
            states: view::states(&self.ctx.model, s),
            owner: view::owner(&self.ctx.model, s).map(|t| self.ctx.model.team_name(t).to_owned()),
            refusal,
        }
    }

    /// Applies a decision, made at `now`, to the customer's state and
    /// proposes it to the journal; returns once it is durable. On a
    /// journal failure the in-memory state is no longer the durable one:
    /// the actor stops, so the next message reloads the customer from the
    /// store.
    async fn commit(
        &self,
        myself: &ActorRef<CustomerMsg>,
        slot: &mut CustomerSlot,
        d: Decision,
        now: Timestamp,
        fired: Option<Timer>,
    ) -> Result<(), NodeError> {
        let ctx = &self.ctx;
        let index_before = slot
            .state
            .as_ref()
            .filter(|_| !d.facts.is_empty())
            .map(|s| state::index::keys(&ctx.model, ctx.shard, s))
            .unwrap_or_default();
        let mut state = slot
            .state
            .take()
            .unwrap_or_else(|| CustomerState::empty(&ctx.model, &slot.customer));
        for f in &d.facts {
            state.apply(&ctx.model, f);
        }
        let entry = Entry {
            shard: ctx.shard,
            epoch: ctx.epoch,
            customer: slot.customer.clone(),
            model_version: state.model_version,
            seq: slot.fact_seq + 1,
            facts: d.facts,
            at: now,
            timers: d.timers,
            fired,
            state,
            index_before,
        };
        if entry.is_empty() {
            slot.state = entry.state.exists.then_some(entry.state);
            return Ok(());
        }
        let facts = entry.facts.len() as u64;
        let escalated: Vec<Escalation> = entry
            .facts
            .iter()
            .filter_map(|f| match f {
                Fact::Escalated(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let ended: Vec<(SlaId, SlaEnd, Duration)> = entry
            .facts
            .iter()
            .filter_map(|f| match f {
                Fact::SlaEnded {
                    sla, end, elapsed, ..
                } => Some((*sla, *end, *elapsed)),
                _ => None,
            })
            .collect();
        let market = entry.state.market_code.clone();
        match ctx.journal.append(entry).await {
            Ok(appended) => {
                slot.fact_seq += facts;
                ctx.timers_changed(appended.timers);
                for e in &escalated {
                    count_escalation(&ctx.model, e);
                }
                for (sla, end, elapsed) in ended {
                    count_outcome(&ctx.model, &market, sla, end, elapsed);
                }
                // A decision that created nothing (an unknown customer)
                // leaves no state.
                slot.state = appended.state.exists.then_some(appended.state);
                Ok(())
            }
            Err(e) => {
                myself.stop(Some("journal append failed".into()));
                Err(NodeError::Unavailable(format!(
                    "the event was not made durable: {e}; retry it (retries are safe: events are deduplicated)"
                )))
            }
        }
    }
}

fn count_escalation(model: &crate::engine::model::Model, e: &Escalation) {
    let sla = model.sla_spec(e.sla);
    metrics::counter!(
        "handoff_escalations_total",
        "sla" => sla.name.clone(),
        "team" => model.team_name(e.team).to_owned(),
        "severity" => e.severity.as_str(),
        "kind" => e.kind.as_str(),
    )
    .increment(1);
    if e.kind == crate::engine::EscalationKind::Breached {
        metrics::counter!("handoff_breaches_total", "handoff" => sla.handoff.clone()).increment(1);
    }
}

/// An SLA instance's outcome, by SLA and market (no customer label), and
/// its elapsed SLA time at the end.
fn count_outcome(
    model: &crate::engine::model::Model,
    market: &str,
    sla: SlaId,
    end: SlaEnd,
    elapsed: Duration,
) {
    let name = model.sla_spec(sla).name.clone();
    metrics::counter!(
        "handoff_sla_outcomes_total",
        "sla" => name.clone(),
        "market" => market.to_owned(),
        "outcome" => end.as_str(),
    )
    .increment(1);
    metrics::histogram!("handoff_sla_elapsed_seconds", "sla" => name, "outcome" => end.as_str())
        .record(crate::engine::view::seconds(elapsed));
}

fn moves(model: &crate::engine::model::Model, d: &Decision) -> Vec<RegionMove> {
    d.facts
        .iter()
        .filter_map(|f| match f {
            Fact::RegionMoved {
                region, from, to, ..
            } => {
                let r = model.region(*region);
                Some(RegionMove {
                    region: r.name.clone(),
                    from: r.states[from.idx()].name.clone(),
                    to: r.states[to.idx()].name.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

fn sla_changes(model: &crate::engine::model::Model, d: &Decision) -> Vec<SlaChange> {
    d.facts
        .iter()
        .filter_map(|f| match f {
            Fact::SlaStarted {
                sla,
                instance,
                deadline,
                ..
            } => Some(SlaChange {
                sla: model.sla_spec(*sla).name.clone(),
                instance: *instance,
                change: SlaChangeKind::Started,
                deadline: Some(*deadline),
            }),
            Fact::SlaEnded {
                sla, instance, end, ..
            } => Some(SlaChange {
                sla: model.sla_spec(*sla).name.clone(),
                instance: *instance,
                change: SlaChangeKind::Ended(*end),
                deadline: None,
            }),
            _ => None,
        })
        .collect()
}
