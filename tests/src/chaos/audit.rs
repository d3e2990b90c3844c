//! The accounting a user and the operator would do once everything settled, as counts rather
//! than assertions, so that a campaign reports how much went wrong instead of stopping at the
//! first thing: units lost against each wallet's own books, the hub's and the chain's; channels
//! where the wallet and the hub hold different latest states; payments done on one leg only;
//! what is still pending or locked.

use sluice_chain_client::ChainClient;
use sluice_client::store::{PaymentDirection, PaymentStatus};
use sluice_client::Wallet;
use sluice_protocol::onchain::ChannelStatus;
use sluice_protocol::{Address, Amount, Hash32};
use sluice_test_support::{HubAdmin, Network};
use std::collections::HashMap;

/// One wallet of the audit and its channel with the hub.
pub struct Holder<'a> {
    pub wallet: &'a Wallet,
    pub channel: Hash32,
    pub deposit: Amount,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Findings {
    /// Outgoing payments completed (both legs, by the payer's and payee's records).
    pub completed: usize,
    /// Outgoing payments undone.
    pub failed: usize,
    /// Units off: each wallet's balance against its deposit and completed payments, the hub's
    /// gain against the fees, the chain's total against genesis.
    pub lost: u128,
    /// Channels where wallet and hub disagree on the latest version or balance.
    pub forked: usize,
    /// Payments pending, locks left in a channel, payments the hub has not closed.
    pub stuck: usize,
    /// Payments completed on one leg and not the other.
    pub half_done: usize,
    /// What each count above stands for, one line per thing found.
    #[serde(skip)]
    pub notes: Vec<String>,
}

