//! Fixed test vectors: canonical bytes, hashes and signatures for fixed keys. Any change to the
//! encoding, a tag, or the signing scheme breaks these, which is the point: they pin the format
//! other implementations must match. `cargo test -p sluice-protocol --test vectors -- --ignored
//! --nocapture print_vectors` prints fresh values after a deliberate format change.

use serde_json::{json, Value};
use sluice_protocol::channel::{channel_id, locks_root, ChannelState, Direction, Lock};
use sluice_protocol::encoding::Canonical;
use sluice_protocol::hash::{sha256, tagged_hash, Hash32, Tag};
use sluice_protocol::hex;
use sluice_protocol::invoice::Invoice;
use sluice_protocol::keys::{Address, Keypair};
use sluice_protocol::tx::{Transaction, TxKind};

fn key(n: u8) -> Keypair {
    Keypair::from_secret(&[n; 32]).unwrap()
}

fn compute() -> Value {
    let (ka, kb) = (key(1), key(2));
    let (a, b) = (ka.address(), kb.address());
    let tx = Transaction {
        chain_id: 7,
        from: a,
        nonce: 3,
        fee: 10,
        kind: TxKind::Transfer {
            to: b,
            amount: 1_000,
        },
    };
    let stx = tx.clone().sign(&ka);
    let id = channel_id(7, &a, &b, &Hash32([9; 32]));
    let locks = vec![Lock {
        direction: Direction::AtoB,
        amount: 50,
        hashlock: sha256(&[5; 32]),
        expiry: 120,
    }];
    let state = ChannelState {
        chain_id: 7,
        channel_id: id,
        version: 4,
        sent_a: 100,
        sent_b: 20,
        locked_a: 50,
        locked_b: 0,
        locks_root: locks_root(&locks),
        is_final: false,
        withdrawn_a: 0,
        withdrawn_b: 5,
    };
    let invoice = Invoice {
        chain_id: 7,
        hub: b,
        payee: a,
        amount: 500,
        hashlock: sha256(&[5; 32]),
        expires_at: 1_900_000_000,
        memo: "tea".into(),
    }
    .sign(&ka)
    .unwrap();
    json!({
        "address_1": a.to_string(),
        "address_2": b.to_string(),
        "address_1_text": a.to_text(),
        "address_2_text": b.to_text(),
        "tagged_hash_tx_abc": tagged_hash(Tag::Tx, b"abc").to_string(),
        "tagged_hash_state_abc": tagged_hash(Tag::State, b"abc").to_string(),
        "tagged_hash_auth_abc": tagged_hash(Tag::Auth, b"abc").to_string(),
        "transfer_bytes": hex::encode(&tx.to_bytes()),
        "transfer_id": tx.id().to_string(),
        "transfer_sig": stx.sig.to_string(),
        "channel_id": id.to_string(),
        "locks_root": locks_root(&locks).to_string(),
        "empty_locks_root": locks_root(&[]).to_string(),
        "state_bytes": hex::encode(&state.to_bytes()),
        "state_hash": state.signing_hash().to_string(),
        "state_sig_a": state.sign(&ka).to_string(),
        "invoice": invoice.encode_string().unwrap(),
        "invoice_uri": invoice.to_uri().unwrap(),
    })
}

#[test]
fn vectors_match_the_committed_file() {
    let expected: Value = serde_json::from_str(include_str!("vectors.json")).unwrap();
    let got = compute();
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&got[k], v, "vector {k} changed");
    }
    assert_eq!(
        expected.as_object().unwrap().len(),
        got.as_object().unwrap().len()
    );
}

#[test]
fn committed_signatures_verify() {
    let v: Value = serde_json::from_str(include_str!("vectors.json")).unwrap();
    let a: sluice_protocol::Address = v["address_1"].as_str().unwrap().parse().unwrap();
    let id: Hash32 = v["transfer_id"].as_str().unwrap().parse().unwrap();
    let sig: sluice_protocol::Signature = v["transfer_sig"].as_str().unwrap().parse().unwrap();
    assert!(a.verify_hash(&id, &sig).is_ok());
    let bytes = hex::decode(v["transfer_bytes"].as_str().unwrap()).unwrap();
    assert_eq!(Transaction::from_bytes(&bytes).unwrap().id(), id);
}

/// Every string a person copies, changed in any one character to any other character of the
/// alphabet (or its case flipped), is refused.
#[test]
fn every_single_character_change_of_a_committed_string_is_refused() {
    use sluice_protocol::invoice::SignedInvoice;
    use sluice_protocol::text::CHARSET;
    let v: Value = serde_json::from_str(include_str!("vectors.json")).unwrap();
    type Accepts = fn(&str) -> bool;
    let cases: [(&str, usize, Accepts); 3] = [
        ("address_1_text", 3, |s| Address::parse_text(s).is_ok()),
        ("invoice", 6, |s| SignedInvoice::parse(s).is_ok()),
        ("invoice_uri", 13, |s| SignedInvoice::parse(s).is_ok()),
    ];
    for (name, data_start, accepts) in cases {
        let s = v[name].as_str().unwrap();
        assert!(accepts(s), "{name} itself refused");
        assert!(accepts(&s.to_uppercase()), "{name} upper case refused");
        let mut tried = 0;
        for (i, orig) in s.char_indices().skip(data_start) {
            let flipped = Some(orig.to_ascii_uppercase()).filter(|&u| u != orig);
            let others = CHARSET.chars().filter(|&c| c != orig);
            for c in others.chain(flipped) {
                let mut t = s.to_string();
                t.replace_range(i..i + 1, &c.to_string());
                assert!(!accepts(&t), "{name} changed at {i} to {c:?} accepted");
                tried += 1;
            }
        }
        let letters = s[data_start..]
            .chars()
            .filter(char::is_ascii_alphabetic)
            .count();
        assert_eq!(tried, (s.len() - data_start) * 31 + letters);
    }
}

#[test]
fn committed_address_texts_name_the_committed_keys() {
    let v: Value = serde_json::from_str(include_str!("vectors.json")).unwrap();
    for n in ["1", "2"] {
        let hex: Address = v[format!("address_{n}")].as_str().unwrap().parse().unwrap();
        let text = v[format!("address_{n}_text")].as_str().unwrap();
        assert_eq!(Address::parse_text(text), Ok(hex));
    }
}

#[test]
#[ignore]
fn print_vectors() {
    println!("{}", serde_json::to_string_pretty(&compute()).unwrap());
}
