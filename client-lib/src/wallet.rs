//! The public wallet API.

use crate::config::{WalletConfig, DB_FILE, KEY_FILE};
use crate::core::Core;
use crate::error::{Result, WalletError};
use crate::events::{EventStream, StoredEvent, WalletEvent, EVENT_CAPACITY};
use crate::onchain::{random32, TX_TIMEOUT};
use crate::pay_handle::PayHandle;
use crate::session::{SessionHandle, UpdateCmd};
use crate::store::{
    ChannelRow, ChannelStatus, InvoiceRow, PaymentDirection, PaymentRow, PaymentStatus, Store,
    TowerRow,
};
use serde::Serialize;
use sluice_chain_client::{ChainClient, TxSender};
use sluice_protocol::invoice::{Invoice, SignedInvoice};
use sluice_protocol::onchain::ChannelStatus as OnChain;
use sluice_protocol::session::payer_lock;
use sluice_protocol::{
    channel_id, sha256, Address, Amount, Change, Hash32, Height, Snapshot, TxKind,
};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// A channel as the app sees it: local state plus on-chain deposits and derived balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    /// Channel id.
    pub id: Hash32,
    /// Local status.
    pub status: ChannelStatus,
    /// Latest co-signed version.
    pub version: u64,
    /// Our on-chain deposit.
    pub deposit_a: Amount,
    /// The hub's on-chain deposit.
    pub deposit_b: Amount,
    /// What we can spend (or would get on settle with no pending locks).
    pub balance: Amount,
    /// The hub's side.
    pub hub_balance: Amount,
    /// Sum of our pending outgoing locks.
    pub locked_out: Amount,
    /// Sum of pending locks toward us.
    pub locked_in: Amount,
}

/// Everything the wallet holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// The wallet's own chain account.
    pub on_chain: Amount,
    /// Sum of channel balances we can spend off-chain.
    pub off_chain: Amount,
    /// Per channel.
    pub channels: Vec<ChannelInfo>,
}

/// A created invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedInvoice {
    /// The `slinv1…` string to give the payer.
    pub invoice: String,
    /// Its hashlock, to follow the payment.
    pub hashlock: Hash32,
}

/// An embeddable Sluice wallet. Create with [`Wallet::open`], go online with
/// [`Wallet::connect`]. On-chain operations (force-close, settle) work without the hub.
pub struct Wallet {
    core: Arc<Core>,
    session: Mutex<Option<SessionHandle>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Wallet {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            tasks.iter().for_each(|t| t.abort());
        }
    }
}

