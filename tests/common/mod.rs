//! The real node as a user meets it: the `handoff` binary as a child
//! process on 127.0.0.1 with a free port, real gRPC clients, and waiting
//! by polling a condition with a deadline (never a fixed sleep).

#![allow(dead_code)]

pub mod api;
pub mod auth;
pub mod cluster;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::transport::Channel;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The model whose ghost-customer SLA runs in seconds.
pub fn fast_model() -> PathBuf {
    root().join("tests/models/fast.toml")
}

/// A fresh, empty directory under the target dir (kept for post-mortems).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir =
        root()
            .join("target/test-data")
            .join(format!("{name}-{}-{}", std::process::id(), nanos()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a test data dir");
    dir
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A running `handoff serve`.
pub struct NodeProcess {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The Prometheus endpoint's `127.0.0.1:PORT`.
    pub metrics: String,
    pub data: PathBuf,
    pub model: PathBuf,
    /// Extra arguments it was started with (kept for restarts).
    pub extra: Vec<String>,
    /// The line the node printed when it began to serve.
    pub banner: String,
    /// Everything the node wrote to stderr, when started with
    /// [`NodeProcess::start_capturing`].
    pub stderr: Option<Arc<Mutex<String>>>,
}

impl NodeProcess {
    /// Starts a node on `data` and waits until it serves.
    pub fn start(data: &Path, model: &Path) -> NodeProcess {
        Self::start_with(data, model, &[])
    }

    pub fn start_with(data: &Path, model: &Path, extra: &[&str]) -> NodeProcess {
        Self::spawn(data, model, extra, "warn", false, "127.0.0.1:0")
    }

    /// Starts a node with `RUST_LOG=rust_log` and keeps what it writes to
    /// stderr (in `stderr`), e.g. to check what its logs say.
    pub fn start_capturing(
        data: &Path,
        model: &Path,
        extra: &[&str],
        rust_log: &str,
    ) -> NodeProcess {
        Self::spawn(data, model, extra, rust_log, true, "127.0.0.1:0")
    }

    fn spawn(
        data: &Path,
        model: &Path,
        extra: &[&str],
        rust_log: &str,
        capture: bool,
        listen: &str,
    ) -> NodeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .arg("serve")
            .arg("--data")
            .arg(data)
            .arg("--model")
            .arg(model)
            .args(["--listen", listen, "--metrics", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("the handoff binary starts");
        let stderr = child.stderr.take().map(|pipe| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut t = sink.lock().expect("not poisoned");
                    t.push_str(&line);
                    t.push('\n');
                }
            });
            text
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the node never blocks on a full pipe.
            for _ in lines {}
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let log = stderr
                .map(|s| s.lock().expect("not poisoned").clone())
                .unwrap_or_default();
            panic!("the node did not print its address within a minute\n{log}");
        };
        let addr = line
            .strip_prefix("handoff serving ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        let metrics = line
            .split("metrics http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        NodeProcess {
            child: Some(child),
            addr,
            metrics,
            data: data.to_path_buf(),
            model: model.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            banner: line,
            stderr,
        }
    }

    /// `handoff ARGS --target ADDR` against this node: exit code, stdout,
    /// stderr.
    pub fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--target", &self.addr]);
        handoff(&all)
    }

    /// [`NodeProcess::cli`] that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.cli(args);
        assert_eq!(code, Some(0), "handoff {args:?}: {out}{err}");
        out
    }

    /// [`NodeProcess::cli`] that must be refused (exit 1, nothing on
    /// stdout), saying `says` on stderr.
    pub fn refused(&self, args: &[&str], says: &str) {
        let (code, out, err) = self.cli(args);
        assert_eq!(code, Some(1), "handoff {args:?} is refused: {out}{err}");
        assert!(err.contains(says), "handoff {args:?} says `{says}`: {err}");
        assert!(out.is_empty(), "handoff {args:?} did nothing: {out}");
    }

    /// What the node wrote to stderr so far (when capturing).
    pub fn log(&self) -> String {
        self.stderr
            .as_ref()
            .map(|s| s.lock().expect("not poisoned").clone())
            .unwrap_or_default()
    }

    /// The Prometheus text at `/metrics`.
    pub fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&self.metrics).expect("metrics listener");
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .expect("send the request");
        let mut text = String::new();
        conn.read_to_string(&mut text).expect("read the metrics");
        text
    }

    /// Sends a signal by name (`STOP`, `CONT`, ...) to the running node.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the node is running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Kills the process with SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("the node is running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let pid = c.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait());
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(status) => status.expect("wait on the node"),
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                panic!("the node did not exit within 20 s of SIGTERM");
            }
        }
    }

    /// Starts the node again on the same data directory.
    pub fn restart(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        *self = NodeProcess::start_with(&self.data.clone(), &self.model.clone(), &extra);
    }

    /// Starts the node again on the same data directory and the same gRPC
    /// address, as an operator restarting it would: clients that knew
    /// `addr` find it there again.
    pub fn restart_in_place(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let addr = self.addr.clone();
        *self = NodeProcess::spawn(
            &self.data.clone(),
            &self.model.clone(),
            &extra,
            "warn",
            false,
            &addr,
        );
    }

    pub async fn channel(&self) -> Channel {
        let uri = format!("http://{}", self.addr);
        tonic::transport::Endpoint::from_shared(uri)
            .expect("a valid uri")
            .connect()
            .await
            .expect("connects to the node")
    }

    pub async fn lifecycle(&self) -> LifecycleClient<Channel> {
        LifecycleClient::new(self.channel().await)
    }

    pub async fn escalations(&self) -> EscalationsClient<Channel> {
        EscalationsClient::new(self.channel().await)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An event for `customer`, as a source would send it.
pub fn event(id: &str, source: &str, ty: &str, customer: &str, market: &str) -> pb::Event {
    pb::Event {
        id: id.into(),
        source: source.into(),
        r#type: ty.into(),
        customer_id: customer.into(),
        market: market.into(),
        occurred_at: None,
        attributes: Default::default(),
    }
}

pub async fn ingest(client: &mut LifecycleClient<Channel>, e: pb::Event) -> pb::IngestResult {
    client
        .ingest(pb::IngestRequest { event: Some(e) })
        .await
        .expect("ingest succeeds")
        .into_inner()
}

/// Polls `check` until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    let mut poll = tokio::time::interval(Duration::from_millis(25));
    loop {
        poll.tick().await;
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
    }
}

/// Runs a command to completion with its output captured; kills it and
/// panics if it runs for longer than `limit`.
pub fn run_with_limit(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("collect the command's output"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

/// Runs the real `handoff` binary; panics if it runs for over a minute.
pub fn handoff(args: &[&str]) -> (Option<i32>, String, String) {
    let out = run_with_limit(
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
