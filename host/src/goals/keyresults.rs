//! Key Results and the metric links that feed them.

use crate::bindings::{Aggregation, CurrencyChoice, ViewKind, ViewRef};
use crate::db::{Database, DbError};
use crate::goals::clock::Timestamp;
use crate::goals::progress::{Direction, Unit};
use crate::names;
use crate::params;
use crate::sql::{Row, SqlError};

#[derive(Debug, thiserror::Error)]
pub enum KeyResultError {
    #[error("no Key Result '{0}'; list them with `goals-host kr list`")]
    NotFound(String),
    #[error(
        "no Key Result '{reference}' in organization '{organization}'; list them with `goals-host kr list --org {organization}`"
    )]
    NotInOrganization {
        reference: String,
        organization: String,
    },
    #[error("several Key Results are titled '{title}' (ids {}); use an id", .ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))]
    Ambiguous { title: String, ids: Vec<i64> },
    #[error("Key Result {0} is not linked to a metric; link it with `goals-host kr link`")]
    NotLinked(i64),
    #[error("invalid Key Result: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The longest interval between syncs a link may have.
pub const MAX_INTERVAL_SECONDS: i64 = 31 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct NewKeyResult {
    pub organization_id: i64,
    pub title: String,
    pub owner: String,
    pub unit: Unit,
    pub currency_code: Option<String>,
    pub start: f64,
    pub target: f64,
    pub direction: Direction,
}

#[derive(Debug, Clone)]
pub struct KeyResult {
    pub id: i64,
    pub organization_id: i64,
    pub title: String,
    pub owner: String,
    pub unit: Unit,
    pub currency_code: Option<String>,
    pub start: f64,
    pub target: f64,
    pub direction: Direction,
    pub current_value: Option<f64>,
    /// `sync` or `check-in`.
    pub current_source: Option<String>,
    pub current_at: Option<Timestamp>,
}

/// Whether a link's scheduled syncs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Active,
    /// Paused by a person: scheduled syncs stop, the value stays as it is.
    Paused,
    /// The view or column is gone: syncs stop until the link is redone.
    Broken,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Active => "active",
            LinkState::Paused => "paused",
            LinkState::Broken => "broken",
        }
    }

    fn parse(text: &str) -> LinkState {
        match text {
            "paused" => LinkState::Paused,
            "broken" => LinkState::Broken,
            _ => LinkState::Active,
        }
    }
}

/// The metric a Key Result is linked to, as chosen in the link wizard.
#[derive(Debug, Clone)]
pub struct MetricChoice {
    pub connection_id: String,
    pub app_id: String,
    pub app_name: String,
    pub entity: String,
    pub entity_name: String,
    pub view: ViewRef,
    pub view_name: String,
    pub column: String,
    pub column_display: String,
    pub aggregation: Aggregation,
    pub currency: CurrencyChoice,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub key_result_id: i64,
    pub metric: MetricChoice,
    pub interval_seconds: i64,
    pub state: LinkState,
    pub state_reason: Option<String>,
    pub next_run_at: Timestamp,
    pub failures: i64,
    pub running_since: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

fn key_result_row(r: &Row) -> Result<KeyResult, SqlError> {
    Ok(KeyResult {
        id: r.get("id")?,
        organization_id: r.get("organization_id")?,
        title: r.get("title")?,
        owner: r.get("owner")?,
        unit: Unit::parse(&r.get::<String>("unit")?).unwrap_or(Unit::Number),
        currency_code: r.get("currency_code")?,
        start: r.get("start_value")?,
        target: r.get("target_value")?,
        direction: Direction::parse(&r.get::<String>("direction")?).unwrap_or(Direction::Increase),
        current_value: r.get("current_value")?,
        current_source: r.get("current_source")?,
        current_at: r.get("current_at")?,
    })
}

pub(crate) fn link_row(r: &Row) -> Result<Link, SqlError> {
    Ok(Link {
        key_result_id: r.get("key_result_id")?,
        metric: MetricChoice {
            connection_id: r.get("connection_id")?,
            app_id: r.get("app_id")?,
            app_name: r.get("app_name")?,
            entity: r.get("entity")?,
            entity_name: r.get("entity_name")?,
            view: ViewRef {
                id: r.get("view_id")?,
                kind: if r.get::<String>("view_kind")? == "personal" {
                    ViewKind::Personal
                } else {
                    ViewKind::System
                },
            },
            view_name: r.get("view_name")?,
            column: r.get("column_name")?,
            column_display: r.get("column_display")?,
            aggregation: names::parse_aggregation(&r.get::<String>("aggregation")?)
                .unwrap_or(Aggregation::Count),
            currency: if r.get::<String>("currency")? == "transaction" {
                CurrencyChoice::Transaction
            } else {
                CurrencyChoice::Base
            },
        },
        interval_seconds: r.get("interval_seconds")?,
        state: LinkState::parse(&r.get::<String>("state")?),
        state_reason: r.get("state_reason")?,
        next_run_at: r.get("next_run_at")?,
        failures: r.get("failures")?,
        running_since: r.get("running_since")?,
        last_success_at: r.get("last_success_at")?,
        last_attempt_at: r.get("last_attempt_at")?,
        created_at: r.get("created_at")?,
    })
}

/// The error for `title` when another Key Result of the organization (not
/// `except`) has it already.
fn title_taken(
    tx: &crate::sql::Sql<'_>,
    organization_id: i64,
    title: &str,
    except: Option<i64>,
) -> Result<Option<KeyResultError>, SqlError> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM key_results WHERE organization_id = ?1 AND title = ?2
             AND (CAST(?3 AS BIGINT) IS NULL OR id <> ?3))",
        params![organization_id, title, except],
        |r| r.get(0),
    )?;
    Ok(taken.then(|| {
        KeyResultError::Invalid(format!(
            "the organization already has a Key Result titled '{title}'; titles are unique per \
             organization"
        ))
    }))
}

