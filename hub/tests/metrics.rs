//! What the hub and the tower tell an operator about money, against a real `sluice-node --dev`,
//! `sluice-hub` and `sluice-watchtower`: the build, the hub's wallet as the chain has it, the
//! collateral in its channels, the fees of routed payments, and the tower's fee account.

mod twin;

use sluice_chain_client::ChainClient;
use sluice_hub::store::Store;
use sluice_protocol::routing::RoutingTerms;
use sluice_protocol::*;
use sluice_test_support::{HubAdmin, HubStore, Network, NetworkOptions};
use std::time::{Duration, Instant};
use twin::{open_on_chain, wait_funded, Twin, DEPOSIT};

/// The value of the sample `name` (with its labels, if any) in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn hub_metrics(admin: &HubAdmin) -> String {
    let r = admin.get("/metrics").await.expect("hub metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn tower_metrics(addr: &str) -> String {
    sluice_home::tls::http_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("tower metrics")
        .text()
        .await
        .expect("tower metrics text")
}

/// Polls until `f` holds, or fails with what it last saw.
async fn until<F>(what: &str, mut f: F)
where
    F: AsyncFnMut() -> Result<(), String>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_gauges_match_the_chain_and_the_channels() {
    let (ka, kb) = (Keypair::generate(), Keypair::generate());
    let net = Network::start(NetworkOptions {
        block_time_ms: 50,
        hub_store: HubStore::Postgres,
        tower: true,
        fund: [&ka, &kb]
            .iter()
            .map(|k| (k.address(), 10 * DEPOSIT))
            .collect(),
        hub_collateral: (DEPOSIT / 2, DEPOSIT),
        ..NetworkOptions::default()
    })
    .expect("network");
    let node = net.node.addr().to_string();
    let chain = ChainClient::new(&node);
    let admin = HubAdmin::of(net.hub.home()).expect("admin token");
    let store = Store::connect(net.hub_store_url().expect("postgres"), 2)
        .await
        .expect("store");
    let (a, b) = (
        open_on_chain(&node, &ka, &net.hub_key).await,
        open_on_chain(&node, &kb, &net.hub_key).await,
    );
    let addrs = vec![net.hub.addr().to_string()];
    let wa = Twin::connect(&addrs, ka.clone(), a, wait_funded(&store, &a).await).await;
    let wb = Twin::connect(&addrs, kb.clone(), b, wait_funded(&store, &b).await).await;
    wa.set_height(chain.chain_info().await.expect("chain info").height);
    let amounts = [1_000u64, 2_500];
    for amount in amounts {
        let (st, why) = wa.pay(0, &wb.invoice(amount)).await;
        assert_eq!(st, wire::hub::PaymentStatus::Completed, "{why:?}");
    }

    let version = env!("CARGO_PKG_VERSION");
    let text = hub_metrics(&admin).await;
    assert!(
        text.contains(&format!("sluice_hub_build_info{{version=\"{version}\"}} 1")),
        "{text}"
    );
    let terms = RoutingTerms::default();
    let fees: u64 = amounts.iter().map(|a| terms.fee(*a).expect("fee")).sum();
    assert_eq!(
        sample(&text, "sluice_hub_fees_earned_units_total"),
        Some(fees as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sluice_hub_channels{phase=\"open\"}"),
        Some(2.0),
        "{text}"
    );
    // Payer `a` paid amount + fee to the hub; payee `b` received the amount from it.
    let paid: u64 = amounts.iter().sum::<u64>() + fees;
    let hub_side = (DEPOSIT + paid) + (DEPOSIT - amounts.iter().sum::<u64>());
    assert_eq!(
        sample(&text, "sluice_hub_collateral_units{phase=\"open\"}"),
        Some(hub_side as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sluice_hub_client_balance_units{phase=\"open\"}"),
        Some((4 * DEPOSIT - hub_side) as f64),
        "{text}"
    );

    // The wallet gauge is the chain's balance of the hub (read each guard round).
    until("hub wallet gauge equals the chain", async || {
        let onchain = chain
            .account(&net.hub_key)
            .await
            .map_err(|e| e.to_string())?;
        let text = hub_metrics(&admin).await;
        match sample(&text, "sluice_hub_wallet_balance_units") {
            Some(v) if v == onchain.balance as f64 && onchain.balance > 0 => Ok(()),
            other => Err(format!("gauge {other:?}, chain {}", onchain.balance)),
        }
    })
    .await;

    let tower = net.tower.as_ref().expect("tower").addr().to_string();
    let tower_key = net.tower_key.expect("tower key");
    let text = tower_metrics(&tower).await;
    assert!(
        text.contains(&format!(
            "sluice_tower_build_info{{version=\"{version}\"}} 1"
        )),
        "{text}"
    );
    until("tower wallet gauge equals the chain", async || {
        let onchain = chain.account(&tower_key).await.map_err(|e| e.to_string())?;
        let text = tower_metrics(&tower).await;
        match sample(&text, "sluice_tower_wallet_balance_units") {
            Some(v) if v == onchain.balance as f64 && onchain.balance > 0 => Ok(()),
            other => Err(format!("gauge {other:?}, chain {}", onchain.balance)),
        }
    })
    .await;
}
