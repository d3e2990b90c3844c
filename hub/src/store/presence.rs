//! Which hub process holds which client's session (Postgres only: several processes share one
//! store there; an SQLite hub is one process and has nobody to tell). A presence counts while
//! its process's heartbeat is fresh, so a SIGKILLed process's clients stop counting as online.

use super::codec::{int, uint};
use super::{Db, Store, StoreError};
use sluice_protocol::Address;

impl Store {
    /// Records that process `process` is alive at `now_ms`.
    pub async fn heartbeat(&self, process: &str, now_ms: u64) -> Result<(), StoreError> {
        let Db::Pg(p) = &self.db else { return Ok(()) };
        sqlx::query(
            "INSERT INTO hub_processes (id, alive_ms) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET alive_ms = EXCLUDED.alive_ms",
        )
        .bind(process)
        .bind(int(now_ms)?)
        .execute(p)
        .await?;
        Ok(())
    }

    /// Forgets a process that stops, with the presences it held.
    pub async fn process_stopped(&self, process: &str) -> Result<(), StoreError> {
        let Db::Pg(p) = &self.db else { return Ok(()) };
        sqlx::query("DELETE FROM client_presence WHERE process = $1")
            .bind(process)
            .execute(p)
            .await?;
        sqlx::query("DELETE FROM hub_processes WHERE id = $1")
            .bind(process)
            .execute(p)
            .await?;
        Ok(())
    }

    /// Forgets processes silent since before `before_ms` (SIGKILLed ones), with their presences.
    pub async fn forget_dead_processes(&self, before_ms: u64) -> Result<(), StoreError> {
        let Db::Pg(p) = &self.db else { return Ok(()) };
        let before = int(before_ms)?;
        sqlx::query(
            "DELETE FROM client_presence WHERE process IN
             (SELECT id FROM hub_processes WHERE alive_ms < $1)",
        )
        .bind(before)
        .execute(p)
        .await?;
        sqlx::query("DELETE FROM hub_processes WHERE alive_ms < $1")
            .bind(before)
            .execute(p)
            .await?;
        Ok(())
    }

    /// `client`'s session `session` is now held by `process` (a later login elsewhere takes
    /// the row over).
    pub async fn session_opened(
        &self,
        client: &Address,
        process: &str,
        session: u64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO client_presence (client, process, session) VALUES ($1, $2, $3)
             ON CONFLICT (client) DO UPDATE SET process = EXCLUDED.process, session = EXCLUDED.session";
        self.presence_write(sql, client, process, session).await
    }

    /// `client`'s session `session` on `process` ended; a newer one (here or elsewhere) stays.
    pub async fn session_closed(
        &self,
        client: &Address,
        process: &str,
        session: u64,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM client_presence WHERE client = $1 AND process = $2 AND session = $3";
        self.presence_write(sql, client, process, session).await
    }

    /// Runs `sql` on (client, process, session) (Postgres only).
    async fn presence_write(
        &self,
        sql: &str,
        client: &Address,
        process: &str,
        session: u64,
    ) -> Result<(), StoreError> {
        let Db::Pg(p) = &self.db else { return Ok(()) };
        sqlx::query(sql)
            .bind(&client.0[..])
            .bind(process)
            .bind(int(session)?)
            .execute(p)
            .await?;
        Ok(())
    }

    /// The process other than `me` holding `client`'s session, if its heartbeat is newer than
    /// `alive_after_ms`.
    pub async fn held_elsewhere(
        &self,
        client: &Address,
        me: &str,
        alive_after_ms: u64,
    ) -> Result<Option<String>, StoreError> {
        let Db::Pg(p) = &self.db else { return Ok(None) };
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT c.process, h.alive_ms FROM client_presence c
             JOIN hub_processes h ON h.id = c.process
             WHERE c.client = $1 AND c.process <> $2",
        )
        .bind(&client.0[..])
        .bind(me)
        .fetch_optional(p)
        .await?;
        match row {
            Some((process, alive)) if uint(alive)? > alive_after_ms => Ok(Some(process)),
            _ => Ok(None),
        }
    }
}
