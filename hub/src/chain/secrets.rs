//! The secret follower: a payee that registers its secret on chain instead of unlocking is
//! paid on chain by the hub's lock, so the hub claims the same amount from the payer as soon as
//! it sees the registration (ATTACKS F2). It follows every `SecretRegistered` event (they name
//! no participant, so the channel follower does not see them) from the current height, and on
//! each (re)connection first looks up the registry for every open payment, which covers the
//! registrations made while the hub was down.

use crate::payments::lifecycle::Registry;
use crate::payments::recovery;
use crate::shared::Shared;
use sluice_chain_client::ClientError;
use sluice_protocol::onchain::EventKind;
use sluice_protocol::rpc::EventFilter;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(sh: Arc<Shared>) {
    loop {
        if let Err(e) = follow(&sh).await {
            tracing::warn!(error = %e, "secret registry stream ended; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow(sh: &Arc<Shared>) -> Result<(), ClientError> {
    let Some(chain) = sh.chain.clone() else {
        return Ok(());
    };
    let from = chain.client().chain_info().await?.height;
    let filter = EventFilter {
        kinds: vec!["SecretRegistered".into()],
        ..Default::default()
    };
    let mut events = chain.client().subscribe_events(filter, from).await?;
    catch_up(sh).await;
    loop {
        let ev = events.next().await?;
        if let EventKind::SecretRegistered { hashlock, secret } = ev.event {
            recovery::secret_registered(sh, hashlock, secret, ev.height).await;
        }
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
