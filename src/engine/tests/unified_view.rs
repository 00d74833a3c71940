//! The unified view of a customer: owners, proofs, SLAs and the timeline.

use super::*;

#[test]
fn the_view_shows_owners_proofs_slas_and_the_timeline() {
    let mut h = Harness::new(saas());
    h.ev("c1", "d1", "crm.deal_won", 0, 0);
    h.ev("c1", "p1", "billing.payment_succeeded", 10, 10);
    h.fire_until("c1", 70);
    let v = view::customer_view(&h.model, h.state("c1"), 0, t(70));
    assert_eq!(v.owner.as_deref(), Some("provisioning"));
    assert_eq!(v.regions[0].state, "paid");
    assert_eq!(v.regions[0].since, Some(t(10)));
    let payment = v
        .proofs
        .iter()
        .find(|p| p.proof == "payment")
        .expect("payment proof");
    assert_eq!(
        payment.established_by.as_ref().map(|e| e.id.as_str()),
        Some("p1")
    );
    let sla = v
        .slas
        .iter()
        .find(|s| s.sla == "access_after_payment")
        .expect("open");
    assert!(sla.breached);
    assert_eq!(sla.next_tier.as_ref().map(|n| n.at), Some(Some(t(190))));
    assert_eq!(v.escalations.len(), 2);
    assert_eq!(v.timeline[0].kind.as_str(), "escalation", "newest first");
    let v = view::customer_view(&h.model, h.state("c1"), 1, t(70));
    assert_eq!(v.timeline.len(), 1);
}
