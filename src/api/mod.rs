//! The gRPC edge (`handoff.v1`, see API.md): tonic services that validate
//! input, call the node and map errors to `Status`; no logic of their own.
//! Also the standard health and reflection services, so grpcurl, load
//! balancers and Kubernetes probes work unchanged.
//!
//! - `lifecycle.rs`, `escalations.rs`, `models.rs`: the services, a file
//!   each (`models.rs`: model versions and rollouts, operators only).
//! - `history.rs`: ExportHistory (Models), whole histories as `simulate`
//!   lines.
//! - `forward.rs`: in a cluster, calls for customers whose shard another
//!   node serves go on to it ([`Routing`], over a [`Locate`]).
//! - `queries.rs`: ListCustomers' request and page conversions.
//! - `reports.rs`: the Reports service (GetReport): every principal may
//!   read the counts.
//! - `convert.rs`: node types <-> protobuf types, the only place that
//!   knows both.
//! - `error.rs`: `NodeError` -> `Status`, and request id checks.
//! - `invalid.rs`: INVALID_ARGUMENT refusals, made and counted.
//! - `closable.rs`: connections a stop can close once its grace is over.
//! - `auth.rs`: who is calling (token or client certificate), the rules
//!   applied with counting, and the listener's TLS ([`Edge`]).

mod auth;
mod closable;
mod convert;
mod error;
mod escalations;
mod forward;
mod history;
mod invalid;
mod lifecycle;
mod migrate;
mod models;
mod queries;
mod reports;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

pub use auth::{Authenticate, Edge, caller};
pub use convert::{from_timestamp, timestamp};
pub use escalations::{EscalationsService, START_CURSOR_HEADER};
pub use forward::{FORWARDED_BY_HEADER, Locate, MOVE_WAIT, Routing};
pub use lifecycle::{LifecycleService, MAX_BATCH};
pub use models::ModelsService;
pub use reports::ReportsService;

use crate::node::Node;

/// Generated from `proto/handoff/v1/handoff.proto`: messages, enums, client
/// and server stubs. Conversions to and from engine types live in
/// `convert.rs`, never in the engine.
pub mod pb {
    tonic::include_proto!("handoff.v1");

    /// The encoded file descriptor set of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("handoff_descriptor");
}

/// Largest request or response message.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// How long a stop waits for in-flight calls and streams before it closes
/// their connections, so the node exits within 10 s (API.md) even when a
/// subscriber stopped reading.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Serves the API on `listener` until `shutdown` resolves, open and
/// without TLS ([`Edge::open`]); see [`serve_with`].
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_with(node, listener, shutdown, Edge::open()).await
}

/// Serves the API of a single node, which serves every shard, on
/// `listener`; see [`serve_routed`].
pub async fn serve_with(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    edge: Edge,
) -> Result<(), tonic::transport::Error> {
    serve_routed(node, listener, shutdown, edge, None).await
}

/// Serves the API on `listener` until `shutdown` resolves; then stops
/// accepting, finishes in-flight calls and ends open streams, and after
/// [`STOP_GRACE`] closes the connections that are still busy. Every call
/// but health probes passes `edge`'s authentication. With `routing` (a
/// node in a cluster), calls for customers whose shard another node
/// serves are forwarded to it (see [`Routing`]).
pub async fn serve_routed(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    edge: Edge,
    routing: Option<Arc<Routing>>,
) -> Result<(), tonic::transport::Error> {
    use tonic::service::interceptor::InterceptedService;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::lifecycle_server::LifecycleServer<LifecycleService>>()
        .await;
    health
        .set_serving::<pb::escalations_server::EscalationsServer<EscalationsService>>()
        .await;
    health
        .set_serving::<pb::models_server::ModelsServer<ModelsService>>()
        .await;
    health
        .set_serving::<pb::reports_server::ReportsServer<ReportsService>>()
        .await;
    // In a cluster, health follows the node's membership (a node cut off
    // from the database answers NOT_SERVING on "" and on both services).
    let readiness = routing.clone().map(|routing| {
        let health = health.clone();
        tokio::spawn(async move {
            let mut shown = true;
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let ready = routing.ready();
                if ready == shown {
                    continue;
                }
                shown = ready;
                let status = if ready {
                    tonic_health::ServingStatus::Serving
                } else {
                    tonic_health::ServingStatus::NotServing
                };
                for service in ["", "handoff.v1.Lifecycle", "handoff.v1.Escalations"] {
                    health.set_service_status(service, status).await;
                }
                tracing::info!(serving = ready, "health status changed");
            }
        })
    });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled-in descriptor sets are valid");
    let reflection = InterceptedService::new(reflection, edge.authenticate.clone());
    let lifecycle = pb::lifecycle_server::LifecycleServer::new(LifecycleService {
        node: node.clone(),
        routing: routing.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let models = pb::models_server::ModelsServer::new(ModelsService { node: node.clone() })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let models = InterceptedService::new(models, edge.authenticate.clone());
    let reports = pb::reports_server::ReportsServer::new(ReportsService { node: node.clone() })
        .max_encoding_message_size(MAX_MESSAGE);
    let reports = InterceptedService::new(reports, edge.authenticate.clone());
    let escalations =
        pb::escalations_server::EscalationsServer::new(EscalationsService { node, routing })
            .max_decoding_message_size(MAX_MESSAGE);
    let lifecycle = InterceptedService::new(lifecycle, edge.authenticate.clone());
    let escalations = InterceptedService::new(escalations, edge.authenticate);
    let (close, closing) = watch::channel(false);
    let incoming = TcpListenerStream::new(listener).map(move |conn| {
        conn.map(|io| {
            // Small replies go out at once, not after Nagle's delay
            // (tonic's own `tcp_nodelay` does not apply to an incoming
            // stream of our making).
            if let Err(e) = io.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            closable::Closable::new(io, closing.clone())
        })
    });
    let (stopping, stopped) = oneshot::channel();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    let closer = tokio::spawn(async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(STOP_GRACE).await;
            tracing::warn!(
                grace_s = STOP_GRACE.as_secs(),
                "calls or streams still busy after the stop's grace period: closing their connections"
            );
            let _ = close.send(true);
        }
    });
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = edge.tls {
        server = server.tls_config(tls)?;
    }
    let served = server
        .layer(invalid::CountInvalidLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(lifecycle)
        .add_service(escalations)
        .add_service(models)
        .add_service(reports)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    closer.abort();
    if let Some(r) = readiness {
        r.abort();
    }
    served
}
