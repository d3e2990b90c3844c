//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the very checks the
//! libFuzzer targets run (`fuzz/src/lib.rs`, included here by path), so every kept input, each
//! crash once fixed included, is a regression test of `cargo test`.
//!
//! The seeds are real objects, encoded: `cargo test -p sluice-tests --test fuzz_corpora --
//! --ignored write_seed_corpora` writes them again (deterministic keys, so the same files).

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_input_passes_its_target() {
    let mut failed = Vec::new();
    for (name, check) in checks::TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for target {name}");
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| check(&bytes)).is_err() {
                failed.push(f.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "inputs that fail their target: {failed:#?}"
    );
}

/// Every target of the fuzz crate has a replayed corpus, and every corpus a target.
#[test]
fn the_targets_here_are_the_fuzz_crates_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut bins: Vec<String> = std::fs::read_dir(root.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    let mut corpora: Vec<String> = std::fs::read_dir(root.join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut here: Vec<String> = checks::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    bins.sort();
    corpora.sort();
    here.sort();
    assert_eq!(bins, here);
    assert_eq!(corpora, here);
}

mod seeds {
    use bytes::Bytes;
    use malachitebft_codec::Codec;
    use malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
    use malachitebft_core_types::{
        ExtendedCommitCertificate, ExtendedCommitSignature, NilOrVal, PolkaCertificate,
        PolkaSignature, Round, SignedMessage, ValidatorProof, Validity, VoteType,
    };
    use malachitebft_engine::util::streaming::{StreamContent, StreamId, StreamMessage};
    use malachitebft_sync as sync;
    use serde_json::json;
    use sluice_node::consensus::codec::WireCodec;
    use sluice_node::consensus::context::{
        BlockId, BlockInit, BlockPart, BlockValue, ConsensusSig, Height, Proposal, SluiceContext,
        ValidatorAddress, Vote, WireBlock,
    };
    use sluice_node::consensus::signing::{
        parts_body, proposal_body, vote_body, ConsensusTag, SchnorrSigner,
    };
    use sluice_protocol::encoding::Canonical;
    use sluice_protocol::invoice::{Invoice, SignedInvoice, MAX_MEMO_LEN};
    use sluice_protocol::onchain::{ChannelLimits, ChannelRecord, ChannelStatus, EventKind};
    use sluice_protocol::routing::RoutingTerms;
    use sluice_protocol::rpc::{self, method};
    use sluice_protocol::wire::hub::{
        welcome_bytes, ErrorCode, PaymentStatus, Proposal as WireProposal, SessionMsg, AUTH_ACTION,
    };
    use sluice_protocol::wire::tower::{
        stamped_nonce, Appointment, AppointmentRequest, Receipt, RegisterRequest, TowerError,
        UserAuth,
    };
    use sluice_protocol::{
        apply, channel_id, hex, sha256, wire, Change, ChannelState, CoSigned, Context, Direction,
        Hash32, Keypair, Lock, Party, Position, Snapshot, Tag, Transaction, TxKind,
    };

    const CHAIN: u64 = 1;

    pub fn key(n: u8) -> Keypair {
        Keypair::from_secret(&[n; 32]).unwrap()
    }

    /// A channel between key 1 (a) and key 2 (b) a few updates in: a payment sent, one lock
    /// pending each way.
    pub struct Channel {
        pub salt: Hash32,
        pub id: Hash32,
        pub snapshot: Snapshot,
        pub ctx: Context,
    }

    pub fn channel() -> Channel {
        let (a, b) = (key(1), key(2));
        let salt = Hash32([5; 32]);
        let id = channel_id(CHAIN, &a.address(), &b.address(), &salt);
        let ctx = Context {
            deposit_a: 100_000,
            deposit_b: 100_000,
            height: 10,
            policy: Default::default(),
        };
        let mut pos = Position::opening(ChannelState::opening(CHAIN, id));
        let steps = [
            (lock(Direction::AtoB, 500, 1), Party::A),
            (
                Change::Unlock {
                    secret: Hash32([1; 32]),
                },
                Party::B,
            ),
            (lock(Direction::AtoB, 700, 2), Party::A),
            (lock(Direction::BtoA, 300, 3), Party::B),
        ];
        for (change, by) in steps {
            pos = apply(&pos, &change, by, &ctx).unwrap();
        }
        let state = pos.state;
        let snapshot = Snapshot {
            cosigned: CoSigned {
                state,
                sig_a: state.sign(&a),
                sig_b: state.sign(&b),
            },
            locks: pos.locks,
        };
        Channel {
            salt,
            id,
            snapshot,
            ctx,
        }
    }

    pub fn lock(direction: Direction, amount: u64, secret: u8) -> Change {
        Change::AddLock {
            lock: Lock {
                direction,
                amount,
                hashlock: sha256(&[secret; 32]),
                expiry: 100,
            },
        }
    }

    pub fn invoice(memo: &str) -> SignedInvoice {
        let payee = key(3);
        Invoice {
            chain_id: CHAIN,
            hub: key(2).address(),
            payee: payee.address(),
            amount: 1_500,
            hashlock: sha256(&[9; 32]),
            expires_at: 2_000_000_000,
            memo: memo.into(),
        }
        .sign(&payee)
        .unwrap()
    }

    pub fn tx_kinds() -> Vec<TxKind> {
        let c = channel();
        let cosigned = c.snapshot.cosigned;
        let locks = c.snapshot.locks.clone();
        vec![
            TxKind::Transfer {
                to: key(2).address(),
                amount: 10,
            },
            TxKind::OpenChannel {
                counterparty: key(2).address(),
                deposit: 100_000,
                challenge_period: 40,
                salt: c.salt,
            },
            TxKind::Deposit {
                channel_id: c.id,
                amount: 5,
            },
            TxKind::CooperativeClose { cosigned },
            TxKind::Close {
                cosigned,
                locks: locks.clone(),
            },
            TxKind::Challenge { cosigned, locks },
            TxKind::RegisterSecret {
                secret: Hash32([9; 32]),
            },
            TxKind::Settle { channel_id: c.id },
            TxKind::Withdraw { cosigned },
        ]
    }

    pub fn signed_txs() -> Vec<Vec<u8>> {
        tx_kinds()
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                Transaction {
                    chain_id: CHAIN,
                    from: key(1).address(),
                    nonce: i as u64,
                    fee: 1,
                    kind,
                }
                .sign(&key(1))
                .to_bytes()
            })
            .collect()
    }

    fn with_tag(tag: u8, bytes: Vec<u8>) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend(bytes);
        v
    }

    pub fn canonical() -> Vec<Vec<u8>> {
        let c = channel();
        let s = c.snapshot;
        let mut out = vec![
            with_tag(0, s.locks[0].to_bytes()),
            with_tag(1, s.cosigned.state.to_bytes()),
            with_tag(2, s.cosigned.to_bytes()),
            with_tag(3, s.to_bytes()),
            with_tag(3, Snapshot::opening(CHAIN, c.id).to_bytes()),
        ];
        let changes = [
            lock(Direction::AtoB, 1, 4),
            Change::Unlock {
                secret: Hash32([1; 32]),
            },
            Change::RemoveLock {
                hashlock: sha256(&[2; 32]),
            },
            Change::Finalize,
            Change::Bump,
            Change::Withdraw {
                party: Party::B,
                amount: 7,
            },
        ];
        out.extend(changes.iter().map(|ch| with_tag(4, ch.to_bytes())));
        out.extend(tx_kinds().iter().take(3).map(|k| with_tag(5, k.to_bytes())));
        let tx = Transaction::from_bytes(&signed_txs()[0][..signed_txs()[0].len() - 64]).unwrap();
        out.push(with_tag(6, tx.to_bytes()));
        out.push(with_tag(7, invoice("coffee").invoice.to_bytes()));
        out.push(with_tag(8, invoice("coffee").to_bytes()));
        out.push(with_tag(8, invoice("").to_bytes()));
        out
    }

    pub fn invoice_text() -> Vec<Vec<u8>> {
        let inv = invoice("coffee");
        let long = invoice(&"x".repeat(MAX_MEMO_LEN));
        let s = inv.encode_string().unwrap();
        [
            s.clone(),
            s.to_uppercase(),
            inv.to_uri().unwrap(),
            inv.to_qr_uri().unwrap(),
            invoice("").encode_string().unwrap(),
            long.encode_string().unwrap(),
        ]
        .map(String::into_bytes)
        .to_vec()
    }

    pub fn address_text() -> Vec<Vec<u8>> {
        let a = key(1).address();
        [
            a.to_text(),
            a.to_text().to_uppercase(),
            format!("  {}\n", a.to_text()),
            a.to_string(),
            Hash32([0xab; 32]).to_string().to_uppercase(),
            key(1).sign(Tag::Auth, b"x").to_string(),
            invoice("").encode_string().unwrap(),
        ]
        .map(String::into_bytes)
        .to_vec()
    }

    pub fn session_msgs() -> Vec<Vec<u8>> {
        let c = channel();
        let (client, hub) = (key(1), key(2));
        let nonce = Hash32([4; 32]);
        let challenge = Hash32([6; 32]);
        let auth = wire::auth_bytes(
            CHAIN,
            &hub.address(),
            AUTH_ACTION,
            &nonce,
            &client.address(),
            &Hash32::default(),
        );
        let welcome = welcome_bytes(CHAIN, &hub.address(), &challenge, &client.address());
        let pos = Position {
            state: c.snapshot.cosigned.state,
            locks: c.snapshot.locks.clone(),
        };
        let change = lock(Direction::AtoB, 1_000, 7);
        let next = apply(&pos, &change, Party::A, &c.ctx).unwrap().state;
        let msgs = [
            SessionMsg::Challenge {
                chain_id: CHAIN,
                hub: hub.address(),
                nonce,
            },
            SessionMsg::Auth {
                address: client.address(),
                sig: client.sign(Tag::Auth, &auth),
                challenge,
            },
            SessionMsg::Welcome {
                channels: vec![c.id],
                terms: RoutingTerms::default(),
                sig: hub.sign(Tag::Auth, &welcome),
            },
            SessionMsg::Sync {
                channel_id: c.id,
                snapshot: c.snapshot.clone(),
                signed: c.snapshot.state().version,
            },
            SessionMsg::Propose(WireProposal {
                channel_id: c.id,
                change,
                state: next,
                sig: next.sign(&client),
                invoice: Some(invoice("coffee").encode_string().unwrap()),
            }),
            SessionMsg::Propose(WireProposal {
                channel_id: c.id,
                change: Change::Bump,
                state: ChannelState {
                    version: next.version + 1,
                    ..pos.state
                },
                sig: next.sign(&hub),
                invoice: None,
            }),
            SessionMsg::Accept {
                channel_id: c.id,
                version: next.version,
                sig: next.sign(&hub),
            },
            SessionMsg::Reject {
                channel_id: c.id,
                version: next.version,
                code: ErrorCode::InvalidUpdate,
                reason: "no".into(),
                signed: next.version,
            },
            SessionMsg::Payment {
                hashlock: sha256(&[7; 32]),
                status: PaymentStatus::Failed,
                reason: Some("payee offline".into()),
            },
            SessionMsg::Error {
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
            },
            SessionMsg::Ping { nonce: 3 },
            SessionMsg::Pong { nonce: 3 },
        ];
        msgs.iter().map(|m| wire::encode(m).into_bytes()).collect()
    }

    pub fn tower_bodies() -> Vec<Vec<u8>> {
        let c = channel();
        let (user, tower) = (key(1), key(4));
        let nonce = stamped_nonce(1_800_000_000, &Hash32([8; 32]));
        let appointment = Appointment {
            a: key(1).address(),
            b: key(2).address(),
            salt: c.salt,
            snapshot: c.snapshot,
        };
        let digest = appointment.digest();
        let register = RegisterRequest {
            auth: UserAuth::sign(
                &user,
                CHAIN,
                &tower.address(),
                "register",
                nonce,
                &Hash32::default(),
            ),
        };
        let submit = AppointmentRequest {
            auth: UserAuth::sign(
                &user,
                CHAIN,
                &tower.address(),
                "appointment",
                nonce,
                &digest,
            ),
            appointment,
        };
        let receipt = Receipt::sign(&tower, CHAIN, c.id, 4, 12);
        let error = TowerError {
            code: "rate_limited".into(),
            message: "too many appointments".into(),
        };
        vec![
            serde_json::to_vec(&register).unwrap(),
            serde_json::to_vec(&submit).unwrap(),
            serde_json::to_vec(&receipt).unwrap(),
            serde_json::to_vec(&error).unwrap(),
            serde_json::to_vec(&register.auth).unwrap(),
            c.id.to_string().into_bytes(),
        ]
    }

    fn call(method: &str, params: serde_json::Value) -> serde_json::Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    }

    pub fn rpc_requests() -> Vec<Vec<u8>> {
        let c = channel();
        let txs = signed_txs();
        let calls = vec![
            call(method::CHAIN_INFO, json!({})),
            call(method::ACCOUNT, json!({"address": key(1).address()})),
            call(method::SUBMIT_TX, json!({"tx": hex::encode(&txs[0])})),
            call(
                method::SUBMIT_TXS,
                json!({"txs": [hex::encode(&txs[1]), hex::encode(&txs[4])]}),
            ),
            call(method::TX, json!({"id": Hash32([3; 32])})),
            call(method::BLOCK, json!({"height": 5})),
            call(method::CHANNEL, json!({"channel_id": c.id})),
            call(method::SECRET, json!({"hashlock": sha256(&[9; 32])})),
            call(
                method::EVENTS,
                json!({"from_height": 1, "to_height": 9,
                       "filter": {"channel_id": c.id, "participant": key(1).address(),
                                  "kinds": ["ChannelOpened", "Transfer"]}}),
            ),
            call(method::SUBSCRIBE_HEADS, json!({})),
            call(
                method::SUBSCRIBE_EVENTS,
                json!({"from_height": 0, "filter": {}}),
            ),
            call(method::UNSUBSCRIBE, json!({"subscription": 7})),
            json!({"jsonrpc": "2.0", "method": method::CHAIN_INFO}),
            json!([
                call(method::BLOCK, json!({"height": 1})),
                {"jsonrpc": "2.0", "id": "a", "method": method::ACCOUNT,
                 "params": {"address": key(2).address()}},
                {"jsonrpc": "1.0", "id": null, "method": 5}
            ]),
        ];
        calls.iter().map(|v| v.to_string().into_bytes()).collect()
    }

    fn answer<T: serde::Serialize>(result: T) -> Vec<u8> {
        json!({"jsonrpc": "2.0", "id": 1, "result": result})
            .to_string()
            .into_bytes()
    }

    pub fn rpc_responses() -> Vec<Vec<u8>> {
        let c = channel();
        let a = key(1).address();
        let header = rpc::BlockHeader {
            height: 5,
            parent: Hash32([1; 32]),
            hash: Hash32([2; 32]),
            state_root: Hash32([3; 32]),
            tx_root: Hash32([4; 32]),
            time_ms: 1_700_000_000_000,
            proposer: key(4).address(),
            tx_count: 1,
        };
        let event = rpc::Event {
            height: 5,
            tx_index: 0,
            index: 0,
            tx_id: Hash32([5; 32]),
            participants: vec![a, key(2).address()],
            event: EventKind::ChannelClosing {
                channel_id: c.id,
                version: 4,
                settle_after: 45,
                by: a,
            },
        };
        let record = |status| ChannelRecord {
            id: c.id,
            a,
            b: key(2).address(),
            deposit_a: 100_000,
            deposit_b: 100_000,
            challenge_period: 40,
            opened_at: 2,
            status,
            withdrawn: Default::default(),
        };
        vec![
            answer(rpc::ChainInfo {
                chain_id: CHAIN,
                height: 5,
                tip_hash: Hash32([2; 32]),
                state_root: Hash32([3; 32]),
                block_time_ms: 500,
                min_fee: 1,
                default_challenge_period: 40,
                channel_limits: ChannelLimits::default(),
            }),
            answer(rpc::Account {
                balance: 10,
                nonce: 2,
            }),
            answer(rpc::Submitted {
                id: Hash32([5; 32]),
            }),
            answer(vec![
                rpc::SubmitOutcome {
                    id: Some(Hash32([5; 32])),
                    error: None,
                },
                rpc::SubmitOutcome {
                    id: None,
                    error: Some(rpc::RpcError {
                        code: rpc::code::TX_REJECTED,
                        message: "nonce too low".into(),
                    }),
                },
            ]),
            answer(rpc::TxInfo {
                id: Hash32([5; 32]),
                height: 5,
                index: 0,
                from: a,
                kind: "close".into(),
                receipt: rpc::TxReceipt {
                    success: false,
                    error: Some("stale version".into()),
                },
            }),
            answer(rpc::Block {
                header: header.clone(),
                txs: vec![Hash32([5; 32])],
            }),
            answer(record(ChannelStatus::Open)),
            answer(record(ChannelStatus::Closing {
                stored: Box::new(c.snapshot.clone()),
                settle_after: 45,
            })),
            answer(record(ChannelStatus::Settled {
                payout_a: 1,
                payout_b: 2,
            })),
            answer(rpc::SecretInfo {
                secret: Hash32([9; 32]),
                height: 4,
            }),
            answer(vec![event.clone()]),
            answer(serde_json::Value::Null),
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}})
                .to_string()
                .into_bytes(),
            json!({"jsonrpc": "2.0", "method": method::HEADS,
                   "params": {"subscription": 1, "result": header}})
            .to_string()
            .into_bytes(),
            json!({"jsonrpc": "2.0", "method": method::EVENTS_NOTIFICATION,
                   "params": {"subscription": 2, "result": event}})
            .to_string()
            .into_bytes(),
        ]
    }

    fn codec() -> WireCodec {
        WireCodec {
            max_bytes: 1 << 20,
            junk_streams: false,
        }
    }

    fn encoded<T>(tag: u8, msg: &T) -> Vec<u8>
    where
        WireCodec: Codec<T>,
        <WireCodec as Codec<T>>::Error: std::fmt::Debug,
    {
        let mut v = vec![tag];
        v.extend_from_slice(&codec().encode(msg).unwrap());
        v
    }

    pub fn wire_block() -> WireBlock {
        WireBlock {
            height: 5,
            parent: [1; 32],
            state_root: [3; 32],
            time_ms: 1_700_000_000_000,
            proposer: key(4).address().0,
            txs: signed_txs().into_iter().take(3).collect(),
        }
    }

    pub fn consensus_msgs() -> Vec<Vec<u8>> {
        let signer = SchnorrSigner {
            chain_id: CHAIN,
            key: key(4),
        };
        let me = ValidatorAddress(key(4).address().0);
        let block = BlockId([2; 32]);
        let vote = |vote_type, value| Vote {
            vote_type,
            height: Height(5),
            round: Round::new(0),
            value,
            voter: me,
            extension: None,
        };
        let signed_vote = |v: Vote| {
            let sig = signer.sign(ConsensusTag::Vote, &vote_body(&v));
            SignedMessage::new(v, sig)
        };
        let prevote = signed_vote(vote(VoteType::Prevote, NilOrVal::Val(block)));
        let precommit_nil = signed_vote(vote(VoteType::Precommit, NilOrVal::Nil));
        let proposal = Proposal {
            height: Height(5),
            round: Round::new(1),
            value: BlockValue(block),
            pol_round: Round::Nil,
            proposer: me,
        };
        let proposal_sig = signer.sign(ConsensusTag::Proposal, &proposal_body(&proposal));
        let init = BlockPart::Init(BlockInit {
            height: Height(5),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer: me,
            parent: [1; 32],
            state_root: [3; 32],
            time_ms: 1_700_000_000_000,
            tx_count: 2,
        });
        let txs = BlockPart::Txs(signed_txs().into_iter().take(2).collect());
        let fin = BlockPart::Fin(signer.sign(
            ConsensusTag::ProposalParts,
            &parts_body(5, Round::new(0), &Hash32([2; 32])),
        ));
        let stream = |seq, content| {
            StreamMessage::new(StreamId::new(Bytes::from_static(b"5/0/1")), seq, content)
        };
        let polka = PolkaCertificate::<SluiceContext> {
            height: Height(5),
            round: Round::new(0),
            value_id: block,
            polka_signatures: vec![PolkaSignature::new(me, prevote.signature)],
        };
        let proof_key = key(4).address().0.to_vec();
        let peer = vec![0x00, 0x04, 1, 2, 3, 4];
        let proof_sig = signer.sign(
            ConsensusTag::ValidatorProof,
            &ValidatorProof::<SluiceContext>::signing_bytes(&proof_key, &peer),
        );
        let decided = sync::RawDecidedValue::<SluiceContext>::new(
            Bytes::from(borsh::to_vec(&wire_block()).unwrap()),
            ExtendedCommitCertificate {
                height: Height(5),
                round: Round::new(0),
                value_id: block,
                commit_signatures: vec![ExtendedCommitSignature::new(
                    me,
                    ConsensusSig([7; 64]),
                    None,
                )],
            },
        );
        // A status carries a libp2p peer id: an identity multihash of four bytes here.
        let mut status = vec![5u8];
        status.extend(borsh::to_vec(&peer).unwrap());
        status.extend(borsh::to_vec(&Height(9)).unwrap());
        status.extend(borsh::to_vec(&Height(1)).unwrap());
        vec![
            encoded(0, &init),
            encoded(0, &txs),
            encoded(0, &fin),
            encoded(
                1,
                &SignedConsensusMsg::<SluiceContext>::Vote(prevote.clone()),
            ),
            encoded(1, &SignedConsensusMsg::<SluiceContext>::Vote(precommit_nil)),
            encoded(
                1,
                &SignedConsensusMsg::<SluiceContext>::Proposal(SignedMessage::new(
                    proposal,
                    proposal_sig,
                )),
            ),
            encoded(2, &LivenessMsg::<SluiceContext>::Vote(prevote)),
            encoded(2, &LivenessMsg::PolkaCertificate(polka.clone())),
            encoded(
                3,
                &ProposedValue::<SluiceContext> {
                    height: Height(5),
                    round: Round::new(0),
                    valid_round: Round::Nil,
                    proposer: me,
                    value: BlockValue(block),
                    validity: Validity::Valid,
                },
            ),
            encoded(4, &polka),
            status,
            encoded(
                6,
                &sync::Request::<SluiceContext>::ValueRequest(sync::ValueRequest::new(
                    Height(3)..=Height(7),
                )),
            ),
            encoded(
                7,
                &sync::Response::ValueResponse(sync::ValueResponse::new(Height(5), vec![decided])),
            ),
            encoded(8, &stream(0, StreamContent::Data(init))),
            encoded(8, &stream(1, StreamContent::Data(txs))),
            encoded(8, &stream(3, StreamContent::<BlockPart>::Fin)),
            encoded(
                9,
                &ValidatorProof::<SluiceContext>::new(proof_key, peer, proof_sig),
            ),
        ]
    }

    pub fn sync_blocks() -> Vec<Vec<u8>> {
        let empty = WireBlock {
            txs: vec![],
            ..wire_block()
        };
        vec![
            borsh::to_vec(&wire_block()).unwrap(),
            borsh::to_vec(&empty).unwrap(),
        ]
    }

    pub fn admin_queries() -> Vec<Vec<u8>> {
        let c = channel();
        let cursor = format!("1700000000.{}.{}", sha256(&[9; 32]), key(3).address());
        [
            String::new(),
            "limit=10".into(),
            format!("limit=1000&after={}", c.id),
            format!("after={cursor}"),
            format!("after={}", cursor.replace('.', "%2E")),
            c.id.to_string(),
        ]
        .map(String::into_bytes)
        .to_vec()
    }
}

