//! Login (challenge signature), welcome and resync.

use super::{error, Conn, MAX_AUTH_ATTEMPTS};
use crate::payments::recovery;
use crate::registry::SessionHandle;
use crate::shared::Shared;
use crate::store::now_ms;
use crate::updater;
use sluice_protocol::wire::auth_bytes;
use sluice_protocol::wire::hub::{welcome_bytes, ErrorCode, SessionMsg, AUTH_ACTION};
use sluice_protocol::{Address, Hash32, Signature, Snapshot, StateError, Tag, MAX_VERSION_SKIP};
use std::sync::Arc;

impl Conn {
    /// Before login only `Auth` is accepted; false ends the session.
    pub(super) async fn on_unauthenticated(&mut self, msg: SessionMsg) -> bool {
        let SessionMsg::Auth {
            address,
            sig,
            challenge,
        } = msg
        else {
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
        self.login(address, challenge).await
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

    async fn login(&mut self, client: Address, challenge: Hash32) -> bool {
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
        // Other hub processes on the store route this client's payments here.
        let held = self
            .sh
            .store
            .session_opened(&client, &self.sh.process, self.handle.id);
        if let Err(e) = held.await {
            tracing::warn!(%client, error = %e, "cannot record the session for other hub processes");
        }
        tracing::info!(%client, session = self.handle.id, "client logged in");
        let proof = welcome_bytes(self.sh.chain_id, &self.sh.address(), &challenge, &client);
        self.handle.send(SessionMsg::Welcome {
            channels: channels.iter().map(|c| c.id).collect(),
            terms: self.sh.cfg.terms,
            sig: self.sh.key.sign(Tag::Auth, &proof),
        });
        let (sh, handle) = (self.sh.clone(), self.handle.clone());
        let ids = channels.iter().map(|c| c.id).collect();
        tokio::spawn(async move {
            send_syncs(&sh, &handle, ids).await;
            recovery::resume(sh, client).await;
        });
        true
    }
}

/// The hub's `Sync` of each channel, its row read under the channel's lock: an update of the
/// channel under way in this process (the client's last proposal of its previous session,
/// say) is committed first, or the client would take the state below it for the latest and
/// give up on its own proposal. Its own task, since a hub proposal holding that lock waits
/// for this session's read loop to deliver the client's answer.
async fn send_syncs(sh: &Shared, handle: &SessionHandle, ids: Vec<Hash32>) {
    for id in ids {
        let lock = sh.channel_lock(&id);
        let _guard = lock.lock().await;
        match sh.store.channel(&id).await {
            Ok(Some(c)) => {
                handle.send(SessionMsg::Sync {
                    channel_id: c.id,
                    snapshot: c.snapshot,
                    signed: c.floor,
                });
            }
            Ok(None) => {}
            Err(e) => {
                handle.send(error(ErrorCode::Internal, format!("hub store: {e}")));
            }
        }
    }
}

/// A client's `Sync`: its latest co-signed snapshot and the highest version it says it signed.
pub(super) struct Sync {
    pub id: Hash32,
    pub snap: Snapshot,
    pub signed: u64,
}

/// A client's `Sync`: the snapshot is verified against the chain's parties and adopted when newer
/// than the hub's (at a reserved version only if it is that state completed, see
/// `Store::adopt_snapshot`), and the floor rises to what the client signed (within the skip), so
/// the hub's next proposal goes above it. A snapshot below a reservation proves nothing: the
/// client holds the hub's signature on it whatever it shows, so the reservation stays in doubt
/// until it is dead (`updater::bury`).
pub(super) async fn on_sync(sh: Arc<Shared>, session: SessionHandle, client: Address, sync: Sync) {
    let Sync { id, snap, signed } = sync;
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
    let claimed = signed.min(row.version().saturating_add(MAX_VERSION_SKIP / 2));
    if claimed > row.floor {
        if let Err(e) = sh.store.raise_floor(&id, claimed).await {
            session.send(error(ErrorCode::Internal, format!("hub store: {e}")));
            return;
        }
    }
    if snap.state().version <= row.version() {
        return release_harmless(&sh, &row).await;
    }
    let writes = recovery::adopted_writes(&sh, &row, &snap).await;
    match sh.store.adopt_snapshot(&id, &snap, writes).await {
        Ok(true) => {
            tracing::info!(%client, channel = %id, version = snap.state().version, "adopted the client's newer state")
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

/// A hub proposal given up on that would cost the hub nothing if the client enforced it (no new
/// lock toward the client): its version stays burnt (the floor), the reservation goes, so the
/// channel is free again.
async fn release_harmless(sh: &Shared, row: &crate::store::ChannelRow) {
    let Some(p) = row.pending.as_ref().filter(|p| !p.is_live(now_ms())) else {
        return;
    };
    if updater::adds_hub_lock(&p.snapshot, &row.snapshot) {
        return;
    }
    match sh.store.clear_reservation(&row.id, p.version()).await {
        Ok(true) => {
            tracing::info!(channel = %row.id, version = p.version(), "released a given-up reservation")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(channel = %row.id, error = %e, "cannot release a reservation"),
    }
}
