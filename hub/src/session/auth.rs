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
/// completed it, so the reservation is dropped, unless the proposal went out on this very
/// session, after the client sent its snapshot.
pub(super) async fn on_sync(
    sh: Arc<Shared>,
    session: SessionHandle,
    client: Address,
    id: Hash32,
    snap: Snapshot,
) {
    if let Err((code, message)) = check_sync(&sh, &client, &id, &snap).await {
        session.send(error(code, message));
        return;
    }
    let lock = sh.channel_lock(&id);
    let _guard = lock.lock().await;
    let row = match sh.store.channel(&id).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => {
            session.send(error(ErrorCode::Internal, format!("hub store: {e}")));
            return;
        }
    };
    let r = match snap.state().version.cmp(&row.version()) {
        Ordering::Less => return,
        Ordering::Equal => match &row.pending {
            Some(p) if session.proposed_here(&id, p.version()) => return,
            Some(p) if p.is_live(now_ms()) => {
                tokio::spawn(release_later(sh.clone(), id, row.version(), p.until_ms));
                return;
            }
            Some(_) => {
                sh.store
                    .release_abandoned(&id, row.version(), now_ms())
                    .await
            }
            None => return,
        },
        Ordering::Greater => {
            let writes = recovery::adopted_writes(&sh, &row, &snap).await;
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

/// The snapshot is of this client's channel and carries both parties' signatures.
async fn check_sync(
    sh: &Shared,
    client: &Address,
    id: &Hash32,
    snap: &Snapshot,
) -> Result<(), (ErrorCode, String)> {
    match sh.store.channel(id).await {
        Ok(Some(r)) if r.client == *client => {}
        Ok(_) => {
            return Err((
                ErrorCode::UnknownChannel,
                format!("no channel {id} with this client"),
            ))
        }
        Err(e) => return Err((ErrorCode::Internal, format!("hub store: {e}"))),
    }
    snap.verify(sh.chain_id, id, client, &sh.address())
        .map_err(|e| {
            let code = match e {
                StateError::BadSignature(..) => ErrorCode::BadSignature,
                _ => ErrorCode::InvalidUpdate,
            };
            (code, format!("sync snapshot refused: {e}"))
        })
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