/// What is wrong with a Key Result's fields, if anything; its trimmed title.
fn checked(new: &NewKeyResult) -> Result<String, KeyResultError> {
    let title = new.title.trim().to_string();
    if title.is_empty() || title.len() > 200 {
        return Err(KeyResultError::Invalid(
            "the title must be 1 to 200 characters".to_string(),
        ));
    }
    for (what, text) in [("title", &title), ("owner", &new.owner)] {
        if let Some(hidden) = names::hidden_character(text) {
            return Err(KeyResultError::Invalid(format!(
                "the {what} holds the invisible character U+{:04X}; type it without control or \
                 text-direction characters",
                u32::from(hidden)
            )));
        }
    }
    if !new.start.is_finite() || !new.target.is_finite() || new.start == new.target {
        return Err(KeyResultError::Invalid(
            "start and target must be different numbers".to_string(),
        ));
    }
    let wrong_way = match new.direction {
        Direction::Increase => new.target < new.start,
        Direction::Decrease => new.target > new.start,
    };
    if wrong_way {
        return Err(KeyResultError::Invalid(format!(
            "a Key Result that should {} needs a target {} its start",
            new.direction.as_str(),
            if new.direction == Direction::Increase {
                "above"
            } else {
                "below"
            }
        )));
    }
    if new.unit != Unit::Currency && new.currency_code.is_some() {
        return Err(KeyResultError::Invalid(
            "only a currency Key Result has a currency code".to_string(),
        ));
    }
    Ok(title)
}

pub async fn create(
    db: &Database,
    new: NewKeyResult,
    now: Timestamp,
) -> Result<KeyResult, KeyResultError> {
    let title = checked(&new)?;
    let id = db
        .run(move |conn| {
            // Check and insert under one write lock: two processes creating the
            // same title at once cannot both pass the check.
            let tx = conn.transaction()?;
            if let Some(taken) = title_taken(&tx, new.organization_id, &title, None)? {
                return Ok(Err(taken));
            }
            let id = tx.query_row(
                "INSERT INTO key_results (organization_id, title, owner, unit, currency_code,
                     start_value, target_value, direction, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                params![
                    new.organization_id,
                    title,
                    new.owner,
                    new.unit.as_str(),
                    new.currency_code,
                    new.start,
                    new.target,
                    new.direction.as_str(),
                    now
                ],
                |r| r.get::<i64>(0),
            )?;
            tx.commit()?;
            Ok(Ok(id))
        })
        .await??;
    get_by_id(db, id).await
}

