//! What the client commands share when they print: `say!` (stdout that
//! tolerates a closed pipe), words for the API's enums and status codes,
//! timestamps.

use std::collections::HashMap;

use crate::api::{from_timestamp, pb};

/// `println!` for output that may go to a pipe closed early (`| head`):
/// a closed pipe ends the command quietly instead of a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

pub(crate) use say;

pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", code_word(s.code()), s.message())
}

pub fn code_word(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::NotFound => "not found",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::ResourceExhausted => "resource exhausted",
        _ => "error",
    }
}

pub fn word(outcome: i32) -> &'static str {
    match pb::Outcome::try_from(outcome) {
        Ok(pb::Outcome::Applied) => "applied",
        Ok(pb::Outcome::Duplicate) => "duplicate",
        Ok(pb::Outcome::Ignored) => "ignored",
        Ok(pb::Outcome::Rejected) => "rejected",
        Ok(pb::Outcome::Stale) => "stale",
        _ => "unspecified",
    }
}

pub fn kind_word(k: i32) -> &'static str {
    match pb::EscalationKind::try_from(k) {
        Ok(pb::EscalationKind::TierReached) => "tier_reached",
        Ok(pb::EscalationKind::Breached) => "breached",
        Ok(pb::EscalationKind::Resolved) => "resolved",
        _ => "unspecified",
    }
}

pub fn severity_word(s: i32) -> &'static str {
    match pb::Severity::try_from(s) {
        Ok(pb::Severity::Low) => "low",
        Ok(pb::Severity::Medium) => "medium",
        Ok(pb::Severity::High) => "high",
        Ok(pb::Severity::Critical) => "critical",
        _ => "",
    }
}

pub fn ts(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| from_timestamp(t).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn sorted(states: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = states.iter().collect();
    v.sort();
    v
}

/// Rows under a header, each column as wide as its widest cell (numbers
/// right-aligned, words left), two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric = |i: usize| {
        !rows.is_empty()
            && rows.iter().all(|r| {
                r.get(i).is_some_and(|c| {
                    c.is_empty() || c == "-" || c.trim_end_matches('%').parse::<f64>().is_ok()
                })
            })
    };
    let right: Vec<bool> = (0..header.len()).map(numeric).collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if right[i] {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out
}
