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
use tokio::sync::OwnedSemaphorePermit;

use super::ShardMsg;
use super::context::ShardContext;
use super::meters;
use crate::engine::model::{Duration, Model, RegionId, SlaId};
use crate::engine::view::{self, CustomerView};
use crate::engine::{
    CustomerState, Decision, Escalation, Event, Fact, Input, Refusal, SlaEnd, Timer, TimerChanges,
    Timestamp, decide,
};
use crate::journal::Entry;
use crate::reply::{DecisionReply, IngestReply, NodeError, RegionMove, SlaChange, SlaChangeKind};
use crate::state;
use crate::versions::migrate::{self, MigrateOutcome};

/// What a customer actor is asked.
pub enum CustomerMsg {
    Ingest {
        event: Event,
        reply: RpcReplyPort<Result<IngestReply, NodeError>>,
        /// The event's place in the node's dispatch window
        /// (`node::dispatch_window`): given back as soon as the decision
        /// is proposed to the journal, so that the window bounds the
        /// events being decided (tasks ready to run), not those waiting
        /// for their commit.
        dispatched: Option<OwnedSemaphorePermit>,
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
    /// Re-pin the customer from version `from` to `to` if it may move
    /// (`crate::versions::migrate`); `dry_run` only says what would happen.
    Migrate {
        from: u32,
        to: u32,
        dry_run: bool,
        reply: RpcReplyPort<Result<MigrateOutcome, NodeError>>,
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
    /// Whether `state` and `fact_seq` were read from the store: on the
    /// first message, not at spawn (see `ShardContext::load`).
    loaded: bool,
    /// `None` for a customer that does not exist (yet).
    state: Option<CustomerState>,
    /// The model version the customer is pinned to; for a customer that
    /// does not exist yet, the node's start model until its first event
    /// picks its market's rollout.
    model: Arc<Model>,
    /// The last fact sequence number written to the journal.
    fact_seq: u64,
    /// The customer's query index memberships after its last commit, and
    /// the model they were worked out with: the next entry's memberships
    /// before, when the model is still that one (else they are worked out
    /// again).
    index: Option<(Arc<Model>, state::Memberships)>,
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
        metrics::gauge!("handoff_active_actors").increment(1.0);
        Ok(CustomerSlot {
            customer,
            loaded: false,
            state: None,
            model: self.ctx.versions.started(),
            fact_seq: 0,
            index: None,
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
        if !slot.loaded && !matches!(msg, CustomerMsg::Passivate) {
            match self.ctx.load(&slot.customer).await {
                Ok((state, fact_seq)) => {
                    if let Some(s) = &state {
                        slot.model = self.ctx.versions.model(s.model_version);
                    }
                    (slot.state, slot.fact_seq, slot.loaded) = (state, fact_seq, true);
                }
                Err(e) => {
                    // This message fails (a firing stays in the store and
                    // fires again); the next one tries the read again.
                    tracing::warn!(customer = %slot.customer, error = %e, "cannot load a customer");
                    super::fail(
                        Some(msg),
                        "the customer's record could not be loaded from the store",
                    );
                    return Ok(());
                }
            }
        }
        match msg {
            CustomerMsg::Ingest {
                event,
                reply,
                dispatched,
            } => {
                let started = std::time::Instant::now();
                let result = self.ingest(&myself, slot, event, dispatched).await;
                meters::ingest_seconds(started.elapsed().as_secs_f64());
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
                        let (allowed, reason) = view::check_message(&slot.model, s, &class);
                        Ok(decision_reply(&slot.model, s, allowed, reason, None))
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
                        &slot.model,
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
            CustomerMsg::Migrate {
                from,
                to,
                dry_run,
                reply,
            } => {
                let result = self.migrate(&myself, slot, from, to, dry_run).await;
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
        dispatched: Option<OwnedSemaphorePermit>,
    ) -> Result<IngestReply, NodeError> {
        let now = self.ctx.clock.now();
        let ctx = &self.ctx;
        // A new customer starts on its market's rollout, read now: a
        // rollout change applies to the next new customer at once.
        let model = match &slot.state {
            Some(_) => slot.model.clone(),
            None => ctx.versions.for_new(&event.market, &slot.customer),
        };
        let d = decide(
            &model,
            &ctx.limits,
            slot.state.as_ref(),
            &Input::Event(event),
            now,
        );
        let outcome = d.outcome.expect("an event's decision has an outcome");
        meters::event(outcome.as_str());
        let transitions = moves(&model, &d);
        let sla_changes = sla_changes(&model, &d);
        let d_reason = d.reason.clone();
        if slot.state.is_none() {
            slot.model = model.clone();
        }
        self.commit(myself, slot, d, now, None, dispatched).await?;
        let states = slot
            .state
            .as_ref()
            .map(|s| view::states(&model, s))
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
            &slot.model,
            &self.ctx.limits,
            slot.state.as_ref(),
            &Input::Timer(timer),
            now,
        );
        let lateness = (now - timer.due).micros().max(0) as f64 / 1e6;
        meters::timer_lateness(lateness);
        if let Err(e) = self.commit(myself, slot, d, now, Some(timer), None).await {
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
            &slot.model,
            &self.ctx.limits,
            slot.state.as_ref(),
            &input,
            now,
        );
        let allowed = d.allowed == Some(true);
        let (reason, refusal) = (d.reason.clone(), d.refusal);
        self.commit(myself, slot, d, now, None, None).await?;
        let s = slot
            .state
            .as_ref()
            .expect("checked above: the customer exists");
        Ok(decision_reply(&slot.model, s, allowed, reason, refusal))
    }

    /// Re-pins the customer from `from` to `to`: one `Migrated` fact,
    /// applied with the target's model, and its timers moved to where the
    /// target's rules put them (a timer key holds its due instant, so a
    /// re-armed tier is its old key cleared and a new one armed; a firing
    /// of the old key still queued finds the tier no longer due then and
    /// does nothing). Serialized with the customer's events; a customer
    /// on `to` already is done, so a re-run moves nobody twice.
    async fn migrate(
        &self,
        myself: &ActorRef<CustomerMsg>,
        slot: &mut CustomerSlot,
        from: u32,
        to: u32,
        dry_run: bool,
    ) -> Result<MigrateOutcome, NodeError> {
        let Some(state) = &slot.state else {
            return Err(NodeError::unknown_customer(&slot.customer));
        };
        if state.model_version == to {
            return Ok(MigrateOutcome::AlreadyDone);
        }
        if state.model_version != from {
            return Ok(MigrateOutcome::OtherVersion(state.model_version));
        }
        let target = self.ctx.versions.model(to);
        if target.spec.version != to {
            return Err(NodeError::Unavailable(format!(
                "model version {to} is not stored on this node; publish it again"
            )));
        }
        let why = migrate::ineligible(state, &slot.model, &target);
        if !why.is_empty() {
            return Ok(MigrateOutcome::Ineligible(why));
        }
        if dry_run {
            return Ok(MigrateOutcome::WouldMigrate);
        }
        let now = self.ctx.clock.now();
        let fact = Fact::Migrated { from, to, at: now };
        let before: Vec<Timer> = state.timers().collect();
        let mut after = state.clone();
        after.apply(&target, &fact);
        let after: Vec<Timer> = after.timers().collect();
        let d = Decision {
            facts: vec![fact],
            timers: TimerChanges {
                armed: after
                    .iter()
                    .filter(|t| !before.contains(t))
                    .copied()
                    .collect(),
                disarmed: before
                    .iter()
                    .filter(|t| !after.contains(t))
                    .copied()
                    .collect(),
            },
            ..Decision::default()
        };
        // The fact is applied with the target's model; a failed commit
        // stops the actor, so the next message reloads the durable pin.
        slot.model = target;
        self.commit(myself, slot, d, now, None, None).await?;
        Ok(MigrateOutcome::Migrated)
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
        dispatched: Option<OwnedSemaphorePermit>,
    ) -> Result<(), NodeError> {
        let ctx = &self.ctx;
        let model = slot.model.clone();
        let index_before = match slot.state.as_ref().filter(|_| !d.facts.is_empty()) {
            None => Vec::new(),
            Some(s) => match slot.index.take() {
                Some((m, keys)) if Arc::ptr_eq(&m, &model) => keys,
                _ => state::index::memberships(&model, s),
            },
        };
        let mut state = slot
            .state
            .take()
            .unwrap_or_else(|| CustomerState::empty(&model, &slot.customer));
        for f in &d.facts {
            state.apply(&model, f);
        }
        let entry = Entry {
            shard: ctx.shard,
            epoch: ctx.epoch,
            customer: slot.customer.clone(),
            model_version: state.model_version,
            model: model.clone(),
            seq: slot.fact_seq + 1,
            facts: d.facts,
            at: now,
            timers: d.timers,
            fired,
            state,
            index_before,
            index_after: None,
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
        let moved: Vec<RegionId> = entry
            .facts
            .iter()
            .filter_map(|f| match f {
                Fact::RegionMoved { region, .. } => Some(*region),
                _ => None,
            })
            .collect();
        let durable = ctx.journal.append(entry);
        // Proposed: the window's place goes to the next event while this
        // one waits for its commit.
        drop(dispatched);
        match durable.await {
            Ok(appended) => {
                slot.fact_seq += facts;
                ctx.timers_changed(appended.timers);
                for e in &escalated {
                    meters::escalation(&model, &market, e);
                }
                for (sla, end, elapsed) in ended {
                    meters::outcome(&model, &market, sla, end, view::seconds(elapsed));
                }
                for region in moved {
                    meters::transition(&model, &market, region);
                }
                // A decision that created nothing (an unknown customer)
                // leaves no state.
                slot.state = appended.state.exists.then_some(appended.state);
                // Without facts the keys did not change (nor were they
                // taken).
                if let Some(keys) = appended.index {
                    slot.index = Some((model.clone(), keys));
                }
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

/// What a decision answers with: allowed or not, and the customer's
/// states and owner by name in its own version.
fn decision_reply(
    model: &Model,
    s: &CustomerState,
    allowed: bool,
    reason: Option<String>,
    refusal: Option<Refusal>,
) -> DecisionReply {
    DecisionReply {
        allowed,
        reason,
        states: view::states(model, s),
        owner: view::owner(model, s).map(|t| model.team_name(t).to_owned()),
        refusal,
    }
}

fn moves(model: &Model, d: &Decision) -> Vec<RegionMove> {
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

fn sla_changes(model: &Model, d: &Decision) -> Vec<SlaChange> {
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
