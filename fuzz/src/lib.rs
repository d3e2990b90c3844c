//! The checks behind every fuzz target: one `pub fn <target>(data: &[u8])` per decoder that reads
//! bytes from outside (peers, clients, wallets, people). Each feeds `data` to the same decoder
//! the product uses and, when it decodes, asserts the round trip: canonical encodings must give
//! back the very input bytes (one value, one encoding), JSON must decode to the same value
//! again. A refused input is fine; a panic or a broken round trip is a bug.
//!
//! The libFuzzer binaries (`fuzz_targets/`) and the workspace's replay of the committed corpora
//! (`tests/tests/fuzz_corpora.rs`, which includes this file by path) both call these, so this
//! file depends on no fuzzing crate.

use std::collections::HashMap;
use std::fmt::Debug;

use bytes::Bytes;
use malachitebft_codec::Codec;
use malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{PolkaCertificate, ValidatorProof};
use malachitebft_engine::util::streaming::{StreamContent, StreamMessage};
use malachitebft_signing::Verifier;
use malachitebft_sync as sync;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sluice_hub::admin::views::PageQuery;
use sluice_hub::store::PaymentCursor;
use sluice_node::consensus::codec::WireCodec;
use sluice_node::consensus::context::{BlockPart, SluiceContext, WireBlock};
use sluice_node::consensus::signing::SchnorrVerifier;
use sluice_node::rpc::jsonrpc::{self, Parsed};
use sluice_node::rpc::methods;
use sluice_node::sigverify::DecodedTx;
use sluice_protocol::encoding::{Canonical, MAX_ENCODED_LEN};
use sluice_protocol::invoice::{Invoice, SignedInvoice, URI_SCHEME};
use sluice_protocol::onchain::ChannelRecord;
use sluice_protocol::routing::{RoutingTerms, TermsCaps};
use sluice_protocol::rpc::{
    Account, AccountParams, Block, ChainInfo, ChannelParams, Event, EventsParams, HeightParams,
    IdParams, Notification, RpcError, SecretInfo, SecretParams, SubmitOutcome, SubmitTxParams,
    SubmitTxsParams, Submitted, SubscribeEventsParams, TxInfo, UnsubscribeParams,
};
use sluice_protocol::tx::TxKind;
use sluice_protocol::wire::hub::{welcome_bytes, SessionMsg, AUTH_ACTION, MAX_SESSION_FRAME};
use sluice_protocol::wire::tower::{
    AppointmentRequest, Receipt, RegisterRequest, TowerError, UserAuth, MAX_TOWER_BODY,
};
use sluice_protocol::{
    check_proposal, hex, text, wire, Address, ChannelState, CoSigned, Context, Hash32, Lock, Party,
    Position, Signature, SignedTx, Snapshot, Tag, Transaction, MAX_AMOUNT,
};

/// A target's check: feeds one input to its decoder, panics on a bug.
pub type Check = fn(&[u8]);

/// Every target, by name, for the replay of the corpora.
pub const TARGETS: &[(&str, Check)] = &[
    ("signed_tx", signed_tx),
    ("canonical", canonical),
    ("invoice_text", invoice_text),
    ("address_text", address_text),
    ("session_msg", session_msg),
    ("tower_body", tower_body),
    ("rpc_request", rpc_request),
    ("rpc_response", rpc_response),
    ("consensus_msg", consensus_msg),
    ("sync_block", sync_block),
    ("admin_query", admin_query),
];

/// A chain id for checks that need one; any value does, a signature over fuzz input never
/// verifies.
const CHAIN: u64 = 1;

/// Asserts that `v` survives JSON: encode, decode, same value.
fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    let s = serde_json::to_string(v).expect("our types always serialize");
    let back: T = serde_json::from_str(&s).expect("our own JSON must parse");
    assert_eq!(&back, v, "JSON round trip changed the value: {s}");
}

