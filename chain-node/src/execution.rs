//! Deterministic execution of a block's transactions. Every channel decision is the protocol
//! crate's (`ChannelRecord::open/deposit/cooperative_close/close/challenge/settle`); this module
//! only moves balances, charges fees and records receipts and events.
//!
//! A transaction whose nonce is not the account's, whose chain or fee is wrong, or whose sender
//! cannot pay the fee is **not includable**: it is left out of the block. Any other failure (a
//! stale challenge, too small a balance for the amount, ...) is **included** with a failure
//! receipt: nonce and fee are consumed, nothing else changes.

use crate::block::IncludedTx;
use crate::sigverify::VerifiedTx;
use crate::state::{Overlay, StateRead, StateWrites, StoreError};
use sluice_protocol::amount::{self, Amount, AmountError};
use sluice_protocol::channel::Snapshot;
use sluice_protocol::onchain::{ChannelError, ChannelLimits, ChannelRecord, EventKind};
use sluice_protocol::rpc::{Account, Event, SecretInfo, TxReceipt};
use sluice_protocol::{sha256, Address, ChainId, Hash32, Height, TxKind};
use std::collections::HashMap;

/// The chain rules and block context execution needs.
#[derive(Debug, Clone)]
pub struct ExecParams {
    pub chain_id: ChainId,
    pub height: Height,
    pub proposer: Address,
    pub min_fee: Amount,
    pub channel_limits: ChannelLimits,
}

/// Why an included transaction failed; its text becomes the receipt's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("insufficient balance: need {need}, have {have}")]
    InsufficientBalance { need: Amount, have: Amount },
    #[error("unknown channel {0}")]
    UnknownChannel(Hash32),
    #[error("channel {0} already exists")]
    ChannelExists(Hash32),
    #[error("{0} is not a valid account key")]
    InvalidAddress(Address),
    #[error("secret already registered at height {0}")]
    SecretKnown(Height),
    #[error("channel rule: {0}")]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Amount(#[from] AmountError),
}

/// Why a transaction cannot be included at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("wrong chain id {0}")]
    WrongChain(ChainId),
    #[error("fee {fee} below the minimum {min}")]
    FeeTooLow { fee: Amount, min: Amount },
    #[error("nonce {got}, account expects {expected}")]
    Nonce { expected: u64, got: u64 },
    #[error("cannot pay the fee {fee} from balance {balance}")]
    CannotPayFee { fee: Amount, balance: Amount },
}

/// The result of executing a block's candidate transactions.
#[derive(Debug, Default)]
pub struct Executed {
    pub included: Vec<IncludedTx>,
    pub skipped: Vec<(Hash32, SkipReason)>,
    pub events: Vec<Event>,
    pub writes: StateWrites,
    pub fees: Amount,
}

enum Fail {
    Tx(TxError),
    Store(StoreError),
}

impl<E: Into<TxError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail::Tx(e.into())
    }
}

fn store(e: StoreError) -> Fail {
    Fail::Store(e)
}

/// An event and the channel parties it concerns besides the addresses it names.
type Emitted = (EventKind, Vec<Address>);

/// Executes `txs` in order on top of `base`.
pub fn execute_block<S: StateRead>(
    base: &S,
    p: &ExecParams,
    txs: &[std::sync::Arc<VerifiedTx>],
) -> Result<Executed, StoreError> {
    let mut ov = Overlay::new(base);
    let mut out = Executed::default();
    for vtx in txs {
        let tx = &vtx.tx.tx;
        if let Err(reason) = precheck(&ov, p, tx)? {
            out.skipped.push((vtx.id, reason));
            continue;
        }
        let mut acct = ov.account(&tx.from)?;
        acct.balance -= tx.fee; // precheck: balance >= fee
        acct.nonce += 1;
        ov.put_account(tx.from, acct);
        out.fees = amount::add(out.fees, tx.fee).map_err(|e| StoreError::Io(e.to_string()))?;
        let tx_index = out.included.len() as u32;
        ov.checkpoint();
        let receipt = match execute_kind(&mut ov, p, &tx.from, &tx.kind) {
            Ok(emitted) => {
                push_events(&mut out.events, p.height, tx_index, vtx.id, emitted);
                TxReceipt {
                    success: true,
                    error: None,
                }
            }
            Err(Fail::Tx(e)) => {
                ov.rollback();
                TxReceipt {
                    success: false,
                    error: Some(e.to_string()),
                }
            }
            Err(Fail::Store(e)) => return Err(e),
        };
        out.included.push(IncludedTx {
            id: vtx.id,
            from: tx.from,
            kind: tx.kind.name(),
            bytes: vtx.bytes.clone(),
            receipt,
        });
    }
    if out.fees > 0 {
        let mut prop = ov.account(&p.proposer)?;
        // Fees only move existing supply, which genesis bounds by MAX_AMOUNT.
        prop.balance =
            amount::add(prop.balance, out.fees).map_err(|e| StoreError::Io(e.to_string()))?;
        ov.put_account(p.proposer, prop);
    }
    out.writes = ov.into_writes();
    Ok(out)
}

