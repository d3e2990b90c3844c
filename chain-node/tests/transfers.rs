//! Transfers end to end, and every kind of bad input answered with a JSON-RPC error that leaves
//! the state untouched.

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_protocol::encoding::{Canonical, Writer};
use sluice_protocol::rpc::{code, Event};
use sluice_protocol::{hex, Address, Hash32, Transaction, TxKind, MAX_AMOUNT};
use std::time::Duration;

#[tokio::test]
async fn transfers_move_funds_pay_fees_and_emit_events() {
    let node = Node::start(Opts::default());
    let (a, b) = (key(1), key(2));
    let validator = node.validator();
    let info = node.exec(&transfer(&a, 0, b.address(), 500, 3)).await;
    assert!(info.receipt.success, "{info:?}");
    assert_eq!((info.from, info.kind.as_str()), (a.address(), "transfer"));
    let second = node.exec(&transfer(&a, 1, b.address(), 250, 2)).await;
    assert!(second.receipt.success);
    assert_eq!(
        node.account(&a.address()).await.balance,
        1_000_000 - 750 - 5
    );
    assert_eq!(node.account(&a.address()).await.nonce, 2);
    assert_eq!(node.account(&b.address()).await.balance, 1_000_000 + 750);
    assert_eq!(node.account(&validator).await.balance, 5);

    let h = node.height().await;
    let events: Vec<Event> = node
        .ok(
            "events",
            json!({"from_height": 0, "to_height": h, "filter": {"participant": b.address()}}),
        )
        .await;
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.event.name() == "Transfer" && e.participants.contains(&a.address())));
    let block: Value = node.ok("block", json!({"height": info.height})).await;
    assert!(block["txs"]
        .as_array()
        .expect("txs")
        .iter()
        .any(|t| t == &json!(info.id)));
    let none: Value = node.ok("block", json!({"height": h + 1000})).await;
    assert!(none.is_null());

    // A batch of pre-signed transfers, admitted together and all committed.
    let txs: Vec<String> = (2..52)
        .map(|n| hex::encode(&transfer(&a, n, b.address(), 1, 1).to_bytes()))
        .collect();
    let outcomes: Vec<Value> = node.ok("submit_txs", json!({"txs": txs})).await;
    assert!(
        outcomes.iter().all(|o| o.get("id").is_some()),
        "{outcomes:?}"
    );
    let last: sluice_protocol::Hash32 =
        serde_json::from_value(outcomes[49]["id"].clone()).expect("id");
    assert!(node.wait_tx(&last).await.receipt.success);
    assert_eq!(node.account(&a.address()).await.nonce, 52);
}

