//! An acknowledgement: who may, and what it records.

use super::super::fact::Fact;
use super::super::model::Model;
use super::super::state::CustomerState;
use super::super::time::Timestamp;
use super::*;

pub(super) fn decide_ack(
    model: &Model,
    s: &CustomerState,
    escalation_id: &str,
    team: &str,
    note: &str,
    now: Timestamp,
) -> Decision {
    let not_found = || {
        Decision::refuse(
            Refusal::NotFound,
            format!(
                "no escalation `{escalation_id}` for customer `{}`",
                s.customer
            ),
        )
    };
    let Some(r) = super::super::fact::parse_escalation_id(escalation_id) else {
        return not_found();
    };
    if r.customer != &*s.customer {
        return not_found();
    }
    let Some(sla) = model.sla(r.sla) else {
        return not_found();
    };
    let owner = model.sla_spec(sla).owner;
    let open = s
        .core
        .running(sla)
        .filter(|i| i.number == r.instance)
        .and_then(|i| {
            i.fired
                .iter()
                .find(|f| f.escalation.tier == r.tier && f.escalation.repeat == r.repeat)
        });
    let (notified, already) = match open {
        Some(f) => (f.escalation.team, f.acknowledged),
        None => match s.resolved.iter().find(|x| {
            x.sla == sla && x.instance == r.instance && x.tier == r.tier && x.repeat == r.repeat
        }) {
            Some(x) => (x.team, true),
            None => return not_found(),
        },
    };
    if team.is_empty() {
        // Only here are the teams that may acknowledge known: name them.
        let teams = if notified == owner {
            format!(
                "--team {} (the notified team and the SLA's owner)",
                model.team_name(owner)
            )
        } else {
            format!(
                "--team {} (the notified team) or --team {} (the SLA's owner)",
                model.team_name(notified),
                model.team_name(owner)
            )
        };
        return Decision::refuse(
            Refusal::TeamMissing,
            format!(
                "--team is required (`team` in the request; only a team's own token implies it): \
                 to acknowledge `{escalation_id}` pass {teams}"
            ),
        );
    }
    let Some(team_id) = model.team(team) else {
        return Decision::refuse(
            Refusal::NotPermitted,
            format!("team `{team}` is not declared in the model"),
        );
    };
    if team_id != notified && team_id != owner {
        let who = if notified == owner {
            model.team_name(owner).to_owned()
        } else {
            format!(
                "{} (notified) or {} (the SLA's owner)",
                model.team_name(notified),
                model.team_name(owner)
            )
        };
        return Decision::refuse(
            Refusal::NotPermitted,
            format!("{team} may not acknowledge `{escalation_id}`: only {who} may"),
        );
    }
    let mut d = Decision::answer(true, None);
    if !already {
        d.facts.push(Fact::Acknowledged {
            sla,
            instance: r.instance,
            tier: r.tier,
            repeat: r.repeat,
            team: team_id,
            note: note.into(),
            at: now,
        });
    }
    d
}