fn precheck<S: StateRead>(
    ov: &Overlay<'_, S>,
    p: &ExecParams,
    tx: &sluice_protocol::Transaction,
) -> Result<Result<(), SkipReason>, StoreError> {
    if tx.chain_id != p.chain_id {
        return Ok(Err(SkipReason::WrongChain(tx.chain_id)));
    }
    if tx.fee < p.min_fee {
        return Ok(Err(SkipReason::FeeTooLow {
            fee: tx.fee,
            min: p.min_fee,
        }));
    }
    let acct = ov.account(&tx.from)?;
    if tx.nonce != acct.nonce {
        return Ok(Err(SkipReason::Nonce {
            expected: acct.nonce,
            got: tx.nonce,
        }));
    }
    if acct.balance < tx.fee {
        return Ok(Err(SkipReason::CannotPayFee {
            fee: tx.fee,
            balance: acct.balance,
        }));
    }
    Ok(Ok(()))
}

fn push_events(
    out: &mut Vec<Event>,
    height: Height,
    tx_index: u32,
    tx_id: Hash32,
    emitted: Vec<Emitted>,
) {
    for (i, (event, parties)) in emitted.into_iter().enumerate() {
        let mut participants = event.addresses();
        for p in parties {
            if !participants.contains(&p) {
                participants.push(p);
            }
        }
        out.push(Event {
            height,
            tx_index,
            index: i as u32,
            tx_id,
            participants,
            event,
        });
    }
}

/// Runs one transaction kind. On failure the caller rolls the overlay back to the fee charge.
fn execute_kind<S: StateRead>(
    ov: &mut Overlay<'_, S>,
    p: &ExecParams,
    from: &Address,
    kind: &TxKind,
) -> Result<Vec<Emitted>, Fail> {
    match kind {
        TxKind::Transfer { to, amount } => transfer(ov, from, to, *amount),
        TxKind::OpenChannel {
            counterparty,
            deposit,
            challenge_period,
            salt,
        } => open_channel(ov, p, from, counterparty, *deposit, *challenge_period, salt),
        TxKind::Deposit { channel_id, amount } => deposit(ov, from, channel_id, *amount),
        TxKind::CooperativeClose { cosigned } => {
            let mut rec = load_channel(ov, &cosigned.state.channel_id)?;
            let (pa, pb) = rec.cooperative_close(p.chain_id, cosigned)?;
            settle_payouts(ov, rec, pa, pb)
        }
        TxKind::Close { cosigned, locks } => {
            let mut rec = load_channel(ov, &cosigned.state.channel_id)?;
            let snapshot = Snapshot {
                cosigned: *cosigned,
                locks: locks.clone(),
            };
            let settle_after = rec.close(p.chain_id, from, snapshot, p.height)?;
            let ev = EventKind::ChannelClosing {
                channel_id: rec.id,
                version: cosigned.state.version,
                settle_after,
                by: *from,
            };
            let parties = vec![rec.a, rec.b];
            ov.put_channel(rec);
            Ok(vec![(ev, parties)])
        }
        TxKind::Challenge { cosigned, locks } => {
            let mut rec = load_channel(ov, &cosigned.state.channel_id)?;
            let snapshot = Snapshot {
                cosigned: *cosigned,
                locks: locks.clone(),
            };
            rec.challenge(p.chain_id, snapshot, p.height)?;
            let ev = EventKind::ChannelChallenged {
                channel_id: rec.id,
                version: cosigned.state.version,
                by: *from,
            };
            let parties = vec![rec.a, rec.b];
            ov.put_channel(rec);
            Ok(vec![(ev, parties)])
        }
        TxKind::Withdraw { cosigned } => withdraw(ov, p, from, cosigned),
        TxKind::RegisterSecret { secret } => {
            let hashlock = sha256(&secret.0);
            if let Some(known) = ov.secret(&hashlock).map_err(store)? {
                return Err(TxError::SecretKnown(known.height).into());
            }
            ov.put_secret(
                hashlock,
                SecretInfo {
                    secret: *secret,
                    height: p.height,
                },
            );
            Ok(vec![(
                EventKind::SecretRegistered {
                    hashlock,
                    secret: *secret,
                },
                vec![],
            )])
        }
        TxKind::Settle { channel_id } => {
            let mut rec = load_channel(ov, channel_id)?;
            // Look every lock's hashlock up first, so a storage error is an error, not "unknown".
            let mut registry = HashMap::new();
            for lock in rec.closing_locks() {
                if let Some(info) = ov.secret(&lock.hashlock).map_err(store)? {
                    registry.insert(lock.hashlock, info.height);
                }
            }
            let (pa, pb) = rec.settle(p.height, |h| registry.get(h).copied())?;
            settle_payouts(ov, rec, pa, pb)
        }
    }
}

fn load_channel<S: StateRead>(ov: &Overlay<'_, S>, id: &Hash32) -> Result<ChannelRecord, Fail> {
    ov.channel(id)
        .map_err(store)?
        .ok_or(Fail::Tx(TxError::UnknownChannel(*id)))
}

