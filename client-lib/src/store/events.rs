//! The event log: what the wallet announced, numbered, so an app can read what it missed.
//!
//! Rows are appended inside the caller's transaction when the event describes a state change
//! committed with it ([`append_in`]), or on their own just before the announcement
//! ([`Store::append_event`]). The log keeps the newest [`EVENT_RETENTION`] rows: each append
//! deletes what fell out of that window, a range delete on the primary key that touches only
//! the rows it removes (usually one), so the table never needs a separate cleanup job.

use super::{now, parse_json, to_json, Store};
use crate::error::{Result, WalletError};
use crate::events::{StoredEvent, WalletEvent};

/// How many of the newest events the log keeps. An app further behind than this resumes at the
/// oldest kept event (the first `seq` it reads is then above its cursor + 1).
pub const EVENT_RETENTION: u64 = 100_000;

/// The most events one [`Store::events_since`] call returns; a larger limit is capped.
pub const EVENT_PAGE_MAX: u32 = 1_000;

impl Store {
    /// Appends one event on its own (for events that go with no committed state change, or
    /// whose change was stored by an earlier write); returns it as stored.
    pub(crate) async fn append_event(&self, event: &WalletEvent) -> Result<StoredEvent> {
        let mut tx = self.pool().begin().await?;
        let mut stored = append_in(&mut tx, std::slice::from_ref(event)).await?;
        tx.commit().await?;
        stored
            .pop()
            .ok_or_else(|| WalletError::Corrupt("event log: nothing appended".into()))
    }

    /// Stored events with `seq` above `cursor`, oldest first, at most `limit` (capped at
    /// [`EVENT_PAGE_MAX`]). Page through by passing the last `seq` read as the next cursor.
    pub async fn events_since(&self, cursor: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        let limit = limit.min(EVENT_PAGE_MAX);
        let cursor = i64::try_from(cursor).unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT seq, at, event FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(cursor)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(decode).collect()
    }
}

fn seq_of(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| WalletError::Corrupt(format!("event seq {seq}")))
}

fn decode((seq, at, event): (i64, i64, String)) -> Result<StoredEvent> {
    Ok(StoredEvent {
        seq: seq_of(seq)?,
        at,
        event: parse_json("event", &event)?,
    })
}

/// Appends `events` in the caller's transaction, so they commit (or roll back) with the state
/// they describe; returns them with their numbers, to announce once committed.
pub(crate) async fn append_in(
    tx: &mut sqlx::SqliteConnection,
    events: &[WalletEvent],
) -> Result<Vec<StoredEvent>> {
    append_keeping(tx, events, EVENT_RETENTION).await
}

async fn append_keeping(
    tx: &mut sqlx::SqliteConnection,
    events: &[WalletEvent],
    keep: u64,
) -> Result<Vec<StoredEvent>> {
    let at = now();
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        let seq = sqlx::query("INSERT INTO events (at, event) VALUES (?, ?)")
            .bind(at)
            .bind(to_json(event))
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        stored.push(StoredEvent {
            seq: seq_of(seq)?,
            at,
            event: event.clone(),
        });
    }
    if let Some(last) = stored.last() {
        prune(tx, last.seq, keep).await?;
    }
    Ok(stored)
}

/// Deletes every event more than `keep` behind `last`.
async fn prune(tx: &mut sqlx::SqliteConnection, last: u64, keep: u64) -> Result<()> {
    let Some(floor) = last.checked_sub(keep) else {
        return Ok(());
    };
    sqlx::query("DELETE FROM events WHERE seq <= ?")
        .bind(i64::try_from(floor).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u64) -> WalletEvent {
        WalletEvent::SecretRegistered {
            hashlock: sluice_protocol::sha256(&i.to_be_bytes()),
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("wallet.db")).await.unwrap();
        (dir, store)
    }

    async fn append_many(store: &Store, n: u64, keep: u64) {
        let events: Vec<_> = (0..n).map(event).collect();
        let mut tx = store.pool().begin().await.unwrap();
        for chunk in events.chunks(100) {
            append_keeping(&mut tx, chunk, keep).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn events_come_back_in_order_with_growing_seq() {
        let (_dir, store) = store().await;
        let first = store.append_event(&event(0)).await.unwrap();
        let second = store.append_event(&event(1)).await.unwrap();
        assert_eq!((first.seq, second.seq), (1, 2));
        let all = store.events_since(0, 10).await.unwrap();
        assert_eq!(all, vec![first.clone(), second.clone()]);
        assert_eq!(store.events_since(1, 10).await.unwrap(), vec![second]);
        assert!(store.events_since(2, 10).await.unwrap().is_empty());
        assert!(store.events_since(u64::MAX, 10).await.unwrap().is_empty());
        assert!(store.events_since(0, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_page_is_capped_at_the_maximum() {
        let (_dir, store) = store().await;
        append_many(&store, u64::from(EVENT_PAGE_MAX) + 5, EVENT_RETENTION).await;
        let page = store.events_since(0, u32::MAX).await.unwrap();
        assert_eq!(page.len(), EVENT_PAGE_MAX as usize);
        assert_eq!(page.last().unwrap().seq, u64::from(EVENT_PAGE_MAX));
        let rest = store.events_since(page.last().unwrap().seq, u32::MAX).await;
        assert_eq!(rest.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn the_log_keeps_only_the_newest_events_and_never_reuses_a_seq() {
        let (_dir, store) = store().await;
        append_many(&store, 250, 100).await;
        let kept = store.events_since(0, 1_000).await.unwrap();
        let seqs: Vec<u64> = kept.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (151..=250).collect::<Vec<_>>());
        assert_eq!(kept[0].event, event(150));
        let mut tx = store.pool().begin().await.unwrap();
        let next = append_keeping(&mut tx, &[event(7)], 100).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(next[0].seq, 251);
        let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(count.0, 100);
    }

    #[tokio::test]
    async fn the_default_retention_bounds_the_table() {
        let (_dir, store) = store().await;
        append_many(&store, EVENT_RETENTION + 3, EVENT_RETENTION).await;
        let first = store.events_since(0, 1).await.unwrap();
        assert_eq!(first[0].seq, 4);
        let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(count.0 as u64, EVENT_RETENTION);
    }
}
