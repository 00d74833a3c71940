//! Parsing and checking a model file: TOML in, a [`Model`] or every problem
//! out, each with file, line and the rule broken.
//!
//! A model author fixes a model from `handoff model check`'s output, so the
//! loader reports every problem it can find in one pass, sorted by line,
//! each in words that name the rule and what to do. The work is split by
//! section:
//!
//! - `document`: the spanned TOML walk (lines, unknown keys, wrong types);
//! - `scope`: declared names and resolving references to them;
//! - `build`: the top level, `[model]`, teams, classes, sources, proofs;
//! - `regions`, `calendars`, `slas`, `markets`: those sections;
//! - `graph_checks`: reachability and cycles of automatic transitions.

use std::fmt;
use std::path::Path;

use toml::de::DeTable;

use super::Model;
#[cfg(test)]
use super::{ClassId, SourceId};

mod build;
mod calendars;
mod document;
mod graph_checks;
mod markets;
mod regions;
mod scope;
mod slas;

/// One problem in a model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// What is wrong and what to do, in a model author's words.
    pub message: String,
}

impl fmt::Display for ModelError {
    /// `file:line: message`; a problem with no line (the file could not be
    /// read) is `file: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// Every problem found in a model file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelErrors(pub Vec<ModelError>);

impl fmt::Display for ModelErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Parses and checks model text; `file` names it in messages.
///
/// On failure every problem found is returned, sorted by line. A TOML
/// syntax error stops the load at once (the rest cannot be read reliably):
/// it is the one problem returned.
pub fn load(file: &str, text: &str) -> Result<Model, ModelErrors> {
    let located = |(line, message): (usize, String)| ModelError {
        file: file.to_owned(),
        line,
        message,
    };
    let root =
        DeTable::parse(text).map_err(|e| ModelErrors(vec![located(syntax_error(text, &e))]))?;
    let mut spec = build::build(text, &root)
        .map_err(|problems| ModelErrors(problems.into_iter().map(located).collect()))?;
    spec.source = Some(text.into());
    Ok(Model::new(spec))
}

/// The line and message of a TOML syntax error.
fn syntax_error(text: &str, error: &toml::de::Error) -> (usize, String) {
    let offset = error.span().map_or(0, |s| s.start);
    let line = document::Problems::new(text).line_of(offset);
    let what = error.message().trim_end();
    (line, format!("this is not valid TOML: {what}"))
}

/// Reads, parses and checks a model file.
pub fn load_file(path: &Path) -> Result<Model, ModelErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ModelErrors(vec![ModelError {
            file: name.clone(),
            line: 0,
            message: format!("cannot read the model file: {e}"),
        }])
    })?;
    load(&name, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[calendars.*]`, an SLA's `calendar` and `pause_in`, and the
    /// overlay's `calendar`.
    mod calendars;
    use crate::engine::model::{
        Duration, EventTypeId, FromStates, MarketId, ProofId, RegionId, Severity, SlaId, SlaStart,
        StateId, TeamId, TierAt, Trigger, parse_percent,
    };

    const SAAS: &str = include_str!("../../../examples/saas.toml");
    const BROKEN: &str = include_str!("../../../tests/models/broken.toml");

    /// A small valid model; tests break one thing in it at a time.
    const MINI: &str = r#"teams = ["sales", "billing"]
message_classes = ["transactional"]

[model]
name = "mini"
version = 1

[sources]
crm = ["deal_won", "deal_lost"]
billing = ["paid", "refunded"]

[proofs.contract]
from = ["crm.deal_won"]

[regions.life]
initial = "lead"
default_owner = "sales"

[regions.life.states.lead]
messages = ["transactional"]

[regions.life.states.customer]
owner = "billing"
requires = ["contract"]

[[regions.life.transitions]]
from = "lead"
on = "crm.deal_won"
to = "customer"

[slas.welcome]
owner = "billing"
start = ["crm.deal_won"]
stop = ["billing.paid"]
within = "1h"
within_bounds = ["30m", "2h"]

[[slas.welcome.tiers]]
at = "100%"
severity = "high"

[markets.US]
"#;

    /// `MINI` with each `(from, to)` replaced once (each `from` must occur).
    fn mini(edits: &[(&str, &str)]) -> String {
        let mut text = MINI.to_owned();
        for (from, to) in edits {
            assert!(text.contains(from), "MINI has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        text
    }

    /// `MINI` with `extra` appended.
    fn mini_plus(extra: &str) -> String {
        format!("{MINI}\n{extra}")
    }

    /// The 1-based line of the first occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in the text"));
        text[..at].matches('\n').count() + 1
    }

    fn problems(text: &str) -> Vec<ModelError> {
        match load("m.toml", text) {
            Ok(_) => panic!("the model loaded, but a problem was expected"),
            Err(errors) => errors.0,
        }
    }

    /// Asserts that loading `text` reports, on the line of `needle`, a
    /// problem whose message contains every fragment.
    #[track_caller]
    fn expect_problem(text: &str, needle: &str, fragments: &[&str]) {
        let line = line_of(text, needle);
        let found = problems(text);
        let hit = found
            .iter()
            .any(|e| e.line == line && fragments.iter().all(|f| e.message.contains(f)));
        assert!(
            hit,
            "expected a problem on line {line} containing {fragments:?}; got:\n{}",
            ModelErrors(found)
        );
    }

    /// Asserts that no problem message contains `fragment`.
    #[track_caller]
    fn expect_no_problem_about(text: &str, fragment: &str) {
        let found = problems(text);
        assert!(
            found.iter().all(|e| !e.message.contains(fragment)),
            "no problem should mention {fragment:?}; got:\n{}",
            ModelErrors(found)
        );
    }

    #[track_caller]
    fn loads(text: &str) -> Model {
        load("m.toml", text).unwrap_or_else(|e| panic!("the model should load:\n{e}"))
    }

    // ------------------------------------------------------------ valid models

    #[test]
    fn mini_loads() {
        let m = loads(MINI);
        assert_eq!(m.spec.name, "mini");
        assert_eq!(m.spec.version, 1);
    }

    #[test]
    fn saas_interns_names_in_file_order() {
        let m = loads(SAAS);
        assert_eq!(m.spec.teams[0], "marketing");
        assert_eq!(m.team("cx_director"), Some(TeamId(7)));
        assert_eq!(m.class("winback"), Some(ClassId(6)));
        // events: source by source, in [sources] order
        let billing = m.source("billing").expect("billing source");
        assert_eq!(billing, SourceId(1));
        assert_eq!(m.event(billing, "payment_succeeded"), Some(EventTypeId(4)));
        assert_eq!(
            m.event_type(EventTypeId(4)).qualified,
            "billing.payment_succeeded"
        );
        assert_eq!(m.spec.events.len(), 4 + 7 + 2 + 3 + 5);
        let names: Vec<&str> = m.spec.proofs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["contract", "payment", "access", "at_risk"]);
        let regions: Vec<&str> = m.spec.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(regions, ["lifecycle", "billing", "support"]);
        let markets: Vec<&str> = m.spec.markets.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(markets, ["US", "DE", "BR"]);
        assert_eq!(m.market("BR"), Some(MarketId(2)));
        assert_eq!(m.sla("first_reply"), Some(SlaId(2)));
    }

    #[test]
    fn saas_states_owners_and_transitions() {
        let m = loads(SAAS);
        let lifecycle = m.region(RegionId(0));
        assert_eq!(lifecycle.initial, StateId(0));
        assert_eq!(lifecycle.default_owner, None);
        let paid = m.state(RegionId(0), StateId(2));
        assert_eq!(paid.name, "paid");
        assert_eq!(m.team_name(paid.owner), "provisioning");
        assert_eq!(paid.requires, [ProofId(0), ProofId(1)]);
        assert_eq!(paid.allow[0].1, ["grant_access", "retry_provisioning"]);
        assert_eq!(lifecycle.transitions.len(), 9);
        assert_eq!(
            lifecycle.transitions[2].trigger,
            Trigger::When(vec![ProofId(2)])
        );
        assert_eq!(
            lifecycle.transitions[5].from,
            FromStates::States(vec![StateId(1), StateId(2), StateId(3), StateId(4)])
        );
        // billing: every state owned by the region's default owner
        let billing = m.region(RegionId(1));
        let owner = billing.default_owner.expect("billing has a default owner");
        assert_eq!(m.team_name(owner), "billing");
        assert!(billing.states.iter().all(|s| s.owner == owner));
        assert_eq!(billing.transitions[2].from, FromStates::Any);
        let disputed = &billing.states[2];
        assert_eq!(disputed.suppress.len(), 3);
    }

    #[test]
    fn saas_slas_and_tiers() {
        let m = loads(SAAS);
        let access = m.sla_spec(SlaId(0));
        assert_eq!(access.name, "access_after_payment");
        assert_eq!(access.start, SlaStart::InState(RegionId(0), StateId(2)));
        assert_eq!(access.handoff, "billing->provisioning");
        assert_eq!(access.within, Duration::from_secs(3600));
        assert_eq!(
            access.within_bounds,
            Some((Duration::from_secs(900), Duration::from_secs(4 * 3600)))
        );
        assert_eq!(access.tiers.len(), 3);
        assert_eq!(
            access.tiers[0].at,
            TierAt::Percent(parse_percent("50%").expect("valid"))
        );
        assert_eq!(access.tiers[0].severity, Severity::Low);
        assert!(access.tiers[1].is_breach());
        assert_eq!(
            access.tiers[2].at,
            TierAt::AfterBreach {
                after: Duration::from_secs(7200),
                every: Some(Duration::from_secs(7200)),
            }
        );
        assert_eq!(m.team_name(access.tiers[2].notify), "cx_director");
        let first_reply = m.sla_spec(SlaId(2));
        assert!(matches!(&first_reply.start, SlaStart::Events(e) if e.len() == 1));
        assert_eq!(first_reply.stop.len(), 2);
        assert_eq!(m.sla_spec(SlaId(3)).within_bounds, None);
    }

    #[test]
    fn saas_market_overlays() {
        let m = loads(SAAS);
        let br = &m.spec.markets[2].overlay;
        assert_eq!(br.slas.len(), 2);
        assert_eq!(br.slas[0].0, SlaId(0));
        assert_eq!(br.slas[0].1.within, Some(Duration::from_secs(30 * 60)));
        let boleto = m
            .event(m.source("billing").expect("billing"), "boleto_settled")
            .expect("boleto_settled");
        assert_eq!(br.proof_sources, [(ProofId(1), vec![boleto])]);
        assert_eq!(br.transitions.len(), 1);
        assert_eq!(br.transitions[0].0, RegionId(0));
        assert_eq!(br.transitions[0].1.trigger, Trigger::On(boleto));
        assert!(m.spec.markets[0].overlay.slas.is_empty());
        // the rule tables see the overlay
        let br_rules = m.rules(MarketId(2));
        assert_eq!(br_rules.slas[0].within, Duration::from_secs(30 * 60));
        assert_eq!(
            m.rules(MarketId(0)).slas[0].within,
            Duration::from_secs(3600)
        );
        assert_eq!(
            br_rules.on_target(RegionId(0), StateId(1), boleto),
            Some(StateId(2))
        );
    }

    #[test]
    fn a_tier_without_notify_notifies_the_owner() {
        let m = loads(MINI);
        let sla = m.sla_spec(SlaId(0));
        assert_eq!(m.team_name(sla.tiers[0].notify), "billing");
    }

    #[test]
    fn optional_sections_default_to_empty() {
        let m = loads("[model]\nversion = 3\n");
        assert_eq!(m.spec.version, 3);
        assert!(m.spec.teams.is_empty() && m.spec.regions.is_empty());
        assert!(!m.declares_markets());
    }

    #[test]
    fn market_codes_are_not_checked_against_iso() {
        let m = loads(&mini_plus("[markets.Mars]\n"));
        assert_eq!(m.market("Mars"), Some(MarketId(1)));
    }

    #[test]
    fn percentages_may_have_decimals_and_the_same_type_may_be_in_two_sources() {
        loads(&mini(&[("at = \"100%\"", "at = \"12.5%\"")]));
        loads(&mini(&[(
            "crm = [\"deal_won\"",
            "crm = [\"paid\", \"deal_won\"",
        )]));
    }

    // ------------------------------------------------------------ reporting

    #[test]
    fn a_syntax_error_is_one_problem_with_its_line() {
        let text = mini(&[("within = \"1h\"", "within = \"1h")]);
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{}", ModelErrors(found.clone()));
        assert_eq!(found[0].line, line_of(&text, "within = \"1h"));
        assert!(found[0].message.contains("not valid TOML"));
        assert_eq!(found[0].file, "m.toml");
    }

    #[test]
    fn broken_model_reports_every_mistake_on_its_line() {
        // (a text on the line, lines down from it, what the problem says)
        let expected: &[(&str, usize, &str)] = &[
            ("\"sales\"]", 0, "team \"sales\" is declared twice"),
            ("colour", 0, "unknown key `colour`"),
            (
                "version = \"1\"",
                0,
                "`version` of [model] must be an integer",
            ),
            (
                "payment_succeded",
                0,
                "undeclared event \"billing.payment_succeded\"",
            ),
            ("\"concierge\"", 0, "undeclared team \"concierge\""),
            ("[regions.lifecycle.states.paid]", 0, "has no owner"),
            ("mesages", 0, "unknown key `mesages`"),
            ("\"payed\"", 0, "undeclared state \"payed\""),
            (
                "to = \"payed\"",
                2,
                "form a cycle: onboarding -> paid -> onboarding",
            ),
            ("[regions.support.states.open]", 0, "cannot be reached"),
            (
                "[[regions.support.transitions]]",
                0,
                "has both `on` and `when`",
            ),
            ("within = \"0s\"", 0, "must be positive"),
            ("150%", 0, "tier percentages lie in (0%, 100%]"),
            ("urgent", 0, "one of low, medium, high, critical"),
            ("within = \"30m\"", 0, "has no within_bounds"),
            ("transition = [", 0, "unknown key `transition`"),
        ];
        let found = problems(BROKEN);
        for (needle, down, fragment) in expected {
            let line = line_of(BROKEN, needle) + down;
            assert!(
                found
                    .iter()
                    .any(|e| e.line == line && e.message.contains(fragment)),
                "expected {fragment:?} on line {line}; got:\n{}",
                ModelErrors(found.clone())
            );
        }
        assert_eq!(
            found.len(),
            expected.len(),
            "{}",
            ModelErrors(found.clone())
        );
        assert!(
            found.windows(2).all(|w| w[0].line <= w[1].line),
            "sorted by line"
        );
        assert!(found.iter().all(|e| e.file == "m.toml"));
    }

    #[test]
    fn display_is_file_line_message() {
        let e = ModelError {
            file: "a.toml".into(),
            line: 3,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.toml:3: bad");
        let unreadable = ModelError { line: 0, ..e };
        assert_eq!(unreadable.to_string(), "a.toml: bad");
    }

    // ------------------------------------------------------------ unknown keys and types

    #[test]
    fn unknown_keys_are_named_everywhere() {
        let cases: &[(String, &str)] = &[
            (mini(&[("teams =", "tems = [\"x\"]\nteams =")]), "tems"),
            (
                mini(&[("version = 1", "version = 1\nrevision = 2")]),
                "revision",
            ),
            (
                mini(&[(
                    "from = [\"crm.deal_won\"]",
                    "from = [\"crm.deal_won\"]\nuntil = []",
                )]),
                "until",
            ),
            (
                mini(&[("default_owner =", "owner = \"sales\"\ndefault_owner =")]),
                "owner",
            ),
            (
                mini(&[("messages = [", "mesages = []\nmessages = [")]),
                "mesages",
            ),
            (
                mini(&[(
                    "on = \"crm.deal_won\"",
                    "on = \"crm.deal_won\"\nunless = []",
                )]),
                "unless",
            ),
            (
                mini(&[("within = \"1h\"", "within = \"1h\"\ntarget = \"1h\"")]),
                "target",
            ),
            (
                mini(&[(
                    "severity = \"high\"",
                    "severity = \"high\"\nteam = \"sales\"",
                )]),
                "team",
            ),
            (
                mini(&[("[markets.US]", "[markets.US]\ncurrency = \"USD\"")]),
                "currency",
            ),
            (
                mini_plus(
                    "[markets.BR]\ntransitions = [ { region = \"life\", from = \"lead\", on = \"crm.deal_lost\", to = \"customer\", after = 1 } ]",
                ),
                "after",
            ),
            (
                mini_plus(
                    "[markets.BR]\nslas = { welcome = { within = \"45m\", deadline = \"1h\" } }",
                ),
                "deadline",
            ),
        ];
        for (text, key) in cases {
            let needle = format!("{key} =");
            expect_problem(text, &needle, &[&format!("unknown key `{key}`")]);
        }
    }

    #[test]
    fn unknown_keys_suggest_the_nearest_allowed_one() {
        let text = mini(&[("requires = [", "requiers = [")]);
        expect_problem(
            &text,
            "requiers",
            &["unknown key `requiers`", "did you mean `requires`?"],
        );
    }

    #[test]
    fn wrong_types_are_problems() {
        let cases: &[(String, &str, &str)] = &[
            (
                mini(&[("version = 1", "version = \"1\"")]),
                "version",
                "must be an integer",
            ),
            (
                mini(&[("teams = [\"sales\", \"billing\"]", "teams = \"sales\"")]),
                "teams",
                "must be a list of strings",
            ),
            (
                mini(&[("owner = \"billing\"\nrequires", "owner = 3\nrequires")]),
                "owner = 3",
                "must be a string",
            ),
            (
                mini(&[("within = \"1h\"", "within = 60")]),
                "within = 60",
                "must be a string",
            ),
            (
                mini(&[("from = \"lead\"", "from = 1")]),
                "from = 1",
                "a state, a list of states or \"*\"",
            ),
            (
                mini(&[("messages = [\"transactional\"]", "messages = [1]")]),
                "messages = [1]",
                "must list strings",
            ),
            (
                mini(&[("crm = [", "crm = 1\ncrmx = [")]),
                "crm = 1",
                "must list its event types",
            ),
            (
                mini_plus("[markets.BR]\nslas = 3"),
                "slas = 3",
                "must be a table",
            ),
        ];
        for (text, needle, fragment) in cases {
            expect_problem(text, needle, &[fragment]);
        }
    }

    #[test]
    fn versions_are_whole_numbers_that_fit() {
        let text = mini(&[("version = 1", "version = -1")]);
        expect_problem(&text, "version = -1", &["whole number"]);
    }

    // ------------------------------------------------------------ names

    #[test]
    fn undeclared_teams_are_named_with_the_declared_ones() {
        let cases: &[(String, &str)] = &[
            (
                mini(&[(
                    "owner = \"billing\"\nrequires",
                    "owner = \"biling\"\nrequires",
                )]),
                "biling",
            ),
            (
                mini(&[("default_owner = \"sales\"", "default_owner = \"sale\"")]),
                "\"sale\"",
            ),
            (
                mini(&[(
                    "messages = [\"transactional\"]",
                    "allow = { salez = [\"call\"] }",
                )]),
                "salez =",
            ),
            (
                mini(&[(
                    "severity = \"high\"",
                    "severity = \"high\"\nnotify = \"ops\"",
                )]),
                "\"ops\"",
            ),
            (
                mini(&[("owner = \"billing\"\nstart", "owner = \"finance\"\nstart")]),
                "finance",
            ),
        ];
        for (text, needle) in cases {
            expect_problem(
                text,
                needle,
                &["undeclared team", "declared teams: sales, billing"],
            );
        }
        let text = mini(&[(
            "owner = \"billing\"\nrequires",
            "owner = \"biling\"\nrequires",
        )]);
        expect_problem(&text, "biling", &["did you mean \"billing\"?"]);
    }

    #[test]
    fn undeclared_message_classes() {
        for key in ["messages", "suppress"] {
            let text = mini(&[(
                "messages = [\"transactional\"]",
                &format!("{key} = [\"promo\"]"),
            )]);
            expect_problem(
                &text,
                "promo",
                &[
                    "undeclared message class \"promo\"",
                    "declared message classes: transactional",
                ],
            );
        }
    }

    #[test]
    fn undeclared_events_everywhere_they_are_named() {
        let cases: &[String] = &[
            mini(&[("from = [\"crm.deal_won\"]", "from = [\"crm.deal_wonn\"]")]),
            mini(&[(
                "from = [\"crm.deal_won\"]",
                "from = [\"crm.deal_won\"]\nrevoked_by = [\"crm.deal_wonn\"]",
            )]),
            mini(&[("on = \"crm.deal_won\"", "on = \"crm.deal_wonn\"")]),
            mini(&[("start = [\"crm.deal_won\"]", "start = [\"crm.deal_wonn\"]")]),
            mini(&[("stop = [\"billing.paid\"]", "stop = [\"crm.deal_wonn\"]")]),
            mini(&[(
                "stop = [\"billing.paid\"]",
                "stop = []\ncancel = [\"crm.deal_wonn\"]",
            )]),
            mini_plus("[markets.BR]\nproof_sources = { contract = [\"crm.deal_wonn\"] }"),
            mini_plus("[markets.BR]\nslas = { welcome = { stop = [\"crm.deal_wonn\"] } }"),
        ];
        for text in cases {
            expect_problem(
                text,
                "crm.deal_wonn",
                &[
                    "undeclared event \"crm.deal_wonn\"",
                    "did you mean \"crm.deal_won\"?",
                ],
            );
        }
        let no_dot = mini(&[("on = \"crm.deal_won\"", "on = \"deal_won\"")]);
        expect_problem(
            &no_dot,
            "on = \"deal_won\"",
            &["not an event", "source.type"],
        );
        let no_source = mini(&[("on = \"crm.deal_won\"", "on = \"erp.deal_won\"")]);
        expect_problem(
            &no_source,
            "erp.deal_won",
            &[
                "undeclared source \"erp\"",
                "declared sources: crm, billing",
            ],
        );
    }

    #[test]
    fn undeclared_proofs() {
        let cases: &[String] = &[
            mini(&[("requires = [\"contract\"]", "requires = [\"contrakt\"]")]),
            mini(&[("on = \"crm.deal_won\"", "when = [\"contrakt\"]")]),
            mini(&[("stop = [\"billing.paid\"]", "unless = [\"contrakt\"]")]),
            mini_plus("[markets.BR]\nproof_sources = { contrakt = [\"crm.deal_lost\"] }"),
        ];
        for text in cases {
            expect_problem(
                text,
                "contrakt",
                &["undeclared proof \"contrakt\"", "declared proofs: contract"],
            );
        }
    }

    #[test]
    fn undeclared_states_regions_and_slas() {
        let cases: &[(String, &str, &str)] = &[
            (
                mini(&[("initial = \"lead\"", "initial = \"led\"")]),
                "led",
                "undeclared state \"led\"",
            ),
            (
                mini(&[("from = \"lead\"", "from = [\"lead\", \"prospect\"]")]),
                "prospect",
                "undeclared state \"prospect\"",
            ),
            (
                mini(&[("to = \"customer\"", "to = \"custmer\"")]),
                "custmer",
                "undeclared state \"custmer\"",
            ),
            (
                mini(&[("start = [\"crm.deal_won\"]", "in_state = \"life.gone\"")]),
                "life.gone",
                "undeclared state \"gone\"",
            ),
            (
                mini(&[("start = [\"crm.deal_won\"]", "in_state = \"lief.lead\"")]),
                "lief.lead",
                "undeclared region \"lief\"",
            ),
            (
                mini(&[("start = [\"crm.deal_won\"]", "in_state = \"lead\"")]),
                "in_state = \"lead\"",
                "region.state",
            ),
            (
                mini_plus(
                    "[markets.BR]\ntransitions = [ { region = \"lyfe\", from = \"lead\", on = \"crm.deal_lost\", to = \"customer\" } ]",
                ),
                "lyfe",
                "undeclared region \"lyfe\"",
            ),
            (
                mini_plus(
                    "[markets.BR]\ntransitions = [ { region = \"life\", from = \"lead\", on = \"crm.deal_lost\", to = \"gone\" } ]",
                ),
                "transitions = [",
                "undeclared state \"gone\"",
            ),
            (
                mini_plus("[markets.BR]\nslas = { welcom = { within = \"45m\" } }"),
                "welcom =",
                "undeclared SLA \"welcom\"",
            ),
        ];
        for (text, needle, fragment) in cases {
            expect_problem(text, needle, &[fragment]);
        }
    }

    #[test]
    fn names_are_letters_digits_underscores_and_dashes() {
        let cases: &[(String, &str, &str)] = &[
            (
                mini(&[(
                    "\"sales\", \"billing\"]",
                    "\"sales\", \"billing\", \"ops.team\"]",
                )]),
                "ops.team",
                "team name \"ops.team\"",
            ),
            (
                mini(&[("[\"transactional\"]\n", "[\"transactional\", \"a:b\"]\n")]),
                "a:b",
                "message class name",
            ),
            (
                mini(&[("crm = [", "\"c.rm\" = [\"x\"]\ncrm = [")]),
                "c.rm",
                "source name",
            ),
            (
                mini(&[("\"deal_won\", \"deal_lost\"", "\"deal_won\", \"deal lost\"")]),
                "deal lost",
                "event type name",
            ),
            (
                mini_plus("[proofs.\"a.b\"]\nfrom = []"),
                "a.b",
                "proof name",
            ),
            (
                mini_plus("[regions.\"r:1\"]\ninitial = \"x\"\nstates = {}"),
                "r:1",
                "region name",
            ),
            (
                mini_plus("[regions.life.states.\"x.y\"]"),
                "x.y",
                "state name",
            ),
            (
                mini_plus("[slas.\"s s\"]\nowner = \"sales\""),
                "s s",
                "SLA name",
            ),
            (mini_plus("[markets.\"B.R\"]"), "B.R", "market name"),
        ];
        for (text, needle, fragment) in cases {
            expect_problem(text, needle, &[fragment, "letters, digits"]);
        }
    }

    #[test]
    fn declaring_twice_is_a_problem() {
        let team = mini(&[(
            "\"sales\", \"billing\"]",
            "\"sales\", \"billing\", \"sales\"]",
        )]);
        expect_problem(&team, "teams", &["team \"sales\" is declared twice"]);
        let class = mini(&[(
            "[\"transactional\"]\n",
            "[\"transactional\", \"transactional\"]\n",
        )]);
        expect_problem(
            &class,
            "message_classes",
            &["message class \"transactional\" is declared twice"],
        );
        let event = mini(&[(
            "\"deal_won\", \"deal_lost\"",
            "\"deal_won\", \"deal_lost\", \"deal_won\"",
        )]);
        expect_problem(
            &event,
            "crm =",
            &["event type \"deal_won\" is declared twice in source \"crm\""],
        );
    }

    // ------------------------------------------------------------ required keys

    #[test]
    fn required_keys_are_named() {
        let cases: &[(String, &str, &str)] = &[
            (
                mini(&[("[model]\nname = \"mini\"\nversion = 1\n", "")]),
                "teams",
                "no [model] table",
            ),
            (
                mini(&[("version = 1\n", "")]),
                "[model]",
                "has no `version`",
            ),
            (
                mini(&[("from = [\"crm.deal_won\"]\n", "")]),
                "[proofs.contract]",
                "has no `from`",
            ),
            (
                mini(&[("initial = \"lead\"\n", "")]),
                "[regions.life]",
                "has no `initial`",
            ),
            (
                mini(&[("owner = \"billing\"\nstart", "start")]),
                "[slas.welcome]",
                "has no `owner`",
            ),
            (
                mini(&[("within = \"1h\"\n", "")]),
                "[slas.welcome]",
                "has no `within`",
            ),
            (
                mini(&[("severity = \"high\"\n", "")]),
                "[[slas.welcome.tiers]]",
                "has no `severity`",
            ),
            (
                mini(&[("from = \"lead\"\n", "")]),
                "[[regions.life.transitions]]",
                "has no `from`",
            ),
            (
                mini(&[("to = \"customer\"\n", "")]),
                "[[regions.life.transitions]]",
                "has no `to`",
            ),
            (
                mini_plus("[regions.other]\ninitial = \"x\""),
                "[regions.other]",
                "has no `states`",
            ),
            (
                mini_plus(
                    "[markets.BR]\ntransitions = [ { from = \"lead\", on = \"crm.deal_lost\", to = \"customer\" } ]",
                ),
                "transitions = [",
                "has no `region`",
            ),
        ];
        for (text, needle, fragment) in cases {
            expect_problem(text, needle, &[fragment]);
        }
    }

    #[test]
    fn severities_are_the_four_words() {
        let text = mini(&[("severity = \"high\"", "severity = \"HIGH\"")]);
        expect_problem(&text, "HIGH", &["low, medium, high, critical"]);
    }

    // ------------------------------------------------------------ transitions

    #[test]
    fn a_transition_has_exactly_one_of_on_and_when() {
        let both = mini(&[(
            "on = \"crm.deal_won\"",
            "on = \"crm.deal_won\"\nwhen = [\"contract\"]",
        )]);
        expect_problem(
            &both,
            "[[regions.life.transitions]]",
            &["has both `on` and `when`"],
        );
        let neither = mini(&[("on = \"crm.deal_won\"\n", "")]);
        expect_problem(
            &neither,
            "[[regions.life.transitions]]",
            &["has neither `on` nor `when`"],
        );
        let market = mini_plus(
            "[markets.BR]\ntransitions = [ { region = \"life\", from = \"lead\", to = \"customer\" } ]",
        );
        expect_problem(&market, "transitions = [", &["has neither `on` nor `when`"]);
    }

    #[test]
    fn star_is_written_alone() {
        let text = mini(&[("from = \"lead\"", "from = [\"*\"]")]);
        expect_problem(&text, "from = [\"*\"]", &["write from = \"*\" alone"]);
        let m = loads(&mini(&[("from = \"lead\"", "from = \"*\"")]));
        assert_eq!(m.region(RegionId(0)).transitions[0].from, FromStates::Any);
    }

    // ------------------------------------------------------------ graph checks

    const UNREACHABLE: &str = "[regions.life.states.archived]\n";

    #[test]
    fn every_state_is_reachable_from_the_initial_one() {
        let text = mini_plus(UNREACHABLE);
        expect_problem(
            &text,
            "[regions.life.states.archived]",
            &[
                "state \"archived\" in region \"life\" cannot be reached from the initial state \"lead\"",
            ],
        );
    }

    #[test]
    fn reachability_ignores_requires_and_counts_star_and_when() {
        let star = mini_plus(&format!(
            "{UNREACHABLE}requires = [\"contract\"]\n[[regions.life.transitions]]\nfrom = \"*\"\non = \"crm.deal_lost\"\nto = \"archived\"\n"
        ));
        loads(&star);
        let when = mini_plus(&format!(
            "{UNREACHABLE}[[regions.life.transitions]]\nfrom = \"customer\"\nwhen = [\"contract\"]\nto = \"archived\"\n"
        ));
        loads(&when);
    }

    #[test]
    fn market_transitions_do_not_make_a_state_reachable() {
        let text = mini_plus(&format!(
            "{UNREACHABLE}[markets.BR]\ntransitions = [ {{ region = \"life\", from = \"lead\", on = \"crm.deal_lost\", to = \"archived\" }} ]\n"
        ));
        expect_problem(
            &text,
            "[regions.life.states.archived]",
            &["cannot be reached", "market transitions do not count"],
        );
    }

    #[test]
    fn a_misspelt_target_is_not_also_reported_as_unreachable() {
        let text = mini(&[("to = \"customer\"", "to = \"custmer\"")]);
        expect_no_problem_about(&text, "cannot be reached");
    }

    const BACK: &str =
        "[[regions.life.transitions]]\nfrom = \"customer\"\nwhen = [\"contract\"]\nto = \"lead\"\n";

    #[test]
    fn automatic_transitions_may_not_cycle_in_the_core() {
        let text = mini(&[("on = \"crm.deal_won\"", "when = [\"contract\"]")]) + "\n" + BACK;
        expect_problem(
            &text,
            "[[regions.life.transitions]]",
            &[
                "automatic (`when`) transitions of region \"life\" form a cycle: lead -> customer -> lead",
            ],
        );
        let self_loop = mini_plus(
            "[[regions.life.transitions]]\nfrom = \"customer\"\nwhen = [\"contract\"]\nto = \"customer\"\n",
        );
        expect_problem(
            &self_loop,
            "[[regions.life.transitions]]\nfrom = \"customer\"",
            &["form a cycle: customer -> customer"],
        );
    }

    #[test]
    fn automatic_transitions_may_not_cycle_with_a_market() {
        let market = "[markets.BR]\ntransitions = [ { region = \"life\", from = \"lead\", when = [\"contract\"], to = \"customer\" } ]\n";
        let text = mini_plus(&format!("{BACK}{market}"));
        expect_problem(
            &text,
            "transitions = [ { region",
            &[
                "with market \"BR\", the automatic (`when`) transitions of region \"life\" form a cycle",
            ],
        );
        // without the market, the core alone has no cycle
        loads(&mini_plus(BACK));
    }

    #[test]
    fn a_core_cycle_is_not_reported_again_per_market() {
        let text = mini(&[("on = \"crm.deal_won\"", "when = [\"contract\"]")])
            + "\n"
            + BACK
            + "[markets.BR]\ntransitions = [ { region = \"life\", from = \"lead\", when = [\"contract\"], to = \"customer\" } ]\n";
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{}", ModelErrors(found));
        assert!(!found[0].message.contains("market"));
    }

    // ------------------------------------------------------------ owners

    #[test]
    fn every_state_has_an_owner() {
        let text = mini(&[("default_owner = \"sales\"\n", "")]);
        expect_problem(
            &text,
            "[regions.life.states.lead]",
            &[
                "state \"lead\" in region \"life\" has no owner",
                "default_owner",
            ],
        );
    }

    #[test]
    fn an_undeclared_owner_is_not_also_a_missing_owner() {
        let state = mini(&[(
            "owner = \"billing\"\nrequires",
            "owner = \"nobody\"\nrequires",
        )]);
        expect_no_problem_about(&state, "has no owner");
        let region = mini(&[("default_owner = \"sales\"", "default_owner = \"nobody\"")]);
        expect_problem(&region, "nobody", &["undeclared team \"nobody\""]);
        expect_no_problem_about(&region, "has no owner");
        assert_eq!(problems(&region).len(), 1);
    }

    // ------------------------------------------------------------ SLAs

    #[test]
    fn an_sla_has_exactly_one_of_start_and_in_state() {
        let both = mini(&[(
            "start = [\"crm.deal_won\"]",
            "start = [\"crm.deal_won\"]\nin_state = \"life.customer\"",
        )]);
        expect_problem(
            &both,
            "[slas.welcome]",
            &["has both `start` and `in_state`"],
        );
        let neither = mini(&[("start = [\"crm.deal_won\"]\n", "")]);
        expect_problem(
            &neither,
            "[slas.welcome]",
            &["has neither `start` and `in_state`"],
        );
        let m = loads(&mini(&[(
            "start = [\"crm.deal_won\"]",
            "in_state = \"life.customer\"",
        )]));
        assert_eq!(
            m.sla_spec(SlaId(0)).start,
            SlaStart::InState(RegionId(0), StateId(1))
        );
    }

    #[test]
    fn tier_percentages_lie_in_zero_to_a_hundred() {
        for pct in ["0%", "100.5%", "150%"] {
            let text = mini(&[("at = \"100%\"", &format!("at = \"{pct}\""))]);
            expect_problem(&text, pct, &["tier percentages lie in (0%, 100%]"]);
        }
        let text = mini(&[("at = \"100%\"", "at = \"half\"")]);
        expect_problem(&text, "half", &["not a percentage"]);
    }

    #[test]
    fn a_tier_has_exactly_one_of_at_and_after_breach() {
        let both = mini(&[("at = \"100%\"", "at = \"100%\"\nafter_breach = \"1h\"")]);
        expect_problem(
            &both,
            "[[slas.welcome.tiers]]",
            &["has both `at` and `after_breach`"],
        );
        let neither = mini(&[("at = \"100%\"\n", "")]);
        expect_problem(
            &neither,
            "[[slas.welcome.tiers]]",
            &["has neither `at` and `after_breach`"],
        );
    }

    #[test]
    fn every_goes_only_with_after_breach_and_is_positive() {
        let with_at = mini(&[("at = \"100%\"", "at = \"100%\"\nevery = \"1h\"")]);
        expect_problem(&with_at, "every =", &["goes only with `after_breach`"]);
        let zero = mini(&[("at = \"100%\"", "after_breach = \"1h\"\nevery = \"0s\"")]);
        expect_problem(
            &zero,
            "every =",
            &["`every` of tier 0 of SLA \"welcome\" must be positive"],
        );
        let m = loads(&mini(&[(
            "at = \"100%\"",
            "after_breach = \"0s\"\nevery = \"1d\"",
        )]));
        let at = m.sla_spec(SlaId(0)).tiers[0].at;
        assert_eq!(
            at,
            TierAt::AfterBreach {
                after: Duration(0),
                every: Some(Duration::from_secs(86400))
            }
        );
    }

    #[test]
    fn within_is_a_positive_duration() {
        let zero = mini(&[("within = \"1h\"", "within = \"0m\"")]);
        expect_problem(&zero, "within = \"0m\"", &["must be positive"]);
        let bad = mini(&[("within = \"1h\"", "within = \"1 hour\"")]);
        expect_problem(&bad, "1 hour", &["not a duration"]);
    }

    #[test]
    fn within_bounds_are_ordered_and_hold_the_core_within() {
        let reversed = mini(&[("[\"30m\", \"2h\"]", "[\"2h\", \"30m\"]")]);
        expect_problem(&reversed, "within_bounds", &["low <= high"]);
        let outside = mini(&[("within = \"1h\"", "within = \"3h\"")]);
        expect_problem(
            &outside,
            "within = \"3h\"",
            &["outside its within_bounds [30m, 2h]"],
        );
        let shape = mini(&[("[\"30m\", \"2h\"]", "[\"30m\"]")]);
        expect_problem(&shape, "within_bounds", &["must be [low, high]"]);
        loads(&mini(&[("within = \"1h\"", "within = \"2h\"")]));
    }

    // ------------------------------------------------------------ overlays

    #[test]
    fn a_market_within_needs_bounds_and_stays_inside_them() {
        let no_bounds = mini(&[("within_bounds = [\"30m\", \"2h\"]\n", "")])
            + "slas = { welcome = { within = \"45m\" } }\n";
        expect_problem(&no_bounds, "45m", &["has no within_bounds"]);
        let outside = mini_plus("[markets.BR]\nslas = { welcome = { within = \"3h\" } }");
        expect_problem(
            &outside,
            "3h",
            &["outside the SLA's within_bounds [30m, 2h]"],
        );
        let m = loads(&mini_plus(
            "[markets.BR]\nslas = { welcome = { within = \"2h\", start = [\"crm.deal_lost\"] } }",
        ));
        let (_, overlay) = &m.spec.markets[1].overlay.slas[0];
        assert_eq!(overlay.within, Some(Duration::from_secs(7200)));
        assert_eq!(overlay.start.len(), 1);
    }

    #[test]
    fn a_market_may_not_add_start_to_an_in_state_sla() {
        let text = mini(&[("start = [\"crm.deal_won\"]", "in_state = \"life.customer\"")])
            + "\n[markets.BR]\nslas = { welcome = { start = [\"crm.deal_lost\"] } }\n";
        expect_problem(
            &text,
            "crm.deal_lost\"] }",
            &["a market may not add start events"],
        );
    }

    #[test]
    fn market_transitions_are_kept_in_order_and_may_be_automatic() {
        let m = loads(&mini_plus(
            "[[markets.BR.transitions]]\nregion = \"life\"\nfrom = \"lead\"\nwhen = [\"contract\"]\nto = \"customer\"\n",
        ));
        let (region, t) = &m.spec.markets[1].overlay.transitions[0];
        assert_eq!(*region, RegionId(0));
        assert_eq!(t.trigger, Trigger::When(vec![ProofId(0)]));
    }

    // ------------------------------------------------------------ limits

    #[test]
    fn a_non_ascii_unit_is_a_problem_on_its_line_in_every_duration_key() {
        // `2é` once split the string inside `é` and panicked the loader.
        let cases = [
            mini(&[("within = \"1h\"", "within = \"2é\"")]),
            mini(&[("[\"30m\", \"2h\"]", "[\"30m\", \"2é\"]")]),
            mini(&[("at = \"100%\"", "after_breach = \"2é\"")]),
            mini(&[("at = \"100%\"", "after_breach = \"1h\"\nevery = \"2é\"")]),
            mini_plus("[markets.BR]\nslas = { welcome = { within = \"2é\" } }"),
        ];
        for text in &cases {
            expect_problem(
                text,
                "2é",
                &["`2é` is not a duration", "`é` is not a unit", "like `2h`"],
            );
        }
        for unit in ["日", "🦀", "\u{301}"] {
            let text = mini(&[("within = \"1h\"", &format!("within = \"2{unit}\""))]);
            expect_problem(&text, unit, &["is not a duration"]);
        }
    }

    #[test]
    fn a_percentage_that_overflows_is_a_problem() {
        for (pct, says) in [
            ("1e400%", "not a percentage"),
            ("99999999999999999999999%", "far over 100%"),
            ("18446744073709551616%", "far over 100%"),
            ("0.0000001%", "at most 6"),
            ("50é%", "not a percentage"),
            ("5日", "not a percentage"),
        ] {
            let text = mini(&[("at = \"100%\"", &format!("at = \"{pct}\""))]);
            expect_problem(&text, pct, &[says]);
        }
    }

    #[test]
    fn durations_longer_than_a_century_are_problems() {
        for long in [
            "99999999999999d",
            "99999999d",
            "36501d",
            "9223372036854775808s",
        ] {
            let text = mini(&[
                ("within_bounds = [\"30m\", \"2h\"]\n", ""),
                ("within = \"1h\"", &format!("within = \"{long}\"")),
            ]);
            expect_problem(&text, long, &["too long a duration", "36500d"]);
        }
        // At the limit, within + after_breach + every is computed when the
        // model loads (once it overflowed and panicked there): it fits.
        let m = loads(&mini(&[
            ("within_bounds = [\"30m\", \"2h\"]\n", ""),
            ("within = \"1h\"", "within = \"36500d\""),
            (
                "at = \"100%\"",
                "after_breach = \"36500d\"\nevery = \"36500d\"",
            ),
        ]));
        let rules = &m.rules(MarketId(0)).slas[0];
        assert_eq!(rules.tier_offsets[0], Duration(2 * Duration::MAX.0));
    }

    /// `MINI` with `n` more teams declared (`t0`, `t1`, ...).
    fn with_teams(n: usize) -> String {
        let names: Vec<String> = (0..n).map(|i| format!("\"t{i}\"")).collect();
        mini(&[(
            "teams = [\"sales\", \"billing\"]",
            &format!("teams = [\"sales\", \"billing\", {}]", names.join(", ")),
        )])
    }

    #[test]
    fn a_model_declares_at_most_65535_names_of_a_kind() {
        loads(&with_teams(65_535 - 2));
        let text = with_teams(65_535 - 1);
        expect_problem(
            &text,
            "teams =",
            &[
                "team \"t65533\" is one too many",
                "at most 65535 team names",
            ],
        );
    }

    #[test]
    fn a_model_declares_at_most_65535_markets() {
        let mut text = MINI.to_owned();
        for i in 0..65_535 {
            text.push_str(&format!("[markets.M{i}]\n"));
        }
        // MINI declares US: M65534 is the 65536th.
        expect_problem(
            &text,
            "[markets.M65534]",
            &["market \"M65534\" is one too many", "at most 65535 markets"],
        );
    }

    #[test]
    fn an_sla_has_at_most_65535_tiers() {
        let tier = "[[slas.welcome.tiers]]\nat = \"50%\"\nseverity = \"low\"\n";
        let text = mini_plus(&tier.repeat(65_535));
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{}", ModelErrors(found.clone()));
        assert!(
            found[0]
                .message
                .contains("tier 65535 of SLA \"welcome\" is one too many"),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].line, text.lines().count() - 2);
    }

    #[test]
    fn a_model_whose_rule_tables_would_not_fit_is_a_problem() {
        // 8193 states x 8193 event types: 67 million slots (134 MB) for
        // one market, past the limit; once it was allocated as it was.
        let n = 8_193;
        let types: Vec<String> = (0..n).map(|i| format!("\"e{i}\"")).collect();
        let mut text = mini(&[(
            "billing = [\"paid\", \"refunded\"]",
            &format!("billing = [\"paid\", \"refunded\", {}]", types.join(", ")),
        )]);
        text.push_str("\n[regions.big]\ninitial = \"s0\"\ndefault_owner = \"sales\"\n");
        for i in 0..n {
            text.push_str(&format!("[regions.big.states.s{i}]\n"));
        }
        expect_problem(&text, "[regions.big]", &["too large to run"]);
    }
}
