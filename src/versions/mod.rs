//! The version registry: every published version of the node's model, and
//! the rollout table that says which one a new customer starts on.
//!
//! A customer is pinned to the version it was created with
//! (`Fact::Created.model_version`): its actor decides, fires its timers
//! and builds its view with [`Versions::model`] of that version, for its
//! whole life. A new customer starts on [`Versions::for_new`]: the
//! rollout entry of its market ([`rollout`]). Re-pinning a
//! customer (a later `customers migrate`) is a fact that changes its
//! `model_version`; its next load picks the new version here.
//!
//! Every version is bound to the store's catalog, so an id means the same
//! name in every version: a version may add names and drop them, a
//! dropped (or not yet added) name keeping its id as an inert hole in
//! that version's tables (`engine::model::Retired`); a version already
//! recorded is bound again the same way (`Catalog::rebind`).
//!
//! **Durable.** In the store's meta: the catalog (`model_catalog`, as
//! before), each published version's text (`model_source/VERSION`,
//! written before the catalog records the version) and the rollout table
//! (`model_rollouts`, JSON). Nothing is cached that the store does not
//! hold, so a restart (or another node of a cluster, whose store meta is
//! shared) reads the same registry. A node picks up versions and rollouts
//! another node wrote by [`Versions::refresh`]: on a miss for an unknown
//! version, and every few seconds ([`Versions::poll`]).
//!
//! Versions the catalog records without a stored text (served before this
//! registry existed) have no model here: their customers are served with
//! the model the node started with, as every customer was then.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::engine::model::catalog::{self, BindError, Catalog};
use crate::engine::model::{Model, load};
use crate::store::{Store, StoreError};

pub mod migrate;
pub mod rollout;

pub use rollout::{Candidate, DEFAULT_MARKET, Rollout, Rollouts};

pub(crate) const CATALOG_KEY: &str = "model_catalog";
const ROLLOUTS_KEY: &str = "model_rollouts";

fn source_key(version: u32) -> String {
    format!("model_source/{version}")
}

