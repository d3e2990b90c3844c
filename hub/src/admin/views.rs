//! What each admin endpoint answers: views of the store built for operators (no secret ever
//! leaves: `PaymentRecord` skips it), each list a page with the cursor of the next.

use super::AdminError;
use crate::shared::Shared;
use crate::store::{
    ChannelPhase, ChannelRow, PaymentCursor, PaymentEvent, PaymentRecord, StoreError,
};
use serde::Serialize;
use sluice_protocol::{Address, Amount, Hash32};
use std::collections::HashMap;

/// Most items one page holds, and the page size when none is asked for.
pub const MAX_PAGE: u32 = 1_000;
pub const DEFAULT_PAGE: u32 = 100;

#[derive(Serialize)]
pub struct ChannelView {
    id: Hash32,
    client: Address,
    phase: ChannelPhase,
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

/// One page of a list; `next` is the `after` of the following page, absent on the last.
#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// `limit` and `after` from a query string; anything else in it is refused.
pub struct PageQuery {
    pub limit: u32,
    pub after: Option<String>,
}

impl PageQuery {
    pub fn parse(q: &HashMap<String, String>) -> Result<Self, AdminError> {
        if let Some(k) = q.keys().find(|k| !matches!(k.as_str(), "limit" | "after")) {
            return Err(AdminError::BadRequest(format!("unknown parameter {k:?}")));
        }
        let limit = match q.get("limit") {
            None => DEFAULT_PAGE,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(AdminError::BadRequest(format!(
                        "limit must be 1 to {MAX_PAGE}, got {v:?}"
                    )))
                }
            },
        };
        Ok(PageQuery {
            limit,
            after: q.get("after").cloned(),
        })
    }
}

/// The page's items and the cursor after its last item, if the page is full.
fn page<T, U>(
    rows: &[T],
    limit: u32,
    view: impl Fn(&T) -> U,
    cursor: impl Fn(&T) -> String,
) -> Page<U> {
    let next = match rows.len() as u32 >= limit {
        true => rows.last().map(cursor),
        false => None,
    };
    Page {
        items: rows.iter().map(view).collect(),
        next,
    }
}

fn hash_param(what: &str, v: &str) -> Result<Hash32, AdminError> {
    v.parse()
        .map_err(|_| AdminError::BadRequest(format!("{what} must be 32 bytes of hex, got {v:?}")))
}

pub async fn channels(sh: &Shared, q: PageQuery) -> Result<Page<ChannelView>, AdminError> {
    let after = q
        .after
        .as_deref()
        .map(|a| hash_param("after", a))
        .transpose()?;
    let rows = sh.store.channels(after.as_ref(), q.limit).await?;
    let view = |r: &ChannelRow| ChannelView::from(r);
    Ok(page(&rows, q.limit, view, |r| r.id.to_string()))
}

pub async fn channel(sh: &Shared, id: &str) -> Result<ChannelView, AdminError> {
    let id = hash_param("channel id", id)?;
    match sh.store.channel(&id).await? {
        Some(row) => Ok(ChannelView::from(&row)),
        None => Err(AdminError::NotFound(format!("no channel {id}"))),
    }
}

pub async fn payments(sh: &Shared, q: PageQuery) -> Result<Page<PaymentRecord>, AdminError> {
    let after = match q.after.as_deref() {
        Some(a) => Some(a.parse::<PaymentCursor>().map_err(|_| {
            AdminError::BadRequest(format!("after is not a payment cursor: {a:?}"))
        })?),
        None => None,
    };
    let rows = sh.store.payments(after.as_ref(), q.limit).await?;
    let cursor = |p: &PaymentRecord| PaymentCursor::of(p).to_string();
    Ok(page(&rows, q.limit, Clone::clone, cursor))
}

/// Every payment with the hashlock (one per payee whose invoice carries it), with its history.
pub async fn payment(sh: &Shared, hashlock: &str) -> Result<Vec<PaymentView>, AdminError> {
    let h = hash_param("hashlock", hashlock)?;
    let mut views = Vec::new();
    for payment in sh.store.payments_with(&h).await? {
        let history = sh.store.payment_history(&payment.key()).await?;
        views.push(PaymentView { payment, history });
    }
    match views.is_empty() {
        true => Err(AdminError::NotFound(format!(
            "no payment with hashlock {h}"
        ))),
        false => Ok(views),
    }
}

#[derive(Serialize)]
pub struct PaymentView {
    payment: PaymentRecord,
    history: Vec<PaymentEvent>,
}

/// The phases whose channels still hold funds.
pub const LIVE_PHASES: [ChannelPhase; 2] = [ChannelPhase::Open, ChannelPhase::Closing];

/// What the channels of one phase hold, by side of their latest co-signed states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTotals {
    pub channels: usize,
    pub hub_side: u128,
    pub client_side: u128,
}

/// Totals over every channel in `phase`, however many.
pub async fn phase_totals(sh: &Shared, phase: ChannelPhase) -> Result<PhaseTotals, StoreError> {
    let mut t = PhaseTotals::default();
    let mut pages = sh.store.pages(phase);
    while let Some(page) = pages.next().await? {
        for v in page.iter().map(ChannelView::from) {
            t.channels += 1;
            t.hub_side += v.collateral.map_or(0, u128::from);
            t.client_side += v.balance_client.map_or(0, u128::from);
        }
    }
    Ok(t)
}

/// Sets the per-phase channel gauges from the store, for `/metrics`. A phase the store cannot
/// total keeps its last values (the failure is logged; `/api/v1/health` reports the store).
pub async fn record_channel_totals(sh: &Shared) {
    use crate::metrics::set_saturating;
    for phase in LIVE_PHASES {
        match phase_totals(sh, phase).await {
            Ok(t) => {
                let label = [phase.as_str()];
                let m = &sh.metrics;
                set_saturating(&m.channels.with_label_values(&label), t.channels);
                set_saturating(&m.collateral.with_label_values(&label), t.hub_side);
                set_saturating(&m.client_balance.with_label_values(&label), t.client_side);
            }
            Err(e) => tracing::warn!(phase = phase.as_str(), error = %e, "cannot total channels"),
        }
    }
}

/// Totals over every live channel, however many.
pub async fn liquidity(sh: &Shared) -> Result<serde_json::Value, AdminError> {
    let (mut count, mut hub_side, mut clients) = (0usize, 0u128, 0u128);
    for phase in LIVE_PHASES {
        let t = phase_totals(sh, phase).await?;
        count += t.channels;
        hub_side += t.hub_side;
        clients += t.client_side;
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

/// The hub's state; `ok` is false (and the status 503) when it cannot do its job: its store
/// does not answer, or its view of the chain is too old to judge lock expiries by.
pub async fn health(sh: &Shared) -> (bool, serde_json::Value) {
    let store = sh.store.ping().await;
    let chain = sh.live_height();
    let ok = store.is_ok() && chain.is_ok();
    let reason = match (&store, &chain) {
        (Err(_), _) => Some("store unreachable"),
        (_, Err(_)) => Some("chain view stale"),
        _ => None,
    };
    let body = serde_json::json!({
        "ok": ok,
        "reason": reason,
        "hub": sh.address(),
        "chain_id": sh.chain_id,
        "height": sh.height(),
        "store": sh.store.kind(),
        "sessions": sh.sessions.len(),
        "store_error": store.err().map(|e| e.to_string()),
        "chain_error": chain.err().map(|e| e.to_string()),
    });
    (ok, body)
}
