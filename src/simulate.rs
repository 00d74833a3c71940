//! `handoff simulate`: the real engine in virtual time.