/// Decodes one canonical `T`; if it decodes, it must re-encode to exactly `bytes` and survive
/// JSON (the form logs and the RPC show).
fn canonical_round_trip<T>(bytes: &[u8]) -> Option<T>
where
    T: Canonical + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let v = T::from_bytes(bytes).ok()?;
    assert_eq!(v.to_bytes(), bytes, "canonical re-encoding differs: {v:?}");
    json_round_trip(&v);
    Some(v)
}

/// A transaction as it reaches the node (`submit_tx`, relay, proposals): decoded by the
/// mempool's `DecodedTx`, then its signature checked.
pub fn signed_tx(data: &[u8]) {
    let decoded = DecodedTx::decode(data.to_vec(), MAX_ENCODED_LEN);
    let Some(tx) = canonical_round_trip::<SignedTx>(data) else {
        assert!(decoded.is_err(), "the node accepts what the codec refuses");
        return;
    };
    let decoded = decoded.expect("the node refuses what the codec accepts");
    assert_eq!(decoded.tx, tx);
    assert_eq!(decoded.id, tx.id());
    // The unsigned part is what the id covers: canonical on its own.
    let unsigned = &data[..data.len() - 64];
    assert_eq!(
        canonical_round_trip::<Transaction>(unsigned),
        Some(tx.tx.clone())
    );
    let _ = tx.tx.total_cost();
    let _ = tx.tx.kind.name();
    assert_eq!(decoded.verify().is_ok(), tx.verify().is_ok());
}

/// Every other canonical object, the first byte choosing which: the pieces of transactions,
/// channel states and invoices that arrive inside bigger messages.
pub fn canonical(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => {
            canonical_round_trip::<Lock>(rest);
        }
        1 => {
            if let Some(s) = canonical_round_trip::<ChannelState>(rest) {
                let _ = s.balances(0, 0);
                let _ = s.balances(MAX_AMOUNT, MAX_AMOUNT);
                let _ = s.signing_hash();
            }
        }
        2 => {
            if let Some(c) = canonical_round_trip::<CoSigned>(rest) {
                let id = c.state.channel_id;
                let _ = c.verify(c.state.chain_id, &id, &Address([2; 32]), &Address([3; 32]));
            }
        }
        3 => {
            if let Some(s) = canonical_round_trip::<Snapshot>(rest) {
                let _ = s.state().check_locks(&s.locks);
                let id = s.state().channel_id;
                let _ = s.verify(
                    s.state().chain_id,
                    &id,
                    &Address([2; 32]),
                    &Address([3; 32]),
                );
            }
        }
        4 => {
            canonical_round_trip::<sluice_protocol::Change>(rest);
        }
        5 => {
            if let Some(k) = canonical_round_trip::<TxKind>(rest) {
                let _ = k.outflow();
            }
        }
        6 => {
            canonical_round_trip::<Transaction>(rest);
        }
        7 => {
            canonical_round_trip::<Invoice>(rest);
        }
        _ => {
            if let Some(inv) = canonical_round_trip::<SignedInvoice>(rest) {
                let _ = inv.verify();
                // Whatever decodes has a string form that reads back the same.
                if let Ok(s) = inv.encode_string() {
                    assert_eq!(SignedInvoice::parse_unverified(&s), Ok(inv));
                }
            }
        }
    }
}

/// What `SignedInvoice::parse` reads after the `sluice:` scheme, if any.
fn without_scheme(s: &str) -> &str {
    match s.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(URI_SCHEME) => rest,
        _ => s,
    }
}

/// An invoice string or payment URI as a person pastes it or a QR code gives it.
pub fn invoice_text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let verified = SignedInvoice::parse(s);
    let Ok(inv) = SignedInvoice::parse_unverified(s) else {
        assert!(verified.is_err());
        return;
    };
    if let Ok(v) = &verified {
        assert_eq!(v, &inv);
    }
    // One invoice, one string (in either case).
    let text = inv.encode_string().expect("a parsed invoice encodes");
    assert_eq!(text, without_scheme(s).to_ascii_lowercase());
    let qr = inv.to_qr_uri().expect("a parsed invoice has a URI");
    assert_eq!(SignedInvoice::parse_unverified(&qr).as_ref(), Ok(&inv));
    json_round_trip(&inv);
    let _ = inv.check_payable(CHAIN, &inv.invoice.hub, 0);
}

