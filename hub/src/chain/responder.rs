//! The hub's urgent chain transactions (challenges, claims, settles) with rising fees
//! (ATTACKS F3). Nothing here decides whether an action is due: the guard and the follower
//! derive that again from the chain's state and the store each time, so a restart forgets
//! nothing that matters. What the responder keeps is how each action fared: one that is still
//! due `resubmit_secs` after its last submission goes again at double the fee (up to
//! `guard.max_fee`), replacing the waiting transaction at its nonce, so that blocks full of
//! higher-fee transactions cannot keep it out until the window closes.

use sluice_chain_client::{Broadcaster, ClientError, TxSender};
use sluice_protocol::{Amount, Hash32, TxKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the hub does on chain about a subject (a channel or a hashlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Challenge,
    RegisterSecret,
    Close,
    Settle,
}

/// The last submission of one action.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// The nonce it waits at, if the submission was taken (a replacement goes there).
    nonce: Option<u64>,
    fee: Amount,
    at: Instant,
}

/// Generic over where transactions go: the chain's [`TxSender`], or a recorder in tests.
pub struct Responder<B = TxSender> {
    out: Arc<B>,
    base_fee: Amount,
    max_fee: Amount,
    every: Duration,
    last: Mutex<HashMap<(Hash32, Action), Attempt>>,
}

/// Entries untouched for this long belong to actions no longer due.
const FORGET_AFTER: Duration = Duration::from_secs(600);

impl<B: Broadcaster> Responder<B> {
    pub fn new(out: Arc<B>, base_fee: Amount, max_fee: Amount, every: Duration) -> Self {
        Responder {
            out,
            base_fee: base_fee.max(1),
            max_fee: max_fee.max(base_fee),
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Submits `kind`, which is due, unless it was submitted within the resubmit period: the
    /// first time at the base fee, later at double the previous fee, replacing the earlier
    /// transaction. `Ok(None)`: not submitted now (too soon).
    pub async fn act(
        &self,
        subject: Hash32,
        action: Action,
        kind: TxKind,
    ) -> Result<Option<Hash32>, ClientError> {
        let Some((nonce, fee)) = self.next_attempt(subject, action) else {
            return Ok(None);
        };
        let sent = match nonce {
            Some(n) => self
                .out
                .replace(n, kind.clone(), fee)
                .await
                .map(|id| (id, n)),
            None => self.out.submit(kind.clone(), fee).await,
        };
        // A replacement refused: our transaction at that nonce was included (the next round
        // sees whether the action is still due) or is gone; either way start at a new nonce.
        let sent = match (sent, nonce) {
            (Err(e), Some(n)) => {
                tracing::info!(%subject, ?action, nonce = n, error = %e, "replacement refused; submitting anew");
                self.out.submit(kind, fee).await
            }
            (sent, _) => sent,
        };
        let taken = sent.as_ref().ok().map(|(_, n)| *n);
        self.remember(subject, action, taken, fee);
        let (id, _) = sent?;
        tracing::info!(%subject, ?action, fee, nonce = ?taken, tx = %id, "submitted");
        Ok(Some(id))
    }

    /// The nonce to replace (if any) and the fee of the next submission, if one is due now.
    fn next_attempt(&self, subject: Hash32, action: Action) -> Option<(Option<u64>, Amount)> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        last.retain(|_, a| now.duration_since(a.at) < FORGET_AFTER);
        match last.get(&(subject, action)) {
            None => Some((None, self.base_fee)),
            Some(a) if now.duration_since(a.at) < self.every => None,
            Some(a) => Some((a.nonce, a.fee.saturating_mul(2).min(self.max_fee))),
        }
    }

    fn remember(&self, subject: Hash32, action: Action, nonce: Option<u64>, fee: Amount) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let attempt = Attempt {
            nonce,
            fee,
            at: Instant::now(),
        };
        last.insert((subject, action), attempt);
    }
}

impl Responder<TxSender> {
    /// The chain the responder sends to, for the reads that decide what is due.
    pub fn chain(&self) -> &TxSender {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_chain_client::broadcast::Broadcast;
    use sluice_chain_client::Recorder;

    fn settle() -> TxKind {
        TxKind::Settle {
            channel_id: Hash32([7; 32]),
        }
    }

    fn responder(every: Duration) -> (Arc<Recorder>, Responder<Recorder>) {
        let out = Arc::new(Recorder::new());
        (out.clone(), Responder::new(out, 10, 50, every))
    }

    fn fees(sent: &[Broadcast]) -> Vec<(u64, Amount, bool)> {
        sent.iter().map(|b| (b.nonce, b.fee, b.replaces)).collect()
    }

    #[tokio::test]
    async fn a_due_action_goes_once_per_period() {
        let (out, r) = responder(Duration::from_secs(60));
        let id = Hash32([1; 32]);
        assert!(r.act(id, Action::Settle, settle()).await.unwrap().is_some());
        assert_eq!(r.act(id, Action::Settle, settle()).await.unwrap(), None);
        // Another subject or action is its own.
        assert!(r
            .act(id, Action::Challenge, settle())
            .await
            .unwrap()
            .is_some());
        assert_eq!(fees(&out.sent()), vec![(0, 10, false), (1, 10, false)]);
    }

    #[tokio::test]
    async fn still_due_it_replaces_itself_at_double_the_fee_up_to_the_cap() {
        let (out, r) = responder(Duration::ZERO);
        let id = Hash32([1; 32]);
        for _ in 0..4 {
            r.act(id, Action::Challenge, settle()).await.unwrap();
        }
        let want = vec![(0, 10, false), (0, 20, true), (0, 40, true), (0, 50, true)];
        assert_eq!(fees(&out.sent()), want);
    }

    #[tokio::test]
    async fn a_refused_replacement_starts_at_a_fresh_nonce() {
        let (out, r) = responder(Duration::ZERO);
        let id = Hash32([1; 32]);
        r.act(id, Action::Close, settle()).await.unwrap();
        out.refuse_replacements();
        r.act(id, Action::Close, settle()).await.unwrap();
        assert_eq!(fees(&out.sent()), vec![(0, 10, false), (1, 20, false)]);
    }
}