/// Debits `amount` from `from`'s account (already charged the fee) or fails.
fn debit<S: StateRead>(
    ov: &Overlay<'_, S>,
    from: &Address,
    amount: Amount,
) -> Result<Account, Fail> {
    let mut acct = ov.account(from).map_err(store)?;
    acct.balance = amount::sub(acct.balance, amount).map_err(|_| TxError::InsufficientBalance {
        need: amount,
        have: acct.balance,
    })?;
    Ok(acct)
}

fn credit<S: StateRead>(ov: &mut Overlay<'_, S>, to: &Address, amount: Amount) -> Result<(), Fail> {
    let mut acct = ov.account(to).map_err(store)?;
    acct.balance = amount::add(acct.balance, amount)?;
    ov.put_account(*to, acct);
    Ok(())
}

fn transfer<S: StateRead>(
    ov: &mut Overlay<'_, S>,
    from: &Address,
    to: &Address,
    amount: Amount,
) -> Result<Vec<Emitted>, Fail> {
    if !to.is_valid_key() {
        return Err(TxError::InvalidAddress(*to).into());
    }
    let sender = debit(ov, from, amount)?;
    ov.put_account(*from, sender);
    credit(ov, to, amount)?;
    Ok(vec![(
        EventKind::Transfer {
            from: *from,
            to: *to,
            amount,
        },
        vec![],
    )])
}

fn open_channel<S: StateRead>(
    ov: &mut Overlay<'_, S>,
    p: &ExecParams,
    from: &Address,
    counterparty: &Address,
    deposit: Amount,
    challenge_period: Height,
    salt: &Hash32,
) -> Result<Vec<Emitted>, Fail> {
    if !counterparty.is_valid_key() {
        return Err(TxError::InvalidAddress(*counterparty).into());
    }
    let rec = ChannelRecord::open(
        p.chain_id,
        *from,
        *counterparty,
        deposit,
        challenge_period,
        salt,
        p.height,
        &p.channel_limits,
    )?;
    if ov.channel(&rec.id).map_err(store)?.is_some() {
        return Err(TxError::ChannelExists(rec.id).into());
    }
    let sender = debit(ov, from, deposit)?;
    ov.put_account(*from, sender);
    let ev = EventKind::ChannelOpened {
        channel_id: rec.id,
        a: rec.a,
        b: rec.b,
        deposit,
        challenge_period,
    };
    ov.put_channel(rec);
    Ok(vec![(ev, vec![])])
}

fn deposit<S: StateRead>(
    ov: &mut Overlay<'_, S>,
    from: &Address,
    channel_id: &Hash32,
    amount: Amount,
) -> Result<Vec<Emitted>, Fail> {
    let mut rec = load_channel(ov, channel_id)?;
    let sender = debit(ov, from, amount)?;
    let total = rec.deposit(from, amount)?;
    ov.put_account(*from, sender);
    let ev = EventKind::Deposited {
        channel_id: rec.id,
        party: *from,
        amount,
        total,
    };
    let parties = vec![rec.a, rec.b];
    ov.put_channel(rec);
    Ok(vec![(ev, parties)])
}

/// Pays each side what the co-signed state withdraws beyond earlier withdrawals; one event per
/// side paid.
fn withdraw<S: StateRead>(
    ov: &mut Overlay<'_, S>,
    p: &ExecParams,
    from: &Address,
    cosigned: &sluice_protocol::CoSigned,
) -> Result<Vec<Emitted>, Fail> {
    let mut rec = load_channel(ov, &cosigned.state.channel_id)?;
    let (to_a, to_b) = rec.withdraw(p.chain_id, from, cosigned)?;
    let mut out = Vec::new();
    let w = rec.withdrawn;
    for (party, paid, total) in [(rec.a, to_a, w.a), (rec.b, to_b, w.b)] {
        if paid == 0 {
            continue;
        }
        credit(ov, &party, paid)?;
        let ev = EventKind::Withdrawn {
            channel_id: rec.id,
            party,
            amount: paid,
            total,
            version: w.version,
        };
        out.push((ev, vec![rec.a, rec.b]));
    }
    ov.put_channel(rec);
    Ok(out)
}

/// Pays a settled channel's parties and stores the settled record.
fn settle_payouts<S: StateRead>(
    ov: &mut Overlay<'_, S>,
    rec: ChannelRecord,
    payout_a: Amount,
    payout_b: Amount,
) -> Result<Vec<Emitted>, Fail> {
    let mut a = ov.account(&rec.a).map_err(store)?;
    a.balance = amount::add(a.balance, payout_a)?;
    ov.put_account(rec.a, a);
    let mut b = ov.account(&rec.b).map_err(store)?;
    b.balance = amount::add(b.balance, payout_b)?;
    ov.put_account(rec.b, b);
    let ev = EventKind::ChannelSettled {
        channel_id: rec.id,
        payout_a,
        payout_b,
    };
    let parties = vec![rec.a, rec.b];
    ov.put_channel(rec);
    Ok(vec![(ev, parties)])
}
