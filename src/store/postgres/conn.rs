//! Connections that survive the database's own failover.
//!
//! The nodes name every database host (`postgres://...@db1,db2,db3/...
//! ?target_session_attrs=read-write`) and follow the primary. When the old
//! primary dies cleanly (its process crashes, its kernel closes the
//! sockets) every connection to it errors and the pool simply opens new
//! ones. When it stops answering *without* closing anything (the machine
//! hangs, freezes, or is cut off by the network), two things would keep a
//! node off the new primary for good:
//!
//! - **A silent connection back in the pool.** A call cut off by the
//!   store's time limits while it waited on the old primary dropped its
//!   pooled connection, which went back to the pool still open (it never
//!   errors), for the next call to hang on, and the next. [`Conn`] puts a
//!   connection back only when its operation finished; otherwise it is
//!   closed.
//! - **A host that accepts and never answers.** tokio-postgres bounds
//!   only the TCP connect of each host (`connect_timeout`), not the
//!   startup and the read-write check, so a new connection hung on the
//!   old primary and never reached the next host. [`HostByHost`] tries the
//!   hosts in order, each within `connect_timeout` as a whole, as libpq
//!   does.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_postgres::Config;
use tokio_postgres::config::{Host, LoadBalanceHosts};

use super::{db_error, pool_error};
use crate::store::Result;

/// A pooled connection that goes back to the pool only through
/// [`Conn::done`], once the operation that drew it has its answers.
/// Dropped otherwise (an error, or a time limit that cut the operation off
/// while a request was in flight), it is closed: it may be waiting on a
/// server that will never answer.
pub(super) struct Conn(Option<Object>);

impl Conn {
    pub(super) async fn get(pool: &Pool, op: &'static str) -> Result<Conn> {
        pool.get()
            .await
            .map(|c| Conn(Some(c)))
            .map_err(|e| pool_error(op, e))
    }

    /// Back to the pool: every request sent on it was answered.
    pub(super) fn done(mut self) {
        drop(self.0.take());
    }
}

/// A statement's parameters.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

impl Conn {
    /// Runs the prepared (cached) statement `sql`: its rows. `op` names
    /// what failed in the error.
    pub(super) async fn rows(
        &self,
        op: &'static str,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let st = self
            .prepare_cached(sql)
            .await
            .map_err(|e| db_error(op, e))?;
        self.query(&st, params).await.map_err(|e| db_error(op, e))
    }

    /// [`rows`](Conn::rows), for exactly one row.
    pub(super) async fn row(
        &self,
        op: &'static str,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<tokio_postgres::Row> {
        let st = self
            .prepare_cached(sql)
            .await
            .map_err(|e| db_error(op, e))?;
        self.query_one(&st, params)
            .await
            .map_err(|e| db_error(op, e))
    }

    /// [`rows`](Conn::rows), for at most one row.
    pub(super) async fn maybe_row(
        &self,
        op: &'static str,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<tokio_postgres::Row>> {
        let st = self
            .prepare_cached(sql)
            .await
            .map_err(|e| db_error(op, e))?;
        self.query_opt(&st, params)
            .await
            .map_err(|e| db_error(op, e))
    }

    /// Runs the prepared (cached) statement `sql`: the rows it changed.
    pub(super) async fn exec(
        &self,
        op: &'static str,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64> {
        let st = self
            .prepare_cached(sql)
            .await
            .map_err(|e| db_error(op, e))?;
        self.execute(&st, params).await.map_err(|e| db_error(op, e))
    }
}

impl Deref for Conn {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.0
            .as_ref()
            .expect("invariant: emptied only by done or drop")
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        self.0
            .as_mut()
            .expect("invariant: emptied only by done or drop")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Out of the pool; dropping the client ends its connection.
            drop(Object::take(c));
        }
    }
}

/// Connects to the first host of a multi-host URL that accepts a session
/// (and, with `target_session_attrs=read-write`, allows writes), each host
/// within `limit` from the TCP connect to the read-write check.
pub(super) struct HostByHost {
    hosts: Vec<Config>,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    limit: Duration,
}

impl HostByHost {
    /// `None` where tokio-postgres's own connect is used: one host,
    /// `load_balance_hosts=random`, or a URL this copy would not reproduce
    /// (see [`per_host`]).
    pub(super) fn new(
        cfg: &Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        limit: Duration,
    ) -> Option<HostByHost> {
        Some(HostByHost {
            hosts: per_host(cfg)?,
            tls,
            limit,
        })
    }
}

impl deadpool_postgres::Connect for HostByHost {
    fn connect(
        &self,
        _: &Config,
    ) -> BoxFuture<
        '_,
        std::result::Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>,
    > {
        Box::pin(async move {
            let mut last = None;
            for cfg in &self.hosts {
                match tokio::time::timeout(self.limit, cfg.connect(self.tls.clone())).await {
                    Ok(Ok((client, connection))) => {
                        let task = tokio::spawn(async move {
                            if let Err(e) = connection.await {
                                tracing::warn!(target: "deadpool.postgres", "Connection error: {e}");
                            }
                        });
                        return Ok((client, task));
                    }
                    Ok(Err(e)) => last = Some(e),
                    // Accepted, then silent: on to the next host.
                    // (tokio-postgres's own "timeout waiting for server",
                    // the error it offers connection pools.)
                    Err(_) => last = Some(tokio_postgres::Error::__private_api_timeout()),
                }
            }
            Err(last.expect("invariant: per_host gives two hosts or more"))
        })
    }
}

