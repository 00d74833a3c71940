//! Serving a model on a data directory: the directory's [`Catalog`] says
//! which names its stored ids stand for, and the served model is
//! renumbered to it before anything is read or written, so an edited model
//! file never reinterprets a stored customer; a changed model under a
//! version already served is refused (see `engine::model::catalog`).
//!
//! A data directory written before the catalog existed gets one from the
//! model it is first opened with: the ids it holds were given by that
//! file's order, which is the best evidence there is.

use crate::engine::model::Model;
use crate::engine::model::catalog::Catalog;
use crate::store::{Store, StoreError};

use super::NodeError;

/// The `meta` key of the catalog (JSON, readable with any tool).
pub(crate) const KEY: &str = "model_catalog";

/// The data directory's catalog; `None` if no model was ever served on it.
pub(crate) fn stored(store: &dyn Store) -> Result<Option<Catalog>, StoreError> {
    store
        .meta(KEY)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("model catalog", e.to_string()))
        })
        .transpose()
}

/// The model renumbered to the data directory's catalog; the catalog, with
/// any new names and version, is durable before this returns.
pub(super) fn bind(store: &dyn Store, model: &Model) -> Result<Model, NodeError> {
    let (spec, catalog, write) = match store.meta(KEY)? {
        None => (model.spec.clone(), Catalog::new(&model.spec), true),
        Some(bytes) => {
            let stored: Catalog = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("model catalog", e.to_string()))?;
            let (spec, extended) = stored
                .bind(model.spec.clone())
                .map_err(|e| NodeError::ModelMismatch(e.to_string()))?;
            let write = extended != stored;
            (spec, extended, write)
        }
    };
    if write {
        let bytes = serde_json::to_vec_pretty(&catalog)
            .expect("invariant: a catalog is strings and numbers");
        store.put_meta(KEY, bytes)?;
    }
    Ok(Model::new(spec))
}