/// Addresses and the other fixed-size values as text: `sl1…` (people, command line) and hex
/// (every JSON wire, URL paths).
pub fn address_text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let lower = s.to_ascii_lowercase();
    if let Ok(a) = Address::parse_text(s) {
        assert_eq!(a.to_text(), lower);
    }
    for hrp in [text::ADDRESS_HRP, sluice_protocol::invoice::INVOICE_HRP] {
        if let Ok(bytes) = text::decode(hrp, s, text::MAX_TEXT_LEN) {
            assert_eq!(text::encode(hrp, &bytes).as_deref(), Ok(lower.as_str()));
        }
    }
    match sluice_home::cli::parse_address_arg(s) {
        Ok(a) => assert_eq!(a.to_text(), s.trim().to_ascii_lowercase()),
        Err(sluice_home::cli::AddressArgError::Hex) => {
            assert!(s.trim().parse::<Address>().is_ok())
        }
        Err(_) => {}
    }
    if let Ok(a) = s.parse::<Address>() {
        assert_eq!(a.to_string(), lower);
        json_round_trip(&a);
    }
    if let Ok(h) = s.parse::<Hash32>() {
        assert_eq!(h.to_string(), lower);
    }
    if let Ok(sig) = s.parse::<Signature>() {
        assert_eq!(sig.to_string(), lower);
    }
    if let Ok(bytes) = hex::decode(s) {
        assert_eq!(hex::encode(&bytes), lower);
    }
}

/// A frame of the hub session, as the hub reads a client's and a wallet reads the hub's, then
/// the first checks either side runs on it before any state is touched.
pub fn session_msg(data: &[u8]) {
    let Ok(msg) = wire::decode::<SessionMsg>(data, MAX_SESSION_FRAME) else {
        return;
    };
    // Defaults filled in can make our frame longer than the input: no size limit here.
    let again = wire::decode::<SessionMsg>(wire::encode(&msg).as_bytes(), usize::MAX);
    assert_eq!(again.as_ref(), Ok(&msg));
    let hub = Address([9; 32]);
    match &msg {
        SessionMsg::Auth {
            address,
            sig,
            challenge,
        } => {
            let bytes = wire::auth_bytes(
                CHAIN,
                &hub,
                AUTH_ACTION,
                challenge,
                address,
                &Hash32::default(),
            );
            let _ = address.verify(Tag::Auth, &bytes, sig);
        }
        SessionMsg::Welcome { terms, sig, .. } => {
            let _ = hub.verify(
                Tag::Auth,
                &welcome_bytes(CHAIN, &hub, &Hash32::default(), &hub),
                sig,
            );
            routing_checks(terms);
        }
        SessionMsg::Sync { snapshot, .. } => {
            let s = snapshot.state();
            let _ = s.check_locks(&snapshot.locks);
            let _ = snapshot.verify(s.chain_id, &s.channel_id, &hub, &Address([2; 32]));
        }
        SessionMsg::Propose(p) => {
            if let Some(inv) = &p.invoice {
                let _ = SignedInvoice::parse(inv);
            }
            let _ = hub.verify_hash(&p.state.signing_hash(), &p.sig);
            // The update rules the receiver runs once the signature checked, from a fresh
            // channel and from one with room in both directions.
            let opening = Position::opening(ChannelState::opening(p.state.chain_id, p.channel_id));
            let ctx = |deposit| Context {
                deposit_a: deposit,
                deposit_b: deposit,
                height: 10,
                policy: Default::default(),
            };
            for (proposer, deposit) in
                [(Party::A, 0), (Party::B, 1_000_000), (Party::A, MAX_AMOUNT)]
            {
                let _ = check_proposal(&opening, &p.change, &p.state, proposer, &ctx(deposit), 0);
            }
        }
        _ => {}
    }
}