/// Why a publish or a rollout change was refused; nothing was changed.
/// Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The text is not a valid model (every problem, with lines).
    #[error("the model does not load: {0}")]
    Model(String),
    /// Another model's name, a changed version, or a version that drops a
    /// region or changes an SLA's tier count.
    #[error("{0}")]
    Bind(#[from] BindError),
    #[error(
        "version {version} is lower than version {in_use}, which the rollout of market `{market}` \
         uses: publish it as version {next} or higher"
    )]
    BelowRollout {
        version: u32,
        in_use: u32,
        market: String,
        next: u32,
    },
    #[error(
        "version {version} is not published (published: {published}): publish it first with \
         `handoff model publish FILE`"
    )]
    Unpublished { version: u32, published: String },
    #[error("percent {0} is outside 0-100: give the share of new customers, e.g. --percent 10")]
    Percent(f64),
    #[error(
        "a candidate version needs a percent (--percent P, 0-100): the share of new customers \
         that start on it"
    )]
    CandidateWithoutPercent,
    #[error(
        "a percent needs a candidate version (--candidate V): the version the share of new \
         customers starts on"
    )]
    PercentWithoutCandidate,
    #[error(
        "market `{market}` is not declared in the model (declared: {declared}); `default` \
         covers every market without an entry"
    )]
    UnknownMarket { market: String, declared: String },
    #[error(
        "version {version} does not declare market `{market}`: its customers could not start on it"
    )]
    MarketNotInVersion { version: u32, market: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A version as [`Versions::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedVersion {
    pub version: u32,
    pub fingerprint: String,
    /// Whether its text is stored (so it serves its own customers).
    pub stored: bool,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub name: String,
    pub version: u32,
    pub fingerprint: String,
    /// `false`: the same version with the same content was already
    /// published (nothing changed).
    pub new: bool,
}

/// The registry; shared by the node, its shards and the API.
pub struct Versions {
    store: Arc<dyn Store>,
    current: RwLock<Registry>,
    /// Publishes and rollout changes of this node, one at a time (each
    /// re-reads the store first; two nodes writing at the same instant
    /// are not serialized: the last write of the rollout table wins).
    writes: Mutex<()>,
}

/// Bound models by version.
type Models = BTreeMap<u32, Arc<Model>>;

#[derive(Clone)]
struct Registry {
    catalog: Catalog,
    models: BTreeMap<u32, Arc<Model>>,
    rollouts: Rollouts,
    /// The model the node started with, bound: it serves customers of a
    /// version whose text is not stored.
    started: Arc<Model>,
}

impl Registry {
    /// Whether the catalog records `version` (so a miss for it needs no
    /// re-read: its text is not stored).
    fn recorded(&self, version: u32) -> bool {
        self.catalog.versions.iter().any(|v| v.version == version)
    }
}

impl Versions {
    /// Binds the model the node starts with to the store's catalog (a new
    /// data directory gets one from it), publishes it if its version is
    /// new, loads every published version and the rollout table (a new
    /// one: every market on the start version). A start version that is
    /// newly published becomes the default entry's stable version, so a
    /// restart with a new model file moves new customers of markets
    /// without an entry of their own to it, as before versions existed.
    pub fn open(store: Arc<dyn Store>, start: &Model) -> Result<Versions, VersionError> {
        let stored = read_catalog(&*store)?;
        let (catalog, spec, new) = match stored {
            None => {
                let catalog = Catalog::new(&start.spec);
                (catalog, start.spec.clone(), true)
            }
            Some(catalog) => {
                let known = catalog
                    .versions
                    .iter()
                    .any(|v| v.version == start.spec.version);
                if known {
                    let spec = catalog.rebind(start.spec.clone())?;
                    (catalog, spec, false)
                } else {
                    let (spec, extended) = catalog.bind(start.spec.clone())?;
                    (extended, spec, true)
                }
            }
        };
        let mut rollouts = read_rollouts(&*store)?;
        if new && let Some(r) = &rollouts {
            let (in_use, market) = r.highest();
            if start.spec.version < in_use {
                return Err(VersionError::BelowRollout {
                    version: start.spec.version,
                    in_use,
                    market: market.to_owned(),
                    next: in_use + 1,
                });
            }
        }
        let started = Arc::new(Model::new(spec));
        if let Some(text) = &start.spec.source
            && store.meta(&source_key(start.spec.version))?.is_none()
        {
            store.put_meta(&source_key(start.spec.version), text.as_bytes().to_vec())?;
        }
        if new || stored_differs(&*store, &catalog)? {
            write_catalog(&*store, &catalog)?;
        }
        match &mut rollouts {
            None => {
                let r = Rollouts::new(start.spec.version);
                write_rollouts(&*store, &r)?;
                rollouts = Some(r);
            }
            Some(r) if new => {
                r.default.stable = start.spec.version;
                write_rollouts(&*store, r)?;
            }
            Some(_) => {}
        }
        let rollouts = rollouts.expect("invariant: set above");
        let mut models = load_versions(&*store, &catalog)?;
        models.insert(started.spec.version, started.clone());
        Ok(Versions {
            store,
            current: RwLock::new(Registry {
                catalog,
                models,
                rollouts,
                started,
            }),
            writes: Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The model of a pinned version. On a miss, the store is read again
    /// (another node may have published it); a version with no stored
    /// text is served by the model the node started with.
    pub fn model(&self, version: u32) -> Arc<Model> {
        {
            let r = self.read();
            if let Some(m) = r.models.get(&version) {
                return m.clone();
            }
            if r.recorded(version) {
                return r.started.clone();
            }
        }
        if let Err(e) = self.refresh() {
            tracing::warn!(version, error = %e, "cannot read the published versions");
        }
        let r = self.read();
        r.models
            .get(&version)
            .cloned()
            .unwrap_or_else(|| r.started.clone())
    }

    /// The model a new customer of `market` starts on.
    pub fn for_new(&self, market: &str, customer: &str) -> Arc<Model> {
        let version = self.read().rollouts.version_for(market, customer);
        self.model(version)
    }

    /// The model the node started with.
    pub fn started(&self) -> Arc<Model> {
        self.read().started.clone()
    }

    /// The version whose names are the catalog's (the one bound last):
    /// what names a request against every version (a team, a market) is
    /// checked with.
    pub fn newest(&self) -> Arc<Model> {
        let r = self.read();
        r.catalog
            .versions
            .iter()
            .rev()
            .find_map(|v| r.models.get(&v.version))
            .cloned()
            .unwrap_or_else(|| r.started.clone())
    }

    /// The rollout table.
    pub fn rollouts(&self) -> Rollouts {
        self.read().rollouts.clone()
    }

    /// Every version the catalog records, in version order.
    pub fn list(&self) -> Vec<PublishedVersion> {
        let r = self.read();
        let mut list: Vec<PublishedVersion> = r
            .catalog
            .versions
            .iter()
            .map(|v| PublishedVersion {
                version: v.version,
                fingerprint: v.fingerprint.clone(),
                stored: r.models.contains_key(&v.version),
            })
            .collect();
        list.sort_by_key(|v| v.version);
        list
    }

    /// Re-reads the catalog, the published versions and the rollout table
    /// from the store (what another node of a cluster wrote).
    pub fn refresh(&self) -> Result<(), VersionError> {
        let Some(catalog) = read_catalog(&*self.store)? else {
            return Ok(());
        };
        let rollouts = read_rollouts(&*self.store)?;
        let known: Vec<u32> = self.read().models.keys().copied().collect();
        let mut added = BTreeMap::new();
        for v in &catalog.versions {
            if known.contains(&v.version) {
                continue;
            }
            if let Some(m) = load_version(&*self.store, &catalog, v.version)? {
                added.insert(v.version, m);
            }
        }
        let rebound = if self.read().catalog.names() != catalog.names() {
            Some(self.rebound(&catalog)?)
        } else {
            None
        };
        let mut r = self.current.write().unwrap_or_else(|p| p.into_inner());
        r.catalog = catalog;
        if let Some((models, started)) = rebound {
            r.models = models;
            r.started = started;
        }
        r.models.extend(added);
        if let Some(rollouts) = rollouts {
            r.rollouts = rollouts;
        }
        Ok(())
    }

    /// Every known version bound again to `catalog`, whose names grew
    /// (another version added some): each gets holes for the new names,
    /// so every binding of a version has the same tables on every node
    /// (ids never move; only holes are appended). The started model is
    /// bound again from its text too.
    fn rebound(&self, catalog: &Catalog) -> Result<(Models, Arc<Model>), VersionError> {
        let mut models = load_versions(&*self.store, catalog)?;
        let started = self.read().started.clone();
        let started = match &started.spec.source {
            Some(text) => {
                let what = format!("model version {}", started.spec.version);
                let loaded = load(&what, text).map_err(|e| VersionError::Model(e.to_string()))?;
                Arc::new(Model::new(catalog.rebind(loaded.spec)?))
            }
            None => started,
        };
        models
            .entry(started.spec.version)
            .or_insert_with(|| started.clone());
        Ok((models, started))
    }

    /// Refreshes every `every` until `shutdown` is set: a node of a
    /// cluster picks up rollouts set through another node.
    pub async fn poll(
        self: Arc<Self>,
        every: std::time::Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.refresh()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot re-read the published versions"),
                Err(e) => tracing::warn!(error = %e, "the versions refresh panicked"),
            }
        }
    }

    /// Publishes a model version from its text (`file` names it in
    /// messages). The same version with the same content is a no-op
    /// (`new: false`); refused, with nothing changed: a text that does not
    /// load, another model's name, a version already published with other
    /// content, a version lower than one a rollout uses, a version that
    /// drops a region or changes an SLA's tier count.
    pub fn publish(&self, file: &str, text: &str) -> Result<Published, VersionError> {
        let loaded = load(file, text).map_err(|e| VersionError::Model(e.to_string()))?;
        let _one = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh()?;
        let (catalog, rollouts) = {
            let r = self.read();
            (r.catalog.clone(), r.rollouts.clone())
        };
        let version = loaded.spec.version;
        let fingerprint = catalog::fingerprint(&loaded.spec);
        let published = |new| Published {
            name: loaded.spec.name.clone(),
            version,
            fingerprint: fingerprint.clone(),
            new,
        };
        if catalog.versions.iter().any(|v| v.version == version) {
            // Same content (else Changed), bound as it was.
            let spec = catalog.rebind(loaded.spec.clone())?;
            if self.read().models.contains_key(&version)
                && self.store.meta(&source_key(version))?.is_some()
            {
                return Ok(published(false));
            }
            self.store
                .put_meta(&source_key(version), text.as_bytes().to_vec())?;
            let mut r = self.current.write().unwrap_or_else(|p| p.into_inner());
            r.models.insert(version, Arc::new(Model::new(spec)));
            return Ok(published(true));
        }
        if catalog.model != loaded.spec.name {
            return Err(BindError::OtherModel {
                stored: catalog.model.clone(),
                model: loaded.spec.name.clone(),
            }
            .into());
        }
        let (in_use, market) = rollouts.highest();
        if version < in_use {
            return Err(VersionError::BelowRollout {
                version,
                in_use,
                market: market.to_owned(),
                next: in_use + 1,
            });
        }
        let (spec, extended) = catalog.bind(loaded.spec.clone())?;
        self.store
            .put_meta(&source_key(version), text.as_bytes().to_vec())?;
        write_catalog(&*self.store, &extended)?;
        let rebound = if extended.names() != catalog.names() {
            Some(self.rebound(&extended)?)
        } else {
            None
        };
        let mut r = self.current.write().unwrap_or_else(|p| p.into_inner());
        r.catalog = extended;
        if let Some((models, started)) = rebound {
            r.models = models;
            r.started = started;
        }
        r.models.insert(version, Arc::new(Model::new(spec)));
        tracing::info!(version, fingerprint = %catalog::short(&fingerprint), "model version published");
        Ok(published(true))
    }

    /// Sets the rollout of `market` ([`DEFAULT_MARKET`] for the default
    /// entry): `stable`, and a `candidate` for `percent` of new customers
    /// (both or neither). Takes effect at once for new customers; durable
    /// before it returns. Customers already created keep their version
    /// (setting the stable version again is a rollback).
    pub fn set_rollout(
        &self,
        market: &str,
        stable: u32,
        candidate: Option<u32>,
        percent: Option<f64>,
    ) -> Result<Rollout, VersionError> {
        let candidate = match (candidate, percent) {
            (None, None) => None,
            (Some(_), None) => return Err(VersionError::CandidateWithoutPercent),
            (None, Some(_)) => return Err(VersionError::PercentWithoutCandidate),
            (Some(version), Some(p)) => Some(Candidate {
                version,
                buckets: rollout::buckets_of(p).ok_or(VersionError::Percent(p))?,
            }),
        };
        let entry = Rollout { stable, candidate };
        let _one = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh()?;
        let mut rollouts = {
            let r = self.read();
            let declared = &r.catalog.markets;
            if market != DEFAULT_MARKET
                && !declared.is_empty()
                && !declared.iter().any(|m| m == market)
            {
                return Err(VersionError::UnknownMarket {
                    market: market.to_owned(),
                    declared: declared.join(", "),
                });
            }
            for version in entry.versions() {
                let Some(model) = r.models.get(&version) else {
                    let published: Vec<String> = r.models.keys().map(|v| v.to_string()).collect();
                    return Err(VersionError::Unpublished {
                        version,
                        published: published.join(", "),
                    });
                };
                if market != DEFAULT_MARKET
                    && !model.spec.markets.is_empty()
                    && model.declared_market(market).is_none()
                {
                    return Err(VersionError::MarketNotInVersion {
                        version,
                        market: market.to_owned(),
                    });
                }
            }
            r.rollouts.clone()
        };
        rollouts.set(market, entry);
        write_rollouts(&*self.store, &rollouts)?;
        self.current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .rollouts = rollouts;
        tracing::info!(market, rollout = %entry, "rollout set");
        Ok(entry)
    }
}

pub(crate) fn read_catalog(store: &dyn Store) -> Result<Option<Catalog>, StoreError> {
    store
        .meta(CATALOG_KEY)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("model catalog", e.to_string()))
        })
        .transpose()
}

fn write_catalog(store: &dyn Store, catalog: &Catalog) -> Result<(), StoreError> {
    let bytes =
        serde_json::to_vec_pretty(catalog).expect("invariant: a catalog is strings and numbers");
    store.put_meta(CATALOG_KEY, bytes)
}

fn stored_differs(store: &dyn Store, catalog: &Catalog) -> Result<bool, StoreError> {
    Ok(read_catalog(store)?.as_ref() != Some(catalog))
}

fn read_rollouts(store: &dyn Store) -> Result<Option<Rollouts>, StoreError> {
    store
        .meta(ROLLOUTS_KEY)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("rollout table", e.to_string()))
        })
        .transpose()
}

fn write_rollouts(store: &dyn Store, rollouts: &Rollouts) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(rollouts).expect("invariant: a rollout table is numbers");
    store.put_meta(ROLLOUTS_KEY, bytes)
}

/// Every version of the catalog whose text is stored, bound.
fn load_versions(
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<BTreeMap<u32, Arc<Model>>, VersionError> {
    let mut models = BTreeMap::new();
    for v in &catalog.versions {
        if let Some(m) = load_version(store, catalog, v.version)? {
            models.insert(v.version, m);
        }
    }
    Ok(models)
}

fn load_version(
    store: &dyn Store,
    catalog: &Catalog,
    version: u32,
) -> Result<Option<Arc<Model>>, VersionError> {
    let Some(bytes) = store.meta(&source_key(version))? else {
        return Ok(None);
    };
    let what = format!("stored model version {version}");
    let text =
        String::from_utf8(bytes).map_err(|e| StoreError::corrupt(what.clone(), e.to_string()))?;
    let loaded = load(&what, &text).map_err(|e| VersionError::Model(e.to_string()))?;
    let spec = catalog.rebind(loaded.spec)?;
    Ok(Some(Arc::new(Model::new(spec))))
}

#[cfg(test)]
mod tests;
