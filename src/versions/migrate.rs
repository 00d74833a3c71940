//! Migration: re-pinning customers of a market from one published version
//! to another (`handoff customers migrate`, `Models.MigrateCustomers`).
//!
//! This file owns the rules, not the moving: which requests are valid
//! ([`Plan::check`]), which customers a plan covers ([`Plan::covers`]: the
//! market, the `from` version, the cohort by the rollout's stable hash),
//! and which of those may move ([`ineligible`]). Each customer is moved by
//! its own actor (`CustomerMsg::Migrate`), which writes a
//! [`Fact::Migrated`](crate::engine::Fact::Migrated) in its history; the
//! node drives the scan (`Node::migrate`).
//!
//! **Exactly once.** A customer already on `to` is reported as done and
//! not touched, and the fact is written by the customer's actor, one
//! message at a time: a migration re-run after a crash goes on where the
//! store says it stopped, and never moves anyone twice.

use crate::engine::CustomerState;
use crate::engine::model::{Model, ProofId, RegionId, SlaId};

use super::rollout::{BUCKETS, bucket, buckets_of};
use super::{VersionError, Versions};

/// A migration request, checked: nothing is changed by a refused one.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub market: String,
    pub from: u32,
    pub to: u32,
    /// The cohort: customers whose bucket is below this (all: `BUCKETS`).
    pub buckets: u32,
    pub dry_run: bool,
}

/// Why a migration request was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "--from and --to are both version {0}: give the version the customers are on and \
         another one to move them to"
    )]
    SameVersion(u32),
    #[error("a market is needed (--market M): customers are migrated one market at a time")]
    NoMarket,
    /// An unpublished version, a percent outside 0-100, an undeclared
    /// market: the registry's own refusals.
    #[error("{0}")]
    Version(#[from] VersionError),
}

impl Plan {
    /// Checks a request against the registry (read again first): both
    /// versions published (with their text), distinct, the market
    /// declared, the percent (`None`: every customer) in 0-100.
    pub fn check(
        versions: &Versions,
        market: &str,
        from: u32,
        to: u32,
        percent: Option<f64>,
        dry_run: bool,
    ) -> Result<Plan, MigrateError> {
        if market.is_empty() {
            return Err(MigrateError::NoMarket);
        }
        let buckets = match percent {
            None => BUCKETS,
            Some(p) => buckets_of(p).ok_or(VersionError::Percent(p))?,
        };
        versions.refresh()?;
        let published: Vec<u32> = versions
            .list()
            .iter()
            .filter(|v| v.stored)
            .map(|v| v.version)
            .collect();
        for version in [from, to] {
            if !published.contains(&version) {
                let names: Vec<String> = published.iter().map(u32::to_string).collect();
                return Err(VersionError::Unpublished {
                    version,
                    published: names.join(", "),
                }
                .into());
            }
        }
        if from == to {
            return Err(MigrateError::SameVersion(from));
        }
        let newest = versions.newest();
        if newest.declares_markets() && newest.market(market).is_none() {
            let declared: Vec<&str> = newest
                .spec
                .markets
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            return Err(VersionError::UnknownMarket {
                market: market.to_owned(),
                declared: declared.join(", "),
            }
            .into());
        }
        Ok(Plan {
            market: market.to_owned(),
            from,
            to,
            buckets,
            dry_run,
        })
    }

    /// Whether the plan is about this customer at all: its market, and in
    /// the cohort (a customer on `to` already is covered too: it is
    /// reported as done, so a re-run shows the whole migration).
    pub fn covers(&self, customer: &str, market_code: &str) -> bool {
        market_code == self.market && in_cohort(customer, self.buckets)
    }
}

/// Whether a customer is in a cohort of `buckets` (the rollout's hash:
/// raising the percent only adds customers).
pub fn in_cohort(customer: &str, buckets: u32) -> bool {
    buckets >= BUCKETS || bucket(customer) < buckets
}

/// What a migration did (or, dry, would do) to one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// Re-pinned now (its history has the fact).
    Migrated,
    /// A dry run: it would be re-pinned.
    WouldMigrate,
    /// Already on the target version: done before (a resumed migration).
    AlreadyDone,
    /// Left as it is, with every reason.
    Ineligible(Vec<String>),
    /// On neither version (nothing to do).
    OtherVersion(u32),
}

impl MigrateOutcome {
    /// The lower-case word of every output.
    pub fn as_str(&self) -> &'static str {
        match self {
            MigrateOutcome::Migrated => "migrated",
            MigrateOutcome::WouldMigrate => "would_migrate",
            MigrateOutcome::AlreadyDone => "already_done",
            MigrateOutcome::Ineligible(_) => "ineligible",
            MigrateOutcome::OtherVersion(_) => "other_version",
        }
    }
}

/// Why `state` (served by `from`) may not move to `to`, in words; empty
/// when it may. The rule of MODEL.md: its current state in every region
/// exists in the target, and every running SLA instance names an SLA the
/// target declares. Also (so that the target can read the record): its
/// market is declared there, and every proof it holds. Names are the
/// catalog's, shared by every version; a name the target does not declare
/// is either past the end of its table (appended by a later version) or a
/// hole in it (dropped: [`crate::engine::model::Retired`]).
pub fn ineligible(state: &CustomerState, from: &Model, to: &Model) -> Vec<String> {
    let mut why = Vec::new();
    let v = to.spec.version;
    if to.declared_market(&state.market_code) != from.market(&state.market_code) {
        why.push(format!(
            "its market `{}` is not declared in version {v}",
            state.market_code
        ));
    }
    for (r, slot) in state.core.regions.iter().enumerate() {
        let region = &from.spec.regions[r];
        let state_name = &region.states[slot.state.idx()].name;
        if to.spec.regions.get(r).is_none() {
            why.push(format!(
                "region `{}` (state `{state_name}`) is not declared in version {v}",
                region.name
            ));
        } else if !to.declares_state(RegionId(r as u16), slot.state) {
            why.push(format!(
                "it is in state `{}.{state_name}`, which version {v} does not declare",
                region.name
            ));
        }
    }
    for (i, slot) in state.core.slas.iter().enumerate() {
        if let Some(inst) = &slot.running
            && !to.declares_sla(SlaId(i as u16))
        {
            why.push(format!(
                "SLA `{}` is running (instance {}), and version {v} does not declare it",
                from.sla_spec(SlaId(i as u16)).name,
                inst.number
            ));
        }
    }
    for (i, p) in state.core.proofs.iter().enumerate() {
        if p.holds() && !to.declares_proof(ProofId(i as u16)) {
            why.push(format!(
                "it holds proof `{}`, which version {v} does not declare",
                from.spec.proofs[i].name
            ));
        }
    }
    why
}

#[cfg(test)]
mod tests;