/// What a wallet computes from a hub's announced terms.
fn routing_checks(terms: &RoutingTerms) {
    let _ = TermsCaps::default().check(terms);
    for amount in [0, 1, 1_000_000, MAX_AMOUNT] {
        let _ = terms.fee(amount);
        let _ = terms.incoming_amount(amount);
        let lock = Lock {
            direction: sluice_protocol::Direction::AtoB,
            amount,
            hashlock: Hash32::default(),
            expiry: amount,
        };
        let _ = terms.outgoing_expiry(&lock, amount, 5);
    }
    let _ = terms.incoming_expiry(u64::MAX);
}

/// The watchtower's request bodies (`POST /register`, `POST /appointments`, parsed with
/// `serde_json::from_slice` as its API does), its `X-Sluice-Auth` header and `DELETE` path, and
/// the receipts and errors a wallet reads back from a tower.
pub fn tower_body(data: &[u8]) {
    if data.len() > MAX_TOWER_BODY {
        return;
    }
    let tower = Address([7; 32]);
    if let Ok(r) = serde_json::from_slice::<RegisterRequest>(data) {
        json_round_trip(&r);
        let _ = r.auth.verify(CHAIN, &tower, "register", &Hash32::default());
    }
    if let Ok(r) = serde_json::from_slice::<AppointmentRequest>(data) {
        json_round_trip(&r);
        let ap = &r.appointment;
        let _ = ap.verify(CHAIN);
        let _ = r.auth.verify(CHAIN, &tower, "appointment", &ap.digest());
        let _ = sluice_protocol::wire::tower::nonce_time(&r.auth.nonce);
    }
    if let Ok(r) = serde_json::from_slice::<Receipt>(data) {
        json_round_trip(&r);
        let _ = r.verify();
    }
    if let Ok(e) = serde_json::from_slice::<TowerError>(data) {
        json_round_trip(&e);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(a) = serde_json::from_str::<UserAuth>(s) {
            json_round_trip(&a);
        }
        if let Ok(id) = s.parse::<Hash32>() {
            assert_eq!(id.to_string(), s.to_ascii_lowercase());
        }
    }
}

/// Parses `p` as the params of one method the way the node does; a success must survive JSON.
fn params_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(p: &Value) -> Option<T> {
    let t: T = methods::params(p.clone()).ok()?;
    json_round_trip(&t);
    Some(t)
}

/// A JSON-RPC body as the node's HTTP and WebSocket endpoints read it: the envelope, then the
/// params of every method (each tried on every call, so any body reaches every parser), then the
/// transactions `submit_tx` and `submit_txs` carry.
pub fn rpc_request(data: &[u8]) {
    let max_batch = sluice_node::config::NodeConfig::default().max_batch_len;
    let (batch, calls) = match jsonrpc::parse(data, max_batch) {
        Parsed::Invalid(resp) => {
            assert!(
                resp["error"]["code"].is_i64(),
                "not an error answer: {resp}"
            );
            return;
        }
        Parsed::Single(c) => (false, vec![c]),
        Parsed::Batch(cs) => {
            assert!(!cs.is_empty() && cs.len() <= max_batch);
            (true, cs)
        }
    };
    let mut answers = Vec::new();
    for c in calls {
        let call = match c {
            Ok(call) => call,
            Err(resp) => {
                assert!(
                    resp["error"]["code"].is_i64(),
                    "not an error answer: {resp}"
                );
                answers.push(Some(resp));
                continue;
            }
        };
        let p = &call.params;
        params_round_trip::<AccountParams>(p);
        params_round_trip::<IdParams>(p);
        params_round_trip::<HeightParams>(p);
        params_round_trip::<ChannelParams>(p);
        params_round_trip::<SecretParams>(p);
        params_round_trip::<EventsParams>(p);
        params_round_trip::<SubscribeEventsParams>(p);
        params_round_trip::<UnsubscribeParams>(p);
        let mut txs = Vec::new();
        if let Some(t) = params_round_trip::<SubmitTxParams>(p) {
            txs.push(t.tx);
        }
        if let Some(t) = params_round_trip::<SubmitTxsParams>(p) {
            txs.extend(t.txs);
        }
        for t in txs {
            if let Ok(bytes) = hex::decode(&t) {
                let _ = DecodedTx::decode(bytes, MAX_ENCODED_LEN).map(|d| d.verify());
            }
        }
        answers.push(call.id.map(|id| jsonrpc::ok_response(id, Value::Null)));
    }
    if let Some(body) = jsonrpc::assemble(batch, answers) {
        let v: Value = serde_json::from_str(&body).expect("our answer is JSON");
        assert_eq!(v.is_array(), batch);
    }
}

