//! The command-line clients of a running node as a script or an operator
//! meets them: `handoff escalations tail` following the stream through
//! restarts of the node (SIGTERM and SIGKILL, same data directory, same
//! port), the exit status of `handoff ingest` for each outcome, and what
//! `handoff escalations ack` says when it lacks a team.
//!
//! The real binary on 127.0.0.1, escalations from the fast model
//! (`tests/models/fast.toml`: a ghost customer in the US is warned at 2 s,
//! breached at 4 s, re-escalated to cx_director every 2 s after 6 s).
//! Waits are deadlines on a polled condition, never sleeps.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::api::ghost;
use common::{NodeProcess, event, eventually, fast_model, fresh_dir, handoff, ingest};
use handoff::api::pb;
use serde_json::Value;
use tonic::Code;

/// How long escalations may take to arrive on a slow, busy machine.
const ESCALATION_WAIT: Duration = Duration::from_secs(30);
/// How long anything else may take.
const WAIT: Duration = Duration::from_secs(20);

/// Every field of `EscalationEvent`, as `tail --json` names them.
const EVENT_FIELDS: [&str; 16] = [
    "cursor",
    "escalation_id",
    "kind",
    "customer_id",
    "market",
    "sla",
    "tier",
    "team",
    "severity",
    "deadline",
    "fired_at",
    "late_attach",
    "handoff",
    "states",
    "repeat",
    "due",
];

