//! The tower's request logic, independent of HTTP: verify, commit, then sign. The API maps HTTP
//! onto these calls; benchmarks call them directly.

use crate::chain_view::{ChainView, Health};
use crate::error::ApiError;
use crate::ingest::{Ingest, IngestError};
use crate::metrics::Metrics;
use crate::nonces;
use crate::responder::Responder;
use crate::store::{AppointmentSummary, NewAppointment, Store};
use serde::{Deserialize, Serialize};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::wire::tower::{AppointmentRequest, Receipt, RegisterRequest, UserAuth};
use sluice_protocol::{Address, ChainId, Hash32, Keypair, Snapshot};
use std::sync::Arc;

pub const ACTION_REGISTER: &str = "register";
pub const ACTION_APPOINTMENT: &str = "appointment";
pub const ACTION_LIST: &str = "list";
pub const ACTION_DELETE: &str = "delete";

/// `POST /register` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub user: Address,
    pub tower: Address,
    pub chain_id: ChainId,
    /// Distinct channels this user may have watched.
    pub quota: u64,
}

/// What the tower grants and requires of each user.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Distinct channels a user may have watched.
    pub quota: u64,
    /// Accepted distance, in seconds, between a nonce's stamp and the tower's clock.
    pub nonce_window_secs: u64,
    /// Blocks behind the tip past which the tower reports itself unhealthy.
    pub health_max_behind: u64,
}

pub struct Tower {
    pub chain_id: ChainId,
    key: Keypair,
    policy: Policy,
    pub store: Arc<Store>,
    pub view: Arc<ChainView>,
    pub metrics: Arc<Metrics>,
    ingest: Ingest,
    responder: Arc<Responder>,
}

impl Tower {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: ChainId,
        key: Keypair,
        policy: Policy,
        store: Arc<Store>,
        view: Arc<ChainView>,
        metrics: Arc<Metrics>,
        ingest: Ingest,
        responder: Arc<Responder>,
    ) -> Self {
        Tower {
            chain_id,
            key,
            policy,
            store,
            view,
            metrics,
            ingest,
            responder,
        }
    }

    /// The tower's own key address: receipts are signed by it, users sign requests to it.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The signature first (an unsigned stamp proves nothing), then the nonce's time: only
    /// nonces inside the window can be replay-checked, as older ones are forgotten.
    fn check_auth(&self, auth: &UserAuth, action: &str, body: &Hash32) -> Result<(), ApiError> {
        auth.verify(self.chain_id, &self.address(), action, body)
            .map_err(|_| ApiError::BadAuth)?;
        nonces::check(
            &auth.nonce,
            nonces::now_secs(),
            self.policy.nonce_window_secs,
        )?;
        Ok(())
    }

    pub async fn register(&self, req: RegisterRequest) -> Result<Registered, ApiError> {
        self.check_auth(&req.auth, ACTION_REGISTER, &Hash32::default())?;
        let quota = self
            .store
            .register(
                &req.auth.user,
                &req.auth.nonce,
                self.policy.quota,
                self.view.tip(),
            )
            .await??;
        self.metrics.registrations.inc();
        tracing::info!(user = %req.auth.user, quota, "user registered");
        Ok(Registered {
            user: req.auth.user,
            tower: self.address(),
            chain_id: self.chain_id,
            quota,
        })
    }

    /// Verifies and commits an appointment, then signs the receipt at the commit's height.
    pub async fn submit(&self, req: AppointmentRequest) -> Result<Receipt, ApiError> {
        let (auth, ap) = (&req.auth, &req.appointment);
        if auth.user != ap.a && auth.user != ap.b {
            return Err(ApiError::NotParticipant);
        }
        self.check_auth(auth, ACTION_APPOINTMENT, &ap.digest())?;
        let channel_id = ap.verify(self.chain_id)?;
        let version = ap.snapshot.state().version;
        if i64::try_from(version).is_err() {
            return Err(ApiError::Malformed(format!(
                "version {version} out of range"
            )));
        }
        // What is accepted here must be what the store reads back: the canonical decoder's
        // rules (amount bounds and all), not only what the JSON types allow (F19).
        let readable = Snapshot::from_bytes(&ap.snapshot.to_bytes());
        if readable.as_ref() != Ok(&ap.snapshot) {
            let why = readable
                .err()
                .map_or("does not round-trip".into(), |e| e.to_string());
            return Err(ApiError::Malformed(format!("snapshot: {why}")));
        }
        self.fits_on_chain(channel_id, &ap.snapshot).await?;
        let item = NewAppointment {
            user: auth.user,
            nonce: auth.nonce,
            channel_id,
            appointment: req.appointment,
        };
        let (outcome, height) = self.ingest.submit(item).await.map_err(|e| match e {
            IngestError::Full => ApiError::Busy,
            e => ApiError::Internal(e.to_string()),
        })?;
        let accepted = outcome?;
        self.metrics.appointments_accepted.inc();
        if let Some(closing) = accepted.closing.filter(|c| c.version < version) {
            tracing::info!(%channel_id, version, onchain = closing.version, "appointment for a closing channel");
            let responder = self.responder.clone();
            tokio::spawn(async move {
                if let Err(e) = responder.react(channel_id, closing).await {
                    tracing::warn!(%channel_id, error = %e, "reaction to a known close failed");
                }
            });
        }
        Ok(Receipt::sign(
            &self.key,
            self.chain_id,
            channel_id,
            version,
            height,
        ))
    }

    /// A state for a channel the chain knows must fit its deposits, or the challenge it would
    /// make fails on chain (F9, F19). A channel not yet on chain, or a node that does not
    /// answer, is not held against the user: the responder checks again before it spends a fee.
    async fn fits_on_chain(&self, channel: Hash32, snapshot: &Snapshot) -> Result<(), ApiError> {
        let Ok(Some(rec)) = self.responder.chain().channel(&channel).await else {
            return Ok(());
        };
        rec.admits(self.chain_id, snapshot)
            .map_err(|why| ApiError::DoesNotFit { channel, why })
    }

    pub async fn list(&self, auth: UserAuth) -> Result<Vec<AppointmentSummary>, ApiError> {
        self.check_auth(&auth, ACTION_LIST, &Hash32::default())?;
        self.store.spend_nonce(&auth.user, &auth.nonce).await??;
        Ok(self.store.list(&auth.user).await?)
    }

    pub async fn delete(&self, auth: UserAuth, channel_id: Hash32) -> Result<(), ApiError> {
        self.check_auth(&auth, ACTION_DELETE, &channel_id)?;
        match self
            .store
            .delete(&auth.user, &auth.nonce, &channel_id)
            .await??
        {
            true => Ok(()),
            false => Err(ApiError::NotFound),
        }
    }

    pub async fn health(&self) -> Result<Health, ApiError> {
        let appointments = self.store.appointment_count().await?;
        Ok(self
            .view
            .health(appointments, self.policy.health_max_behind))
    }
}