/// The envelope of a node's answer as `sluice_chain_client` reads it.
#[derive(serde::Deserialize)]
struct Response<R> {
    result: Option<R>,
    #[allow(dead_code)]
    error: Option<RpcError>,
}

/// Reads `data` as an answer carrying a `T`; a result must survive JSON.
fn response_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Ok(Response {
        result: Some(v), ..
    }) = serde_json::from_slice::<Response<T>>(data)
    {
        json_round_trip(&v);
    }
}

/// A node's answers and notifications, as hubs, towers and wallets read them from a node they
/// do not control.
pub fn rpc_response(data: &[u8]) {
    response_round_trip::<ChainInfo>(data);
    response_round_trip::<Account>(data);
    response_round_trip::<Submitted>(data);
    response_round_trip::<Vec<SubmitOutcome>>(data);
    response_round_trip::<Option<TxInfo>>(data);
    response_round_trip::<Option<Block>>(data);
    response_round_trip::<Option<ChannelRecord>>(data);
    response_round_trip::<Option<SecretInfo>>(data);
    response_round_trip::<Vec<Event>>(data);
    // Subscription notifications: `params` of `{"method": "heads" | "events", "params": …}`.
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let params = v.get("params").cloned().unwrap_or(Value::Null);
        if let Ok(n) = serde_json::from_value::<Notification<sluice_protocol::rpc::BlockHeader>>(
            params.clone(),
        ) {
            json_round_trip(&n);
        }
        if let Ok(n) = serde_json::from_value::<Notification<Event>>(params) {
            json_round_trip(&n);
            let _ = n.result.event.name();
            let _ = n.result.event.channel_id();
        }
    }
}

/// Runs an already-ready verifier future (the Schnorr verifier never waits).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// Decodes one engine message with the node's codec; a success must re-encode to the input.
fn codec_round_trip<T>(codec: &WireCodec, data: &[u8]) -> Option<T>
where
    WireCodec: Codec<T>,
    <WireCodec as Codec<T>>::Error: Debug,
{
    let v: T = codec.decode(Bytes::copy_from_slice(data)).ok()?;
    let again = codec.encode(&v).expect("a decoded message encodes");
    assert_eq!(&again[..], data, "consensus codec re-encoding differs");
    Some(v)
}

/// The transactions of a proposal part, as the receiver decodes them.
fn part_checks(part: &BlockPart) {
    if let BlockPart::Txs(txs) = part {
        for t in txs {
            let _ = SignedTx::from_bytes(t);
        }
    }
}

