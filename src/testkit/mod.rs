//! What tests and benches start for real: a local PostgreSQL server, and a
//! Patroni-managed PostgreSQL cluster with synchronous replication (for
//! failover tests).
//!
//! Not part of the node. It lives in the library (not under `tests/`) so
//! that unit tests, black-box tests and benches share one way of starting
//! the real database the cluster runs on.

pub mod patroni;
pub mod postgres;