pub async fn audit(net: &Network, holders: &[Holder<'_>]) -> Result<Findings, String> {
    let chain = ChainClient::new(net.node.addr());
    let admin = HubAdmin::of(net.hub.home()).map_err(|e| e.to_string())?;
    let hub = hub_channels(&admin).await?;
    let mut f = Findings::default();
    let (mut hub_gain, mut fees_paid) = (0i128, 0i128);
    let mut legs: HashMap<Hash32, [Option<PaymentStatus>; 2]> = HashMap::new();
    for (i, h) in holders.iter().enumerate() {
        let row = h
            .wallet
            .store()
            .require_channel(&h.channel)
            .await
            .map_err(|e| format!("wallet channel: {e}"))?;
        let rec = chain
            .channel(&h.channel)
            .await
            .map_err(|e| format!("chain channel: {e}"))?
            .ok_or("a channel is missing on chain")?;
        let state = row.snapshot.state();
        let (ba, bb) = state
            .balances(rec.deposit_a, rec.deposit_b)
            .map_err(|e| format!("balances: {e}"))?;
        let (mut out, mut fees, mut inc) = (0i128, 0i128, 0i128);
        for p in h.wallet.payments().await.map_err(|e| e.to_string())? {
            let side = match p.direction {
                PaymentDirection::Out => 0,
                PaymentDirection::In => 1,
            };
            legs.entry(p.hashlock).or_default()[side] = Some(p.status);
            match (p.direction, p.status) {
                (PaymentDirection::Out, PaymentStatus::Completed) => {
                    out += p.amount as i128;
                    fees += p.fee as i128;
                    f.completed += 1;
                }
                (PaymentDirection::Out, PaymentStatus::Failed) => f.failed += 1,
                (PaymentDirection::In, PaymentStatus::Completed) => inc += p.amount as i128,
                (_, PaymentStatus::Pending) => {
                    f.notes.push(format!(
                        "wallet {i}: {:?} payment {} pending",
                        p.direction, p.hashlock
                    ));
                    f.stuck += 1
                }
                _ => {}
            }
        }
        let expected = h.deposit as i128 + inc - out - fees;
        if ba as i128 != expected {
            f.notes.push(format!(
                "wallet {i}: balance {ba}, its books say {expected}"
            ));
        }
        f.lost += (ba as i128 - expected).unsigned_abs();
        hub_gain += bb as i128 - rec.deposit_b as i128;
        fees_paid += fees;
        if !row.snapshot.locks.is_empty() {
            f.notes
                .push(format!("wallet {i}: locks left {:?}", row.snapshot.locks));
        }
        f.stuck += row.snapshot.locks.len();
        match hub.get(&h.channel) {
            Some(c) => {
                let agree = c.version == state.version && c.balance_client == Some(ba);
                if !agree {
                    f.notes.push(format!(
                        "wallet {i}: v{} balance {ba}, the hub has v{} balance {:?}",
                        state.version, c.version, c.balance_client
                    ));
                }
                f.forked += usize::from(!agree);
                f.stuck += c.locks;
            }
            None => f.forked += 1,
        }
    }
    if hub_gain != fees_paid {
        f.notes.push(format!(
            "the hub gained {hub_gain}, the fees were {fees_paid}"
        ));
    }
    f.lost += (hub_gain - fees_paid).unsigned_abs();
    let done = |s: &Option<PaymentStatus>| matches!(s, Some(PaymentStatus::Completed));
    for (hashlock, [out, inc]) in &legs {
        if done(out) != done(inc) {
            f.half_done += 1;
            f.notes
                .push(format!("payment {hashlock}: payer {out:?}, payee {inc:?}"));
        }
    }
    let open = open_hub_payments(&admin).await?;
    f.stuck += open.len();
    f.notes
        .extend(open.iter().map(|p| format!("the hub has not closed {p}")));
    let channels: Vec<Hash32> = holders.iter().map(|h| h.channel).collect();
    let (on_chain, genesis) = chain_totals(net, &chain, &channels).await?;
    if on_chain != genesis {
        f.notes
            .push(format!("the chain holds {on_chain}, genesis {genesis}"));
    }
    f.lost += on_chain.abs_diff(genesis);
    Ok(f)
}

#[derive(serde::Deserialize)]
struct HubChannel {
    id: Hash32,
    version: u64,
    balance_client: Option<Amount>,
    locks: usize,
}

/// Every page of an admin list.
async fn pages(admin: &HubAdmin, list: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut items = Vec::new();
    let mut path = format!("/api/v1/{list}?limit=1000");
    loop {
        let page = admin.get(&path).await.map_err(|e| e.to_string())?.json();
        let rows = page["items"]
            .as_array()
            .ok_or("an admin page without items")?;
        items.extend(rows.iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/{list}?limit=1000&after={next}"),
            None => return Ok(items),
        }
    }
}

async fn hub_channels(admin: &HubAdmin) -> Result<HashMap<Hash32, HubChannel>, String> {
    let rows = pages(admin, "channels").await?;
    let rows: Vec<HubChannel> =
        serde_json::from_value(rows.into()).map_err(|e| format!("hub channels: {e}"))?;
    Ok(rows.into_iter().map(|c| (c.id, c)).collect())
}

async fn open_hub_payments(admin: &HubAdmin) -> Result<Vec<serde_json::Value>, String> {
    let rows = pages(admin, "payments").await?;
    Ok(rows
        .into_iter()
        .filter(|p| !matches!(p["state"].as_str(), Some("completed" | "failed")))
        .collect())
}

/// The chain's whole money, accounts of genesis plus deposits of `channels` still open or
/// closing, and the genesis total it must equal.
pub async fn chain_totals(
    net: &Network,
    chain: &ChainClient,
    channels: &[Hash32],
) -> Result<(u128, u128), String> {
    let path = net.node.home().join("genesis.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("genesis: {e}"))?;
    let genesis: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("genesis: {e}"))?;
    let mut total = 0u128;
    let mut accounts: Vec<Address> = Vec::new();
    let listed = |key: &str| genesis[key].as_array().cloned().unwrap_or_default();
    for a in listed("accounts") {
        total += a["balance"].as_u64().unwrap_or(0) as u128;
        accounts.extend(
            a["address"]
                .as_str()
                .and_then(|s| s.parse::<Address>().ok()),
        );
    }
    for v in listed("validators") {
        accounts.extend(
            v["address"]
                .as_str()
                .and_then(|s| s.parse::<Address>().ok()),
        );
    }
    accounts.sort();
    accounts.dedup();
    let mut on_chain = 0u128;
    for a in &accounts {
        let acc = chain
            .account(a)
            .await
            .map_err(|e| format!("account: {e}"))?;
        on_chain += acc.balance as u128;
    }
    for id in channels {
        let rec = chain
            .channel(id)
            .await
            .map_err(|e| format!("channel: {e}"))?;
        if let Some(rec) = rec {
            if matches!(
                rec.status,
                ChannelStatus::Open | ChannelStatus::Closing { .. }
            ) {
                on_chain += rec.deposit_a as u128 + rec.deposit_b as u128;
            }
        }
    }
    Ok((on_chain, total))
}
