//! Sync history that stays bounded: each query's text is stored once, and runs
//! older than the retention period are swept, keeping each link's latest run
//! of every outcome so its details can always say what happened last.

use crate::db::{Database, DbError};
use crate::goals::clock::Timestamp;
use crate::params;
use crate::sql::{Sql, SqlError};

/// How long runs are kept unless configured otherwise.
pub const DEFAULT_KEEP_DAYS: u32 = 90;

/// The id of `text` in the table of query texts, adding it when new.
pub(crate) fn query_id(tx: &Sql<'_>, text: &str) -> Result<i64, SqlError> {
    let known: Option<i64> = tx.query_opt(
        "SELECT id FROM sync_queries WHERE text = ?1",
        params![text],
        |r| r.get(0),
    )?;
    if let Some(id) = known {
        return Ok(id);
    }
    // Another host may add the same text at the same time: its row wins, and
    // is read back once its transaction commits.
    tx.execute(
        "INSERT INTO sync_queries (text) VALUES (?1) ON CONFLICT (text) DO NOTHING",
        params![text],
    )?;
    tx.query_row(
        "SELECT id FROM sync_queries WHERE text = ?1",
        params![text],
        |r| r.get(0),
    )
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub runs: usize,
    pub queries: usize,
}

/// Removes finished runs that started more than `keep_days` before `now`,
/// except back-filled ones and each link's newest run of each status, and the
/// query texts no run refers to any more.
pub async fn sweep(db: &Database, now: Timestamp, keep_days: u32) -> Result<Swept, DbError> {
    let cutoff = now.saturating_sub(i64::from(keep_days).saturating_mul(86_400));
    db.run(move |conn| {
        let tx = conn.transaction()?;
        let runs = tx.execute(
            "DELETE FROM sync_runs
             WHERE started_at < ?1 AND status != 'running' AND backfilled = 0
               AND id NOT IN (
                   SELECT max(id) FROM sync_runs GROUP BY key_result_id, status
               )",
            params![cutoff],
        )?;
        let queries = tx.execute(
            "DELETE FROM sync_queries WHERE NOT EXISTS (
                 SELECT 1 FROM sync_runs WHERE sync_runs.query_id = sync_queries.id
             )",
            params![],
        )?;
        tx.commit()?;
        Ok(Swept { runs, queries })
    })
    .await
}
