//! Who may do what: authorize (recording denials), check_message, and who
//! may acknowledge an escalation.

use super::*;

#[test]
fn authorize_reads_the_current_states_and_records_denials() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 1, 1);
    h.ev("c1", "a1", "access.access_granted", 2, 2);
    let ask = |h: &mut Harness, team: &str, action: &str| {
        h.run(
            "c1",
            Input::Authorize {
                team: team.into(),
                action: action.into(),
            },
            t(3),
        )
    };
    assert_eq!(ask(&mut h, "success", "qbr").allowed, Some(true));
    // Re-onboarding denied to an active customer, naming states and owners.
    let d = ask(&mut h, "concierge", "send_onboarding");
    assert_eq!(d.allowed, Some(false));
    let reason = d.reason.expect("a reason");
    assert!(
        reason.contains("lifecycle is active (owner success)"),
        "{reason}"
    );
    assert!(
        reason.contains("billing is good_standing (owner billing)"),
        "{reason}"
    );
    assert!(matches!(
        h.state("c1").timeline.back(),
        Some(TimelineEntry::Denied { .. })
    ));
    let d = ask(&mut h, "janitors", "mop");
    assert!(d.reason.expect("a reason").contains("janitors"));
    assert!(matches!(
        h.state("c1").timeline.back(),
        Some(TimelineEntry::Denied { .. })
    ));
}

#[test]
fn check_message_allows_the_union_and_vetoes_suppressed_classes() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 1, 1);
    h.ev("c1", "a1", "access.access_granted", 2, 2);
    let s = h.state("c1").clone();
    assert!(view::check_message(&h.model, &s, "renewal").0);
    h.ev("c1", "x1", "billing.dispute_opened", 3, 3);
    let s = h.state("c1").clone();
    let (ok, reason) = view::check_message(&h.model, &s, "renewal");
    assert!(!ok);
    assert!(reason.expect("reason").contains("billing is disputed"));
    let (ok, reason) = view::check_message(&h.model, &s, "winback");
    assert!(!ok);
    assert!(
        reason
            .expect("reason")
            .contains("no current state allows winback")
    );
    let (ok, reason) = view::check_message(&h.model, &s, "carrier_pigeon");
    assert!(!ok);
    assert!(reason.expect("reason").contains("carrier_pigeon"));
}

#[test]
fn only_the_notified_team_or_the_owner_may_acknowledge() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    let fired = h.fire_until("c1", 190);
    let re = fired.iter().find(|e| e.tier == 2).expect("re-escalation");
    let id = re.id("c1", "access_after_payment");
    let ack = |h: &mut Harness, team: &str| {
        h.run(
            "c1",
            Input::Acknowledge {
                escalation_id: id.clone(),
                team: team.into(),
                note: String::new(),
            },
            t(200),
        )
    };
    let d = ack(&mut h, "marketing");
    assert_eq!(d.allowed, Some(false));
    assert!(
        d.reason
            .expect("reason")
            .contains("cx_director (notified) or provisioning")
    );
    // Without a team, the answer names the flag and the teams that may.
    let d = ack(&mut h, "");
    assert_eq!(d.allowed, Some(false));
    assert!(d.facts.is_empty());
    let reason = d.reason.expect("reason");
    assert!(
        reason.starts_with("--team is required")
            && reason.contains(
                "pass --team cx_director (the notified team) or --team provisioning (the SLA's owner)"
            ),
        "{reason}"
    );
    assert_eq!(
        ack(&mut h, "provisioning").allowed,
        Some(true),
        "the owner may"
    );
    assert_eq!(ack(&mut h, "cx_director").allowed, Some(true));
    // Acknowledging does not stop later tiers.
    let later = h.fire_until("c1", 310);
    assert_eq!(later.len(), 1);
    // Resolved escalations may still be acknowledged.
    h.ev("c1", "a1", "access.access_granted", 320, 320);
    assert_eq!(ack(&mut h, "cx_director").allowed, Some(true));
    let d = h.run(
        "c1",
        Input::Acknowledge {
            escalation_id: "c1:access_after_payment:9:0:0".into(),
            team: "provisioning".into(),
            note: String::new(),
        },
        t(321),
    );
    assert_eq!(d.allowed, Some(false));
}
