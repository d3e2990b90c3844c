//! The secret follower: a payee that registers its secret on chain instead of unlocking is
//! paid on chain by the hub's lock, so the hub claims the same amount from the payer as soon as
//! it sees the registration (ATTACKS F2). It follows every `SecretRegistered` event (they name
//! no participant, so the channel listener does not see them) from the current height, and on
//! each (re)connection first looks up the registry for every open payment, which covers the
//! registrations made while the hub was down.

use crate::payments::lifecycle::Registry;
use crate::payments::recovery;
use crate::shared::Shared;
use sluice_chain_client::{ClientError, Listen};
use sluice_protocol::onchain::EventKind;
use sluice_protocol::rpc::{ChainInfo, Event, EventFilter};
use sluice_protocol::Height;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The secret listener. Its cursor lives in memory: on each (re)connection it starts from the
/// tip, after looking up the registry for every open payment.
pub struct Secrets {
    pub sh: Arc<Shared>,
    cursor: AtomicU64,
}

impl Secrets {
    pub fn new(sh: Arc<Shared>) -> Self {
        Secrets {
            sh,
            cursor: AtomicU64::new(0),
        }
    }
}

impl Listen for Secrets {
    type Error = ClientError;

    fn filter(&self) -> EventFilter {
        EventFilter {
            kinds: vec!["SecretRegistered".into()],
            ..Default::default()
        }
    }

    async fn connected(&self, info: &ChainInfo) -> Result<(), ClientError> {
        self.cursor.store(info.height, Ordering::Release);
        catch_up(&self.sh).await;
        Ok(())
    }

    async fn cursor(&self) -> Result<Height, ClientError> {
        Ok(self.cursor.load(Ordering::Acquire))
    }

    async fn event(&self, ev: &Event) -> Result<(), ClientError> {
        if let EventKind::SecretRegistered { hashlock, secret } = ev.event {
            recovery::secret_registered(&self.sh, hashlock, secret, ev.height).await;
        }
        Ok(())
    }

    async fn handled(&self, height: Height) -> Result<(), ClientError> {
        self.cursor.store(height, Ordering::Release);
        Ok(())
    }

    fn interrupted(&self, error: &ClientError) {
        tracing::warn!(%error, "secret registry follower interrupted; reconnecting");
    }
}

/// Registrations made before the stream's start: one registry look-up per open payment.
async fn catch_up(sh: &Arc<Shared>) {
    let open = match sh.store.open_payments().await {
        Ok(open) => open,
        Err(e) => return tracing::warn!(error = %e, "cannot list open payments"),
    };
    for pay in open {
        if let Ok(Registry::Registered { secret, height }) =
            recovery::read_registry(sh, &pay.hashlock).await
        {
            recovery::secret_registered(sh, pay.hashlock, secret, height).await;
        }
    }
}
