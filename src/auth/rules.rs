//! The rules: what each kind of principal may do with each call, in one
//! place. The gRPC services ask these questions before they call the node;
//! a denial becomes PERMISSION_DENIED naming its [`Rule`].
//!
//! | call                 | source                     | team                          | operator          |
//! |----------------------|----------------------------|-------------------------------|-------------------|
//! | Ingest, IngestBatch  | events of its own source   | no                            | any event         |
//! | Authorize            | no                         | as itself                     | as any team       |
//! | CheckMessage         | no                         | yes                           | yes               |
//! | GetCustomer          | the view, no timeline      | the view, no timeline         | the full view     |
//! | Subscribe            | no                         | its own escalations           | any filter        |
//! | ListOpen             | no                         | its own                       | any team, or all  |
//! | Acknowledge          | no                         | as itself, if notified or SLA owner | as any team, same condition |
//! | Models (publish, list, rollouts, ExportHistory) | no | no                       | yes               |
//! | ListCustomers, GetReport | yes                    | yes                           | yes               |
//!
//! "As itself": the team comes from the caller; an empty `team` in the
//! request means the caller's, another team's name is denied.

use std::fmt;

use super::Principal;

/// A rule a call can be denied by; its word is the `rule` label of
/// `handoff_denied_total` and appears in the PERMISSION_DENIED message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A source ingests only the events listed under its own name in the
    /// model's `[sources]`.
    OwnEventsOnly,
    /// Events come from sources (and operators); a team ingests nothing.
    SourcesIngest,
    /// Decisions and escalations are for teams (and operators); a source
    /// only ingests and reads views.
    TeamsOnly,
    /// A team acts, and reads escalations, only as itself.
    OwnTeamOnly,
    /// Only the notified team or the SLA's owner acknowledges an
    /// escalation (checked by the node against the escalation).
    NotifiedOrOwner,
    /// Model versions, rollouts and the history they are judged
    /// against are operators' business.
    OperatorsOnly,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OwnEventsOnly => "own_events_only",
            Rule::SourcesIngest => "sources_ingest",
            Rule::TeamsOnly => "teams_only",
            Rule::OwnTeamOnly => "own_team_only",
            Rule::NotifiedOrOwner => "notified_or_owner",
            Rule::OperatorsOnly => "operators_only",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call the rules refuse: which rule, and why in words a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: Rule,
    pub reason: String,
}

impl Denial {
    pub fn new(rule: Rule, reason: impl Into<String>) -> Denial {
        Denial {
            rule,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied by rule {}: {}", self.rule, self.reason)
    }
}

impl Principal {
    /// May this caller ingest an event of `source`? A source may send only
    /// its own events; whether the model knows the event type is the
    /// engine's question (an unknown type is `rejected` with the reason, as
    /// for any caller).
    pub fn may_ingest(&self, source: &str, event_type: &str) -> Result<(), Denial> {
        match self {
            Principal::Source(own) if own == source => Ok(()),
            Principal::Source(own) => Err(Denial::new(
                Rule::OwnEventsOnly,
                format!(
                    "{self} may send only events of source `{own}` (the model lists them under [sources] {own}); \
                     `{source}.{event_type}` belongs to `{source}`: send it with {source}'s credentials"
                ),
            )),
            Principal::Team(_) => Err(Denial::new(
                Rule::SourcesIngest,
                format!(
                    "{self} cannot ingest `{source}.{event_type}`: events come from their source system; \
                     use source:{source}'s credentials"
                ),
            )),
            Principal::Operator(_) | Principal::Anyone => Ok(()),
        }
    }

    /// The team a call acts as (Authorize, Acknowledge) or reads for
    /// (ListOpen). A team acts as itself: an empty `requested` means the
    /// caller's own team, another name is denied. An operator acts as the
    /// team it names (empty is left to the call: an error for Authorize and
    /// Acknowledge, "every team" for ListOpen).
    pub fn team_scope(&self, requested: &str, call: &str) -> Result<String, Denial> {
        match self {
            Principal::Team(own) if requested.is_empty() || requested == own => Ok(own.clone()),
            Principal::Team(own) => Err(Denial::new(
                Rule::OwnTeamOnly,
                format!(
                    "{self} may call {call} only as team `{own}`, not as `{requested}`: leave team empty or set it to `{own}`"
                ),
            )),
            Principal::Source(_) => Err(Denial::new(
                Rule::TeamsOnly,
                format!("{self} is a source: {call} is for teams and operators"),
            )),
            Principal::Operator(_) | Principal::Anyone => Ok(requested.to_owned()),
        }
    }

    /// The teams a Subscribe may watch. A team watches its own escalations
    /// (no filter means its own team); an operator may filter as it likes.
    pub fn watched_teams(&self, requested: Vec<String>) -> Result<Vec<String>, Denial> {
        match self {
            Principal::Team(own) => {
                if let Some(other) = requested.iter().find(|t| *t != own) {
                    return Err(Denial::new(
                        Rule::OwnTeamOnly,
                        format!(
                            "{self} may follow only team `{own}`'s escalations, not `{other}`'s: leave teams empty or set it to [\"{own}\"]"
                        ),
                    ));
                }
                Ok(vec![own.clone()])
            }
            Principal::Source(_) => Err(Denial::new(
                Rule::TeamsOnly,
                format!("{self} is a source: following escalations is for teams and operators"),
            )),
            Principal::Operator(_) | Principal::Anyone => Ok(requested),
        }
    }

    /// May this caller ask CheckMessage? Teams (who send messages) and
    /// operators may.
    pub fn may_check_messages(&self) -> Result<(), Denial> {
        match self {
            Principal::Source(_) => Err(Denial::new(
                Rule::TeamsOnly,
                format!("{self} is a source: CheckMessage is for teams and operators"),
            )),
            Principal::Team(_) | Principal::Operator(_) | Principal::Anyone => Ok(()),
        }
    }

