//! The HTTP listener over a real socket, with a node in process on the
//! memory store: `/metrics` unchanged (HTTP/1.0, as loadgen reads it),
//! outside text escaped, the feed resuming by cursor, the API's
//! credentials and rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::api::Edge;
use crate::auth::{CredentialConfig, token_hash_hex};
use crate::clock::SystemClock;
use crate::engine::model::{Model, load};
use crate::engine::{Event, Timestamp};
use crate::node::NodeConfig;
use crate::store::MemoryStore;

const OPERATOR: &str = "hnd_operator_token_for_tests";
const PROVISIONING: &str = "hnd_provisioning_token_for_tests";
const BILLING: &str = "hnd_billing_token_for_tests";

fn model() -> Arc<Model> {
    let text = include_str!("../../tests/models/fast.toml");
    Arc::new(load("fast.toml", text).expect("the test model loads"))
}

async fn node() -> Arc<Node> {
    node_of(2).await
}

async fn node_of(shards: u32) -> Arc<Node> {
    Arc::new(
        Node::open(
            NodeConfig {
                shards,
                ..NodeConfig::default()
            },
            model(),
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
        )
        .await
        .expect("the node opens"),
    )
}

/// An edge with an operator and two teams' tokens.
fn with_credentials(model: &Arc<Model>) -> Edge {
    let config = NodeConfig {
        credentials: [
            ("operator:ops", OPERATOR),
            ("team:provisioning", PROVISIONING),
            ("team:billing", BILLING),
        ]
        .into_iter()
        .map(|(p, t)| CredentialConfig {
            principal: p.into(),
            sha256: token_hash_hex(t),
        })
        .collect(),
        ..NodeConfig::default()
    };
    Edge::from_config(&config, model, false).expect("credentials load")
}

async fn start(node: &Arc<Node>, edge: Edge, refused: Option<String>) -> Server {
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.set_nonblocking(true).expect("nonblocking");
    let server = serve(listener, handle).expect("serves");
    server.open(Dashboard {
        node: node.clone(),
        routing: None,
        authenticate: edge.authenticator(),
        refused,
    });
    server
}

fn event(id: &str, source: &str, ty: &str, customer: &str, market: &str, at: i64) -> Event {
    let mut attributes = BTreeMap::new();
    attributes.insert("<script>k</script>".into(), "<script>v</script>".into());
    Event {
        id: id.into(),
        source: source.into(),
        event_type: ty.into(),
        customer: customer.into(),
        market: market.into(),
        occurred_at: Timestamp(at),
        attributes,
    }
}

/// A customer paid a minute ago without access: its hand-off (4 s in
/// the fast model) is breached at once.
async fn overdue(node: &Node, customer: &str) {
    let at = node.now().0 - 60_000_000;
    for (n, (source, ty, market)) in [
        ("crm", "deal_won", "US"),
        ("billing", "payment_succeeded", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let r = node
            .ingest(
                event(&format!("{customer}-{n}"), source, ty, customer, market, at),
                true,
            )
            .await
            .expect("ingests");
        assert_eq!(r.outcome, crate::engine::Outcome::Applied, "{r:?}");
    }
}

/// An HTTP/1.0 exchange: status, headers and body (the connection
/// closes after the response).
async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut conn = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connects");
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).await.expect("sends");
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_string(&mut raw))
        .await
        .expect("answers within 30 s")
        .expect("reads");
    split(&raw)
}

fn split(raw: &str) -> (u16, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Reads server-sent events until `n` escalations came (or 30 s passed):
/// every `(event, id, data)`.
async fn sse(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> Vec<(String, String, String)> {
    let mut conn = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connects");
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).await.expect("sends");
    let mut raw = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = parse_sse(&String::from_utf8_lossy(&raw));
        if events.iter().filter(|e| e.0 == "escalation").count() >= n {
            return events;
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return events,
            Ok(Ok(k)) => raw.extend_from_slice(&buf[..k]),
            Ok(Err(e)) => panic!("reading the stream: {e}"),
        }
    }
}

