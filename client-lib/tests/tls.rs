//! Against real `sluice-node` and `sluice-hub` processes, the hub listening with TLS under a
//! certificate from a CA made at test time: wallets that trust the CA (`ca_file`) pay each
//! other over `wss://`, and a wallet that does not is refused with an error that says why.

mod support;

use sluice_client::store::PaymentStatus;
use sluice_client::{Wallet, WalletError};
use sluice_test_support::TestCa;
use std::time::Duration;
use support::net::{self, Net, DEPOSIT};

/// Restarts the network's hub with TLS on both listeners; returns the CA that signed it.
fn hub_with_tls(n: &mut Net) -> TestCa {
    let ca = TestCa::generate().unwrap();
    let home = n.net.hub.home().to_path_buf();
    ca.issue()
        .unwrap()
        .write(&home, "tls.crt", "tls.key")
        .unwrap();
    n.net.hub.set_env("SLUICE_HUB_TLS__CERT_FILE", "tls.crt");
    n.net.hub.set_env("SLUICE_HUB_TLS__KEY_FILE", "tls.key");
    n.net.hub.restart().expect("the hub restarts with TLS");
    ca
}

/// Opens wallet `i` on `wss://` to the hub, trusting `ca` if given.
async fn wallet(n: &Net, i: usize, ca: Option<&TestCa>) -> Wallet {
    let dir = &n.dirs[i];
    let mut cfg = n.config(dir);
    cfg.hub = format!("wss://{}", n.net.hub.addr());
    if let Some(ca) = ca {
        ca.write_cert(&dir.join("hub-ca.crt")).unwrap();
        cfg.ca_file = Some("hub-ca.crt".into());
    }
    cfg.save(dir).unwrap();
    Wallet::open(dir, cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn wallets_that_trust_the_hubs_ca_pay_over_wss_and_others_are_refused() {
    let mut n = net::start(3, false).await;
    let ca = tokio::task::block_in_place(|| hub_with_tls(&mut n));

    let (a, b) = (
        wallet(&n, 0, Some(&ca)).await,
        wallet(&n, 1, Some(&ca)).await,
    );
    let ca_a = a.open_channel(DEPOSIT).await.unwrap();
    let cb = b.open_channel(DEPOSIT).await.unwrap();
    a.connect().await.expect("a session over wss");
    b.connect().await.expect("a session over wss");
    net::collateral(&b, &cb).await;
    let inv = b
        .create_invoice(700, "over tls", Duration::from_secs(600))
        .await
        .unwrap();
    let secret = a.pay(&inv.invoice).await.unwrap();
    assert_eq!(sluice_protocol::sha256(&secret.0), inv.hashlock);
    net::wait_until("B to see the payment", Duration::from_secs(10), || async {
        let p = b.payments().await.unwrap();
        p.first()
            .is_some_and(|p| p.status == PaymentStatus::Completed)
    })
    .await;
    let b_channel = b.channels().await.unwrap().remove(0);
    assert_eq!(b_channel.balance, DEPOSIT + 700);
    let fee = a.payments().await.unwrap()[0].fee;
    let a_channel = a.channels().await.unwrap().remove(0);
    assert_eq!(a_channel.id, ca_a);
    assert_eq!(a_channel.balance, DEPOSIT - 700 - fee);

    // The hub's admin API, over TLS too, holds the same balance for B's channel.
    let home = n.net.hub.home();
    let admin_addr = std::fs::read_to_string(home.join("admin.addr")).unwrap();
    let token = std::fs::read_to_string(home.join("admin.token")).unwrap();
    let ca_file = n.dirs[0].join("hub-ca.crt");
    let tls = sluice_home::tls::client_config(Some(&ca_file)).unwrap();
    let admin = sluice_home::tls::http_client_builder(tls).build().unwrap();
    let view: serde_json::Value = admin
        .get(format!(
            "https://{}/api/v1/channels/{cb}",
            admin_addr.trim()
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("the admin API over TLS")
        .json()
        .await
        .unwrap();
    assert_eq!(view["balance_client"], DEPOSIT + 700, "{view}");

    // A wallet without the CA does not get a session.
    let stranger = wallet(&n, 2, None).await;
    let err = stranger
        .connect()
        .await
        .expect_err("an untrusted hub certificate must be refused");
    assert!(matches!(err, WalletError::HubUnreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("ca_file") && text.contains("wss://"),
        "{text}"
    );
}