/// A transfer with an amount field above `MAX_AMOUNT`, encoded by hand (the encoder would not
/// produce one from a valid value, but an attacker can).
fn overflowing_amount_tx(from: &sluice_protocol::Keypair) -> String {
    let mut w = Writer::new();
    w.u64(CHAIN)
        .address(&from.address())
        .u64(0)
        .u64(1)
        .u8(0)
        .address(&key(2).address())
        .u64(u64::MAX);
    let bytes = w.into_bytes();
    let sig = from.sign(sluice_protocol::Tag::Tx, &bytes);
    let mut all = bytes;
    all.extend_from_slice(&sig.0);
    hex::encode(&all)
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_leaves_state_untouched() {
    let node = Node::start(Opts {
        env: vec![
            ("SLUICE_NODE_MAX_REQUEST_BYTES", "65536".into()),
            ("SLUICE_NODE_MAX_BATCH_LEN", "5".into()),
            ("SLUICE_NODE_MAX_SUBSCRIPTIONS_PER_CONN", "2".into()),
        ],
        ..Opts::default()
    });
    let a = key(1);
    // Settle one transfer so that a replay has something to replay.
    let done = transfer(&a, 0, key(2).address(), 10, 1);
    node.exec(&done).await;
    let before: Value = node.ok("chain_info", json!({})).await;
    let acct_before = node.account(&a.address()).await;

    // Malformed JSON, wrong envelope, unknown method.
    assert_eq!(error_of(&node.raw("{not json").await).0, code::PARSE_ERROR);
    assert_eq!(error_of(&node.raw("[]").await).0, code::INVALID_REQUEST);
    assert_eq!(
        error_of(
            &node
                .raw(r#"{"jsonrpc":"1.0","id":1,"method":"chain_info"}"#)
                .await
        )
        .0,
        code::INVALID_REQUEST
    );
    assert_eq!(
        error_of(&node.raw(r#"{"jsonrpc":"2.0","id":1}"#).await).0,
        code::INVALID_REQUEST
    );
    assert_eq!(
        node.err("no_such_method", json!({})).await.0,
        code::METHOD_NOT_FOUND
    );
    // Missing or bad params, bad hex.
    assert_eq!(node.err("account", json!({})).await.0, code::INVALID_PARAMS);
    assert_eq!(
        node.err("account", json!({"address": "zz"})).await.0,
        code::INVALID_PARAMS
    );
    assert_eq!(
        node.err("tx", json!({"id": "abcd"})).await.0,
        code::INVALID_PARAMS
    );
    let (c, m) = node.err("submit_tx", json!({"tx": "xyz"})).await;
    assert_eq!(c, code::INVALID_PARAMS, "{m}");
    assert!(m.contains("hex"), "{m}");
    assert_eq!(
        node.err("submit_tx", json!({"tx": "00ff"})).await.0,
        code::TX_REJECTED
    );
    assert_eq!(
        node.err("events", json!({"from_height": 5, "to_height": 1}))
            .await
            .0,
        code::INVALID_PARAMS
    );
    assert_eq!(
        node.err("subscribe_heads", json!({})).await.0,
        code::INVALID_REQUEST
    );

    // Wrong chain id (validly signed for chain 8).
    let mut other = Transaction {
        chain_id: CHAIN + 1,
        from: a.address(),
        nonce: 1,
        fee: 1,
        kind: TxKind::Transfer {
            to: key(2).address(),
            amount: 1,
        },
    };
    let (c, m) = node
        .submit(&other.clone().sign(&a))
        .await
        .expect_err("wrong chain");
    assert_eq!(c, code::TX_REJECTED);
    assert!(m.contains("chain id"), "{m}");
    // Bad signature: signed by someone else, and a signature lifted from another transaction.
    other.chain_id = CHAIN;
    let mut forged = other.clone().sign(&key(3));
    assert!(node
        .submit(&forged)
        .await
        .expect_err("forged")
        .1
        .contains("signature"));
    forged.sig = done.sig;
    assert!(node
        .submit(&forged)
        .await
        .expect_err("reused sig")
        .1
        .contains("signature"));
    // Nonce replay: the committed transaction again, and a new one with the used nonce.
    let (c, m) = node.submit(&done).await.expect_err("replay");
    assert_eq!(c, code::TX_REJECTED);
    assert!(m.contains("nonce 0 already used"), "{m}");
    // A stale copy is refused by its nonce before its signature costs a check.
    let mut forged = done.clone();
    forged.sig.0[63] ^= 1;
    let (_, m) = node.submit(&forged).await.expect_err("stale forgery");
    assert!(m.contains("nonce 0 already used"), "{m}");
    assert!(node
        .submit(&transfer(&a, 0, key(3).address(), 5, 1))
        .await
        .is_err());
    // Too far ahead, fee too low, overflowing amounts, more than the balance.
    assert!(node
        .submit(&transfer(&a, 1000, key(3).address(), 5, 1))
        .await
        .expect_err("gap")
        .1
        .contains("too far ahead"));
    assert!(node
        .submit(&transfer(&a, 1, key(3).address(), 5, 0))
        .await
        .expect_err("fee")
        .1
        .contains("fee"));
    let (c, m) = node
        .err("submit_tx", json!({"tx": overflowing_amount_tx(&a)}))
        .await;
    assert_eq!(c, code::TX_REJECTED);
    assert!(m.contains("exceeds the maximum"), "{m}");
    assert!(node
        .submit(&transfer(&a, 1, key(3).address(), MAX_AMOUNT, 1))
        .await
        .expect_err("cost")
        .1
        .contains("overflows"));
    assert!(node
        .submit(&transfer(&a, 1, key(3).address(), 2_000_000, 1))
        .await
        .expect_err("balance")
        .1
        .contains("insufficient"));
    assert!(node
        .submit(&transfer(&a, 1, Address([0xff; 32]), 5, 1))
        .await
        .expect_err("bad to")
        .1
        .contains("valid account key"));

    // Oversized request body, over-long batch, too many transactions in submit_txs.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"submit_tx","params":{{"tx":"{}"}}}}"#,
        "00".repeat(40_000)
    );
    assert_eq!(error_of(&node.raw(huge).await).0, code::LIMIT_EXCEEDED);
    let batch: Vec<Value> = (0..6)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"chain_info"}))
        .collect();
    assert_eq!(
        error_of(&node.raw(Value::Array(batch).to_string()).await).0,
        code::LIMIT_EXCEEDED
    );
    let ok_batch: Vec<Value> = (0..3)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"chain_info"}))
        .collect();
    assert_eq!(
        node.raw(Value::Array(ok_batch).to_string())
            .await
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // Subscriptions past the per-connection limit, an oversized WebSocket message.
    let mut ws = node.ws().await;
    let first = ws.call(1, "subscribe_heads", json!({})).await["result"].clone();
    assert!(first.is_u64(), "{first}");
    assert!(ws
        .call(2, "subscribe_events", json!({"from_height": 0}))
        .await
        .get("result")
        .is_some());
    assert_eq!(
        error_of(&ws.call(3, "subscribe_heads", json!({})).await).0,
        code::LIMIT_EXCEEDED
    );
    assert_eq!(
        error_of(
            &ws.call(4, "subscribe_events", json!({"from_height": "x"}))
                .await
        )
        .0,
        code::INVALID_PARAMS
    );
    ws.send(
        json!({"jsonrpc":"2.0","id":5,"method":"chain_info","params":{"pad":"a".repeat(70_000)}}),
    )
    .await;
    let mut got = None;
    while let Some(m) = ws.next(Duration::from_secs(5)).await {
        if m.get("error").is_some() {
            got = Some(m);
            break;
        }
    }
    assert_eq!(
        error_of(&got.expect("error for oversized message")).0,
        code::LIMIT_EXCEEDED
    );
    assert_eq!(
        error_of(&ws.call(6, "nope", json!({})).await).0,
        code::METHOD_NOT_FOUND
    );
    assert_eq!(
        ws.call(7, "unsubscribe", json!({"subscription": first}))
            .await["result"],
        json!(true)
    );
    assert_eq!(
        ws.call(8, "unsubscribe", json!({"subscription": first}))
            .await["result"],
        json!(false)
    );
    assert!(ws.call(9, "subscribe_heads", json!({})).await["result"].is_u64());

    // Nothing above changed the state; the node still works.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after: Value = node.ok("chain_info", json!({})).await;
    assert_eq!(before["state_root"], after["state_root"]);
    assert_eq!(before["height"], after["height"]);
    assert_eq!(node.account(&a.address()).await, acct_before);
    assert!(
        node.exec(&transfer(&a, 1, key(2).address(), 1, 1))
            .await
            .receipt
            .success
    );
    assert_eq!(node.health().await["status"], "ok");
    let metrics = node
        .http
        .get(format!("{}/metrics", node.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("sluice_node_txs_rejected_total"));
}

/// F4: hundreds of accounts fill the pool with transactions one nonce ahead (they can never
/// execute, and pay a high fee to look attractive); a minimum-fee `RegisterSecret` from a fresh
/// account is still admitted, evicting one of them, and included at once.
#[tokio::test]
async fn a_pool_stuffed_with_gapped_transactions_still_includes_a_minimum_fee_claim() {
    const STUFFERS: u32 = 400;
    let node = Node::start(Opts {
        funded: (1..=STUFFERS + 1)
            .map(|n| (key(n).address(), 1_000_000))
            .collect(),
        env: vec![("SLUICE_NODE_MEMPOOL_MAX_TXS", "1000".into())],
        ..Opts::default()
    });
    let mut refused = 0;
    for n in 1..=STUFFERS {
        for nonce in 1..=3 {
            let t = Transaction {
                chain_id: CHAIN,
                from: key(n).address(),
                nonce,
                fee: 1_000,
                kind: TxKind::Transfer {
                    to: key(1).address(),
                    amount: 1,
                },
            };
            if node.submit(&t.sign(&key(n))).await.is_err() {
                refused += 1;
            }
        }
    }
    assert_eq!(
        refused,
        3 * STUFFERS - 1_000,
        "the pool is full of gapped transactions"
    );
    let before = node.height().await;
    let claim = Transaction {
        chain_id: CHAIN,
        from: key(STUFFERS + 1).address(),
        nonce: 0,
        fee: 1,
        kind: TxKind::RegisterSecret {
            secret: Hash32([7; 32]),
        },
    };
    let id = node
        .submit(&claim.sign(&key(STUFFERS + 1)))
        .await
        .expect("admitted");
    let info = node.wait_tx(&id).await;
    assert!(info.receipt.success, "{:?}", info.receipt);
    assert!(
        info.height <= before + 2,
        "included at once: {} after {before}",
        info.height
    );
}

/// F20: hundreds of sockets that send nothing, or half a request, are closed once the header
/// deadline passes, and a fresh client is served meanwhile and afterwards.
#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_while_fresh_clients_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = Node::start(Opts {
        env: vec![("SLUICE_NODE_HEADER_READ_TIMEOUT_MS", "500".into())],
        ..Opts::default()
    });
    let hostport = node
        .addr
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    assert!(
        node.height().await < u64::MAX,
        "served while 300 sockets idle"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for (i, s) in idle.iter_mut().enumerate() {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        // Closed by the node: end of stream, a reset, or a 408 answer followed by the close.
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => assert!(
                String::from_utf8_lossy(&buf[..n]).contains("408"),
                "unexpected answer to a half-sent request"
            ),
            Err(_) => panic!("idle socket {i} is still open past the header deadline"),
        }
    }
    assert!(node.height().await < u64::MAX, "and served afterwards");
}