/// The events of an SSE body (chunked transfer framing is skipped: its
/// size lines hold no `:`).
fn parse_sse(raw: &str) -> Vec<(String, String, String)> {
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let mut events = Vec::new();
    let (mut kind, mut id, mut data) = (String::new(), String::new(), String::new());
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            if !kind.is_empty() {
                events.push((
                    std::mem::take(&mut kind),
                    std::mem::take(&mut id),
                    std::mem::take(&mut data),
                ));
            }
            continue;
        }
        if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_owned();
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_owned();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data.push_str(v);
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_the_recorders_text_over_http_1_0() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("handoff_events_total", "outcome" => "applied").increment(3);
        metrics::gauge!("handoff_active_actors").set(2.0);
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.set_nonblocking(true).expect("nonblocking");
    let server = serve(listener, handle.clone()).expect("serves");
    // Served before the dashboard opens, as from start-up.
    let (status, head, body) = get(&server, "/metrics", &[]).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_lowercase().contains("content-type: text/plain"),
        "{head}"
    );
    assert_eq!(body, handle.render());
    assert!(
        body.contains("handoff_events_total{outcome=\"applied\"} 3"),
        "{body}"
    );
    let (status, _, body) = get(&server, "/", &[]).await;
    assert_eq!(status, 503, "the dashboard waits for the node: {body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_text_is_escaped_everywhere_it_is_shown() {
    let node = node().await;
    let server = start(&node, Edge::open(), None).await;
    let evil = "<script>alert('x')</script>";
    overdue(&node, evil).await;
    let path = format!("/customers/{}", layout::enc(evil));
    let (status, _, body) = get(&server, &path, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "unescaped: {body}");
    let (status, _, body) = get(&server, "/customers?market=US", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("&lt;script&gt;"), "{body}");
    assert!(!body.contains("<script>"), "unescaped: {body}");
    assert!(
        body.contains(&path),
        "the row links to the customer: {body}"
    );
    // A filter from outside comes back escaped too.
    let (status, _, body) = get(&server, "/customers?owner=%3Cscript%3E", &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("<script>"), "unescaped: {body}");
    // The feed's items, and its stream, escape what they carry.
    let open = node.list_open("").expect("open escalations");
    assert!(!open.is_empty(), "the overdue hand-off escalated");
    let events = sse(&server, "/escalations/stream?cursor=earliest", &[], 1).await;
    let first = events
        .iter()
        .find(|e| e.0 == "escalation")
        .expect("an escalation");
    assert!(
        first.2.contains("&lt;script&gt;") && !first.2.contains("<script>"),
        "{first:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_resumes_after_the_last_event_id() {
    // One shard: one log, so both readings see it in the same order.
    let node = node_of(1).await;
    let server = start(&node, Edge::open(), None).await;
    for c in ["c1", "c2", "c3"] {
        overdue(&node, c).await;
    }
    // Each overdue hand-off fires its warning and its breach at once.
    let all = sse(&server, "/escalations/stream?cursor=earliest", &[], 6).await;
    let escalations: Vec<_> = all.iter().filter(|e| e.0 == "escalation").collect();
    assert!(escalations.len() >= 6, "{all:?}");
    assert_eq!(
        all[0].0, "start",
        "the stream says where it starts: {all:?}"
    );
    // The browser resumes with Last-Event-ID, which wins over `cursor`.
    let (after, rest) = (escalations[1], &escalations[2..]);
    let resumed = sse(
        &server,
        "/escalations/stream?cursor=earliest",
        &[("Last-Event-ID", &after.1)],
        rest.len(),
    )
    .await;
    let resumed: Vec<_> = resumed.iter().filter(|e| e.0 == "escalation").collect();
    assert_eq!(
        resumed.iter().map(|e| &e.1).collect::<Vec<_>>(),
        rest.iter().map(|e| &e.1).collect::<Vec<_>>(),
        "exactly what came after the last id seen"
    );
    // And `cursor` alone resumes the same way.
    let by_param = sse(
        &server,
        &format!("/escalations/stream?cursor={}", layout::enc(&after.1)),
        &[],
        rest.len(),
    )
    .await;
    assert_eq!(
        by_param.iter().filter(|e| e.0 == "escalation").count(),
        rest.len()
    );
    let (status, _, body) = get(&server, "/escalations/stream?cursor=nonsense", &[]).await;
    assert_eq!(status, 400, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_take_the_apis_credentials_and_rules() {
    let node = node().await;
    let edge = with_credentials(&node.model());
    let server = start(&node, edge, None).await;
    overdue(&node, "c1").await;

    // No credentials, or a wrong token: 401 with the login form.
    for headers in [
        vec![],
        vec![("Authorization", "Bearer hnd_wrong".to_owned())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for path in [
            "/",
            "/customers",
            "/customers/c1",
            "/escalations",
            "/escalations/stream",
            "/model",
        ] {
            let (status, _, body) = get(&server, path, &headers).await;
            assert_eq!(status, 401, "{path}: {body}");
        }
    }
    let (_, _, body) = get(&server, "/customers/c1", &[]).await;
    assert!(body.contains(r#"action="/login""#), "{body}");

    // The operator sees everything, timeline included.
    let op = bearer(OPERATOR);
    let (status, _, body) = get(&server, "/customers/c1", &[("Authorization", &op)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("c1:access_after_payment"), "{body}");
    assert!(!body.contains("The timeline is for operators"), "{body}");

    // A team sees its own escalations only, and no timeline.
    let prov = bearer(PROVISIONING);
    let (status, _, body) = get(&server, "/customers/c1", &[("Authorization", &prov)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("c1:access_after_payment"),
        "provisioning is notified: {body}"
    );
    assert!(body.contains("The timeline is for operators"), "{body}");
    let billing = bearer(BILLING);
    let (status, _, body) = get(&server, "/customers/c1", &[("Authorization", &billing)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("c1:access_after_payment"),
        "not billing's: {body}"
    );
    let (_, _, body) = get(&server, "/escalations", &[("Authorization", &billing)]).await;
    assert!(body.contains("No open escalation"), "{body}");
    let (_, _, body) = get(&server, "/escalations", &[("Authorization", &prov)]).await;
    assert!(body.contains("/customers/c1"), "{body}");
    // Another team's feed is denied, as Subscribe denies it.
    let (status, _, body) = get(
        &server,
        "/escalations/stream?team=provisioning",
        &[("Authorization", &billing)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let own = sse(
        &server,
        "/escalations/stream?cursor=earliest",
        &[("Authorization", &prov)],
        1,
    )
    .await;
    assert!(own.iter().any(|e| e.0 == "escalation"), "{own:?}");

    // The login form's cookie stands for the token.
    let mut conn = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connects");
    let form = format!("token={PROVISIONING}&next=%2Fcustomers%2Fc1");
    let request = format!(
        "POST /login HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    conn.write_all(request.as_bytes()).await.expect("sends");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.expect("reads");
    let (status, head, _) = split(&raw);
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /customers/c1"), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value");
    let (status, _, body) = get(&server, "/customers/c1", &[("Cookie", pair)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("team:provisioning"), "{body}");
    // A wrong token is refused at the login too.
    let mut conn = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connects");
    let form = "token=hnd_wrong&next=%2F";
    let request = format!(
        "POST /login HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    conn.write_all(request.as_bytes()).await.expect("sends");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.expect("reads");
    let (status, head, _) = split(&raw);
    assert_eq!(status, 401, "{head}");
    assert!(!head.contains("set-cookie"), "{head}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dashboard_still_serves_metrics() {
    let node = node().await;
    let why = refusal(
        "0.0.0.0:9464".parse().expect("an address"),
        crate::auth::Admission::Open,
        false,
    );
    assert!(why.is_some());
    let server = start(&node, Edge::open(), why).await;
    let (status, _, body) = get(&server, "/", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not a loopback address"), "{body}");
    let (status, _, _) = get(&server, "/metrics", &[]).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_is_drawn_with_every_state() {
    let node = node().await;
    let server = start(&node, Edge::open(), None).await;
    let (status, head, body) = get(&server, "/model.svg", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("image/svg+xml"), "{head}");
    let model = node.model();
    for region in &model.spec.regions {
        for state in &region.states {
            assert!(
                body.contains(&format!(">{}</text>", state.name)),
                "{}",
                state.name
            );
        }
    }
    assert!(body.contains("marker-end"), "transitions are arrows");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_and_links_every_number() {
    let node = node().await;
    let server = start(&node, Edge::open(), None).await;
    for c in ["c1", "c2"] {
        overdue(&node, c).await;
    }
    // The report reads what is committed; the breaches fire on their own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, _, body) = get(&server, "/", &[]).await;
        assert_eq!(status, 200, "{body}");
        if body.contains(">2 breached</a>") || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains(r#"href="/customers?state=lifecycle%3Dpaid""#),
        "a state's bar links to its customers: {body}"
    );
    assert!(body.contains(">2</text>"), "2 customers are paid: {body}");
    assert!(
        body.contains(r#"href="/customers?sla=access_after_payment%3Dbreached""#)
            && body.contains(">2 breached</a>"),
        "breached links to those customers: {body}"
    );
    assert!(body.contains("/escalations?team=provisioning"), "{body}");
    // A market narrows it; a market the model does not declare is 400.
    let (status, _, body) = get(&server, "/?market=DE", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(">2 breached</a>"), "{body}");
    let (status, _, body) = get(&server, "/?market=%3Cscript%3E", &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("<script>"), "unescaped: {body}");
    server.stop().await;
}