pub async fn get_by_id(db: &Database, id: i64) -> Result<KeyResult, KeyResultError> {
    db.run(move |conn| {
        Ok(conn.query_opt(
            "SELECT * FROM key_results WHERE id = ?1",
            params![id],
            key_result_row,
        )?)
    })
    .await?
    .ok_or_else(|| KeyResultError::NotFound(id.to_string()))
}

/// Changes a Key Result's fields (not its value or link), checked as on create.
pub async fn update(
    db: &Database,
    id: i64,
    change: impl FnOnce(&mut NewKeyResult),
) -> Result<KeyResult, KeyResultError> {
    let current = get_by_id(db, id).await?;
    let mut fields = NewKeyResult {
        organization_id: current.organization_id,
        title: current.title,
        owner: current.owner,
        unit: current.unit,
        currency_code: current.currency_code,
        start: current.start,
        target: current.target,
        direction: current.direction,
    };
    change(&mut fields);
    let title = checked(&fields)?;
    db.run(move |conn| {
        let tx = conn.transaction()?;
        if let Some(taken) = title_taken(&tx, fields.organization_id, &title, Some(id))? {
            return Ok(Err(taken));
        }
        tx.execute(
            "UPDATE key_results SET title = ?2, owner = ?3, unit = ?4, currency_code = ?5,
                 start_value = ?6, target_value = ?7, direction = ?8
             WHERE id = ?1",
            params![
                id,
                title,
                fields.owner,
                fields.unit.as_str(),
                fields.currency_code,
                fields.start,
                fields.target,
                fields.direction.as_str()
            ],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    })
    .await??;
    get_by_id(db, id).await
}

/// Deletes a Key Result with its link and history; its alerts close.
pub async fn delete(db: &Database, id: i64, now: Timestamp) -> Result<KeyResult, KeyResultError> {
    let gone = get_by_id(db, id).await?;
    db.run(move |conn| {
        let tx = conn.transaction()?;
        for kind in [
            crate::goals::alerts::AlertKind::Stale,
            crate::goals::alerts::AlertKind::BrokenLink,
        ] {
            crate::goals::alerts::close(&tx, kind, &crate::goals::alerts::kr_subject(id), now)?;
        }
        tx.execute(
            "DELETE FROM sync_runs WHERE key_result_id = ?1",
            params![id],
        )?;
        tx.execute(
            "DELETE FROM metric_links WHERE key_result_id = ?1",
            params![id],
        )?;
        tx.execute("DELETE FROM key_results WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(gone)
}

/// Where a Key Result is looked for: one organization (`--org`), or all.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub organization: Option<(i64, &'a str)>,
}

impl Scope<'_> {
    pub const ALL: Scope<'static> = Scope { organization: None };

    fn not_found(&self, reference: &str) -> KeyResultError {
        match self.organization {
            Some((_, name)) => KeyResultError::NotInOrganization {
                reference: reference.to_string(),
                organization: name.to_string(),
            },
            None => KeyResultError::NotFound(reference.to_string()),
        }
    }
}

/// A Key Result by id or exact title, inside `scope`.
pub async fn find(
    db: &Database,
    reference: &str,
    scope: Scope<'_>,
) -> Result<KeyResult, KeyResultError> {
    let organization = scope.organization.map(|(id, _)| id);
    let outside = |kr: &KeyResult| organization.is_some_and(|id| kr.organization_id != id);
    if let Ok(id) = reference.trim().parse::<i64>() {
        return match get_by_id(db, id).await {
            Ok(kr) if outside(&kr) => Err(scope.not_found(reference)),
            Err(KeyResultError::NotFound(_)) => Err(scope.not_found(reference)),
            other => other,
        };
    }
    let title = reference.trim().to_string();
    let mut found = db
        .run(move |conn| {
            let rows = conn.query_map(
                "SELECT * FROM key_results WHERE title = ?1
                     AND (CAST(?2 AS BIGINT) IS NULL OR organization_id = ?2)",
                params![&title, organization],
                key_result_row,
            )?;
            Ok(rows)
        })
        .await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(scope.not_found(reference)),
        _ => Err(KeyResultError::Ambiguous {
            title: reference.to_string(),
            ids: found.iter().map(|k| k.id).collect(),
        }),
    }
}

pub async fn list(
    db: &Database,
    organization_id: Option<i64>,
) -> Result<Vec<KeyResult>, KeyResultError> {
    Ok(db
        .run(move |conn| {
            let rows = conn.query_map(
                "SELECT * FROM key_results WHERE CAST(?1 AS BIGINT) IS NULL OR organization_id = ?1 ORDER BY id",
                params![organization_id],
                key_result_row,
            )?;
            Ok(rows)
        })
        .await?)
}

/// A manual check-in: the value stays until the next sync replaces it.
pub async fn check_in(
    db: &Database,
    id: i64,
    value: f64,
    now: Timestamp,
) -> Result<KeyResult, KeyResultError> {
    if !value.is_finite() {
        return Err(KeyResultError::Invalid(
            "the value must be a number".to_string(),
        ));
    }
    let changed = db
        .run(move |conn| {
            Ok(conn.execute(
                "UPDATE key_results SET current_value = ?2, current_source = 'check-in',
                     current_at = ?3 WHERE id = ?1",
                params![id, value, now],
            )?)
        })
        .await?;
    if changed == 0 {
        return Err(KeyResultError::NotFound(id.to_string()));
    }
    get_by_id(db, id).await
}

pub async fn link(db: &Database, key_result_id: i64) -> Result<Option<Link>, KeyResultError> {
    Ok(db
        .run(move |conn| {
            Ok(conn.query_opt(
                "SELECT * FROM metric_links WHERE key_result_id = ?1",
                params![key_result_id],
                link_row,
            )?)
        })
        .await?)
}

/// The links of an organization's Key Results, in one query.
pub async fn links_of_organization(
    db: &Database,
    organization_id: i64,
) -> Result<Vec<Link>, KeyResultError> {
    Ok(db
        .run(move |conn| {
            Ok(conn.query_map(
                "SELECT l.* FROM metric_links l JOIN key_results k ON k.id = l.key_result_id
                 WHERE k.organization_id = ?1",
                params![organization_id],
                link_row,
            )?)
        })
        .await?)
}

/// Links (or relinks) a Key Result to a metric. The link is due at once, so the
/// first sync gives the Key Result its value; later ones follow the interval.
pub async fn save_link(
    db: &Database,
    key_result_id: i64,
    metric: MetricChoice,
    interval_seconds: i64,
    now: Timestamp,
) -> Result<Link, KeyResultError> {
    if !(1..=MAX_INTERVAL_SECONDS).contains(&interval_seconds) {
        return Err(KeyResultError::Invalid(
            "the sync interval must be between one second and 31 days".to_string(),
        ));
    }
    db.run(move |conn| {
        conn.execute(
            "INSERT INTO metric_links (key_result_id, connection_id, app_id, app_name, entity,
                 entity_name, view_id, view_kind, view_name, column_name, column_display,
                 aggregation, currency, interval_seconds, state, next_run_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'active', ?15, ?15)
             ON CONFLICT (key_result_id) DO UPDATE SET
                 connection_id = excluded.connection_id, app_id = excluded.app_id,
                 app_name = excluded.app_name, entity = excluded.entity,
                 entity_name = excluded.entity_name, view_id = excluded.view_id,
                 view_kind = excluded.view_kind, view_name = excluded.view_name,
                 column_name = excluded.column_name, column_display = excluded.column_display,
                 aggregation = excluded.aggregation, currency = excluded.currency,
                 interval_seconds = excluded.interval_seconds, state = 'active',
                 state_reason = NULL, next_run_at = excluded.next_run_at, failures = 0",
            params![
                key_result_id,
                metric.connection_id,
                metric.app_id,
                metric.app_name,
                metric.entity,
                metric.entity_name,
                metric.view.id,
                names::view_kind_name(metric.view.kind),
                metric.view_name,
                metric.column,
                metric.column_display,
                names::aggregation_name(metric.aggregation),
                names::currency_name(metric.currency),
                interval_seconds,
                now
            ],
        )?;
        Ok(())
    })
    .await?;
    link(db, key_result_id)
        .await?
        .ok_or(KeyResultError::NotLinked(key_result_id))
}

