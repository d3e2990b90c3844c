//! Against real `sluice-node` and `sluice-hub` processes: open, pay and receive, close
//! cooperatively. The harness builds or finds the daemon binaries and fails loudly otherwise.

mod support;

use sluice_client::store::PaymentStatus;
use std::time::Duration;
use support::net::{self, DEPOSIT};

#[tokio::test(flavor = "multi_thread")]
async fn open_pay_receive_and_close_cooperatively() {
    let n = net::start(2, false).await;
    let (a, ca, b, _cb) = net::pair(&n).await;
    let inv = b
        .create_invoice(500, "lunch", Duration::from_secs(600))
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
    let b_info = b.channels().await.unwrap().remove(0);
    assert_eq!(b_info.balance, DEPOSIT + 500);
    let (paid_a, _) = a.close(&ca).await.unwrap();
    let fee = a.payments().await.unwrap()[0].fee;
    assert_eq!(paid_a, DEPOSIT - 500 - fee);
}
