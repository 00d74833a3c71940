//! Wrong and missing credentials, as callers meet them: the real binary
//! serving gRPC over TLS with tokens and client certificates refuses them as
//! unauthenticated, and no token shows in any log line, error or metric.

mod common;

use std::process::{Command, Stdio};

use common::auth::*;
use common::{NodeProcess, event, fast_model, fresh_dir};
use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::{Code, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_credential_is_unauthenticated_and_never_logged() {
    let dir = fresh_dir("auth-unauthenticated");
    let pki = Pki::new(&dir, "main");
    let (billing, billing_entry) = token_for("source:billing");
    let (support, support_entry) = token_for("team:support");
    let config = secure_config(&dir, &pki, &[billing_entry, support_entry]);
    let node = NodeProcess::start_capturing(
        &dir.join("data"),
        &fast_model(),
        &["--config", config.to_str().expect("utf-8 path")],
        "trace",
    );
    let channel = tls_channel(&node, &pki, None).await;
    let mut lc = LifecycleClient::new(channel.clone());
    let mut esc = EscalationsClient::new(channel.clone());
    let mut errors = Errors::default();
    let wrong = handoff::auth::new_token().expect("a token");
    let e = || ingest_req(event("x1", "billing", "payment_succeeded", "c1", "US"));

    // Missing, wrong, or not a bearer token: UNAUTHENTICATED on every service.
    errors.expect(
        lc.ingest(with(None, e())).await,
        Code::Unauthenticated,
        "requires credentials",
    );
    errors.expect(
        lc.ingest(with(Some(&wrong), e())).await,
        Code::Unauthenticated,
        "not one this node accepts",
    );
    let mut basic = Request::new(e());
    basic.metadata_mut().insert(
        "authorization",
        format!("Basic {billing}").parse().expect("ascii"),
    );
    errors.expect(
        lc.ingest(basic).await,
        Code::Unauthenticated,
        "Bearer <token>",
    );
    errors.expect(
        lc.get_customer(view(Some(&wrong), "c1")).await,
        Code::Unauthenticated,
        "not one this node accepts",
    );
    errors.expect(
        esc.subscribe(subscribe_all(None, &[])).await,
        Code::Unauthenticated,
        "requires credentials",
    );
    errors.expect(
        esc.list_open(with(Some(&wrong), pb::ListOpenRequest::default()))
            .await,
        Code::Unauthenticated,
        "not one this node accepts",
    );
    // Health probes need no credentials.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers without credentials");

    // The right token works.
    let r = lc
        .ingest(with(Some(&billing), e()))
        .await
        .expect("billing's token")
        .into_inner();
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);

    // Client certificates: a principal the model does not know, or a
    // token for someone else, are refused too.
    let mut pirate =
        LifecycleClient::new(tls_channel(&node, &pki, Some(pki.client("team:pirates"))).await);
    errors.expect(
        pirate.get_customer(view(None, "c1")).await,
        Code::Unauthenticated,
        "team `pirates` is not in the model",
    );
    let mut crm =
        LifecycleClient::new(tls_channel(&node, &pki, Some(pki.client("source:crm"))).await);
    errors.expect(
        crm.get_customer(view(Some(&billing), "c1")).await,
        Code::Unauthenticated,
        "token is for source:billing but the client certificate is for source:crm",
    );
    crm.get_customer(view(None, "c1"))
        .await
        .expect("the certificate alone is enough");

    // The command line: TLS with --ca, the token from --token or
    // HANDOFF_TOKEN, a client certificate with --cert/--key.
    let cli = |args: &[&str], env_token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_handoff"));
        cmd.args(args)
            .args(["--target", &node.addr, "--ca"])
            .arg(pki.ca_file("main"))
            .env_remove("HANDOFF_TOKEN")
            .stdin(Stdio::null());
        if let Some(t) = env_token {
            cmd.env("HANDOFF_TOKEN", t);
        }
        let out = cmd.output().expect("the CLI runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ingest = [
        "ingest",
        "--source",
        "billing",
        "--type",
        "payment_succeeded",
        "--customer",
        "c2",
        "--market",
        "US",
    ];
    let (ok, out, err) = cli(&[&ingest[..], &["--token", &billing]].concat(), None);
    assert!(ok && out.starts_with("applied"), "{out}{err}");
    let (ok, out, err) = cli(&ingest, Some(&billing));
    assert!(
        ok && out.starts_with("duplicate") || out.starts_with("applied"),
        "{out}{err}"
    );
    let (ok, _, err) = cli(&ingest, Some(&wrong));
    assert!(!ok && err.contains("unauthenticated"), "{err}");
    errors.0.push(err);
    let (ok, _, err) = cli(&ingest, None);
    assert!(!ok && err.contains("requires credentials"), "{err}");
    let (ok, out, err) = cli(&["customer", "get", "c2"], Some(&support));
    assert!(ok && out.contains("timeline: withheld"), "{out}{err}");
    let (cert, key) = pki.client_files("source:crm");
    let (ok, out, err) = cli(
        &[
            "ingest",
            "--source",
            "crm",
            "--type",
            "deal_won",
            "--customer",
            "c3",
            "--market",
            "US",
            "--cert",
            cert.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok && out.starts_with("applied"), "{out}{err}");

    // Refusals are counted and logged by reason, never with the token.
    let metrics = node.scrape();
    for reason in [
        "missing",
        "unknown_token",
        "bad_header",
        "bad_certificate",
        "mismatch",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("handoff_unauthenticated_total{")
                    && l.contains(&format!("reason=\"{reason}\""))),
            "no handoff_unauthenticated_total for {reason} in\n{metrics}"
        );
    }
    let logs = node.log();
    assert!(
        logs.contains("unauthenticated call refused"),
        "refusals are logged"
    );
    for t in [&billing, &support, &wrong] {
        let secret = &t[handoff::auth::TOKEN_PREFIX.len()..];
        for text in errors.0.iter().chain([&logs, &metrics]) {
            assert!(!text.contains(secret), "a token leaked into: {text}");
        }
    }
}
