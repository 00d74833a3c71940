//! Escalations for SLA monitors: a live stream that resumes after a cursor
//! without gaps, and the open escalations of a team.
//!
//! Every escalation is an entry of its shard's append-only log, numbered by
//! the journal in commit order. A cursor is the position reached in every
//! shard's log (`h1-<seq>-<seq>-...`, one number per shard), so a monitor
//! that reconnects with the last cursor it saw gets exactly what came after.
//!
//! The log keeps `escalation_retention` (see `retention`): a cursor older
//! than that resumes at the oldest retained entry, and since what is left
//! is always a contiguous run of seqs, the reader counts the seqs missing
//! after its position and reports them on the next event it delivers from
//! that shard ([`StreamedEscalation::skipped`]); a gap is never silent.
//! A subscriber reads the logs from the store through a bounded channel: a
//! slow one holds up only its own reader (back-pressure), never the node's
//! memory.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{InvalidReason, Node, NodeError};
use crate::clock::Clock;
use crate::engine::model::Severity;
use crate::engine::{EscalationEntry, EscalationKind, Timestamp};
use crate::journal::Journal;
use crate::store::{Store, codec};

/// Entries a subscriber reads from one shard's log at a time.
const READ_BATCH: usize = 256;
/// Events buffered per subscriber before its reader waits.
const STREAM_BUFFER: usize = 256;

/// A position in every shard's escalation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub Vec<u64>);

impl Cursor {
    const PREFIX: &'static str = "h1";

    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(3 + self.0.len() * 4);
        s.push_str(Self::PREFIX);
        for seq in &self.0 {
            s.push('-');
            s.push_str(&seq.to_string());
        }
        s
    }

    /// Parses a cursor of a node with `shards` shards.
    pub fn parse(text: &str, shards: u32) -> Result<Cursor, NodeError> {
        let bad = |why: &str| {
            NodeError::Invalid(
                InvalidReason::Cursor,
                format!(
                    "cursor `{text}` {why}: pass a cursor exactly as an escalation event carried it, \"earliest\", or nothing for \"from now\""
                ),
            )
        };
        let mut parts = text.split('-');
        if parts.next() != Some(Self::PREFIX) {
            return Err(bad("is not a Handoff cursor"));
        }
        let seqs: Vec<u64> = parts
            .map(|p| p.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("has a part that is not a number"))?;
        if seqs.len() != shards as usize {
            return Err(bad(&format!(
                "has {} positions but this node has {shards} shards",
                seqs.len()
            )));
        }
        Ok(Cursor(seqs))
    }
}

/// Which escalations a subscriber wants; empty lists mean all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationFilter {
    pub teams: Vec<String>,
    pub markets: Vec<String>,
    pub min_severity: Option<Severity>,
}

impl EscalationFilter {
    pub fn matches(&self, e: &EscalationEntry) -> bool {
        (self.teams.is_empty() || self.teams.contains(&e.team))
            && (self.markets.is_empty() || self.markets.contains(&e.market))
            && self.min_severity.is_none_or(|m| e.severity >= m)
    }
}

/// One escalation event as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedEscalation {
    /// Resume after this event by passing it back.
    pub cursor: String,
    pub entry: EscalationEntry,
    /// Entries of this event's shard that were pruned (retention) between
    /// the subscriber's position and this event: set on the first event
    /// of the shard after the gap, 0 otherwise.
    pub skipped: u64,
}

/// A subscriber's end of the stream: events in log order, then an error
/// if reading the log failed; it closes when the node stops.
pub type EscalationReceiver = mpsc::Receiver<Result<StreamedEscalation, NodeError>>;

/// An open escalation, for ListOpen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEscalation {
    pub entry: EscalationEntry,
    pub acknowledged: bool,
}

impl Node {
    /// The cursor of "earliest": just before the oldest retained entry of
    /// every shard (the end of a shard's log when it has none).
    pub fn cursor_earliest(&self) -> Result<Cursor, NodeError> {
        (0..self.config.shards)
            .map(|s| {
                Ok(match self.store.escalations(s, None, 1)?.first() {
                    Some((oldest, _)) => oldest.saturating_sub(1),
                    None => self.journal.durable_seq(s),
                })
            })
            .collect::<Result<_, NodeError>>()
            .map(Cursor)
    }

    /// The cursor of "now": the end of every shard's log.
    pub fn cursor_now(&self) -> Cursor {
        Cursor(
            (0..self.config.shards)
                .map(|s| self.journal.durable_seq(s))
                .collect(),
        )
    }

