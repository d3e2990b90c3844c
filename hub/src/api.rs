//! Admin HTTP JSON under `/api/…` and Prometheus text on `/metrics`.

use crate::shared::Shared;
use crate::store::{ChannelPhase, ChannelRow, PaymentRecord};
use serde::Serialize;
use sluice_protocol::{Address, Amount, Hash32};
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::Filter;

const LIST_LIMIT: u32 = 1_000;

#[derive(Serialize)]
struct ChannelView {
    id: Hash32,
    client: Address,
    phase: crate::store::ChannelPhase,
    version: u64,
    deposit_client: Amount,
    deposit_hub: Amount,
    balance_client: Option<Amount>,
    /// The hub's spendable side: what it can still forward to this client.
    collateral: Option<Amount>,
    locks: usize,
}

impl From<&ChannelRow> for ChannelView {
    fn from(r: &ChannelRow) -> Self {
        let b = r.snapshot.state().balances(r.deposit_a, r.deposit_b).ok();
        ChannelView {
            id: r.id,
            client: r.client,
            phase: r.phase,
            version: r.version(),
            deposit_client: r.deposit_a,
            deposit_hub: r.deposit_b,
            balance_client: b.map(|b| b.0),
            collateral: b.map(|b| b.1),
            locks: r.snapshot.locks.len(),
        }
    }
}

fn json<T: Serialize>(
    r: Result<T, crate::store::StoreError>,
) -> warp::reply::WithStatus<warp::reply::Json> {
    match r {
        Ok(v) => warp::reply::with_status(warp::reply::json(&v), StatusCode::OK),
        Err(e) => warp::reply::with_status(
            warp::reply::json(&serde_json::json!({ "error": e.to_string() })),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

async fn channels(sh: Arc<Shared>) -> Result<impl warp::Reply, Infallible> {
    let rows = sh.store.channels(LIST_LIMIT).await;
    Ok(json(rows.map(|r| {
        r.iter().map(ChannelView::from).collect::<Vec<_>>()
    })))
}

async fn payments(sh: Arc<Shared>) -> Result<impl warp::Reply, Infallible> {
    Ok(json(sh.store.payments(LIST_LIMIT).await))
}

/// Every payment with the hashlock (one per payee whose invoice carries it), with its history.
async fn payment(hashlock: String, sh: Arc<Shared>) -> Result<impl warp::Reply, Infallible> {
    #[derive(Serialize)]
    struct View {
        payment: PaymentRecord,
        history: Vec<crate::store::PaymentEvent>,
    }
    let Ok(h) = hashlock.parse::<Hash32>() else {
        return Ok(json::<()>(Err(crate::store::StoreError::Corrupt(
            "hashlock is not 32 bytes of hex".into(),
        ))));
    };
    let r = async {
        let mut views = Vec::new();
        for payment in sh.store.payments_with(&h).await? {
            let history = sh.store.payment_history(&payment.key()).await?;
            views.push(View { payment, history });
        }
        Ok(views)
    }
    .await;
    Ok(json(r))
}

async fn liquidity(sh: Arc<Shared>) -> Result<impl warp::Reply, Infallible> {
    let r = async {
        // Every live channel, however many (the listing above shows the first page only).
        let (mut count, mut hub_side, mut clients) = (0usize, 0u128, 0u128);
        for phase in [ChannelPhase::Open, ChannelPhase::Closing] {
            let mut pages = sh.store.pages(phase);
            while let Some(page) = pages.next().await? {
                for v in page.iter().map(ChannelView::from) {
                    count += 1;
                    hub_side += v.collateral.map_or(0, u128::from);
                    clients += v.balance_client.map_or(0, u128::from);
                }
            }
        }
        let wallet = match &sh.chain {
            Some(c) => c
                .client()
                .account(&sh.address())
                .await
                .ok()
                .map(|a| a.balance),
            None => None,
        };
        let jobs = sh.store.live_jobs().await?;
        Ok(serde_json::json!({
            "channels": count,
            "hub_side_total": hub_side.to_string(),
            "client_side_total": clients.to_string(),
            "hub_wallet": wallet,
            "collateral_jobs": jobs,
        }))
    }
    .await;
    Ok(json(r))
}

async fn health(sh: Arc<Shared>) -> Result<impl warp::Reply, Infallible> {
    let store = sh.store.ping().await;
    let body = serde_json::json!({
        "ok": store.is_ok(),
        "hub": sh.address(),
        "chain_id": sh.chain_id,
        "height": sh.height(),
        "store": sh.store.kind(),
        "sessions": sh.sessions.len(),
        "store_error": store.err().map(|e| e.to_string()),
    });
    let status = if body["ok"] == true {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status))
}

/// `/api/{channels,payments,payments/HASHLOCK,liquidity,health}` and `/metrics`.
pub fn routes(
    sh: Arc<Shared>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    let with = {
        let sh = sh.clone();
        warp::any().map(move || sh.clone())
    };
    let api = warp::path("api");
    let channels = api
        .and(warp::path("channels"))
        .and(warp::path::end())
        .and(with.clone())
        .and_then(channels);
    let payments = api
        .and(warp::path("payments"))
        .and(warp::path::end())
        .and(with.clone())
        .and_then(payments);
    let payment = api
        .and(warp::path("payments"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(with.clone())
        .and_then(payment);
    let liquidity = api
        .and(warp::path("liquidity"))
        .and(warp::path::end())
        .and(with.clone())
        .and_then(liquidity);
    let health = api
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(with.clone())
        .and_then(health);
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(with)
        .map(|sh: Arc<Shared>| {
            warp::reply::with_header(
                sh.metrics.render(),
                "content-type",
                "text/plain; version=0.0.4",
            )
        });
    warp::get().and(
        channels
            .or(payments)
            .or(payment)
            .or(liquidity)
            .or(health)
            .or(metrics),
    )
}