/// Removes the link; the Key Result keeps its value and its open alerts close.
pub async fn unlink(
    db: &Database,
    key_result_id: i64,
    now: Timestamp,
) -> Result<(), KeyResultError> {
    let changed = db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "DELETE FROM metric_links WHERE key_result_id = ?1",
                params![key_result_id],
            )?;
            tx.execute(
                "UPDATE alerts SET closed_at = ?2
                 WHERE subject = 'kr:' || ?1 AND closed_at IS NULL",
                params![key_result_id, now],
            )?;
            tx.commit()?;
            Ok(changed)
        })
        .await?;
    if changed == 0 {
        return Err(KeyResultError::NotLinked(key_result_id));
    }
    Ok(())
}

/// A broken link made active and due now, for a re-check: the sync that follows
/// confirms it, or breaks it again.
pub async fn reactivate(
    db: &Database,
    key_result_id: i64,
    now: Timestamp,
) -> Result<(), KeyResultError> {
    let changed = db
        .run(move |conn| {
            Ok(conn.execute(
                "UPDATE metric_links SET state = 'active', state_reason = NULL, failures = 0,
                     next_run_at = ?2 WHERE key_result_id = ?1 AND state = 'broken'",
                params![key_result_id, now],
            )?)
        })
        .await?;
    if changed == 0 {
        return Err(KeyResultError::NotLinked(key_result_id));
    }
    Ok(())
}