    /// Streams escalations after `cursor` (`""`: from now; `"earliest"`:
    /// from the oldest retained), filtered. A cursor older than retention
    /// resumes at the oldest retained entry, and the first event from each
    /// shard with a gap says how many entries were pruned (`skipped`).
    /// The stream ends when the node
    /// shuts down; the subscriber resumes from its last cursor. Also
    /// returns where the stream starts: a subscriber that has seen no event
    /// yet resumes from there, so "from now" loses nothing across a
    /// reconnect either.
    pub fn subscribe(
        &self,
        filter: EscalationFilter,
        cursor: &str,
    ) -> Result<(Cursor, EscalationReceiver), NodeError> {
        let start = match cursor {
            "" => self.cursor_now(),
            "earliest" => self.cursor_earliest()?,
            text => {
                let c = Cursor::parse(text, self.config.shards)?;
                let end = self.cursor_now();
                if c.0.iter().zip(&end.0).any(|(at, last)| at > last) {
                    return Err(NodeError::Invalid(
                        InvalidReason::Cursor,
                        format!(
                            "cursor `{text}` is ahead of this node's escalation log (which ends at {}): \
                         it comes from another node or data directory; resume with \"earliest\" instead",
                            end.encode()
                        ),
                    ));
                }
                c
            }
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let reader = Reader {
            live_from: self.clock.now(),
            clock: self.clock.clone(),
            store: self.store.clone(),
            journal: self.journal.clone(),
            shutdown: self.shutdown.subscribe(),
            filter,
            skipped: vec![0; start.0.len()],
            pos: start.clone(),
            tx,
        };
        tokio::spawn(reader.run());
        metrics::gauge!("handoff_subscribers").increment(1.0);
        Ok((start, rx))
    }

    /// Open escalations (fired, not resolved), of one team or of all when
    /// `team` is empty.
    pub fn list_open(&self, team: &str) -> Result<Vec<OpenEscalation>, NodeError> {
        let model = self.model();
        if !team.is_empty() && model.team(team).is_none() {
            return Err(NodeError::Invalid(
                InvalidReason::Undeclared,
                format!(
                    "team `{team}` is not declared in the model; declared teams: {}",
                    model.spec.teams.join(", ")
                ),
            ));
        }
        let team = (!team.is_empty()).then_some(team);
        let rows = self.store.open_escalations(team)?;
        rows.into_iter()
            .map(|(bytes, acknowledged)| {
                Ok(OpenEscalation {
                    entry: codec::decode_escalation(&bytes)?,
                    acknowledged,
                })
            })
            .collect()
    }
}

struct Reader {
    store: Arc<dyn Store>,
    journal: Arc<dyn Journal>,
    shutdown: watch::Receiver<bool>,
    filter: EscalationFilter,
    pos: Cursor,
    /// Per shard, entries pruned between `pos` and the next event this
    /// reader delivers from that shard; handed to that event, then reset.
    skipped: Vec<u64>,
    tx: mpsc::Sender<Result<StreamedEscalation, NodeError>>,
    clock: Arc<dyn Clock>,
    /// When the subscription began: escalations fired since are live, and
    /// their lag from due to the stream is measured
    /// (`handoff_escalation_stream_lag_seconds`); a replay of older ones
    /// is not.
    live_from: Timestamp,
}

impl Reader {
    async fn run(mut self) {
        let mut commits = self.journal.commits();
        loop {
            commits.mark_unchanged();
            match self.catch_up().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(()) => break,
            }
            tokio::select! {
                changed = commits.changed() => if changed.is_err() { break },
                _ = self.tx.closed() => break,
                _ = self.shutdown.changed() => break,
            }
        }
        metrics::gauge!("handoff_subscribers").decrement(1.0);
    }

    /// Sends what is durable past the cursor; `Ok(true)` if it read a full
    /// batch somewhere (more may follow), `Err` when the subscriber left.
    async fn catch_up(&mut self) -> Result<bool, ()> {
        let mut more = false;
        for shard in 0..self.pos.0.len() {
            if *self.shutdown.borrow() {
                return Err(());
            }
            let durable = self.journal.durable_seq(shard as u32);
            if self.pos.0[shard] >= durable {
                continue;
            }
            let rows =
                match self
                    .store
                    .escalations(shard as u32, Some(self.pos.0[shard]), READ_BATCH)
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = self.tx.send(Err(NodeError::from(e))).await;
                        return Err(());
                    }
                };
            more |= rows.len() == READ_BATCH;
            for (seq, bytes) in rows {
                if seq > durable {
                    break;
                }
                // The retained log is a contiguous run of seqs (pruning
                // removes a prefix), so seqs missing after the position
                // were pruned: counted, and reported with the next event.
                self.skipped[shard] += seq.saturating_sub(self.pos.0[shard]).saturating_sub(1);
                self.pos.0[shard] = seq;
                let entry = match codec::decode_escalation(&bytes) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = self.tx.send(Err(NodeError::from(e))).await;
                        return Err(());
                    }
                };
                if !self.filter.matches(&entry) {
                    continue;
                }
                let event = StreamedEscalation {
                    cursor: self.pos.encode(),
                    entry,
                    skipped: std::mem::take(&mut self.skipped[shard]),
                };
                // A stop ends the stream even while a slow subscriber
                // holds the channel full.
                let lag = (event.entry.kind != EscalationKind::Resolved
                    && !event.entry.late_attach
                    && event.entry.fired_at >= self.live_from)
                    .then_some(event.entry.due);
                tokio::select! {
                    sent = self.tx.send(Ok(event)) => if sent.is_err() { return Err(()) },
                    _ = self.shutdown.changed() => return Err(()),
                }
                // The last hop the node measures of a firing's way to a
                // monitor (after `handoff_timer_lateness_seconds`, due to
                // decided): due to handed to the subscriber's stream.
                if let Some(due) = lag {
                    let late = (self.clock.now().0 - due.0).max(0);
                    metrics::histogram!("handoff_escalation_stream_lag_seconds")
                        .record(late as f64 / 1e6);
                }
            }
        }
        Ok(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_name_their_mistakes() {
        let c = Cursor(vec![0, 12, 7]);
        assert_eq!(c.encode(), "h1-0-12-7");
        assert_eq!(Cursor::parse("h1-0-12-7", 3), Ok(c));
        let e = Cursor::parse("h1-0-12", 3).expect_err("wrong count");
        assert!(e.to_string().contains("3 shards"));
        assert!(Cursor::parse("x", 3).is_err());
        assert!(Cursor::parse("h1-a-b-c", 3).is_err());
    }
}