impl Wallet {
    /// Opens the wallet in `dir` (creating the directory, key and database if needed) and
    /// checks that the node runs the chain this wallet was made for.
    pub async fn open(dir: &Path, config: WalletConfig) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(WalletError::io(format!(
            "create wallet dir {}",
            dir.display()
        )))?;
        let key = crate::keyfile::load_or_create(&dir.join(KEY_FILE))?;
        let store = Store::open(&dir.join(DB_FILE)).await?;
        let tls = config.tls(dir)?;
        let chain = ChainClient::with_tls(&config.node, tls.clone());
        let chain_id = chain.chain_info().await?.chain_id;
        match store.meta("chain_id").await? {
            Some(s) if s != chain_id.to_string() => {
                return Err(WalletError::WrongChain {
                    expected: crate::store::parse("chain id", &s)?,
                    got: chain_id,
                })
            }
            Some(_) => {}
            None => store.set_meta("chain_id", &chain_id.to_string()).await?,
        }
        let sender = TxSender::new(chain.clone(), key.clone(), chain_id, config.tx_fee);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (stored, _) = broadcast::channel(EVENT_CAPACITY);
        let core = Core {
            key,
            config,
            chain_id,
            store,
            chain,
            hub_tls: sluice_home::tls::ws_connector(tls),
            sender,
            events,
            stored,
            terms: Default::default(),
            withdrawing: Default::default(),
        };
        Ok(Wallet {
            core: Arc::new(core),
            session: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// This wallet's address (its public key).
    pub fn address(&self) -> Address {
        self.core.me()
    }

    /// The chain this wallet lives on.
    pub fn chain_id(&self) -> sluice_protocol::ChainId {
        self.core.chain_id
    }

    /// The local store, for inspection.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// Every event from now on, transient connection notices included, live only: a receiver
    /// that lags or was not there misses events. To miss nothing across restarts use
    /// [`Wallet::subscribe_from`] or [`Wallet::events_since`].
    pub fn subscribe(&self) -> broadcast::Receiver<WalletEvent> {
        self.core.events.subscribe()
    }

    /// Stored events with `seq` above `cursor`, oldest first, at most `limit` (capped at
    /// [`crate::store::EVENT_PAGE_MAX`]): what an app missed while it was not listening. Pass
    /// the last `seq` read as the next cursor; 0 reads from the oldest kept event (the log
    /// keeps the newest [`crate::store::EVENT_RETENTION`]). Transient connection notices
    /// ([`WalletEvent::is_transient`]) are not stored.
    pub async fn events_since(&self, cursor: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.core.store.events_since(cursor, limit).await
    }

    /// A subscription that cannot miss: [`EventStream::next`] yields the stored events after
    /// `cursor` first, then live ones as they are stored, each exactly once and in `seq`
    /// order. Keep [`EventStream::cursor`] to resume after a restart.
    pub fn subscribe_from(&self, cursor: u64) -> EventStream {
        let live = self.core.stored.subscribe();
        EventStream::new(self.core.store.clone(), live, cursor)
    }

    /// Starts following the chain (closes, challenges, settlements, secrets), guarding incoming
    /// payments and delivering watchtower appointments. Needs no hub. Idempotent.
    pub fn start_watching(&self) {
        let Ok(mut tasks) = self.tasks.lock() else {
            return;
        };
        if !tasks.is_empty() {
            return;
        }
        tasks.push(tokio::spawn(crate::follower::run(self.core.clone())));
        tasks.push(tokio::spawn(crate::guard::run(self.core.clone())));
        tasks.push(tokio::spawn(crate::towers::run(self.core.clone())));
    }

    /// Connects to the hub (verifying its key), resyncs, and keeps the session up with
    /// reconnects. Also starts watching the chain. A first failure is returned as is.
    pub async fn connect(&self) -> Result<()> {
        let (handle, task) = crate::session::start(self.core.clone()).await?;
        self.start_watching();
        if let Ok(mut s) = self.session.lock() {
            *s = Some(handle);
        }
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
        Ok(())
    }

    /// Whether the hub session is up right now.
    pub fn is_connected(&self) -> bool {
        self.session().is_ok_and(|s| s.is_connected())
    }

    fn session(&self) -> Result<SessionHandle> {
        self.session
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(WalletError::NotConnected)
    }

    /// Opens a channel with the hub, depositing `deposit`; returns its id once included.
    pub async fn open_channel(&self, deposit: Amount) -> Result<Hash32> {
        check_amount(deposit)?;
        let core = &self.core;
        let salt = random32();
        let hub = core.hub();
        let id = channel_id(core.chain_id, &core.me(), &hub, &salt);
        let row = ChannelRow {
            id,
            hub,
            salt,
            challenge_period: core.config.challenge_period,
            deposit,
            status: ChannelStatus::Opening,
            snapshot: Snapshot::opening(core.chain_id, id),
            signed: Default::default(),
        };
        core.store.insert_channel(&row).await?;
        let kind = TxKind::OpenChannel {
            counterparty: hub,
            deposit,
            challenge_period: core.config.challenge_period,
            salt,
        };
        match core.sender.send(kind, TX_TIMEOUT).await {
            Ok(_) => {
                core.store
                    .set_channel_status(&id, ChannelStatus::Open)
                    .await?;
                tracing::info!(channel = %id, deposit, "channel open");
                Ok(id)
            }
            Err(e) => {
                if !matches!(e, sluice_chain_client::ClientError::Timeout(_)) {
                    core.store
                        .set_channel_status(&id, ChannelStatus::Failed)
                        .await?;
                }
                Err(e.into())
            }
        }
    }

    /// Adds `amount` to our deposit in a channel; spendable once included.
    pub async fn deposit(&self, channel_id: &Hash32, amount: Amount) -> Result<()> {
        check_amount(amount)?;
        self.core.store.require_channel(channel_id).await?;
        let kind = TxKind::Deposit {
            channel_id: *channel_id,
            amount,
        };
        self.core.sender.send(kind, TX_TIMEOUT).await?;
        Ok(())
    }

    /// Creates an invoice for `amount`, valid for `ttl`. Its secret is stored before the
    /// invoice is returned.
    pub async fn create_invoice(
        &self,
        amount: Amount,
        memo: &str,
        ttl: Duration,
    ) -> Result<CreatedInvoice> {
        check_amount(amount)?;
        let core = &self.core;
        let secret = random32();
        let hashlock = sha256(&secret.0);
        let expires_at = (crate::store::now() as u64).saturating_add(ttl.as_secs());
        let signed = Invoice {
            chain_id: core.chain_id,
            hub: core.hub(),
            payee: core.me(),
            amount,
            hashlock,
            expires_at,
            memo: memo.to_string(),
        }
        .sign(&core.key)?;
        let encoded = signed.encode_string()?;
        let row = InvoiceRow {
            hashlock,
            secret,
            amount,
            memo: memo.to_string(),
            expires_at,
            encoded: encoded.clone(),
            paid: false,
        };
        core.store.insert_invoice(&row).await?;
        Ok(CreatedInvoice {
            invoice: encoded,
            hashlock,
        })
    }

    /// Checks an invoice without paying it: well-formed, signed by its payee, for this chain
    /// and hub, not expired.
    pub fn check_invoice(&self, invoice: &str) -> Result<SignedInvoice> {
        let signed = SignedInvoice::parse(invoice.trim())?;
        let now = crate::store::now() as u64;
        signed.check_payable(self.core.chain_id, &self.core.hub(), now)?;
        Ok(signed)
    }

    /// Pays an invoice through the hub and returns the secret (the proof of payment). Waits up
    /// to the configured pay timeout; a payment still pending then finishes in the background
    /// (follow it with [`Wallet::payment_handle`]). A payment of the same invoice already under
    /// way is waited for rather than sent twice; one already completed returns its secret.
    pub async fn pay(&self, invoice: &str) -> Result<Hash32> {
        self.pay_at_most(invoice, None).await
    }

    /// The hub's fee for paying `invoice` under its current terms (shown before paying).
    pub fn fee_for(&self, invoice: &str) -> Result<Amount> {
        let inv = self.check_invoice(invoice)?.invoice;
        let terms = self.terms_checked()?;
        terms
            .fee(inv.amount)
            .map_err(|e| WalletError::InvalidAmount(e.to_string()))
    }

    /// [`Wallet::pay`], refused before anything is locked if the hub's fee is above `max_fee`.
    pub async fn pay_at_most(&self, invoice: &str, max_fee: Option<Amount>) -> Result<Hash32> {
        let handle = self.pay_handle_at_most(invoice, max_fee).await?;
        handle.wait(self.core.config.pay_timeout()).await
    }

    /// Starts paying an invoice and returns as soon as the hub co-signed the lock, without
    /// waiting for the outcome: follow it with [`PayHandle::status`] or [`PayHandle::wait`].
    /// The same checks as [`Wallet::pay`]; an earlier payment of this invoice that is under way
    /// or done is returned instead of a new one. A refusal before or of the lock (bad invoice,
    /// no balance, the hub's `Reject`) is the error, and is recorded as a failed payment.
    pub async fn pay_handle(&self, invoice: &str) -> Result<PayHandle> {
        self.pay_handle_at_most(invoice, None).await
    }

    /// [`Wallet::pay_handle`], refused before anything is locked if the hub's fee is above
    /// `max_fee`.
    pub async fn pay_handle_at_most(
        &self,
        invoice: &str,
        max_fee: Option<Amount>,
    ) -> Result<PayHandle> {
        let fee = self.fee_for(invoice)?;
        if let Some(max) = max_fee.filter(|m| fee > *m) {
            return Err(WalletError::FeeTooHigh { fee, max });
        }
        let signed = self.check_invoice(invoice)?;
        let hashlock = signed.invoice.hashlock;
        if self.earlier_payment(&hashlock).await? {
            return Ok(self.handle(hashlock));
        }
        self.lock_payment(invoice.trim(), &signed.invoice).await?;
        tracing::info!(%hashlock, amount = signed.invoice.amount, "payment locked; waiting");
        Ok(self.handle(hashlock))
    }

    /// The handle of an outgoing payment of this wallet (also one made before a restart), or
    /// `None` if it never paid `hashlock`.
    pub async fn payment_handle(&self, hashlock: &Hash32) -> Result<Option<PayHandle>> {
        let row = self
            .core
            .store
            .payment(hashlock, PaymentDirection::Out)
            .await?;
        Ok(row.map(|r| self.handle(r.hashlock)))
    }

    fn handle(&self, hashlock: Hash32) -> PayHandle {
        PayHandle::new(hashlock, self.core.store.clone(), &self.core.stored)
    }

    /// Proposes the payer's lock for `inv` and waits until the hub co-signed it (the payment
    /// row is stored before the proposal is signed).
    async fn lock_payment(&self, encoded: &str, inv: &Invoice) -> Result<()> {
        let core = &self.core;
        let session = self.session()?;
        let terms = self.terms_checked()?;
        let height = core.chain.chain_info().await?.height;
        let lock = payer_lock(&terms, inv.amount, inv.hashlock, height)
            .map_err(|e| WalletError::InvalidAmount(e.to_string()))?;
        let needed = lock.amount;
        let channel_id = self.channel_with(needed).await?;
        let row = PaymentRow {
            hashlock: inv.hashlock,
            direction: PaymentDirection::Out,
            channel_id,
            amount: inv.amount,
            fee: needed - inv.amount,
            status: PaymentStatus::Pending,
            secret: None,
            reason: None,
            invoice: Some(encoded.to_string()),
            created_at: crate::store::now(),
        };
        let cmd = UpdateCmd {
            channel_id,
            change: Change::AddLock { lock },
            invoice: Some(encoded.to_string()),
            payment: Some(row),
            reply: None,
        };
        session.update(cmd, core.config.pay_timeout()).await?;
        Ok(())
    }

    /// The hub's current terms, if within this wallet's caps.
    fn terms_checked(&self) -> Result<sluice_protocol::routing::RoutingTerms> {
        let terms = self.core.terms().ok_or(WalletError::NotConnected)?;
        self.core.config.caps.check(&terms)?;
        Ok(terms)
    }

    /// Whether a payment of this invoice already happened or is under way (a failed one may be
    /// tried again).
    async fn earlier_payment(&self, hashlock: &Hash32) -> Result<bool> {
        let row = self
            .core
            .store
            .payment(hashlock, PaymentDirection::Out)
            .await?;
        Ok(matches!(
            row,
            Some(PaymentRow {
                status: PaymentStatus::Completed,
                secret: Some(_),
                ..
            }) | Some(PaymentRow {
                status: PaymentStatus::Pending,
                ..
            })
        ))
    }

    /// The first open channel that can lock `needed`.
    async fn channel_with(&self, needed: Amount) -> Result<Hash32> {
        let mut best = 0;
        for info in self.channels().await? {
            if info.status != ChannelStatus::Open {
                continue;
            }
            if info.balance >= needed {
                return Ok(info.id);
            }
            best = best.max(info.balance);
        }
        Err(WalletError::InsufficientBalance {
            needed,
            available: best,
        })
    }

    /// Every channel with its derived balances (deposits read from the chain).
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>> {
        let mut out = Vec::new();
        for ch in self.core.store.channels().await? {
            out.push(self.channel_info(ch).await?);
        }
        Ok(out)
    }

    async fn channel_info(&self, ch: ChannelRow) -> Result<ChannelInfo> {
        let rec = self.core.chain.channel(&ch.id).await?;
        let (deposit_a, deposit_b) = rec.as_ref().map_or((0, 0), |r| (r.deposit_a, r.deposit_b));
        let state = ch.snapshot.state();
        let (balance, hub_balance) = match rec.map(|r| r.status) {
            Some(OnChain::Settled { payout_a, payout_b }) => (payout_a, payout_b),
            _ => state.balances(deposit_a, deposit_b).unwrap_or((0, 0)),
        };
        Ok(ChannelInfo {
            id: ch.id,
            status: ch.status,
            version: state.version,
            deposit_a,
            deposit_b,
            balance,
            hub_balance,
            locked_out: state.locked_a,
            locked_in: state.locked_b,
        })
    }

    /// On-chain account balance plus every channel.
    pub async fn balances(&self) -> Result<Balances> {
        let on_chain = self.core.chain.account(&self.core.me()).await?.balance;
        let channels = self.channels().await?;
        let off_chain = channels
            .iter()
            .filter(|c| c.status == ChannelStatus::Open)
            .map(|c| c.balance)
            .fold(0u64, |a, b| a.saturating_add(b));
        Ok(Balances {
            on_chain,
            off_chain,
            channels,
        })
    }

    /// Every payment, newest first.
    pub async fn payments(&self) -> Result<Vec<PaymentRow>> {
        self.core.store.payments().await
    }

    /// Takes `amount` out of our side of an open channel without closing it: co-signs the
    /// withdrawal with the hub, then has the chain pay it to our account; returns once paid.
    /// Refused with nothing signed if the channel holds less (or the amount is zero). A crash
    /// after the co-signing is finished by the guard on the next start.
    pub async fn withdraw(
        &self,
        channel_id: &Hash32,
        amount: Amount,
    ) -> Result<crate::withdraw::Withdrawal> {
        check_amount(amount)?;
        crate::withdraw::withdraw(&self.core, self.session()?, channel_id, amount).await
    }

    /// Closes cooperatively: co-signs a final state with the hub, then submits it; returns the
    /// payouts `(ours, hub's)`.
    pub async fn close(&self, channel_id: &Hash32) -> Result<(Amount, Amount)> {
        let ch = self.core.store.require_channel(channel_id).await?;
        let cosigned = match ch.status {
            ChannelStatus::Final => ch.snapshot.cosigned,
            ChannelStatus::Open => {
                let cmd = UpdateCmd::background(*channel_id, Change::Finalize);
                let timeout = self.core.config.pay_timeout();
                match self.session()?.update(cmd, timeout).await {
                    Ok(snap) => snap.cosigned,
                    Err(e) => return self.finalize_failed(channel_id, e).await,
                }
            }
            status => {
                return Err(WalletError::ChannelState {
                    id: *channel_id,
                    status: status.to_string(),
                    what: "a cooperative close",
                })
            }
        };
        crate::onchain::cooperative_close(&self.core, cosigned).await
    }

    /// The hub did not co-sign our `Finalize` (it refused, or went silent). If the `Finalize`
    /// left signed, the hub may hold it: this wallet signs nothing else on the channel (the
    /// session machine refuses), so the channel is closed on chain with our latest state
    /// instead of being left open for a hub that can end it whenever it likes (F6). The
    /// caller still gets the error; `settle` pays out after the window.
    async fn finalize_failed(&self, id: &Hash32, e: WalletError) -> Result<(Amount, Amount)> {
        let ch = self.core.store.require_channel(id).await?;
        if ch.signed.is_final {
            tracing::warn!(channel = %id, error = %e, "finalize in doubt; force-closing");
            crate::onchain::force_close(&self.core, id).await?;
        }
        Err(e)
    }

    /// Starts a unilateral close with our latest co-signed state; returns the height after
    /// which [`Wallet::settle`] may pay out. Works without the hub.
    pub async fn force_close(&self, channel_id: &Hash32) -> Result<Height> {
        crate::onchain::force_close(&self.core, channel_id).await
    }

    /// Pays out a closing channel after its challenge window (and lock expiries); returns
    /// `(ours, hub's)`.
    pub async fn settle(&self, channel_id: &Hash32) -> Result<(Amount, Amount)> {
        crate::onchain::settle(&self.core, channel_id).await
    }

    /// Sends `amount` from the wallet's account on chain to `to` (not through a channel), once
    /// the balance covers it and the fee; returns when it is included.
    pub async fn send(&self, to: Address, amount: Amount) -> Result<sluice_chain_client::Sent> {
        let sent = self
            .core
            .sender
            .transfer(to, amount, crate::onchain::TX_TIMEOUT)
            .await?;
        tracing::info!(%to, amount, tx = %sent.tx, "sent on chain");
        Ok(sent)
    }

    /// Registers with a watchtower and queues our latest states for it.
    pub async fn add_watchtower(&self, url: &str, tower: &Address) -> Result<()> {
        crate::towers::register(&self.core, url, tower).await?;
        self.core.store.add_tower(tower, url, &self.core.me()).await
    }

    /// Registered towers with their receipts.
    pub async fn watchtowers(&self) -> Result<Vec<TowerRow>> {
        self.core.store.towers().await
    }
}

fn check_amount(amount: Amount) -> Result<()> {
    if amount == 0 {
        return Err(WalletError::InvalidAmount("amount must be positive".into()));
    }
    sluice_protocol::amount::check(amount)
        .map(|_| ())
        .map_err(|e| WalletError::InvalidAmount(e.to_string()))
}
