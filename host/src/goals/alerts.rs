//! Open problems, one row per episode: opened when a problem appears, closed
//! when it is fixed, whatever the number of failed runs in between.

use crate::db::{Database, DbError};
use crate::goals::clock::Timestamp;
use crate::goals::keyresults::ItemKind;
use crate::params;
use crate::sql::{Row, Sql, SqlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    NeedsSignIn,
    BrokenLink,
    Stale,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::NeedsSignIn => "needs-sign-in",
            AlertKind::BrokenLink => "broken-link",
            AlertKind::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub kind: String,
    /// `connection:<id>` or `kr:<id>`.
    pub subject: String,
    pub message: String,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

pub fn kr_subject(key_result_id: i64) -> String {
    format!("kr:{key_result_id}")
}

pub fn connection_subject(connection_id: &str) -> String {
    format!("connection:{connection_id}")
}

/// Opens an alert unless one is open for the same problem.
pub fn open(
    tx: &Sql<'_>,
    kind: AlertKind,
    subject: &str,
    message: &str,
    now: Timestamp,
) -> Result<(), SqlError> {
    tx.execute(
        "INSERT INTO alerts (kind, subject, message, opened_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, subject) WHERE closed_at IS NULL DO NOTHING",
        params![kind.as_str(), subject, message, now],
    )?;
    Ok(())
}

pub fn close(tx: &Sql<'_>, kind: AlertKind, subject: &str, now: Timestamp) -> Result<(), SqlError> {
    tx.execute(
        "UPDATE alerts SET closed_at = ?3 WHERE kind = ?1 AND subject = ?2 AND closed_at IS NULL",
        params![kind.as_str(), subject, now],
    )?;
    Ok(())
}

/// Opens a stale alert for every active link without a success for more than
/// two intervals.
pub async fn open_stale(db: &Database, now: Timestamp) -> Result<(), DbError> {
    db.run(move |conn| {
        let tx = conn.transaction()?;
        let stale: Vec<(i64, i64, String)> = tx.query_map(
            "SELECT l.key_result_id, l.interval_seconds, k.kind
                 FROM metric_links l JOIN key_results k ON k.id = l.key_result_id
                 WHERE l.state = 'active'
                   AND coalesce(l.last_success_at, l.created_at) < ?1 - 2 * l.interval_seconds",
            params![now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        for (kr, interval, kind) in stale {
            let noun = ItemKind::parse(&kind).unwrap_or(ItemKind::KeyResult).noun();
            open(
                &tx,
                AlertKind::Stale,
                &kr_subject(kr),
                &format!(
                    "{noun} {kr} has had no successful sync for more than two intervals ({} s)",
                    interval.saturating_mul(2)
                ),
                now,
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

fn alert_row(r: &Row) -> Result<Alert, SqlError> {
    Ok(Alert {
        id: r.get("id")?,
        kind: r.get("kind")?,
        subject: r.get("subject")?,
        message: r.get("message")?,
        opened_at: r.get("opened_at")?,
        closed_at: r.get("closed_at")?,
    })
}

/// Alerts, open ones only unless `all`.
/// Opens a needs-sign-in alert for each connection whose stored sign-in this
/// host's secret key cannot open (the key file was lost or replaced): the
/// problem shows in `alerts` before any sync fails on it.
pub async fn open_lost_keys(db: &Database, now: Timestamp) -> Result<(), DbError> {
    let lost: Vec<crate::connections::ConnectionRecord> = crate::connections::list(db, None)
        .await
        .map_err(|error| match error {
            crate::connections::ConnectionError::Db(error) => error,
            other => DbError::Task(other.to_string()),
        })?
        .into_iter()
        .filter(|c| c.key_lost)
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    let source = db.keyring().source().to_string();
    db.run(move |conn| {
        let tx = conn.transaction()?;
        for connection in &lost {
            open(
                &tx,
                AlertKind::NeedsSignIn,
                &connection_subject(&connection.id),
                &format!(
                    "connection '{}' needs sign-in: its stored sign-in cannot be opened with \
                     the secret key from {source}. Restore the key it was sealed with (it is \
                     backed up with goals.db), or sign in again: {}",
                    connection.name,
                    connection.sign_in_command()
                ),
                now,
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

pub async fn list(db: &Database, all: bool) -> Result<Vec<Alert>, DbError> {
    db.run(move |conn| {
        let rows = conn.query_map(
            "SELECT * FROM alerts WHERE CAST(?1 AS BIGINT) = 1 OR closed_at IS NULL ORDER BY opened_at, id",
            params![all],
            alert_row,
        )?;
        Ok(rows)
    })
    .await
}

/// The open alerts about one organization's Key Results and connections.
pub async fn open_of_organization(
    db: &Database,
    organization_id: i64,
) -> Result<Vec<Alert>, DbError> {
    db.run(move |conn| {
        Ok(conn.query_map(
            "SELECT a.* FROM alerts a WHERE a.closed_at IS NULL AND (
                 a.subject IN (SELECT 'kr:' || CAST(k.id AS TEXT) FROM key_results k
                               WHERE k.organization_id = ?1)
                 OR a.subject IN (SELECT 'connection:' || c.id FROM connections c
                                  WHERE c.organization_id = ?1))
             ORDER BY a.opened_at, a.id",
            params![organization_id],
            alert_row,
        )?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_organization_sees_the_alerts_about_its_own_things() {
        use crate::goals::{admin, keyresults};
        let db = Database::open_in_memory().unwrap();
        admin::create_tenant(&db, "Fabrikam", 1).await.unwrap();
        let other = admin::create_organization(&db, "Support", "Fabrikam", 1)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for organization_id in [1, other.id] {
            let kr = keyresults::create(
                &db,
                keyresults::NewKeyResult {
                    kind: ItemKind::KeyResult,
                    parent_id: None,
                    due_date: None,
                    period: Default::default(),
                    organization_id,
                    title: "Pipeline".to_string(),
                    owner: "ana".to_string(),
                    unit: crate::goals::progress::Unit::Number,
                    currency_code: None,
                    start: 0.0,
                    target: 1.0,
                    direction: crate::goals::progress::Direction::Increase,
                },
                1,
            )
            .await
            .unwrap();
            ids.push(kr.id);
        }
        let subjects: Vec<String> = ids.iter().map(|id| kr_subject(*id)).collect();
        db.run(move |conn| {
            let tx = conn.transaction()?;
            for subject in &subjects {
                open(&tx, AlertKind::Stale, subject, "stale", 10)?;
            }
            open(&tx, AlertKind::BrokenLink, &subjects[0], "gone", 11)?;
            close(&tx, AlertKind::BrokenLink, &subjects[0], 12)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
        let own = open_of_organization(&db, 1).await.unwrap();
        assert_eq!(own.len(), 1, "{own:?}");
        assert_eq!(own[0].subject, kr_subject(ids[0]));
        let theirs = open_of_organization(&db, other.id).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].subject, kr_subject(ids[1]));
    }

    #[tokio::test]
    async fn one_alert_per_episode() {
        let db = Database::open_in_memory().unwrap();
        db.run(|conn| {
            let tx = conn.transaction()?;
            for now in [10, 20, 30] {
                open(&tx, AlertKind::BrokenLink, "kr:1", "gone", now)?;
            }
            close(&tx, AlertKind::BrokenLink, "kr:1", 40)?;
            open(&tx, AlertKind::BrokenLink, "kr:1", "gone again", 50)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
        let open_now = list(&db, false).await.unwrap();
        assert_eq!(open_now.len(), 1);
        assert_eq!(open_now[0].message, "gone again");
        let every = list(&db, true).await.unwrap();
        assert_eq!(every.len(), 2, "two episodes, not one per failed run");
        assert_eq!(every[0].closed_at, Some(40));
    }
}
