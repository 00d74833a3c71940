//! The page shell, errors as pages, formatting of times, durations and
//! links, and the two assets compiled into the binary.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use tonic::Code;

use crate::auth::Principal;

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/feed.js");

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
}

pub async fn not_found() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        "No such page: start from the overview.",
    )
}

/// A whole page: the navigation, who is signed in, the body.
pub fn page(title: &str, who: Option<&Principal>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Handoff" }
                link rel="stylesheet" href="/assets/dashboard.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Handoff" }
                    nav {
                        a href="/" { "Overview" }
                        a href="/customers" { "Customers" }
                        a href="/escalations" { "Escalations" }
                        a href="/model" { "Model" }
                    }
                    @if let Some(who) = who {
                        span.who {
                            (who.to_string())
                            @if !matches!(who, Principal::Anyone) {
                                form.inline method="post" action="/logout" {
                                    button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A request the dashboard cannot answer, shown as a page with its
/// status; a missing or unknown token also gets the login form.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    /// Set on 401: where the login form goes back to.
    login_next: Option<String>,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
            login_next: None,
        }
    }

    /// The answer of a gRPC service method, as an HTTP status.
    pub fn from_status(s: tonic::Status) -> WebError {
        let status = match s.code() {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::AlreadyExists
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        };
        WebError::new(status, s.message())
    }

    /// Offers the login form (on a 401) that comes back to `next`.
    pub fn login(mut self, next: &str) -> WebError {
        if self.status == StatusCode::UNAUTHORIZED || self.status == StatusCode::BAD_REQUEST {
            self.login_next = Some(next.to_owned());
        }
        self
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = html! {
            p.error { (self.message) }
            @if let Some(next) = &self.login_next {
                (super::auth::form(next))
            }
        };
        (self.status, page(&title, None, body)).into_response()
    }
}

/// Percent-encodes `text` for a path segment or a query value.
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/customers?k=v&...` for the pairs whose value is not empty.
pub fn list_link(pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if query.is_empty() {
        "/customers".to_owned()
    } else {
        format!("/customers?{}", query.join("&"))
    }
}

/// The link to a customer's page.
pub fn customer_link(id: &str) -> String {
    format!("/customers/{}", enc(id))
}

/// Microseconds since the epoch of a protobuf timestamp.
pub fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1000)
}

/// A protobuf timestamp as `2026-11-29 21:08:00 UTC`.
pub fn when(t: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = t else {
        return "—".to_owned();
    };
    match jiff::Timestamp::new(t.seconds, t.nanos.clamp(0, 999_999_999)) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("{}s", t.seconds),
    }
}

/// A length of time in microseconds, in two units at most: `3h 20m`,
/// `45s`, `-2m 5s` (negative: overdue).
pub fn span(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let s = (us.unsigned_abs() / 1_000_000) as i64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let text = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    };
    format!("{sign}{text}")
}

/// A protobuf duration in microseconds.
pub fn duration_us(d: Option<&prost_types::Duration>) -> i64 {
    d.map_or(0, |d| {
        d.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(d.nanos) / 1000)
    })
}

/// The lower-case word of a severity.
pub fn severity(s: i32) -> &'static str {
    use crate::api::pb::Severity;
    match Severity::try_from(s).unwrap_or(Severity::Unspecified) {
        Severity::Unspecified => "",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_what_they_carry() {
        assert_eq!(enc("a b/<c>&"), "a%20b%2F%3Cc%3E%26");
        assert_eq!(
            list_link(&[("sla", "x=breached"), ("market", ""), ("owner", "é")]),
            "/customers?sla=x%3Dbreached&owner=%C3%A9"
        );
        assert_eq!(list_link(&[]), "/customers");
        assert_eq!(customer_link("<c1>"), "/customers/%3Cc1%3E");
    }

    #[test]
    fn spans_read_in_two_units() {
        assert_eq!(span(45_000_000), "45s");
        assert_eq!(span(200 * 1_000_000), "3m 20s");
        assert_eq!(span(-(3 * 3600 + 20 * 60) * 1_000_000), "-3h 20m");
        assert_eq!(span(2 * 86_400 * 1_000_000 + 3_600_000_000), "2d 1h");
    }

    #[test]
    fn times_are_utc() {
        let t = prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(when(Some(&t)), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(None), "—");
    }
}
