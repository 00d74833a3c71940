//! Loading customers for their actors, many with one read.
//!
//! A customer actor loads its record when it handles its first message
//! (not in the router's spawn, which would hold up every other customer of
//! the shard behind one read). Against a store where each read is a round
//! trip to a server ([`Store::batches_reads`], PostgreSQL), the actors'
//! reads go through one [`Loader`] per node: it takes every read waiting,
//! across shards, and asks the store for all of them at once
//! ([`Store::customers`]), one batch at a time, so the number of round
//! trips follows the database's latency rather than the number of new
//! customers (the way the journal groups commits). Against the embedded
//! store a read is a lookup in memory or on the local disk and the actor
//! reads directly.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Result, Store, StoreError};

/// Most reads one batch asks for.
const MAX_BATCH: usize = 512;

/// A read waiting for its batch.
struct Request {
    shard: u32,
    customer: String,
    reply: oneshot::Sender<Result<Option<Vec<u8>>>>,
}

/// The node's batching reader of customer records. See the module docs.
pub struct Loader {
    /// To the batching task; it ends when every `Loader` is dropped.
    requests: mpsc::UnboundedSender<Request>,
}

impl Loader {
    /// Starts the batching task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Loader {
        let (requests, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Loader { requests }
    }

    /// The customer's record, as [`Store::customer`] answers it.
    pub async fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request {
                shard,
                customer: customer.to_owned(),
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Takes every read waiting (up to [`MAX_BATCH`]), reads them with one
/// store call on a blocking thread, answers each; then the next batch.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let keys: Vec<(u32, String)> = batch
            .iter()
            .map(|r| (r.shard, r.customer.clone()))
            .collect();
        let store = store.clone();
        metrics::histogram!("handoff_store_read_batch").record(keys.len() as f64);
        let got = tokio::task::spawn_blocking(move || store.customers(&keys))
            .await
            .unwrap_or(Err(StoreError::Closed));
        match got {
            Ok(records) if records.len() == batch.len() => {
                for (r, record) in batch.into_iter().zip(records) {
                    let _ = r.reply.send(Ok(record));
                }
            }
            Ok(records) => {
                let e = StoreError::corrupt(
                    "customer reads",
                    format!("{} answers for {} reads", records.len(), batch.len()),
                );
                for r in batch {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for r in batch {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, WriteBatch};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_are_answered_each_with_its_own_record() {
        let store = Arc::new(MemoryStore::new());
        store
            .commit(WriteBatch {
                customers: vec![
                    (1, "a".into(), b"ra".to_vec()),
                    (2, "b".into(), b"rb".to_vec()),
                ],
                ..WriteBatch::default()
            })
            .expect("commits");
        let loader = Arc::new(Loader::start(store));
        let reads = (0..200).map(|i| {
            let loader = loader.clone();
            tokio::spawn(async move {
                let (shard, c) = [(1, "a"), (2, "b"), (1, "b"), (2, "a")][i % 4];
                (i % 4, loader.customer(shard, c).await.expect("reads"))
            })
        });
        for read in reads {
            let (kind, got) = read.await.expect("joins");
            let want = match kind {
                0 => Some(b"ra".to_vec()),
                1 => Some(b"rb".to_vec()),
                _ => None, // another shard's customer of the same id
            };
            assert_eq!(got, want);
        }
    }
}