/// Pauses or resumes scheduled syncs; resuming makes the link due at once.
pub async fn set_paused(
    db: &Database,
    key_result_id: i64,
    paused: bool,
    now: Timestamp,
) -> Result<Link, KeyResultError> {
    let changed = db
        .run(move |conn| {
            Ok(if paused {
                conn.execute(
                    "UPDATE metric_links SET state = 'paused', state_reason = 'paused by a person'
                     WHERE key_result_id = ?1",
                    params![key_result_id],
                )?
            } else {
                conn.execute(
                    "UPDATE metric_links SET state = 'active', state_reason = NULL,
                         next_run_at = ?2 WHERE key_result_id = ?1 AND state = 'paused'",
                    params![key_result_id, now],
                )? + conn.query_row(
                    "SELECT count(*) FROM metric_links WHERE key_result_id = ?1",
                    params![key_result_id],
                    |r| r.get::<usize>(0),
                )?
            })
        })
        .await?;
    if changed == 0 {
        return Err(KeyResultError::NotLinked(key_result_id));
    }
    link(db, key_result_id)
        .await?
        .ok_or(KeyResultError::NotLinked(key_result_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(title: &str) -> NewKeyResult {
        NewKeyResult {
            organization_id: 1,
            title: title.to_string(),
            owner: "ana".to_string(),
            unit: Unit::Number,
            currency_code: None,
            start: 0.0,
            target: 10.0,
            direction: Direction::Increase,
        }
    }

    #[tokio::test]
    async fn an_update_is_checked_as_a_create_and_keeps_titles_unique() {
        let db = Database::open_in_memory().expect("db");
        let first = create(&db, new("Pipeline"), 1).await.expect("first");
        create(&db, new("Leads"), 1).await.expect("second");
        // Its own title again is fine; another's is not.
        let same = update(&db, first.id, |f| f.owner = "bo".to_string())
            .await
            .expect("same title");
        assert_eq!(
            (same.title.as_str(), same.owner.as_str()),
            ("Pipeline", "bo")
        );
        let taken = update(&db, first.id, |f| f.title = "Leads".to_string()).await;
        assert!(matches!(taken, Err(KeyResultError::Invalid(m)) if m.contains("Leads")));
        let backwards = update(&db, first.id, |f| f.target = -5.0).await;
        assert!(matches!(backwards, Err(KeyResultError::Invalid(_))));
        assert_eq!(get_by_id(&db, first.id).await.expect("kept").target, 10.0);

        let gone = delete(&db, first.id, 2).await.expect("delete");
        assert_eq!(gone.id, first.id);
        assert!(matches!(
            get_by_id(&db, first.id).await,
            Err(KeyResultError::NotFound(_))
        ));
    }
}