/// Each host of a multi-host configuration as a configuration of its own,
/// with every other setting the same. `None` for fewer than two hosts, for
/// `load_balance_hosts=random`, or when copying the settings does not give
/// back exactly `cfg` (a setting this code does not know of).
fn per_host(cfg: &Config) -> Option<Vec<Config>> {
    let (hosts, addrs, ports) = (cfg.get_hosts(), cfg.get_hostaddrs(), cfg.get_ports());
    let n = hosts.len().max(addrs.len());
    if n < 2 || cfg.get_load_balance_hosts() == LoadBalanceHosts::Random {
        return None;
    }
    let settings = || {
        let mut c = Config::new();
        if let Some(v) = cfg.get_user() {
            c.user(v);
        }
        if let Some(v) = cfg.get_password() {
            c.password(v);
        }
        if let Some(v) = cfg.get_dbname() {
            c.dbname(v);
        }
        if let Some(v) = cfg.get_options() {
            c.options(v);
        }
        if let Some(v) = cfg.get_application_name() {
            c.application_name(v);
        }
        if let Some(v) = cfg.get_connect_timeout() {
            c.connect_timeout(*v);
        }
        if let Some(v) = cfg.get_tcp_user_timeout() {
            c.tcp_user_timeout(*v);
        }
        if let Some(v) = cfg.get_keepalives_interval() {
            c.keepalives_interval(v);
        }
        if let Some(v) = cfg.get_keepalives_retries() {
            c.keepalives_retries(v);
        }
        c.ssl_mode(cfg.get_ssl_mode())
            .ssl_negotiation(cfg.get_ssl_negotiation())
            .keepalives(cfg.get_keepalives())
            .keepalives_idle(cfg.get_keepalives_idle())
            .target_session_attrs(cfg.get_target_session_attrs())
            .channel_binding(cfg.get_channel_binding())
            .load_balance_hosts(cfg.get_load_balance_hosts());
        c
    };
    let add_host = |c: &mut Config, h: &Host| match h {
        Host::Tcp(h) => {
            c.host(h);
        }
        Host::Unix(p) => {
            c.host_path(p);
        }
    };
    let mut whole = settings();
    hosts.iter().for_each(|h| add_host(&mut whole, h));
    addrs.iter().for_each(|a| {
        whole.hostaddr(*a);
    });
    ports.iter().for_each(|p| {
        whole.port(*p);
    });
    if whole != *cfg {
        return None;
    }
    Some(
        (0..n)
            .map(|i| {
                let mut c = settings();
                if let Some(h) = hosts.get(i) {
                    add_host(&mut c, h);
                }
                if let Some(a) = addrs.get(i) {
                    c.hostaddr(*a);
                }
                if let Some(p) = ports.get(i).or(ports.first()) {
                    c.port(*p);
                }
                c
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> Config {
        url.parse().expect("a valid URL")
    }

    #[test]
    fn a_multi_host_url_splits_into_one_config_per_host() {
        let all = cfg(
            "postgres://u:pw@db1:5433,db2,db3:5435/app?target_session_attrs=read-write\
             &connect_timeout=3&sslmode=require&application_name=x&keepalives_idle=7",
        );
        let hosts = per_host(&all).expect("three hosts");
        assert_eq!(hosts.len(), 3);
        for (c, (host, port)) in hosts
            .iter()
            .zip([("db1", 5433), ("db2", 5432), ("db3", 5435)])
        {
            assert_eq!(c.get_hosts(), &[Host::Tcp(host.into())]);
            assert_eq!(c.get_ports(), &[port]);
            assert_eq!(c.get_user(), Some("u"));
            assert_eq!(c.get_password(), Some(&b"pw"[..]));
            assert_eq!(c.get_dbname(), Some("app"));
            assert_eq!(c.get_target_session_attrs(), all.get_target_session_attrs());
            assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
            assert_eq!(c.get_ssl_mode(), all.get_ssl_mode());
            assert_eq!(c.get_application_name(), Some("x"));
            assert_eq!(c.get_keepalives_idle(), Duration::from_secs(7));
        }
    }

    #[test]
    fn one_port_serves_every_host() {
        let hosts = per_host(&cfg("host=a,b port=6000 user=u dbname=d")).expect("two hosts");
        assert_eq!(hosts[0].get_ports(), &[6000]);
        assert_eq!(hosts[1].get_ports(), &[6000]);
    }

    #[test]
    fn one_host_or_random_order_is_left_to_tokio_postgres() {
        assert!(per_host(&cfg("postgres://u@a:1/d")).is_none());
        assert!(per_host(&cfg("postgres://u@a,b/d?load_balance_hosts=random")).is_none());
    }
}