/// A `handoff` command that keeps running (`escalations tail`), with what
/// it has written so far, line by line.
struct Running {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

fn collect(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().expect("not poisoned").push(line);
        }
    });
    lines
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the handoff binary starts");
        let out = collect(child.stdout.take().expect("piped"));
        let err = collect(child.stderr.take().expect("piped"));
        Running { child, out, err }
    }

    fn out(&self) -> Vec<String> {
        self.out.lock().expect("not poisoned").clone()
    }

    fn err(&self) -> Vec<String> {
        self.err.lock().expect("not poisoned").clone()
    }

    /// Stdout's lines as JSON objects.
    fn events(&self) -> Vec<Value> {
        self.out()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
            .collect()
    }

    /// Stderr lines that contain `text`.
    fn said(&self, text: &str) -> usize {
        self.err().iter().filter(|l| l.contains(text)).count()
    }

    /// Polls `done` on (stdout, stderr) until it holds; panics after
    /// `within`, or if the command exited.
    async fn wait_for(&mut self, within: Duration, what: &str, done: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + within;
        let mut poll = tokio::time::interval(Duration::from_millis(25));
        loop {
            poll.tick().await;
            if done(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "exited ({status}) while waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.out().join("\n"),
                    self.err().join("\n")
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.out().join("\n"),
                    self.err().join("\n")
                );
            }
        }
    }

    /// Waits (at most `within`) for the command to exit by itself.
    async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        let deadline = Instant::now() + within;
        let mut poll = tokio::time::interval(Duration::from_millis(25));
        loop {
            poll.tick().await;
            if let Some(status) = child.try_wait().expect("wait on handoff") {
                return status;
            }
            if Instant::now() > deadline {
                panic!("still running {within:?} later");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every escalation in `events` has been followed by its resolution.
fn resolved_all(events: &[Value], customers: &[&str]) -> bool {
    let fired: Vec<&Value> = events.iter().filter(|e| e["kind"] != "resolved").collect();
    customers
        .iter()
        .all(|c| fired.iter().any(|e| e["customer_id"] == *c))
        && fired.iter().all(|f| {
            events
                .iter()
                .any(|r| r["kind"] == "resolved" && r["escalation_id"] == f["escalation_id"])
        })
}

/// The node's escalation log from the start up to and including `last`.
async fn log_until(node: &NodeProcess, last: &str) -> Vec<pb::EscalationEvent> {
    let mut stream = node
        .escalations()
        .await
        .subscribe(pb::SubscribeRequest {
            cursor: "earliest".into(),
            ..Default::default()
        })
        .await
        .expect("subscribe from the earliest")
        .into_inner();
    let mut log = Vec::new();
    while log
        .last()
        .is_none_or(|e: &pb::EscalationEvent| e.cursor != last)
    {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Ok(Ok(Some(e))) => log.push(e),
            other => panic!("the log ended before cursor {last} ({other:?}); read {log:#?}"),
        }
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_reconnects_through_restarts_and_misses_nothing() {
    let mut node = NodeProcess::start(&fresh_dir("cli-tail"), &fast_model());
    let addr = node.addr.clone();
    let mut tail = Running::start(&["escalations", "tail", "--target", &addr, "--json"]);
    let connected = format!("connected to {addr}; following from cursor h1-");
    tail.wait_for(WAIT, "the first connection", |t| t.said(&connected) == 1)
        .await;

    let mut client = node.lifecycle().await;
    ghost(&mut client, "tail-1", "US").await;
    tail.wait_for(ESCALATION_WAIT, "tail-1's warning", |t| {
        t.events().iter().any(|e| e["customer_id"] == "tail-1")
    })
    .await;

    // SIGTERM: the node ends the stream; tail says so and comes back.
    assert!(node.terminate().success());
    let ended = format!("stream ended (node stopping); reconnecting to {addr} from cursor h1-");
    tail.wait_for(WAIT, "the end of the stream", |t| t.said(&ended) >= 1)
        .await;
    node.restart_in_place();
    tail.wait_for(WAIT, "the connection after SIGTERM", |t| {
        t.said(&connected) == 2
    })
    .await;
    let mut client = node.lifecycle().await;
    ghost(&mut client, "tail-2", "US").await;
    tail.wait_for(ESCALATION_WAIT, "tail-2's warning", |t| {
        t.events().iter().any(|e| e["customer_id"] == "tail-2")
    })
    .await;

    // SIGKILL: the connection breaks; tail retries until the node is back.
    let reconnecting = format!("; reconnecting to {addr} from cursor h1-");
    let before = tail.said(&reconnecting);
    node.kill9();
    tail.wait_for(WAIT, "a retry after SIGKILL", |t| {
        t.said(&reconnecting) > before
    })
    .await;
    node.restart_in_place();
    tail.wait_for(WAIT, "the connection after SIGKILL", |t| {
        t.said(&connected) == 3
    })
    .await;
    let mut client = node.lifecycle().await;
    ghost(&mut client, "tail-3", "US").await;
    tail.wait_for(ESCALATION_WAIT, "tail-3's warning", |t| {
        t.events().iter().any(|e| e["customer_id"] == "tail-3")
    })
    .await;

    // Access at last: every escalation resolves, and nothing fires later.
    let customers = ["tail-1", "tail-2", "tail-3"];
    for c in customers {
        let r = ingest(
            &mut client,
            event(&format!("{c}-access"), "access", "access_granted", c, ""),
        )
        .await;
        assert_eq!(r.outcome, pb::Outcome::Applied as i32, "{r:?}");
    }
    tail.wait_for(ESCALATION_WAIT, "every escalation resolved", |t| {
        resolved_all(&t.events(), &customers)
    })
    .await;
    assert!(
        tail.child.try_wait().expect("wait on tail").is_none(),
        "tail keeps following"
    );

    // Exactly the node's log: nothing lost while the node was down,
    // nothing printed twice after resuming. (Read from the earliest, the
    // log comes shard by shard, so the order across shards may differ
    // from the live order; each escalation event is there once.)
    let printed = tail.events();
    for e in &printed {
        for field in EVENT_FIELDS {
            assert!(e.get(field).is_some(), "no `{field}` in {e}");
        }
    }
    let last = printed
        .last()
        .and_then(|e| e["cursor"].as_str())
        .expect("a cursor")
        .to_owned();
    let log = log_until(&node, &last).await;
    let mut from_log: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            let kind = pb::EscalationKind::try_from(e.kind)
                .expect("a known kind")
                .as_str_name()
                .trim_start_matches("ESCALATION_KIND_")
                .to_lowercase();
            (e.escalation_id.clone(), kind)
        })
        .collect();
    let mut from_tail: Vec<(String, String)> = printed
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().expect("a string").to_owned();
            (s("escalation_id"), s("kind"))
        })
        .collect();
    from_log.sort();
    from_tail.sort();
    assert_eq!(from_tail, from_log, "tail printed exactly the log");
    let mut once = from_tail.clone();
    once.dedup();
    assert_eq!(once, from_tail, "nothing twice");
    let first = &log[0];
    let json = printed
        .iter()
        .find(|e| e["escalation_id"] == first.escalation_id && e["kind"] != "resolved")
        .expect("printed");
    assert_eq!(json["repeat"], first.repeat);
    assert_eq!(json["tier"], first.tier);
    assert_eq!(json["team"], first.team.as_str());
    assert_eq!(json["states"]["lifecycle"], "paid", "{json}");

    // The text output names the escalation (what `ack` takes) and repeat.
    let (code, out, err) = tokio::task::block_in_place(|| {
        handoff(&[
            "escalations",
            "tail",
            "--target",
            &addr,
            "--cursor",
            "earliest",
            "--count",
            "1",
        ])
    });
    assert_eq!(code, Some(0), "{out}{err}");
    let line = out.lines().next().expect("one line");
    assert!(
        line.contains(&format!("id {}", first.escalation_id))
            && line.contains(&format!("repeat {}", first.repeat))
            && line.contains(&format!("[cursor {}]", first.cursor)),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_gives_up_only_on_what_retrying_cannot_fix() {
    let mut node = NodeProcess::start(&fresh_dir("cli-tail-errors"), &fast_model());
    let addr = node.addr.clone();
    let run = |args: &[&str]| tokio::task::block_in_place(|| handoff(args));

    // A bad cursor or an undeclared team: exit 1 at once, saying what to fix.
    let (code, out, err) = run(&[
        "escalations",
        "tail",
        "--target",
        &addr,
        "--cursor",
        "h1-bogus",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("invalid argument: cursor `h1-bogus`") && err.contains("earliest"),
        "{err}"
    );
    let (code, out, err) = run(&[
        "escalations",
        "tail",
        "--target",
        &addr,
        "--team",
        "janitors",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("team `janitors` is not declared"), "{err}");

    // --no-reconnect: the end of the stream ends the command, with the
    // cursor to resume from.
    let (code, out, _) = run(&["escalations", "tail", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("--no-reconnect") && out.contains("reconnects by itself"),
        "{out}"
    );
    let mut tail = Running::start(&["escalations", "tail", "--target", &addr, "--no-reconnect"]);
    tail.wait_for(WAIT, "the connection", |t| t.said("connected to") == 1)
        .await;
    assert!(node.terminate().success());
    let status = tail.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(1), "{:?}", tail.err());
    eventually(WAIT, "the reason on stderr", || {
        let said = tail.said("stream ended (node stopping): resume with --cursor h1-");
        async move { (said == 1).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_exit_status_says_what_became_of_the_event() {
    let node = NodeProcess::start(&fresh_dir("cli-ingest"), &fast_model());
    let addr = node.addr.as_str();
    let now = jiff::Timestamp::now();
    let ago = |s: i64| (now - jiff::SignedDuration::from_secs(s)).to_string();
    let ingest = |ty: &str, source: &str, id: &str, extra: &[&str]| {
        let mut args = vec![
            "ingest",
            "--target",
            addr,
            "--source",
            source,
            "--type",
            ty,
            "--customer",
            "cli-exit",
            "--id",
            id,
        ];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| handoff(&args))
    };

    let (code, out, err) = ingest(
        "lead_created",
        "crm",
        "l1",
        &["--market", "US", "--occurred-at", &ago(60)],
    );
    assert_eq!(code, Some(0), "applied: {out}{err}");
    assert!(out.starts_with("applied"), "{out}");
    let (code, out, err) = ingest(
        "lead_created",
        "crm",
        "l1",
        &["--market", "US", "--occurred-at", &ago(60)],
    );
    assert_eq!(code, Some(0), "a duplicate: {out}{err}");
    assert!(out.starts_with("duplicate"), "{out}");

    // Unknown to the model: rejected, exit 3, with the reason.
    let (code, out, err) = ingest("deal_frozen", "crm", "r1", &[]);
    assert_eq!(code, Some(3), "rejected: {out}{err}");
    assert!(
        out.starts_with("rejected") && out.contains("`deal_frozen`"),
        "{out}"
    );
    let (code, out, err) = ingest("deal_frozen", "crm", "r2", &["--json"]);
    assert_eq!(code, Some(3), "rejected, as JSON: {out}{err}");

    // Paid at -50 s, so a failure that occurred at -55 s is stale: exit 4.
    let (code, out, err) = ingest(
        "payment_succeeded",
        "billing",
        "p1",
        &["--occurred-at", &ago(50)],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = ingest(
        "payment_failed",
        "billing",
        "f1",
        &["--occurred-at", &ago(55)],
    );
    assert_eq!(code, Some(4), "stale: {out}{err}");
    assert!(out.starts_with("stale"), "{out}");

    let (code, out, _) = tokio::task::block_in_place(|| handoff(&["ingest", "--help"]));
    assert_eq!(code, Some(0));
    assert!(
        out.contains("Exit status") && out.contains("3  rejected") && out.contains("4  stale"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_without_a_team_names_the_flag_and_the_teams_that_may() {
    let node = NodeProcess::start(&fresh_dir("cli-ack"), &fast_model());
    let addr = node.addr.as_str();
    let mut client = node.lifecycle().await;
    ghost(&mut client, "ack-1", "US").await;
    let esc = node.escalations().await;
    let open = |tier: u32| {
        let esc = esc.clone();
        move || {
            let mut esc = esc.clone();
            async move {
                let open = esc
                    .list_open(pb::ListOpenRequest::default())
                    .await
                    .expect("listed")
                    .into_inner()
                    .escalations;
                open.into_iter()
                    .find(|e| e.customer_id == "ack-1" && e.tier == tier)
            }
        }
    };
    let ack = |id: &str, team: &str| {
        let mut args = vec!["escalations", "ack", id, "--target", addr];
        if !team.is_empty() {
            args.extend(["--team", team]);
        }
        tokio::task::block_in_place(|| handoff(&args))
    };

    // The warning: provisioning is both the notified team and the owner.
    let warning = eventually(ESCALATION_WAIT, "the warning", open(0)).await;
    let (code, out, err) = ack(&warning.escalation_id, "");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("invalid argument: --team is required")
            && err.contains("pass --team provisioning (the notified team and the SLA's owner)"),
        "{err}"
    );
    // gRPC callers get the same answer.
    let e = esc
        .clone()
        .acknowledge(pb::AcknowledgeRequest {
            escalation_id: warning.escalation_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("no team");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("--team provisioning"), "{e}");

    // The re-escalation: notified cx_director, owned by provisioning.
    let director = eventually(ESCALATION_WAIT, "the re-escalation", open(2)).await;
    let (code, out, err) = ack(&director.escalation_id, "");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(
            "pass --team cx_director (the notified team) or --team provisioning (the SLA's owner)"
        ),
        "{err}"
    );
    let (code, out, err) = ack(&director.escalation_id, "cx_director");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("acknowledged"), "{out}");
}
