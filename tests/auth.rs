//! Who may say what, as callers meet it: the real binary serving gRPC over
//! TLS with tokens and client certificates (a throwaway CA made here with
//! rcgen), every rule allowed and denied at least once, wrong and missing
//! credentials refused, and no token in any log line, error or metric.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{NodeProcess, event, eventually, fast_model, fresh_dir};
use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Response, Status};

/// A throwaway PKI in a directory: a CA, the node's certificate for
/// 127.0.0.1 and localhost, and client certificates named by principal.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).expect("the CA certificate");
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        };
        pki.write(&format!("{name}-ca.crt"), &pki.ca_pem);
        pki
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write a PEM file");
        path
    }

    fn ca_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-ca.crt"))
    }

    /// A certificate and key signed by this CA, as PEM.
    fn issue(&self, sans: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// The node's certificate and key files.
    fn server_files(&self) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(
            &["127.0.0.1", "localhost"],
            "handoff node",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        (self.write("node.crt", &cert), self.write("node.key", &key))
    }

    /// A client certificate whose subject CN is `principal`.
    fn client(&self, principal: &str) -> Identity {
        let (cert, key) = self.issue(&[], principal, ExtendedKeyUsagePurpose::ClientAuth);
        Identity::from_pem(cert, key)
    }

    fn client_files(&self, principal: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(&[], principal, ExtendedKeyUsagePurpose::ClientAuth);
        let file = principal.replace(':', "-");
        (
            self.write(&format!("{file}.crt"), &cert),
            self.write(&format!("{file}.key"), &key),
        )
    }
}

/// Makes a token with the real `handoff token new` and returns it with
/// the `[[credentials]]` entry it printed.
fn token_from_cli(who: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["token", "new"])
        .args(who)
        .arg("--model")
        .arg(fast_model())
        .output()
        .expect("handoff token new runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let token = text
        .lines()
        .find(|l| l.starts_with("hnd_"))
        .expect("a token line")
        .to_owned();
    let entry = text
        .split_once("[[credentials]]")
        .map(|(_, rest)| format!("[[credentials]]{rest}"))
        .expect("a config entry");
    assert!(
        !entry.contains(&token),
        "the config entry holds only the hash"
    );
    (token, entry)
}

fn token_for(principal: &str) -> (String, String) {
    let token = handoff::auth::new_token().expect("a token");
    let entry = format!(
        "[[credentials]]\nprincipal = \"{principal}\"\nsha256 = \"{}\"\n",
        handoff::auth::token_hash_hex(&token)
    );
    (token, entry)
}

fn quoted(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// A node config with TLS, client certificates and these credentials.
fn secure_config(dir: &Path, pki: &Pki, entries: &[String]) -> PathBuf {
    let (cert, key) = pki.server_files();
    let mut text = format!(
        "tls_cert = {}\ntls_key = {}\ntls_client_ca = {}\n\n",
        quoted(&cert),
        quoted(&key),
        quoted(&pki.ca_file("main"))
    );
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    let path = dir.join("node.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

async fn tls_channel(node: &NodeProcess, pki: &Pki, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem));
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Endpoint::from_shared(format!("https://{}", node.addr))
        .expect("a valid uri")
        .tls_config(tls)
        .expect("a TLS config")
        .connect()
        .await
        .expect("connects over TLS")
}

/// A request with `authorization: Bearer <token>` (or none).
fn with<T>(token: Option<&str>, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii"),
        );
    }
    r
}

/// Every error message the node sent back, to check none holds a token.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn expect<T: std::fmt::Debug>(
        &mut self,
        r: Result<Response<T>, Status>,
        code: Code,
        says: &str,
    ) -> Status {
        let s = r.expect_err("the call must fail");
        assert_eq!(s.code(), code, "{s:?}");
        assert!(s.message().contains(says), "`{says}` in: {}", s.message());
        self.0.push(s.message().to_owned());
        s
    }

    fn denied<T: std::fmt::Debug>(&mut self, r: Result<Response<T>, Status>, rule: &str) {
        self.expect(
            r,
            Code::PermissionDenied,
            &format!("denied by rule {rule}:"),
        );
    }
}

fn ingest_req(e: pb::Event) -> pb::IngestRequest {
    pb::IngestRequest { event: Some(e) }
}

fn view(token: Option<&str>, customer: &str) -> Request<pb::GetCustomerRequest> {
    with(
        token,
        pb::GetCustomerRequest {
            customer_id: customer.into(),
            timeline_limit: 0,
        },
    )
}

fn state_of(v: &pb::CustomerView, region: &str) -> String {
    v.regions
        .iter()
        .find(|r| r.region == region)
        .map(|r| r.state.clone())
        .unwrap_or_default()
}

