//! Who is asking for a page, by the API's rules: the credentials of a
//! request (an `Authorization: Bearer` header, else the token of the
//! login cookie) go through the gRPC interceptor ([`Authenticate`]) as
//! they would on a gRPC call, so a node that runs open (no credentials,
//! on loopback) serves the dashboard to anyone with operator rights, and
//! a node with credentials refuses a page without a known token (401,
//! with the login form).
//!
//! The login form posts the token once; the node answers with an
//! `HttpOnly`, `SameSite=Strict` cookie that holds it (the token stays
//! out of scripts and off other sites' requests), and `/logout` clears
//! it. The dashboard's listener has no TLS, so [`refusal`] keeps the
//! dashboard off a non-loopback address unless `--insecure` says a layer
//! the operator trusts provides it, as the gRPC listener is refused.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::service::Interceptor;

use super::layout::{WebError, page};
use super::{App, Dashboard};
use crate::auth::{Admission, Exposure, Principal, admission};

/// The cookie that carries the token after a login.
pub const COOKIE: &str = "handoff_token";

/// The caller of a page as the interceptor admitted it, and the request
/// parts the services read the caller from.
pub struct Caller {
    pub principal: Principal,
    metadata: MetadataMap,
    extensions: tonic::Extensions,
}

impl Caller {
    /// A request to a gRPC service method, as this caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        tonic::Request::from_parts(self.metadata.clone(), self.extensions.clone(), message)
    }

    /// The team a team principal is; `None` for operators (and anyone on
    /// an open node), who see every team's escalations.
    pub fn own_team(&self) -> Option<&str> {
        match &self.principal {
            Principal::Team(t) => Some(t),
            Principal::Source(_) | Principal::Operator(_) | Principal::Anyone => None,
        }
    }
}

/// Why the dashboard is not served on `listen`, or `None` when it is: a
/// non-loopback address needs TLS, which this listener has not, unless
/// `insecure` (the rule of [`admission`] for the gRPC listener).
pub fn refusal(listen: SocketAddr, admitted: Admission, insecure: bool) -> Option<String> {
    let exposure = Exposure {
        listen,
        tls: false,
        credentials: admitted == Admission::Authenticated,
        insecure,
    };
    admission(exposure).err().map(|_| {
        format!(
            "The dashboard is not served on {listen}: it is not a loopback address and this listener has no TLS, \
             so tokens (or, with no credentials configured, operator rights) would cross the network in clear text. \
             Serve metrics on 127.0.0.1 and reach the dashboard through an SSH tunnel or a TLS proxy, or pass \
             --insecure if a layer you trust already provides TLS. /metrics is served as always."
        )
    })
}

/// The token a request carries as `Bearer` metadata: its Authorization
/// header as given, else the login cookie's token.
fn authorization(headers: &HeaderMap) -> Result<Option<MetadataValue<Ascii>>, WebError> {
    let bad = || {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "The Authorization header is not ASCII: send `Bearer <token>`.",
        )
    };
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| bad())?;
        return MetadataValue::try_from(text).map(Some).map_err(|_| bad());
    }
    match cookie(headers, COOKIE) {
        Some(token) => MetadataValue::try_from(format!("Bearer {token}"))
            .map(Some)
            .map_err(|_| bad()),
        None => Ok(None),
    }
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Dashboard {
    /// Admits the caller of a page (`next`: where its login goes back to).
    pub fn caller(&self, headers: &HeaderMap, next: &str) -> Result<Caller, WebError> {
        if let Some(reason) = &self.refused {
            return Err(WebError::new(StatusCode::FORBIDDEN, reason.clone()));
        }
        let mut request = tonic::Request::new(());
        if let Some(value) = authorization(headers)? {
            request.metadata_mut().insert("authorization", value);
        }
        let mut authenticate = self.authenticate.clone();
        let admitted = authenticate
            .call(request)
            .map_err(|s| WebError::from_status(s).login(next))?;
        let principal = crate::api::caller(&admitted).map_err(WebError::from_status)?;
        let (metadata, extensions, ()) = admitted.into_parts();
        Ok(Caller {
            principal,
            metadata,
            extensions,
        })
    }
}

/// A path on this site to go back to after a login: anything else
/// (another site, `//host`) goes to the overview.
fn local(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// The login form.
pub fn form(next: &str) -> Markup {
    html! {
        form.login method="post" action="/login" {
            input type="hidden" name="next" value=(local(next));
            label { "Token " input type="password" name="token" autocomplete="off" required; }
            button type="submit" { "Sign in" }
        }
        p.hint { "A token from " code { "handoff token new" } ", bound to a principal in the node's "
            code { "[[credentials]]" } ". It is kept in an HttpOnly cookie for this site only." }
    }
}

pub async fn login_form(Query(q): Query<LoginQuery>) -> Markup {
    page("Sign in", None, form(&q.next))
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// Checks the token as a gRPC call would, then keeps it in the cookie.
pub async fn login(State(app): State<App>, Form(f): Form<LoginForm>) -> Result<Response, WebError> {
    let dashboard = app.dashboard()?;
    let token = f.token.trim();
    // A cookie value holds no space, quote, comma, semicolon or backslash;
    // a token never has them.
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
    {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "That is not a token: paste the whole `hnd_...` text `handoff token new` printed.",
        )
        .login(&f.next));
    }
    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| WebError::new(StatusCode::BAD_REQUEST, "That is not a token."))?;
    headers.insert(header::AUTHORIZATION, bearer);
    dashboard.caller(&headers, &f.next)?;
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(local(&f.next))).into_response())
}

pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_go_back_only_to_this_site() {
        assert_eq!(local("/customers?sla=a%3Db"), "/customers?sla=a%3Db");
        assert_eq!(local("//evil.example/"), "/");
        assert_eq!(local("https://evil.example/"), "/");
        assert_eq!(local("/\\evil"), "/");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; handoff_token=hnd_x; b=2".parse().expect("a header"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("hnd_x"));
        assert_eq!(cookie(&HeaderMap::new(), COOKIE), None);
    }

    #[test]
    fn a_public_listener_serves_no_dashboard_unless_insecure() {
        let public: SocketAddr = "0.0.0.0:9464".parse().expect("an address");
        let local: SocketAddr = "127.0.0.1:9464".parse().expect("an address");
        assert!(refusal(local, Admission::Open, false).is_none());
        assert!(refusal(local, Admission::Authenticated, false).is_none());
        let why = refusal(public, Admission::Authenticated, false).expect("refused");
        assert!(
            why.contains("0.0.0.0:9464") && why.contains("--insecure"),
            "{why}"
        );
        assert!(refusal(public, Admission::Open, false).is_some());
        assert!(refusal(public, Admission::Authenticated, true).is_none());
    }
}
