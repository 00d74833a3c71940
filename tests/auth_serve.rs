//! When `handoff serve` demands TLS and credentials: it refuses a public
//! address without them and says why, and a loopback node without
//! credentials runs open and says so once.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::auth::*;
use common::{NodeProcess, event, eventually, fast_model, fresh_dir};
use handoff::api::pb;

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