/// Follows the escalation stream in the background, keeping what arrives.
fn follow(
    mut client: EscalationsClient<Channel>,
    req: Request<pb::SubscribeRequest>,
) -> Arc<Mutex<Vec<pb::EscalationEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut stream = client
            .subscribe(req)
            .await
            .expect("subscribed")
            .into_inner();
        while let Ok(Some(e)) = stream.message().await {
            sink.lock().expect("not poisoned").push(e);
        }
    });
    seen
}

fn subscribe_all(token: Option<&str>, teams: &[&str]) -> Request<pb::SubscribeRequest> {
    with(
        token,
        pb::SubscribeRequest {
            teams: teams.iter().map(|t| t.to_string()).collect(),
            cursor: "earliest".into(),
            ..Default::default()
        },
    )
}

fn kind(e: &pb::EscalationEvent) -> pb::EscalationKind {
    pb::EscalationKind::try_from(e.kind).expect("a known kind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_allows_its_own_callers_and_denies_the_rest_over_tls() {
    let dir = fresh_dir("auth-rules");
    let pki = Pki::new(&dir, "main");
    let (alice, alice_entry) = token_from_cli(&["--operator", "alice"]);
    let (billing, billing_entry) = token_for("source:billing");
    let (access, access_entry) = token_for("source:access");
    let (prov, prov_entry) = token_for("team:provisioning");
    let (mkt, mkt_entry) = token_for("team:marketing");
    let tokens = [&alice, &billing, &access, &prov, &mkt];
    let config = secure_config(
        &dir,
        &pki,
        &[
            alice_entry,
            billing_entry,
            access_entry,
            prov_entry,
            mkt_entry,
        ],
    );
    let node = NodeProcess::start_capturing(
        &dir.join("data"),
        &fast_model(),
        &["--config", config.to_str().expect("utf-8 path")],
        "debug",
    );
    let channel = tls_channel(&node, &pki, None).await;
    let mut lc = LifecycleClient::new(channel.clone());
    let mut esc = EscalationsClient::new(channel.clone());
    // crm proves who it is with a client certificate instead of a token.
    let mut crm =
        LifecycleClient::new(tls_channel(&node, &pki, Some(pki.client("source:crm"))).await);
    let mut errors = Errors::default();
    let (alice, billing, access, prov, mkt) = (
        Some(alice.as_str()),
        Some(billing.as_str()),
        Some(access.as_str()),
        Some(prov.as_str()),
        Some(mkt.as_str()),
    );
    let c = "acme-br";

    // Ingest: a source sends its own events; not another source's, and
    // teams send none. The operator may send anything.
    let r = crm
        .ingest(ingest_req(event("d1", "crm", "deal_won", c, "BR")))
        .await
        .expect("crm sends its own event (client certificate)")
        .into_inner();
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);
    errors.denied(
        lc.ingest(with(
            billing,
            ingest_req(event("d2", "crm", "deal_won", "other", "BR")),
        ))
        .await,
        "own_events_only",
    );
    errors.denied(
        lc.ingest(with(
            prov,
            ingest_req(event("p1", "billing", "payment_succeeded", c, "")),
        ))
        .await,
        "sources_ingest",
    );
    // A batch with one event that is not the caller's is denied whole.
    let mixed = pb::IngestBatchRequest {
        events: vec![
            event("b1", "billing", "boleto_settled", c, ""),
            event("d3", "crm", "deal_won", "other", "BR"),
        ],
    };
    let s = errors.expect(
        lc.ingest_batch(with(billing, mixed)).await,
        Code::PermissionDenied,
        "denied by rule own_events_only: event 1 of the batch",
    );
    assert!(s.message().contains("crm.deal_won"), "{}", s.message());
    let v = lc
        .get_customer(view(alice, c))
        .await
        .expect("the operator reads the view")
        .into_inner();
    assert_eq!(
        state_of(&v, "lifecycle"),
        "onboarding",
        "nothing of the denied batch was applied"
    );
    let r = lc
        .ingest_batch(with(
            billing,
            pb::IngestBatchRequest {
                events: vec![event("b1", "billing", "boleto_settled", c, "")],
            },
        ))
        .await
        .expect("billing sends its own batch")
        .into_inner();
    assert_eq!(r.results[0].outcome, pb::Outcome::Applied as i32);
    assert_eq!(
        r.results[0].states.get("lifecycle").map(String::as_str),
        Some("paid")
    );
    let r = lc
        .ingest(with(
            alice,
            ingest_req(event("op1", "crm", "deal_won", "acme-us", "US")),
        ))
        .await
        .expect("an operator may send any event")
        .into_inner();
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);

    // Escalations start now (BR: warning at 1 s, breach at 2 s, then
    // cx_director every 2 s). Follow them as the operator and as
    // provisioning, each with no team filter.
    let all = follow(esc.clone(), subscribe_all(alice, &[]));
    let provisioning_sees = follow(esc.clone(), subscribe_all(prov, &[]));
    errors.denied(
        esc.subscribe(subscribe_all(prov, &["cx_director"])).await,
        "own_team_only",
    );
    errors.denied(
        esc.subscribe(subscribe_all(billing, &[])).await,
        "teams_only",
    );
    esc.subscribe(subscribe_all(prov, &["provisioning"]))
        .await
        .expect("a team may name itself");

    // Authorize: the team is the caller's.
    let authorize = |token, team: &str, action: &str| {
        with(
            token,
            pb::AuthorizeRequest {
                customer_id: c.into(),
                team: team.into(),
                action: action.into(),
            },
        )
    };
    let d = lc
        .authorize(authorize(prov, "", "grant_access"))
        .await
        .expect("provisioning asks as itself")
        .into_inner();
    assert!(d.allowed, "{d:?}");
    let d = lc
        .authorize(authorize(mkt, "", "grant_access"))
        .await
        .expect("marketing asks as itself")
        .into_inner();
    assert!(!d.allowed, "marketing may not grant access: {d:?}");
    errors.denied(
        lc.authorize(authorize(mkt, "provisioning", "grant_access"))
            .await,
        "own_team_only",
    );
    errors.denied(
        lc.authorize(authorize(billing, "", "grant_access")).await,
        "teams_only",
    );
    let d = lc
        .authorize(authorize(alice, "provisioning", "grant_access"))
        .await
        .expect("an operator asks for any team")
        .into_inner();
    assert!(d.allowed);

    // CheckMessage: teams and operators.
    let check = |token| {
        with(
            token,
            pb::CheckMessageRequest {
                customer_id: c.into(),
                message_class: "transactional".into(),
            },
        )
    };
    let d = lc
        .check_message(check(mkt))
        .await
        .expect("a team checks")
        .into_inner();
    assert!(d.allowed, "{d:?}");
    errors.denied(lc.check_message(check(billing)).await, "teams_only");

    // GetCustomer: everyone sees the view; only operators the timeline.
    for token in [prov, billing] {
        let v = lc
            .get_customer(view(token, c))
            .await
            .expect("the view")
            .into_inner();
        assert_eq!(state_of(&v, "lifecycle"), "paid");
        assert!(v.timeline.is_empty() && v.timeline_withheld, "{v:?}");
    }
    let v = lc
        .get_customer(view(alice, c))
        .await
        .expect("the view")
        .into_inner();
    assert!(!v.timeline.is_empty() && !v.timeline_withheld, "{v:?}");

    // Wait for the re-escalation to cx_director.
    let list = |token, team: &str| with(token, pb::ListOpenRequest { team: team.into() });
    let open = eventually(Duration::from_secs(30), "a cx_director escalation", || {
        let mut esc = esc.clone();
        async move {
            let open = esc
                .list_open(list(alice, ""))
                .await
                .ok()?
                .into_inner()
                .escalations;
            open.iter().any(|e| e.team == "cx_director").then_some(open)
        }
    })
    .await;
    assert!(open.iter().any(|e| e.team == "provisioning"));

    // ListOpen: a team's own, unless operator.
    let mine = esc
        .list_open(list(prov, ""))
        .await
        .expect("provisioning lists its own")
        .into_inner()
        .escalations;
    assert!(
        !mine.is_empty() && mine.iter().all(|e| e.team == "provisioning"),
        "{mine:?}"
    );
    errors.denied(
        esc.list_open(list(prov, "cx_director")).await,
        "own_team_only",
    );
    errors.denied(esc.list_open(list(billing, "")).await, "teams_only");

    // Acknowledge: the notified team (or the SLA's owner), as itself.
    let warning = mine
        .iter()
        .find(|e| e.tier == 0)
        .expect("the 50% warning")
        .escalation_id
        .clone();
    let ack = |token, team: &str| {
        with(
            token,
            pb::AcknowledgeRequest {
                escalation_id: warning.clone(),
                team: team.into(),
                note: "on it".into(),
            },
        )
    };
    errors.denied(esc.acknowledge(ack(mkt, "")).await, "notified_or_owner");
    errors.denied(
        esc.acknowledge(ack(mkt, "provisioning")).await,
        "own_team_only",
    );
    errors.denied(esc.acknowledge(ack(billing, "")).await, "teams_only");
    let r = esc
        .acknowledge(ack(prov, ""))
        .await
        .expect("provisioning acknowledges its escalation")
        .into_inner();
    assert!(r.acknowledged);

    // Access arrives: every escalation of the SLA instance is resolved.
    lc.ingest(with(
        access,
        ingest_req(event("a1", "access", "access_granted", c, "")),
    ))
    .await
    .expect("access sends its own event");
    let log = eventually(Duration::from_secs(30), "every escalation resolved", || {
        let all = all.clone();
        async move {
            let log = all.lock().expect("not poisoned").clone();
            let fired = log
                .iter()
                .filter(|e| kind(e) != pb::EscalationKind::Resolved)
                .count();
            let resolved = log
                .iter()
                .filter(|e| kind(e) == pb::EscalationKind::Resolved)
                .count();
            (fired > 0 && fired == resolved).then_some(log)
        }
    })
    .await;
    assert!(log.iter().any(|e| e.team == "cx_director"), "{log:?}");
    // Subscribe with no filter gave provisioning exactly its own part of
    // the log, in order (a cx_director event sits before its resolutions,
    // so a leak would show in the first entries).
    let expected: Vec<(String, i32)> = log
        .iter()
        .filter(|e| e.team == "provisioning")
        .map(|e| (e.escalation_id.clone(), e.kind))
        .collect();
    let got = eventually(Duration::from_secs(10), "provisioning's stream", || {
        let seen = provisioning_sees.clone();
        let n = expected.len();
        async move {
            let seen = seen.lock().expect("not poisoned").clone();
            (seen.len() >= n).then_some(seen)
        }
    })
    .await;
    let got: Vec<(String, i32)> = got
        .iter()
        .take(expected.len())
        .map(|e| (e.escalation_id.clone(), e.kind))
        .collect();
    assert_eq!(got, expected);

    // Denials are counted by principal and rule.
    let metrics = node.scrape();
    for (principal, rule) in [
        ("source:billing", "own_events_only"),
        ("team:provisioning", "sources_ingest"),
        ("team:marketing", "own_team_only"),
        ("team:marketing", "notified_or_owner"),
        ("source:billing", "teams_only"),
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("handoff_denied_total{")
                    && l.contains(&format!("principal=\"{principal}\""))
                    && l.contains(&format!("rule=\"{rule}\""))),
            "no handoff_denied_total for {principal}, {rule} in\n{metrics}"
        );
    }

    // No token anywhere: errors, logs, metrics.
    let logs = node.log();
    assert!(logs.contains("permission denied"), "denials are logged");
    for t in tokens {
        let secret = &t[handoff::auth::TOKEN_PREFIX.len()..];
        for text in errors.0.iter().chain([&logs, &metrics]) {
            assert!(!text.contains(secret), "a token leaked into: {text}");
        }
    }
}

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

