//! The node's HTTP listener: Prometheus text at `/metrics`, and the
//! dashboard (API.md): the overview, customer lists behind every number,
//! the support view of one customer, the live escalation feed and the
//! model as a picture.
//!
//! The dashboard is a client of the node's own gRPC services, called in
//! process: every page builds a `tonic::Request` that carries the
//! caller's credentials through the same interceptor as a gRPC call
//! ([`crate::api::Authenticate`]) and asks the same service method
//! (`GetCustomer`, `Authorize`, `ListCustomers`, `Subscribe`, `ListOpen`),
//! so the same rules apply, in a cluster the same forwarding too, and
//! nothing here re-implements them. HTML is rendered on the server with
//! maud, which escapes every string it is given: customer ids, markets
//! and every other text from outside reach the page only escaped. Charts
//! and the model graph are SVG drawn here; the stylesheet and the few
//! lines of JavaScript of the live feed are compiled into the binary, so
//! the dashboard works offline.
//!
//! - `auth.rs`: who is asking (bearer header or the login cookie), the
//!   login form, and when the dashboard refuses to serve at all.
//! - `layout.rs`: the page shell, formatting of times and durations, the
//!   assets, errors as pages.
//! - `overview.rs`: `/`: customers per state, SLA compliance, open
//!   escalations by team and age, each number a link to its list.
//! - `customers.rs`: `/customers?...` (a list, paged) and
//!   `/customers/{id}` (the support view).
//! - `feed.rs`: `/escalations` and its server-sent events
//!   (`/escalations/stream`), resuming by cursor.
//! - `graph.rs`: `/model`: the model's regions, states and transitions
//!   drawn as SVG.
//! - `charts.rs`: bar and line charts as SVG.

mod auth;
mod charts;
mod customers;
mod feed;
mod graph;
mod layout;
mod overview;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::api::{Authenticate, Routing};
use crate::node::Node;

pub use auth::{COOKIE, refusal};
pub use feed::item as feed_item;
pub use layout::WebError;

/// What the dashboard pages need: the node, how callers are admitted,
/// and (in a cluster) where calls for other nodes' shards go.
pub struct Dashboard {
    pub node: Arc<Node>,
    pub routing: Option<Arc<Routing>>,
    pub authenticate: Authenticate,
    /// Set when the dashboard must not serve on this listener (see
    /// [`refusal`]): pages answer 403 with this reason; `/metrics` is
    /// served as always.
    pub refused: Option<String>,
}

/// Where the dashboard is: set once the node is open, taken back when it
/// stops (so that nothing here holds the node past its shutdown).
type Slot = Arc<RwLock<Option<Arc<Dashboard>>>>;

/// The shared state of the router; `/metrics` is served from the start.
#[derive(Clone)]
struct App {
    metrics: PrometheusHandle,
    dashboard: Slot,
}

impl App {
    fn dashboard(&self) -> Result<Arc<Dashboard>, WebError> {
        let slot = self.dashboard.read().unwrap_or_else(|p| p.into_inner());
        slot.clone().ok_or_else(|| {
            WebError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The node is starting or stopping: its store is not open. Reload in a moment.",
            )
        })
    }
}

/// The running HTTP server.
pub struct Server {
    pub addr: SocketAddr,
    /// Filled by [`Server::open`]; read by every dashboard request.
    dashboard: Slot,
    /// Tells the server to stop accepting and finish its connections.
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// How long a stop waits for open connections (event streams end when
/// the node stops its streams) before it drops them.
const STOP_GRACE: Duration = Duration::from_secs(3);

impl Server {
    /// Serves the dashboard from now on (until then its pages answer 503).
    pub fn open(&self, dashboard: Dashboard) {
        *self.dashboard.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(dashboard));
    }

    /// Stops serving: the dashboard lets go of the node at once, and the
    /// server ends once its connections are done (at most [`STOP_GRACE`]).
    pub async fn stop(self) {
        self.dashboard
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Starts serving `/metrics` from `metrics` and the dashboard on
/// `listener` (bound by [`crate::metrics::install`]).
pub fn serve(
    listener: std::net::TcpListener,
    metrics: PrometheusHandle,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let dashboard: Slot = Arc::default();
    let app = router(App {
        metrics,
        dashboard: dashboard.clone(),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "the metrics and dashboard listener failed");
        }
    });
    Ok(Server {
        addr,
        dashboard,
        stop,
        task,
    })
}

fn router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(prometheus))
        .route("/", get(overview::page_handler))
        .route("/customers", get(customers::list))
        .route("/customers/{id}", get(customers::one))
        .route("/escalations", get(feed::feed_page))
        .route("/escalations/stream", get(feed::stream))
        .route("/model", get(graph::model_page))
        .route("/model.svg", get(graph::svg))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/dashboard.css", get(layout::css))
        .route("/assets/feed.js", get(layout::js))
        .fallback(layout::not_found)
        .with_state(app)
}

/// The Prometheus text, as the exporter's own listener served it.
async fn prometheus(State(app): State<App>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], app.metrics.render())
}

#[cfg(test)]
mod tests;
