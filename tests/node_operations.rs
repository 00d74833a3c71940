//! The node as an operator runs it, against the real `handoff` binary on
//! 127.0.0.1:0: health and reflection, graceful shutdown on SIGTERM (with
//! streams open, and with a subscriber that stopped reading), and
//! `store compact` on a stopped node.
//!
//! Each test starts its own node on its own data directory and uses its own
//! customer ids, so the tests run in parallel. Escalations come from the
//! fast model (`tests/models/fast.toml`): a ghost customer (paid, no access)
//! is warned at 2 s, breached at 4 s and re-escalated to cx_director every
//! 2 s after 6 s (BR: 1 s, 2 s, 4 s). Waits are deadlines, never sleeps.

mod common;

use std::time::{Duration, Instant};

use common::api::*;
use common::{NodeProcess, event, fast_model, fresh_dir, handoff, ingest};
use handoff::api::pb;
use handoff::api::pb::escalations_client::EscalationsClient;

#[tokio::test]
async fn health_and_reflection_answer() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let node = NodeProcess::start(&fresh_dir("api-health"), &fast_model());
    let mut health = HealthClient::new(node.channel().await);
    for service in ["", "handoff.v1.Lifecycle", "handoff.v1.Escalations"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of `{service}`: {e}"))
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "`{service}`");
    }

    let mut reflection = ServerReflectionClient::new(node.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("a reflection answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "handoff.v1.Lifecycle",
        "handoff.v1.Escalations",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&name), "{name} is not in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_and_exits_zero() {
    let mut node = NodeProcess::start(&fresh_dir("api-sigterm"), &fast_model());
    let mut client = node.lifecycle().await;
    ingest(&mut client, event("s1", "crm", "deal_won", "term-a", "US")).await;
    let mut stream = subscribe(&node, subscription(&[], &[], pb::Severity::Unspecified, "")).await;
    let reader = tokio::spawn(async move { stream.message().await });

    let started = Instant::now();
    let status = tokio::task::block_in_place(|| node.terminate());
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
    let ended = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the open stream ends with the node, it does not hang")
        .expect("the reader task");
    assert!(
        matches!(ended, Ok(None)),
        "the stream ends cleanly (subscribers resume from their cursor): {ended:?}"
    );

    // What was acknowledged before the stop is there after it.
    node.restart();
    let mut client = node.lifecycle().await;
    let v = customer(&mut client, "term-a", 0).await.expect("kept");
    assert_eq!(v.regions[0].state, "onboarding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_compact_runs_on_a_stopped_node_and_keeps_everything() {
    let mut node = NodeProcess::start(&fresh_dir("api-compact"), &fast_model());
    let mut client = node.lifecycle().await;
    for i in 0..50 {
        let c = format!("compact-{i}");
        ingest(
            &mut client,
            event(&format!("w{i}"), "crm", "deal_won", &c, "US"),
        )
        .await;
    }
    let data = node.data.to_str().expect("a UTF-8 temp path").to_owned();

    // Not while the node has the directory open.
    let (code, _, err) =
        tokio::task::block_in_place(|| handoff(&["store", "compact", "--data", &data]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("another process has it open"), "{err}");

    let status = tokio::task::block_in_place(|| node.terminate());
    assert!(status.success(), "exit status {status}");
    let (code, out, err) =
        tokio::task::block_in_place(|| handoff(&["store", "compact", "--data", &data]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("bytes before") && out.contains("bytes after"),
        "{out}"
    );

    // A directory that is not a node's is named, and left alone.
    let elsewhere = fresh_dir("api-compact-not-data");
    std::fs::create_dir_all(&elsewhere).expect("make a directory");
    let elsewhere = elsewhere.to_str().expect("a UTF-8 temp path").to_owned();
    let (code, _, err) =
        tokio::task::block_in_place(|| handoff(&["store", "compact", "--data", &elsewhere]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is not a handoff data directory"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).expect("readable").count(), 0);

    // Everything acknowledged is still there.
    node.restart();
    let mut client = node.lifecycle().await;
    for i in [0, 49] {
        let v = customer(&mut client, &format!("compact-{i}"), 0)
            .await
            .expect("kept through compaction");
        assert_eq!(v.regions[0].state, "onboarding");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_forever_for_a_subscriber_that_stopped_reading() {
    let mut node = NodeProcess::start(&fresh_dir("api-stalled"), &fast_model());
    let mut client = node.lifecycle().await;
    // A monitor that subscribes from the start and then stops reading: a
    // small HTTP/2 window, so the node soon cannot send it anything more.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
        .expect("a valid uri")
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("connects");
    let _stalled = EscalationsClient::new(channel)
        .subscribe(subscription(
            &[],
            &[],
            pb::Severity::Unspecified,
            "earliest",
        ))
        .await
        .expect("subscribed");
    // Twenty customers paid a minute ago without access: twenty late
    // breaches at once, far more than the subscriber's window.
    let t0 = now_micros() - 120 * SECOND;
    let mut events = Vec::new();
    for i in 0..20 {
        let c = format!("stall-{i}");
        events.push(at(event(&format!("w{i}"), "crm", "deal_won", &c, "US"), t0));
    }
    client
        .ingest_batch(pb::IngestBatchRequest { events })
        .await
        .expect("accepted");
    let events = (0..20)
        .map(|i| {
            let c = format!("stall-{i}");
            at(
                event(&format!("p{i}"), "billing", "payment_succeeded", &c, ""),
                t0 + 60 * SECOND,
            )
        })
        .collect();
    client
        .ingest_batch(pb::IngestBatchRequest { events })
        .await
        .expect("accepted");
    let mut esc = node.escalations().await;
    assert_eq!(
        list_open(&mut esc, "provisioning")
            .await
            .expect("listed")
            .len(),
        20
    );

    let started = Instant::now();
    let status = tokio::task::block_in_place(|| node.terminate());
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
}