/// Runs `handoff serve` with these flags and returns its exit status and
/// stderr if it exits, or kills it once it printed its first line.
fn serve_once(data: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("serve")
        .arg("--data")
        .arg(data)
        .args(["--metrics", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the handoff binary starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut first = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node prints a line or exits within a minute");
    if !first.is_empty() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait for the node");
    (
        if first.is_empty() {
            out.status.code()
        } else {
            None
        },
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_a_public_address_without_tls_and_credentials_and_says_why() {
    let dir = fresh_dir("auth-exposed");
    let (code, _, err) = serve_once(&dir.join("data"), &["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without TLS")
            && err.contains("credentials")
            && err.contains("--insecure"),
        "{err}"
    );
    // With --insecure it serves, and warns.
    let (code, first, err) =
        serve_once(&dir.join("data"), &["--listen", "0.0.0.0:0", "--insecure"]);
    assert_eq!(code, None, "{err}");
    assert!(first.starts_with("handoff serving 0.0.0.0:"), "{first}");
    assert!(err.contains("WARN") && err.contains("--insecure"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_node_without_credentials_runs_open_and_says_so_once() {
    let dir = fresh_dir("auth-open");
    let node = NodeProcess::start_capturing(&dir.join("data"), &fast_model(), &[], "info");
    let mut lc = node.lifecycle().await;
    let r = lc
        .ingest(ingest_req(event("o1", "crm", "deal_won", "c1", "US")))
        .await
        .expect("an open node takes calls without credentials")
        .into_inner();
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);
    let v = lc
        .get_customer(view(None, "c1"))
        .await
        .expect("the view")
        .into_inner();
    assert!(
        !v.timeline_withheld,
        "an open node's callers have operator rights"
    );
    let log = eventually(Duration::from_secs(10), "the start-up log", || {
        let log = node.log();
        async move { log.contains("handoff is serving").then_some(log) }
    })
    .await;
    assert_eq!(log.matches("running open").count(), 1, "{log}");
}
