//! Login (challenge signature), welcome and resync.

use super::{error, Conn, MAX_AUTH_ATTEMPTS};
use crate::recovery;
use crate::registry::SessionHandle;
use crate::shared::Shared;
use crate::store::now_ms;
use sluice_protocol::wire::auth_bytes;
use sluice_protocol::wire::hub::{ErrorCode, SessionMsg, AUTH_ACTION};
use sluice_protocol::{Address, Hash32, Signature, Snapshot, StateError, Tag};
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Conn {
    /// Before login only `Auth` is accepted; false ends the session.
    pub(super) async fn on_unauthenticated(&mut self, msg: SessionMsg) -> bool {
        let SessionMsg::Auth { address, sig } = msg else {
            self.refuse(
                "unauthenticated",
                ErrorCode::Unauthenticated,
                "log in with Auth first",
            );
            return true;
        };
        if !self.verify(&address, &sig) {
            self.auth_attempts += 1;
            self.refuse(
                "bad_auth",
                ErrorCode::BadSignature,
                "login signature does not verify",
            );
            return self.auth_attempts < MAX_AUTH_ATTEMPTS;
        }
        self.login(address).await
    }

    fn verify(&self, address: &Address, sig: &Signature) -> bool {
        let sh = &self.sh;
        let bytes = auth_bytes(
            sh.chain_id,
            &sh.address(),
            AUTH_ACTION,
            &self.challenge,
            address,
            &Hash32::default(),
        );
        address.verify(Tag::Auth, &bytes, sig).is_ok()
    }

    async fn login(&mut self, client: Address) -> bool {
        let channels = match self.sh.store.channels_of(&client).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot load channels at login");
                self.handle
                    .send(error(ErrorCode::Internal, "hub store unavailable"));
                return false;
            }
        };
        self.client = Some(client);
        self.sh.sessions.insert(client, self.handle.clone());
        self.sh.metrics.sessions.inc();
        tracing::info!(%client, session = self.handle.id, "client logged in");
        self.handle.send(SessionMsg::Welcome {
            channels: channels.iter().map(|c| c.id).collect(),
            terms: self.sh.cfg.terms,
        });
        for c in channels {
            self.handle.send(SessionMsg::Sync {
                channel_id: c.id,
                snapshot: c.snapshot,
            });
        }
        tokio::spawn(recovery::resume(self.sh.clone(), client));
        true
    }
}

/// A client's latest co-signed snapshot: verified against the chain's parties and adopted when
/// newer than the hub's. It also resolves a reservation whose proposer gave up: a snapshot at
/// the reserved version is that state completed (adopted only if equal to it, see
/// `Store::adopt_snapshot`), one at the channel's current version means the client never
/// completed it, so the reservation is dropped.
pub(super) async fn on_sync(
    sh: &Arc<Shared>,
    session: &SessionHandle,
    client: Address,
    id: Hash32,
    snap: Snapshot,
) {
    let row = match sh.store.channel(&id).await {
        Ok(Some(r)) if r.client == client => r,
        Ok(_) => {
            session.send(error(
                ErrorCode::UnknownChannel,
                format!("no channel {id} with this client"),
            ));
            return;
        }
        Err(e) => {
            session.send(error(ErrorCode::Internal, format!("hub store: {e}")));
            return;
        }
    };
    if let Err(e) = snap.verify(sh.chain_id, &id, &client, &sh.address()) {
        let code = match e {
            StateError::BadSignature(..) => ErrorCode::BadSignature,
            _ => ErrorCode::InvalidUpdate,
        };
        session.send(error(code, format!("sync snapshot refused: {e}")));
        return;
    }
    let lock = sh.channel_lock(&id);
    let _guard = lock.lock().await;
    let r = match snap.state().version.cmp(&row.version()) {
        Ordering::Less => return,
        // The client is at our version: it did not complete any reservation above it.
        Ordering::Equal => {
            let now = now_ms();
            let r = sh.store.release_abandoned(&id, row.version(), now).await;
            if let (Ok(false), Some(p)) = (&r, &row.pending) {
                if p.is_live(now) {
                    tokio::spawn(release_later(sh.clone(), id, row.version(), p.until_ms));
                }
            }
            r
        }
        Ordering::Greater => {
            let writes = recovery::adopted_writes(sh, &row, &snap).await;
            sh.store.adopt_snapshot(&id, &snap, writes).await
        }
    };
    match r {
        Ok(true) => {
            tracing::info!(%client, channel = %id, version = snap.state().version, "resolved by the client's resync")
        }
        Ok(false) => {}
        Err(e) => {
            session.send(error(ErrorCode::Internal, format!("hub store: {e}")));
        }
    }
}

/// The client resynced below a reservation whose proposer (another hub process, or one that
/// died) may still wait for its answer: no local proposal can hold it (this one holds the
/// channel's lock while it is out), so it is dropped once that proposer's wait is over, unless
/// the channel moved on meanwhile.
async fn release_later(sh: Arc<Shared>, id: Hash32, version: u64, until_ms: u64) {
    let wait = until_ms.saturating_sub(now_ms()).saturating_add(1);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let lock = sh.channel_lock(&id);
    let _guard = lock.lock().await;
    match sh.store.release_abandoned(&id, version, now_ms()).await {
        Ok(true) => {
            tracing::info!(channel = %id, version, "released a reservation its proposer gave up")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(channel = %id, error = %e, "cannot release an abandoned reservation")
        }
    }
}
