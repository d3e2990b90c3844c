//! What every part of a running wallet shares: its key, config, store, chain client, the
//! transaction sender and the event channels.

use crate::config::WalletConfig;
use crate::error::Result;
use crate::events::{StoredEvent, WalletEvent};
use crate::store::Store;
use sluice_chain_client::{ChainClient, TxSender};
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::{Address, ChainId, Keypair};
use std::sync::RwLock;
use tokio::sync::broadcast;

pub(crate) struct Core {
    pub key: Keypair,
    pub config: WalletConfig,
    pub chain_id: ChainId,
    pub store: Store,
    pub chain: ChainClient,
    /// TLS for a `wss://` hub: the webpki roots and the config's `ca_file`.
    pub hub_tls: tokio_tungstenite::Connector,
    pub sender: TxSender,
    /// Every event, live only ([`crate::Wallet::subscribe`]).
    pub events: broadcast::Sender<WalletEvent>,
    /// Stored events with their `seq`, once durable ([`crate::Wallet::subscribe_from`]).
    pub stored: broadcast::Sender<StoredEvent>,
    /// The hub's terms from its latest `Welcome`.
    pub terms: RwLock<Option<RoutingTerms>>,
    /// Held while a withdrawal is submitted, so the caller and the guard never race the same
    /// one to the chain.
    pub withdrawing: tokio::sync::Mutex<()>,
}

impl Core {
    pub fn me(&self) -> Address {
        self.key.address()
    }

    pub fn hub(&self) -> Address {
        self.config.hub_key
    }

    /// Announces a transient connection notice ([`WalletEvent::is_transient`]) to live
    /// subscribers; it is not stored. Every other event goes through [`Core::emit_durable`] or
    /// is committed with its state change and then handed to [`Core::announce`].
    pub fn emit(&self, event: WalletEvent) {
        debug_assert!(event.is_transient(), "a durable event must be stored first");
        tracing::debug!(?event, "wallet event");
        let _ = self.events.send(event);
    }

    /// The one rule for a durable event that goes with no state change committed here: store
    /// it, then announce it. If it cannot be stored it is not announced (the error is returned),
    /// so no subscriber ever sees an event the log does not hold.
    pub async fn emit_durable(&self, event: WalletEvent) -> Result<()> {
        let stored = self.store.append_event(&event).await?;
        self.announce(vec![stored]);
        Ok(())
    }

    /// Announces events already committed to the log (with the state they describe), in `seq`
    /// order, to both kinds of subscribers.
    pub fn announce(&self, stored: Vec<StoredEvent>) {
        for s in stored {
            tracing::debug!(seq = s.seq, event = ?s.event, "wallet event");
            let _ = self.events.send(s.event.clone());
            let _ = self.stored.send(s);
        }
    }

    pub fn terms(&self) -> Option<RoutingTerms> {
        self.terms.read().ok().and_then(|t| *t)
    }

    pub fn set_terms(&self, terms: RoutingTerms) {
        if let Ok(mut t) = self.terms.write() {
            *t = Some(terms);
        }
    }
}