    /// May this caller call `call` of the Models service (publish and list
    /// versions, set and read rollouts, export the history)? Only operators.
    pub fn may_manage_models(&self, call: &str) -> Result<(), Denial> {
        match self {
            Principal::Operator(_) | Principal::Anyone => Ok(()),
            Principal::Source(_) | Principal::Team(_) => Err(Denial::new(
                Rule::OperatorsOnly,
                format!(
                    "{self} may not call {call}: model versions, rollouts and customers' history are for operators"
                ),
            )),
        }
    }

    /// May this caller read a customer's timeline? Only operators: it is
    /// the customer's whole history across every team and source (what
    /// each source sent, every team's denied attempts). Others get the
    /// rest of the view, which is what they act on.
    pub fn may_read_timeline(&self) -> bool {
        match self {
            Principal::Operator(_) | Principal::Anyone => true,
            Principal::Source(_) | Principal::Team(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(s: &str) -> Principal {
        Principal::Source(s.into())
    }
    fn team(t: &str) -> Principal {
        Principal::Team(t.into())
    }
    fn operator() -> Principal {
        Principal::Operator("alice".into())
    }

    #[test]
    fn a_source_ingests_only_its_own_events() {
        assert_eq!(
            source("billing").may_ingest("billing", "payment_succeeded"),
            Ok(())
        );
        let d = source("billing")
            .may_ingest("crm", "deal_won")
            .expect_err("not billing's");
        assert_eq!(d.rule, Rule::OwnEventsOnly);
        assert!(d.reason.contains("crm.deal_won"), "{d}");
        let d = team("sales")
            .may_ingest("crm", "deal_won")
            .expect_err("teams do not ingest");
        assert_eq!(d.rule, Rule::SourcesIngest);
        assert_eq!(operator().may_ingest("crm", "deal_won"), Ok(()));
        assert_eq!(Principal::Anyone.may_ingest("crm", "deal_won"), Ok(()));
    }

    #[test]
    fn a_team_acts_only_as_itself() {
        let p = team("provisioning");
        assert_eq!(p.team_scope("", "Authorize"), Ok("provisioning".into()));
        assert_eq!(
            p.team_scope("provisioning", "Authorize"),
            Ok("provisioning".into())
        );
        let d = p
            .team_scope("billing", "Acknowledge")
            .expect_err("another team");
        assert_eq!(d.rule, Rule::OwnTeamOnly);
        assert!(
            d.to_string().starts_with(
                "denied by rule own_team_only: team:provisioning may call Acknowledge"
            ),
            "{d}"
        );
        let d = source("billing")
            .team_scope("", "ListOpen")
            .expect_err("a source");
        assert_eq!(d.rule, Rule::TeamsOnly);
        assert_eq!(
            operator().team_scope("billing", "Authorize"),
            Ok("billing".into())
        );
        assert_eq!(operator().team_scope("", "ListOpen"), Ok(String::new()));
    }

    #[test]
    fn a_team_follows_only_its_own_escalations() {
        let p = team("provisioning");
        assert_eq!(p.watched_teams(vec![]), Ok(vec!["provisioning".into()]));
        assert_eq!(
            p.watched_teams(vec!["provisioning".into()]),
            Ok(vec!["provisioning".into()])
        );
        let d = p
            .watched_teams(vec!["provisioning".into(), "cx_director".into()])
            .expect_err("another team");
        assert_eq!(d.rule, Rule::OwnTeamOnly);
        assert!(d.reason.contains("cx_director"), "{d}");
        assert_eq!(
            source("billing").watched_teams(vec![]).map_err(|d| d.rule),
            Err(Rule::TeamsOnly)
        );
        assert_eq!(operator().watched_teams(vec![]), Ok(vec![]));
        assert_eq!(
            operator().watched_teams(vec!["cx_director".into()]),
            Ok(vec!["cx_director".into()])
        );
    }

    #[test]
    fn only_operators_call_the_models_service() {
        assert_eq!(operator().may_manage_models("ExportHistory"), Ok(()));
        assert_eq!(Principal::Anyone.may_manage_models("ExportHistory"), Ok(()));
        for who in [team("marketing"), source("crm")] {
            let d = who.may_manage_models("ExportHistory").expect_err("denied");
            assert_eq!(d.rule, Rule::OperatorsOnly);
            assert!(d.reason.contains("ExportHistory"), "{}", d.reason);
        }
    }

    #[test]
    fn messages_are_checked_by_teams_and_timelines_read_by_operators() {
        assert_eq!(team("marketing").may_check_messages(), Ok(()));
        assert_eq!(operator().may_check_messages(), Ok(()));
        assert_eq!(
            source("crm").may_check_messages().map_err(|d| d.rule),
            Err(Rule::TeamsOnly)
        );
        assert!(operator().may_read_timeline());
        assert!(Principal::Anyone.may_read_timeline());
        assert!(!team("support").may_read_timeline());
        assert!(!source("billing").may_read_timeline());
    }

    #[test]
    fn only_operators_manage_models() {
        assert_eq!(operator().may_manage_models("PublishModel"), Ok(()));
        assert_eq!(Principal::Anyone.may_manage_models("SetRollout"), Ok(()));
        for p in [source("billing"), Principal::Team("support".into())] {
            let d = p
                .may_manage_models("SetRollout")
                .expect_err("not an operator");
            assert_eq!(d.rule, Rule::OperatorsOnly);
            assert!(d.reason.contains("SetRollout"), "{d}");
        }
    }
}