/// Writes the seed corpora: real objects of every kind each target reads, encoded the way they
/// travel. Each seed must pass its target (and the generator checks it decodes at all).
#[test]
#[ignore = "writes fuzz/corpus; run by hand after a format change"]
fn write_seed_corpora() {
    let sets: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("signed_tx", seeds::signed_txs()),
        ("canonical", seeds::canonical()),
        ("invoice_text", seeds::invoice_text()),
        ("address_text", seeds::address_text()),
        ("session_msg", seeds::session_msgs()),
        ("tower_body", seeds::tower_bodies()),
        ("rpc_request", seeds::rpc_requests()),
        ("rpc_response", seeds::rpc_responses()),
        ("consensus_msg", seeds::consensus_msgs()),
        ("sync_block", seeds::sync_blocks()),
        ("admin_query", seeds::admin_queries()),
    ];
    for (name, inputs) in sets {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            assert!(decodes(name, input), "{name} seed {i} does not decode");
            let check = checks::TARGETS.iter().find(|(n, _)| *n == name).unwrap().1;
            check(input);
            std::fs::write(dir.join(format!("seed-{i:02}")), input).unwrap();
        }
    }
}

/// Whether a seed is accepted by the decoder its target feeds it to: a seed that is refused
/// explores only the refusal.
fn decodes(target: &str, input: &[u8]) -> bool {
    use malachitebft_codec::Codec;
    use sluice_node::consensus::context::{BlockPart, SluiceContext, WireBlock};
    use sluice_protocol::encoding::Canonical;
    use sluice_protocol::*;
    let text = std::str::from_utf8(input).unwrap_or_default();
    let json = serde_json::from_slice::<serde_json::Value>(input).ok();
    let (tag, rest) = input.split_first().unwrap_or((&0, &[]));
    match target {
        "signed_tx" => SignedTx::from_bytes(input).is_ok(),
        "canonical" => match tag {
            0 => Lock::from_bytes(rest).is_ok(),
            1 => ChannelState::from_bytes(rest).is_ok(),
            2 => CoSigned::from_bytes(rest).is_ok(),
            3 => Snapshot::from_bytes(rest).is_ok(),
            4 => Change::from_bytes(rest).is_ok(),
            5 => TxKind::from_bytes(rest).is_ok(),
            6 => Transaction::from_bytes(rest).is_ok(),
            7 => invoice::Invoice::from_bytes(rest).is_ok(),
            _ => invoice::SignedInvoice::from_bytes(rest).is_ok(),
        },
        "invoice_text" => invoice::SignedInvoice::parse(text).is_ok(),
        "address_text" => {
            Address::parse_text(text.trim()).is_ok()
                || hex::decode(text).is_ok()
                || text::decode(invoice::INVOICE_HRP, text, text::MAX_TEXT_LEN).is_ok()
        }
        "session_msg" => {
            wire::decode::<wire::hub::SessionMsg>(input, wire::hub::MAX_SESSION_FRAME).is_ok()
        }
        "sync_block" => borsh::from_slice::<WireBlock>(input).is_ok(),
        "consensus_msg" => {
            let c = sluice_node::consensus::codec::WireCodec {
                max_bytes: 1 << 20,
                junk_streams: false,
            };
            let b = bytes::Bytes::copy_from_slice(rest);
            use malachitebft_core_consensus as cc;
            use malachitebft_sync as sync;
            match tag {
                0 => Codec::<BlockPart>::decode(&c, b).is_ok(),
                1 => Codec::<cc::SignedConsensusMsg<SluiceContext>>::decode(&c, b).is_ok(),
                2 => Codec::<cc::LivenessMsg<SluiceContext>>::decode(&c, b).is_ok(),
                3 => Codec::<cc::ProposedValue<SluiceContext>>::decode(&c, b).is_ok(),
                4 => {
                    Codec::<malachitebft_core_types::PolkaCertificate<SluiceContext>>::decode(&c, b)
                        .is_ok()
                }
                5 => Codec::<sync::Status<SluiceContext>>::decode(&c, b).is_ok(),
                6 => Codec::<sync::Request<SluiceContext>>::decode(&c, b).is_ok(),
                7 => Codec::<sync::Response<SluiceContext>>::decode(&c, b).is_ok(),
                8 => {
                    Codec::<malachitebft_engine::util::streaming::StreamMessage<BlockPart>>::decode(
                        &c, b,
                    )
                    .is_ok()
                }
                _ => Codec::<malachitebft_core_types::ValidatorProof<SluiceContext>>::decode(&c, b)
                    .is_ok(),
            }
        }
        "admin_query" => {
            text.parse::<Hash32>().is_ok()
                || serde_urlencoded::from_str::<std::collections::HashMap<String, String>>(text)
                    .is_ok_and(|q| sluice_hub::admin::views::PageQuery::parse(&q).is_ok())
        }
        // JSON bodies: the target tries every type; a seed must at least be JSON (or, for the
        // tower's path and header, hex).
        _ => json.is_some() || hex::decode(text).is_ok(),
    }
}
