//! `handoff escalations tail|list|ack`.

pub mod ack;
pub mod list;
pub mod tail;
