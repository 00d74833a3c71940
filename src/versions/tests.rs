//! The registry over a memory store: publishing, the bad input it
//! refuses with nothing changed, rollouts, and what a reopen reads back.

use std::sync::Arc;

use super::*;
use crate::engine::model::load;
use crate::store::MemoryStore;

const FAST: &str = include_str!("../../tests/models/fast.toml");

/// The test model as version `version`, with the SLA `access_after_payment`
/// lasting `within`.
fn text(version: u32, within: &str) -> String {
    FAST.replace("version = 1", &format!("version = {version}"))
        .replace("within = \"4s\"", &format!("within = \"{within}\""))
}

fn model(text: &str) -> Model {
    load("test.toml", text).expect("the test model loads")
}

fn within(m: &Model) -> i64 {
    let sla = m.sla("access_after_payment").expect("declared");
    m.sla_spec(sla).within.micros()
}

fn open(store: &Arc<MemoryStore>, start: &str) -> Versions {
    Versions::open(store.clone(), &model(start)).expect("opens")
}

#[test]
fn the_start_model_is_published_and_every_market_starts_on_it() {
    let store = Arc::new(MemoryStore::new());
    let v = open(&store, &text(1, "4s"));
    assert_eq!(v.rollouts(), Rollouts::new(1));
    assert_eq!(v.list().len(), 1);
    assert!(v.list()[0].stored);
    assert_eq!(v.for_new("BR", "c1").spec.version, 1);
}

#[test]
fn versions_rollouts_and_pins_survive_a_reopen() {
    let store = Arc::new(MemoryStore::new());
    let v = open(&store, &text(1, "4s"));
    let p = v.publish("v2.toml", &text(2, "2s")).expect("publishes");
    assert!(p.new);
    assert!(!v.publish("v2.toml", &text(2, "2s")).expect("no-op").new);
    v.set_rollout("BR", 1, Some(2), Some(10.0)).expect("sets");
    drop(v);

    let v = open(&store, &text(1, "4s"));
    assert_eq!(
        v.list().iter().map(|p| p.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(within(&v.model(1)), 4_000_000);
    assert_eq!(within(&v.model(2)), 2_000_000);
    let br = v.rollouts().entry("BR").to_owned();
    assert_eq!(br.candidate.map(|c| c.buckets), Some(1_000));
    for i in 0..200 {
        let c = format!("c{i}");
        let want = if rollout::bucket(&c) < 1_000 { 2 } else { 1 };
        assert_eq!(v.for_new("BR", &c).spec.version, want, "{c}");
        assert_eq!(v.for_new("DE", &c).spec.version, 1, "{c}");
    }
}

#[test]
fn a_new_start_version_becomes_the_default() {
    let store = Arc::new(MemoryStore::new());
    let v = open(&store, &text(1, "4s"));
    v.set_rollout("BR", 1, None, None).expect("sets");
    drop(v);
    let v = open(&store, &text(2, "2s"));
    assert_eq!(v.rollouts().default, Rollout::stable(2));
    assert_eq!(v.rollouts().entry("BR"), &Rollout::stable(1));
    drop(v);
    // Starting with an older published file changes nothing.
    let v = open(&store, &text(1, "4s"));
    assert_eq!(v.rollouts().default, Rollout::stable(2));
}

#[test]
fn an_older_version_loads_after_a_newer_one_added_names() {
    let store = Arc::new(MemoryStore::new());
    let v = open(&store, &text(1, "4s"));
    let added = text(2, "4s").replace(
        "[regions.lifecycle.states.churned]",
        "[regions.lifecycle.states.trial]\nowner = \"sales\"\n\n[regions.lifecycle.states.churned]",
    ) + "\n[[regions.lifecycle.transitions]]\nfrom = \"lead\"\non = \"crm.lead_created\"\nto = \"trial\"\n";
    v.publish("v2.toml", &added)
        .expect("a version may add a state");
    drop(v);
    let v = open(&store, &text(1, "4s"));
    let (v1, v2) = (v.model(1), v.model(2));
    let states = |m: &Model| {
        let r = m
            .spec
            .regions
            .iter()
            .find(|r| r.name == "lifecycle")
            .expect("declared");
        r.states.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
    };
    let (old, new) = (states(&v1), states(&v2));
    assert_eq!(new[..old.len()], old[..], "ids of v1 are v2's");
    assert_eq!(new.last().map(String::as_str), Some("trial"));
    assert_eq!(v.newest().spec.version, 2);
}

fn err<T: std::fmt::Debug>(r: &Result<T, VersionError>) -> String {
    r.as_ref().expect_err("refused").to_string()
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let v = open(&store, &text(1, "4s"));
    v.publish("v3.toml", &text(3, "2s")).expect("publishes");
    v.set_rollout("BR", 3, None, None).expect("sets");
    let before = (v.list(), v.rollouts());

    let e = err(&v.publish(
        "other.toml",
        &text(4, "2s").replace("name = \"saas\"", "name = \"other\""),
    ));
    assert!(e.contains("holds the customers of model `saas`"), "{e}");
    let e = err(&v.publish("v3.toml", &text(3, "3s")));
    assert!(
        e.contains("version 3 was served") && e.contains("version = 4"),
        "{e}"
    );
    let e = err(&v.publish("v2.toml", &text(2, "3s")));
    assert!(
        e.contains("version 2 is lower than version 3") && e.contains("`BR`"),
        "{e}"
    );
    let e = err(&v.publish("broken.toml", "this is not a model"));
    assert!(e.contains("does not load"), "{e}");
    let e = err(&v.set_rollout("BR", 5, None, None));
    assert!(
        e.contains("version 5 is not published (published: 1, 3)"),
        "{e}"
    );
    let e = err(&v.set_rollout("BR", 1, Some(3), Some(100.5)));
    assert!(e.contains("outside 0-100"), "{e}");
    let e = err(&v.set_rollout("BR", 1, Some(3), None));
    assert!(e.contains("needs a percent"), "{e}");
    let e = err(&v.set_rollout("BR", 1, None, Some(10.0)));
    assert!(e.contains("needs a candidate"), "{e}");
    let e = err(&v.set_rollout("XX", 1, None, None));
    assert!(e.contains("market `XX` is not declared"), "{e}");

    assert_eq!((v.list(), v.rollouts()), before);
    drop(v);
    let v = open(&store, &text(1, "4s"));
    assert_eq!((v.list(), v.rollouts()), before);
}

#[test]
fn a_second_registry_on_the_same_store_picks_up_what_the_first_wrote() {
    let store = Arc::new(MemoryStore::new());
    let a = open(&store, &text(1, "4s"));
    let b = open(&store, &text(1, "4s"));
    a.publish("v2.toml", &text(2, "2s")).expect("publishes");
    a.set_rollout("default", 2, None, None).expect("sets");
    // A pinned version b never saw is read on the miss.
    assert_eq!(within(&b.model(2)), 2_000_000);
    b.refresh().expect("re-reads");
    assert_eq!(b.rollouts().default, Rollout::stable(2));
}