/// A consensus or sync message from a peer, the first byte choosing its kind, decoded with the
/// node's `WireCodec` (the one the engine's network uses), then its signatures checked.
pub fn consensus_msg(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let codec = WireCodec {
        max_bytes: sluice_node::config::NodeConfig::default().p2p_max_message_bytes,
        junk_streams: false,
    };
    let verifier = SchnorrVerifier { chain_id: CHAIN };
    match which % 10 {
        0 => {
            if let Some(part) = codec_round_trip::<BlockPart>(&codec, rest) {
                part_checks(&part);
            }
        }
        1 => match codec_round_trip::<SignedConsensusMsg<SluiceContext>>(&codec, rest) {
            Some(SignedConsensusMsg::Vote(v)) => {
                let _ =
                    ready(verifier.verify_signed_vote(&v.message, &v.signature, &v.message.voter));
            }
            Some(SignedConsensusMsg::Proposal(p)) => {
                let _ = ready(verifier.verify_signed_proposal(
                    &p.message,
                    &p.signature,
                    &p.message.proposer,
                ));
            }
            None => {}
        },
        2 => {
            if let Some(LivenessMsg::Vote(v)) =
                codec_round_trip::<LivenessMsg<SluiceContext>>(&codec, rest)
            {
                let _ =
                    ready(verifier.verify_signed_vote(&v.message, &v.signature, &v.message.voter));
            }
        }
        3 => {
            codec_round_trip::<ProposedValue<SluiceContext>>(&codec, rest);
        }
        4 => {
            codec_round_trip::<PolkaCertificate<SluiceContext>>(&codec, rest);
        }
        5 => {
            codec_round_trip::<sync::Status<SluiceContext>>(&codec, rest);
        }
        6 => {
            codec_round_trip::<sync::Request<SluiceContext>>(&codec, rest);
        }
        7 => {
            if let Some(sync::Response::ValueResponse(r)) =
                codec_round_trip::<sync::Response<SluiceContext>>(&codec, rest)
            {
                for v in &r.values {
                    sync_block(&v.value_bytes);
                }
            }
        }
        8 => {
            if let Some(m) = codec_round_trip::<StreamMessage<BlockPart>>(&codec, rest) {
                if let StreamContent::Data(part) = &m.content {
                    part_checks(part);
                }
            }
        }
        _ => {
            if let Some(p) = codec_round_trip::<ValidatorProof<SluiceContext>>(&codec, rest) {
                let _ = ready(verifier.verify_validator_proof(&p));
            }
        }
    }
}

/// A whole block from a syncing peer (the value bytes of a sync response), as the node decodes
/// it before re-executing it.
pub fn sync_block(data: &[u8]) {
    let Ok(block) = borsh::from_slice::<WireBlock>(data) else {
        return;
    };
    let again = borsh::to_vec(&block).expect("a decoded block encodes");
    assert_eq!(again, data, "sync block re-encoding differs");
    let ids: Vec<Hash32> = block
        .txs
        .iter()
        .filter_map(|t| SignedTx::from_bytes(t).ok().map(|t| t.id()))
        .collect();
    let h = sluice_node::block::make_header(
        block.height,
        Hash32(block.parent),
        Hash32(block.state_root),
        &ids,
        block.time_ms,
        Address(block.proposer),
    );
    assert_eq!(h.hash, sluice_node::block::header_hash(&h));
}

/// A query string of the hub's admin API (`?limit=…&after=…`), parsed as warp parses it, then
/// the page query and cursors its list endpoints read; and a path segment (a channel id or a
/// hashlock).
pub fn admin_query(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = s.parse::<Hash32>() {
        assert_eq!(h.to_string(), s.to_ascii_lowercase());
    }
    let Ok(q) = serde_urlencoded::from_str::<HashMap<String, String>>(s) else {
        return;
    };
    let Ok(page) = PageQuery::parse(&q) else {
        return;
    };
    assert!((1..=sluice_hub::admin::views::MAX_PAGE).contains(&page.limit));
    if let Some(after) = page.after {
        let _ = after.parse::<Hash32>();
        if let Ok(c) = after.parse::<PaymentCursor>() {
            assert_eq!(c.to_string().parse::<PaymentCursor>(), Ok(c));
        }
    }
}
