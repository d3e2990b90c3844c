//! Watchtower client: signed registration, and delivery of the persisted appointment queue
//! with every receipt verified (signature, tower, channel, version) before it is kept.

use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::store::QueuedAppointment;
use sluice_protocol::wire::tower::{
    AppointmentRequest, Receipt, RegisterRequest, TowerError, UserAuth,
};
use sluice_protocol::{Address, Hash32};
use std::sync::Arc;
use std::time::Duration;

/// Action names signed in the tower API.
pub const REGISTER_ACTION: &str = "register";
/// See [`REGISTER_ACTION`].
pub const APPOINTMENT_ACTION: &str = "appointment";
const BATCH: u32 = 16;
const IDLE: Duration = Duration::from_millis(500);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

fn http() -> reqwest::Client {
    sluice_home::tls::http_client_builder(sluice_home::tls::default_client_config())
        .timeout(HTTP_TIMEOUT)
        .build()
        .unwrap_or_default()
}

fn base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    match url.contains("://") {
        true => url.to_string(),
        false => format!("http://{url}"),
    }
}

/// A random nonce stamped with the current time, as towers require.
fn fresh_nonce() -> Hash32 {
    let now = crate::store::now().max(0) as u64;
    sluice_protocol::wire::tower::stamped_nonce(now, &crate::onchain::random32())
}

/// Registers this wallet with the tower at `url` whose key is `tower`.
pub(crate) async fn register(core: &Core, url: &str, tower: &Address) -> Result<()> {
    let nonce = fresh_nonce();
    let auth = UserAuth::sign(
        &core.key,
        core.chain_id,
        tower,
        REGISTER_ACTION,
        nonce,
        &Hash32::default(),
    );
    let resp = http()
        .post(format!("{}/register", base(url)))
        .json(&RegisterRequest { auth })
        .send()
        .await
        .map_err(|e| tower_err(url, e.to_string()))?;
    if !resp.status().is_success() {
        return Err(tower_err(url, error_body(resp).await));
    }
    Ok(())
}

async fn error_body(resp: reqwest::Response) -> String {
    let status = resp.status();
    match resp.json::<TowerError>().await {
        Ok(e) => format!("{} ({status}): {}", e.code, e.message),
        Err(_) => format!("HTTP {status}"),
    }
}

fn tower_err(url: &str, reason: String) -> WalletError {
    WalletError::Tower {
        url: url.to_string(),
        reason,
    }
}

/// Delivers the queue forever, pausing when it is empty or a tower fails.
pub(crate) async fn run(core: Arc<Core>) {
    let client = http();
    loop {
        let batch = match core.store.queued_appointments(BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the appointment queue");
                Vec::new()
            }
        };
        let mut failed = batch.is_empty();
        for q in batch {
            if let Err(e) = deliver(&core, &client, &q).await {
                tracing::warn!(tower = %q.url, error = %e, "appointment not delivered; will retry");
                let _ = core.store.appointment_failed(q.id).await;
                failed = true;
            }
        }
        if failed {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// Sends one appointment and keeps the receipt if it is the tower's, for this channel and
/// version.
pub(crate) async fn deliver(
    core: &Core,
    client: &reqwest::Client,
    q: &QueuedAppointment,
) -> Result<()> {
    let ap = &q.appointment;
    let auth = UserAuth::sign(
        &core.key,
        core.chain_id,
        &q.tower,
        APPOINTMENT_ACTION,
        fresh_nonce(),
        &ap.digest(),
    );
    let req = AppointmentRequest {
        auth,
        appointment: ap.clone(),
    };
    let resp = client
        .post(format!("{}/appointments", base(&q.url)))
        .json(&req)
        .send()
        .await
        .map_err(|e| tower_err(&q.url, e.to_string()))?;
    if !resp.status().is_success() {
        return Err(tower_err(&q.url, error_body(resp).await));
    }
    let receipt: Receipt = resp
        .json()
        .await
        .map_err(|e| tower_err(&q.url, format!("bad receipt: {e}")))?;
    check_receipt(core, q, &receipt).map_err(|r| tower_err(&q.url, r))?;
    core.store.store_receipt(q, &receipt).await
}

fn check_receipt(core: &Core, q: &QueuedAppointment, r: &Receipt) -> Result<(), String> {
    let state = q.appointment.snapshot.state();
    r.verify().map_err(|e| format!("receipt signature: {e}"))?;
    if r.tower != q.tower {
        return Err("receipt signed by another key than the tower's".into());
    }
    if r.chain_id != core.chain_id || r.channel_id != state.channel_id {
        return Err("receipt is for another chain or channel".into());
    }
    if r.version != state.version {
        return Err(format!(
            "receipt for version {}, sent {}",
            r.version, state.version
        ));
    }
    Ok(())
}
