//! The receiving side: an SLA monitor's subscription to the node's
//! escalations, opened before the first event is sent ("from now") and
//! followed until the run's horizon has passed.
//!
//! Only this run's customers count (their ids carry the run's prefix);
//! other traffic on the node is ignored. If the stream breaks, the
//! subscriber resumes from the last cursor it saw, as a monitor would;
//! delivery is at least once, so a repeat across a resume would show as a
//! duplicate, which is what the check is for.

use std::sync::Arc;

use crate::client::Authed;
use anyhow::Context;
use tokio::sync::watch;

use super::compare::{EscalationKey, Kind};
use crate::api::pb::escalations_client::EscalationsClient;
use crate::api::{from_timestamp, pb};
use crate::clock::{Clock, SystemClock};
use crate::engine::model::Model;
use crate::engine::{Timestamp, parse_escalation_id};

/// One escalation as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub key: EscalationKey,
    /// When its tier was due (the node's `due`).
    pub due: Timestamp,
    /// When it arrived here.
    pub at: Timestamp,
    pub late_attach: bool,
}

/// What the subscription collected.
#[derive(Debug, Default)]
pub struct Collected {
    pub received: Vec<Received>,
    /// This run's escalations whose id or kind did not parse (each one is
    /// unexpected).
    pub unreadable: Vec<String>,
    /// How many times the stream was resumed.
    pub resumes: u32,
    /// The last cursor seen: resume after it to see what came later.
    pub cursor: String,
}

/// A running subscription; [`Subscription::stop`] ends it.
pub struct Subscription {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Collected>,
}

impl Subscription {
    /// Subscribes from now; returns once the node has accepted the stream,
    /// so every escalation of events sent after this is delivered.
    pub async fn start(
        channel: Authed,
        model: Arc<Model>,
        prefix: String,
    ) -> anyhow::Result<Subscription> {
        let mut client = EscalationsClient::new(channel);
        let stream = client
            .subscribe(pb::SubscribeRequest::default())
            .await
            .context("cannot subscribe to the node's escalations")?
            .into_inner();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(client, stream, model, prefix, stopped));
        Ok(Subscription { stop, task })
    }

    /// Ends the subscription; what it received.
    pub async fn stop(self) -> Collected {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

async fn follow(
    mut client: EscalationsClient<Authed>,
    mut stream: tonic::Streaming<pb::EscalationEvent>,
    model: Arc<Model>,
    prefix: String,
    mut stopped: watch::Receiver<bool>,
) -> Collected {
    let mut out = Collected::default();
    let mut cursor = String::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => return out,
            msg = stream.message() => match msg {
                Ok(Some(e)) => {
                    cursor = e.cursor.clone();
                    out.cursor = e.cursor.clone();
                    take(&model, &prefix, e, &mut out);
                }
                Ok(None) | Err(_) => {
                    // The stream ended (the node restarted?): resume from
                    // the last cursor, until told to stop.
                    loop {
                        if *stopped.borrow() {
                            return out;
                        }
                        let request = pb::SubscribeRequest {
                            cursor: if cursor.is_empty() { "earliest".into() } else { cursor.clone() },
                            ..Default::default()
                        };
                        match client.subscribe(request).await {
                            Ok(s) => {
                                stream = s.into_inner();
                                out.resumes += 1;
                                break;
                            }
                            Err(_) => {
                                tokio::select! {
                                    _ = stopped.changed() => return out,
                                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Keeps `e` if it is one of this run's customers'.
fn take(model: &Model, prefix: &str, e: pb::EscalationEvent, out: &mut Collected) {
    let at = SystemClock.now();
    if !e.customer_id.starts_with(prefix) {
        return;
    }
    match parse(model, prefix, &e) {
        Some(key) => out.received.push(Received {
            key,
            due: e
                .due
                .as_ref()
                .and_then(|t| from_timestamp(t).ok())
                .unwrap_or(Timestamp(0)),
            at,
            late_attach: e.late_attach,
        }),
        None => out.unreadable.push(format!(
            "{} (kind {})",
            e.escalation_id,
            pb::EscalationKind::try_from(e.kind)
                .map(|k| k.as_str_name())
                .unwrap_or("unknown")
        )),
    }
}

/// The key of a received escalation, if its id and kind make sense.
pub fn parse(model: &Model, prefix: &str, e: &pb::EscalationEvent) -> Option<EscalationKey> {
    let r = parse_escalation_id(&e.escalation_id)?;
    let customer = r.customer.strip_prefix(prefix)?.parse().ok()?;
    let kind = match pb::EscalationKind::try_from(e.kind).ok()? {
        pb::EscalationKind::TierReached => Kind::TierReached,
        pb::EscalationKind::Breached => Kind::Breached,
        pb::EscalationKind::Resolved => Kind::Resolved,
        pb::EscalationKind::Unspecified => return None,
    };
    Some(EscalationKey {
        customer,
        sla: model.sla(r.sla)?,
        instance: r.instance,
        tier: r.tier,
        repeat: r.repeat,
        kind,
    })
}
