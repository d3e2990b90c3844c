//! Group commit for appointments: one writer drains a bounded queue and commits whatever is
//! waiting in one store transaction, so many receipts share one durable sync. A caller gets its
//! answer only after the commit, and the height the commit saw (for its receipt).

use crate::chain_view::ChainView;
use crate::store::{Accepted, NewAppointment, Refusal, Store, StoreError};
use sluice_protocol::Height;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Answer = Result<(Result<Accepted, Refusal>, Height), Arc<StoreError>>;

struct Job {
    item: NewAppointment,
    reply: oneshot::Sender<Answer>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingest queue is full")]
    Full,
    #[error("ingest writer stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
}

#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
}

impl Ingest {
    pub fn spawn(store: Arc<Store>, view: Arc<ChainView>, queue: usize, batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue);
        tokio::spawn(writer(store, view, rx, batch));
        Ingest { tx }
    }

    /// Queues `item` and waits for its commit.
    pub async fn submit(
        &self,
        item: NewAppointment,
    ) -> Result<(Result<Accepted, Refusal>, Height), IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(Job { item, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => IngestError::Full,
            mpsc::error::TrySendError::Closed(_) => IngestError::Stopped,
        })?;
        Ok(answer.await.map_err(|_| IngestError::Stopped)??)
    }
}

async fn writer(
    store: Arc<Store>,
    view: Arc<ChainView>,
    mut rx: mpsc::Receiver<Job>,
    batch: usize,
) {
    let mut jobs = Vec::with_capacity(batch);
    while rx.recv_many(&mut jobs, batch).await > 0 {
        let height = view.tip();
        let (items, replies): (Vec<_>, Vec<_>) = jobs.drain(..).map(|j| (j.item, j.reply)).unzip();
        match store.put_appointments(&items, height).await {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok((r, height)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = items.len(), "appointment batch not committed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
