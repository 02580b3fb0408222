//! Key Results and the metric links that feed them.

use crate::bindings::{
    Aggregation, Chart, ChartMeasure, ChartSelection, CurrencyChoice, DateWindow, MetricSpec,
    ViewKind, ViewRef,
};
use crate::db::{Database, DbError};
use crate::goals::clock::{self, Timestamp};
use crate::goals::progress::{Direction, Unit};
use crate::names;
use crate::params;
use crate::sql::{Row, SqlError};

/// What a linkable item is. Key Results and Projects are one model (one
/// table, one link, sync, history and alert path); the kind names them and
/// decides which fields apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    KeyResult,
    Project,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::KeyResult => "key-result",
            ItemKind::Project => "project",
        }
    }

    pub fn parse(text: &str) -> Option<ItemKind> {
        match text {
            "key-result" => Some(ItemKind::KeyResult),
            "project" => Some(ItemKind::Project),
            _ => None,
        }
    }

    /// How people call one: "Key Result", "Project".
    pub fn noun(self) -> &'static str {
        match self {
            ItemKind::KeyResult => "Key Result",
            ItemKind::Project => "Project",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            ItemKind::KeyResult => "Key Results",
            ItemKind::Project => "Projects",
        }
    }

    /// The member naming one in JSON documents: `key_result`, `project`.
    pub fn json_key(self) -> &'static str {
        match self {
            ItemKind::KeyResult => "key_result",
            ItemKind::Project => "project",
        }
    }

    /// The CLI command that manages them: `kr`, `project`.
    pub fn command(self) -> &'static str {
        match self {
            ItemKind::KeyResult => "kr",
            ItemKind::Project => "project",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyResultError {
    #[error("no {} '{reference}'; list them with `goals-host {} list`", .kind.noun(), .kind.command())]
    NotFound { kind: ItemKind, reference: String },
    #[error(
        "no {} '{reference}' in organization '{organization}'; list them with `goals-host {} list --org {organization}`",
        .kind.noun(), .kind.command()
    )]
    NotInOrganization {
        kind: ItemKind,
        reference: String,
        organization: String,
    },
    #[error("{id} is a {}, not a {}; use `goals-host {} ...`", .found.noun(), .wanted.noun(), .found.command())]
    OtherKind {
        id: i64,
        wanted: ItemKind,
        found: ItemKind,
    },
    #[error("no Key Result or Project has the id {0}")]
    NoSuchId(i64),
    #[error("several {} are titled '{title}' (ids {}); use an id", .kind.plural(), .ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        kind: ItemKind,
        title: String,
        ids: Vec<i64>,
    },
    #[error("{} {id} is not linked to a metric; link it with `goals-host {} link {id}`", .kind.noun(), .kind.command())]
    NotLinked { kind: ItemKind, id: i64 },
    #[error("invalid {}: {message}", .kind.noun())]
    Invalid { kind: ItemKind, message: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The longest interval between syncs a link may have.
pub const MAX_INTERVAL_SECONDS: i64 = 31 * 24 * 3600;

/// An item's period: its first and last days (YYYY-MM-DD, both included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Period {
    pub start: Option<String>,
    pub end: Option<String>,
}

impl Period {
    pub fn is_set(&self) -> bool {
        self.start.is_some() || self.end.is_some()
    }

    /// The window a link applies the period to: on `column`, when the link
    /// names one and the period is set.
    pub fn window(&self, column: Option<&str>) -> Option<DateWindow> {
        let column = column?;
        self.is_set().then(|| DateWindow {
            column: column.to_string(),
            first_day: self.start.clone(),
            last_day: self.end.clone(),
        })
    }
}

/// A Key Result's or a Project's fields, as created or edited.
#[derive(Debug, Clone)]
pub struct NewKeyResult {
    pub kind: ItemKind,
    pub organization_id: i64,
    /// A Project's Key Result, in the same organization.
    pub parent_id: Option<i64>,
    /// A Project's due date, YYYY-MM-DD.
    pub due_date: Option<String>,
    /// The period a link may limit the metric to: first and last day
    /// (YYYY-MM-DD, both included); either end may be open.
    pub period: Period,
    pub title: String,
    pub owner: String,
    pub unit: Unit,
    pub currency_code: Option<String>,
    pub start: f64,
    pub target: f64,
    pub direction: Direction,
}

/// A Key Result or a Project (`kind`): the one linkable item.
#[derive(Debug, Clone)]
pub struct KeyResult {
    pub id: i64,
    pub kind: ItemKind,
    pub organization_id: i64,
    pub parent_id: Option<i64>,
    pub due_date: Option<String>,
    pub period: Period,
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
    /// The date column of the view the item's period applies to, if any.
    pub period_column: Option<String>,
    /// The chart whose measure `column` and `aggregation` are, if any.
    pub chart: Option<ChartChoice>,
}

/// A chart's measure as linked: the chart measures the view's rows, maybe only
/// those of one of its categories.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartChoice {
    pub id: String,
    pub kind: ViewKind,
    pub name: String,
    /// The measure's alias in the chart.
    pub measure: String,
    /// One category's value ("Won", "2024-03"), or every row.
    pub category: Option<String>,
}

impl ChartChoice {
    /// `measure` of `chart`, counting only `category`'s rows when given.
    pub fn of(chart: Chart, measure: ChartMeasure, category: Option<String>) -> ChartChoice {
        ChartChoice {
            id: chart.id,
            kind: chart.kind,
            name: chart.name,
            measure: measure.alias,
            category,
        }
    }

    /// The chart measured, as the plugin is asked for it.
    pub fn selection(&self) -> ChartSelection {
        ChartSelection {
            chart_id: self.id.clone(),
            chart_kind: self.kind,
            measure: self.measure.clone(),
            category: self.category.clone(),
        }
    }
}

impl MetricChoice {
    /// What the plugin measures for this choice.
    pub fn spec(&self) -> MetricSpec {
        MetricSpec {
            entity: self.entity.clone(),
            view: self.view.clone(),
            column: self.column.clone(),
            aggregation: self.aggregation,
            currency: self.currency,
        }
    }

    /// The chart measured, as the plugin is asked for it.
    pub fn chart_selection(&self) -> Option<ChartSelection> {
        self.chart.as_ref().map(ChartChoice::selection)
    }
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
        kind: ItemKind::parse(&r.get::<String>("kind")?).unwrap_or(ItemKind::KeyResult),
        organization_id: r.get("organization_id")?,
        parent_id: r.get("parent_id")?,
        due_date: r.get("due_date")?,
        period: Period {
            start: r.get("period_start")?,
            end: r.get("period_end")?,
        },
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
            period_column: r.get("period_column")?,
            chart: match r.get::<Option<String>>("chart_id")? {
                None => None,
                Some(id) => Some(ChartChoice {
                    id,
                    kind: if r.get::<Option<String>>("chart_kind")?.as_deref() == Some("personal") {
                        ViewKind::Personal
                    } else {
                        ViewKind::System
                    },
                    name: r.get::<Option<String>>("chart_name")?.unwrap_or_default(),
                    measure: r
                        .get::<Option<String>>("chart_measure")?
                        .unwrap_or_default(),
                    category: r.get("chart_category")?,
                }),
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

/// The error for `title` when another item of the same kind in the
/// organization (not `except`) has it already.
fn title_taken(
    tx: &crate::sql::Sql<'_>,
    new: &NewKeyResult,
    title: &str,
    except: Option<i64>,
) -> Result<Option<KeyResultError>, SqlError> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM key_results WHERE organization_id = ?1 AND title = ?2
             AND kind = ?3 AND (CAST(?4 AS BIGINT) IS NULL OR id <> ?4))",
        params![new.organization_id, title, new.kind.as_str(), except],
        |r| r.get(0),
    )?;
    Ok(taken.then(|| {
        invalid(
            new.kind,
            format!(
                "the organization already has a {} titled '{title}'; titles are unique per \
                 organization",
                new.kind.noun()
            ),
        )
    }))
}

/// Why a Project's parent cannot be `parent_id`, if it cannot: it must be a
/// Key Result of the same organization.
fn parent_refused(
    tx: &crate::sql::Sql<'_>,
    new: &NewKeyResult,
) -> Result<Option<KeyResultError>, SqlError> {
    let Some(parent_id) = new.parent_id else {
        return Ok(None);
    };
    let parent = tx.query_opt(
        "SELECT * FROM key_results WHERE id = ?1",
        params![parent_id],
        key_result_row,
    )?;
    let problem = match parent {
        None => format!("the parent Key Result {parent_id} does not exist"),
        Some(parent) if parent.kind != ItemKind::KeyResult => {
            format!("the parent {parent_id} is a Project; a Project's parent is a Key Result")
        }
        Some(parent) if parent.organization_id != new.organization_id => format!(
            "the parent Key Result {parent_id} is in another organization; a Project's parent \
             is a Key Result of its own organization"
        ),
        Some(_) => return Ok(None),
    };
    Ok(Some(invalid(new.kind, problem)))
}

fn invalid(kind: ItemKind, message: impl Into<String>) -> KeyResultError {
    KeyResultError::Invalid {
        kind,
        message: message.into(),
    }
}

/// What is wrong with an item's fields, if anything; its trimmed title.
fn checked(new: &NewKeyResult) -> Result<String, KeyResultError> {
    let kind = new.kind;
    let title = new.title.trim().to_string();
    if title.is_empty() || title.len() > 200 {
        return Err(invalid(kind, "the title must be 1 to 200 characters"));
    }
    for (what, text) in [("title", &title), ("owner", &new.owner)] {
        if let Some(hidden) = names::hidden_character(text) {
            return Err(invalid(
                kind,
                format!(
                    "the {what} holds the invisible character U+{:04X}; type it without control \
                     or text-direction characters",
                    u32::from(hidden)
                ),
            ));
        }
    }
    if !new.start.is_finite() || !new.target.is_finite() || new.start == new.target {
        return Err(invalid(kind, "start and target must be different numbers"));
    }
    let wrong_way = match new.direction {
        Direction::Increase => new.target < new.start,
        Direction::Decrease => new.target > new.start,
    };
    if wrong_way {
        return Err(invalid(
            kind,
            format!(
                "a {} that should {} needs a target {} its start",
                kind.noun(),
                new.direction.as_str(),
                if new.direction == Direction::Increase {
                    "above"
                } else {
                    "below"
                }
            ),
        ));
    }
    if new.unit != Unit::Currency && new.currency_code.is_some() {
        return Err(invalid(
            kind,
            format!("only a currency {} has a currency code", kind.noun()),
        ));
    }
    if kind == ItemKind::KeyResult && (new.parent_id.is_some() || new.due_date.is_some()) {
        return Err(invalid(
            kind,
            "only a Project has a parent Key Result and a due date",
        ));
    }
    for (end, day) in [("start", &new.period.start), ("end", &new.period.end)] {
        if let Some(day) = day
            && clock::day_start(day).is_none()
        {
            return Err(invalid(
                kind,
                format!(
                    "the period's {end} '{day}' is not a date written YYYY-MM-DD, e.g. 2024-03-31"
                ),
            ));
        }
    }
    if let (Some(start), Some(end)) = (&new.period.start, &new.period.end)
        && start > end
    {
        return Err(invalid(
            kind,
            format!("the period starts on {start}, after it ends ({end})"),
        ));
    }
    if let Some(due) = &new.due_date
        && clock::day_start(due).is_none()
    {
        return Err(invalid(
            kind,
            format!("the due date '{due}' is not a date written YYYY-MM-DD, e.g. 2027-03-31"),
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
            if let Some(refused) = title_taken(&tx, &new, &title, None)? {
                return Ok(Err(refused));
            }
            if let Some(refused) = parent_refused(&tx, &new)? {
                return Ok(Err(refused));
            }
            let id = tx.query_row(
                "INSERT INTO key_results (organization_id, title, owner, unit, currency_code,
                     start_value, target_value, direction, created_at, kind, parent_id, due_date,
                     period_start, period_end)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 RETURNING id",
                params![
                    new.organization_id,
                    title,
                    new.owner,
                    new.unit.as_str(),
                    new.currency_code,
                    new.start,
                    new.target,
                    new.direction.as_str(),
                    now,
                    new.kind.as_str(),
                    new.parent_id,
                    new.due_date,
                    new.period.start,
                    new.period.end
                ],
                |r| r.get::<i64>(0),
            )?;
            tx.commit()?;
            Ok(Ok(id))
        })
        .await??;
    get_by_id(db, id).await
}

/// An item by id, whatever its kind.
pub async fn get_by_id(db: &Database, id: i64) -> Result<KeyResult, KeyResultError> {
    db.run(move |conn| {
        Ok(conn.query_opt(
            "SELECT * FROM key_results WHERE id = ?1",
            params![id],
            key_result_row,
        )?)
    })
    .await?
    .ok_or(KeyResultError::NoSuchId(id))
}

/// An item by id that must be of `kind`.
pub async fn get(db: &Database, id: i64, kind: ItemKind) -> Result<KeyResult, KeyResultError> {
    match get_by_id(db, id).await {
        Ok(item) if item.kind != kind => Err(KeyResultError::OtherKind {
            id,
            wanted: kind,
            found: item.kind,
        }),
        Err(KeyResultError::NoSuchId(_)) => Err(KeyResultError::NotFound {
            kind,
            reference: id.to_string(),
        }),
        other => other,
    }
}

/// Changes an item's fields (not its kind, value or link), checked as on create.
pub async fn update(
    db: &Database,
    id: i64,
    change: impl FnOnce(&mut NewKeyResult),
) -> Result<KeyResult, KeyResultError> {
    let current = get_by_id(db, id).await?;
    let mut fields = NewKeyResult {
        kind: current.kind,
        organization_id: current.organization_id,
        parent_id: current.parent_id,
        due_date: current.due_date,
        period: current.period,
        title: current.title,
        owner: current.owner,
        unit: current.unit,
        currency_code: current.currency_code,
        start: current.start,
        target: current.target,
        direction: current.direction,
    };
    change(&mut fields);
    // What the change may not move.
    fields.kind = current.kind;
    fields.organization_id = current.organization_id;
    let title = checked(&fields)?;
    db.run(move |conn| {
        let tx = conn.transaction()?;
        if let Some(refused) = title_taken(&tx, &fields, &title, Some(id))? {
            return Ok(Err(refused));
        }
        if let Some(refused) = parent_refused(&tx, &fields)? {
            return Ok(Err(refused));
        }
        tx.execute(
            "UPDATE key_results SET title = ?2, owner = ?3, unit = ?4, currency_code = ?5,
                 start_value = ?6, target_value = ?7, direction = ?8, parent_id = ?9,
                 due_date = ?10, period_start = ?11, period_end = ?12
             WHERE id = ?1",
            params![
                id,
                title,
                fields.owner,
                fields.unit.as_str(),
                fields.currency_code,
                fields.start,
                fields.target,
                fields.direction.as_str(),
                fields.parent_id,
                fields.due_date,
                fields.period.start,
                fields.period.end
            ],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    })
    .await??;
    get_by_id(db, id).await
}

/// Deletes an item with its link and history; its alerts close. A deleted
/// Key Result's Projects stay, without a parent.
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
        tx.execute(
            "UPDATE key_results SET parent_id = NULL WHERE parent_id = ?1",
            params![id],
        )?;
        tx.execute("DELETE FROM key_results WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(gone)
}

/// Where an item is looked for: one organization (`--org`), or all.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub organization: Option<(i64, &'a str)>,
}

impl Scope<'_> {
    pub const ALL: Scope<'static> = Scope { organization: None };

    fn not_found(&self, kind: ItemKind, reference: &str) -> KeyResultError {
        match self.organization {
            Some((_, name)) => KeyResultError::NotInOrganization {
                kind,
                reference: reference.to_string(),
                organization: name.to_string(),
            },
            None => KeyResultError::NotFound {
                kind,
                reference: reference.to_string(),
            },
        }
    }
}

/// An item of `kind` by id or exact title, inside `scope`.
pub async fn find(
    db: &Database,
    kind: ItemKind,
    reference: &str,
    scope: Scope<'_>,
) -> Result<KeyResult, KeyResultError> {
    let organization = scope.organization.map(|(id, _)| id);
    let outside = |kr: &KeyResult| organization.is_some_and(|id| kr.organization_id != id);
    if let Ok(id) = reference.trim().parse::<i64>() {
        return match get(db, id, kind).await {
            Ok(kr) if outside(&kr) => Err(scope.not_found(kind, reference)),
            Err(KeyResultError::NotFound { .. }) => Err(scope.not_found(kind, reference)),
            other => other,
        };
    }
    let title = reference.trim().to_string();
    let mut found = db
        .run(move |conn| {
            let rows = conn.query_map(
                "SELECT * FROM key_results WHERE title = ?1 AND kind = ?3
                     AND (CAST(?2 AS BIGINT) IS NULL OR organization_id = ?2)",
                params![&title, organization, kind.as_str()],
                key_result_row,
            )?;
            Ok(rows)
        })
        .await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(scope.not_found(kind, reference)),
        _ => Err(KeyResultError::Ambiguous {
            kind,
            title: reference.to_string(),
            ids: found.iter().map(|k| k.id).collect(),
        }),
    }
}

/// The items of `kind` (of one organization, or all), by id.
pub async fn list(
    db: &Database,
    kind: ItemKind,
    organization_id: Option<i64>,
) -> Result<Vec<KeyResult>, KeyResultError> {
    Ok(db
        .run(move |conn| {
            let rows = conn.query_map(
                "SELECT * FROM key_results
                 WHERE kind = ?2 AND (CAST(?1 AS BIGINT) IS NULL OR organization_id = ?1)
                 ORDER BY id",
                params![organization_id, kind.as_str()],
                key_result_row,
            )?;
            Ok(rows)
        })
        .await?)
}

/// The error for an item that has no link: named by its kind.
async fn not_linked(db: &Database, id: i64) -> KeyResultError {
    match get_by_id(db, id).await {
        Ok(item) => KeyResultError::NotLinked {
            kind: item.kind,
            id,
        },
        Err(error) => error,
    }
}

/// A manual check-in: the value stays until the next sync replaces it.
pub async fn check_in(
    db: &Database,
    id: i64,
    value: f64,
    now: Timestamp,
) -> Result<KeyResult, KeyResultError> {
    if !value.is_finite() {
        return Err(invalid(
            get_by_id(db, id).await?.kind,
            "the value must be a number",
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
        return Err(KeyResultError::NoSuchId(id));
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
        return Err(invalid(
            get_by_id(db, key_result_id).await?.kind,
            "the sync interval must be between one second and 31 days",
        ));
    }
    db.run(move |conn| {
        let chart = metric.chart.as_ref();
        conn.execute(
            "INSERT INTO metric_links (key_result_id, connection_id, app_id, app_name, entity,
                 entity_name, view_id, view_kind, view_name, column_name, column_display,
                 aggregation, currency, interval_seconds, state, next_run_at, created_at,
                 period_column, chart_id, chart_kind, chart_name, chart_measure, chart_category)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'active', ?15, ?15,
                 ?16, ?17, ?18, ?19, ?20, ?21)
             ON CONFLICT (key_result_id) DO UPDATE SET
                 connection_id = excluded.connection_id, app_id = excluded.app_id,
                 app_name = excluded.app_name, entity = excluded.entity,
                 entity_name = excluded.entity_name, view_id = excluded.view_id,
                 view_kind = excluded.view_kind, view_name = excluded.view_name,
                 column_name = excluded.column_name, column_display = excluded.column_display,
                 aggregation = excluded.aggregation, currency = excluded.currency,
                 interval_seconds = excluded.interval_seconds, state = 'active',
                 state_reason = NULL, next_run_at = excluded.next_run_at, failures = 0,
                 period_column = excluded.period_column, chart_id = excluded.chart_id,
                 chart_kind = excluded.chart_kind, chart_name = excluded.chart_name,
                 chart_measure = excluded.chart_measure,
                 chart_category = excluded.chart_category",
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
                now,
                metric.period_column,
                chart.map(|c| c.id.clone()),
                chart.map(|c| names::view_kind_name(c.kind)),
                chart.map(|c| c.name.clone()),
                chart.map(|c| c.measure.clone()),
                chart.and_then(|c| c.category.clone())
            ],
        )?;
        Ok(())
    })
    .await?;
    match link(db, key_result_id).await? {
        Some(link) => Ok(link),
        None => Err(not_linked(db, key_result_id).await),
    }
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
        return Err(not_linked(db, key_result_id).await);
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
        return Err(not_linked(db, key_result_id).await);
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
        return Err(not_linked(db, key_result_id).await);
    }
    match link(db, key_result_id).await? {
        Some(link) => Ok(link),
        None => Err(not_linked(db, key_result_id).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(title: &str) -> NewKeyResult {
        NewKeyResult {
            kind: ItemKind::KeyResult,
            organization_id: 1,
            parent_id: None,
            due_date: None,
            period: Period::default(),
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
        assert!(
            matches!(taken, Err(KeyResultError::Invalid { message, .. }) if message.contains("Leads"))
        );
        let backwards = update(&db, first.id, |f| f.target = -5.0).await;
        assert!(matches!(backwards, Err(KeyResultError::Invalid { .. })));
        assert_eq!(get_by_id(&db, first.id).await.expect("kept").target, 10.0);

        let gone = delete(&db, first.id, 2).await.expect("delete");
        assert_eq!(gone.id, first.id);
        assert!(matches!(
            get_by_id(&db, first.id).await,
            Err(KeyResultError::NoSuchId(_))
        ));
    }

    fn project(title: &str, parent_id: Option<i64>, due_date: Option<&str>) -> NewKeyResult {
        NewKeyResult {
            kind: ItemKind::Project,
            parent_id,
            due_date: due_date.map(str::to_string),
            ..new(title)
        }
    }

    #[tokio::test]
    async fn a_project_hangs_under_a_key_result_of_its_own_organization() {
        let db = Database::open_in_memory().expect("db");
        let kr = create(&db, new("Pipeline"), 1).await.expect("kr");
        // The same title as a Key Result: titles are unique per kind.
        let launch = create(&db, project("Pipeline", Some(kr.id), Some("2027-03-31")), 1)
            .await
            .expect("project");
        assert_eq!(launch.kind, ItemKind::Project);
        assert_eq!(
            (launch.parent_id, launch.due_date.as_deref()),
            (Some(kr.id), Some("2027-03-31"))
        );
        let twice = create(&db, project("Pipeline", None, None), 1).await;
        assert!(
            matches!(twice, Err(KeyResultError::Invalid { message, .. }) if message.contains("Project titled"))
        );

        // A parent that is a Project, missing, or of another organization.
        for parent in [launch.id, 999] {
            let refused = create(&db, project("Sub", Some(parent), None), 1).await;
            assert!(
                matches!(&refused, Err(KeyResultError::Invalid { message, .. }) if message.contains(&parent.to_string())),
                "{refused:?}"
            );
        }
        crate::goals::admin::create_tenant(&db, "Fabrikam", 1)
            .await
            .expect("tenant");
        let other = crate::goals::admin::create_organization(&db, "Support", "Fabrikam", 1)
            .await
            .expect("org");
        let elsewhere = create(
            &db,
            NewKeyResult {
                organization_id: other.id,
                ..project("Elsewhere", Some(kr.id), None)
            },
            1,
        )
        .await;
        assert!(
            matches!(elsewhere, Err(KeyResultError::Invalid { message, .. }) if message.contains("another organization"))
        );

        // Dates are calendar dates; only Projects have them.
        for due in ["2027-02-30", "31/03/2027", "2027-3-31"] {
            let refused = create(&db, project("Dated", None, Some(due)), 1).await;
            assert!(
                matches!(refused, Err(KeyResultError::Invalid { .. })),
                "{due}"
            );
        }
        let dated_kr = create(
            &db,
            NewKeyResult {
                due_date: Some("2027-03-31".to_string()),
                ..new("Dated")
            },
            1,
        )
        .await;
        assert!(matches!(dated_kr, Err(KeyResultError::Invalid { .. })));

        // Each kind is found under its own name only.
        assert_eq!(
            find(&db, ItemKind::Project, "Pipeline", Scope::ALL)
                .await
                .expect("by title")
                .id,
            launch.id
        );
        let wrong = find(&db, ItemKind::Project, &kr.id.to_string(), Scope::ALL).await;
        assert!(
            matches!(
                wrong,
                Err(KeyResultError::OtherKind {
                    found: ItemKind::KeyResult,
                    ..
                })
            ),
            "{wrong:?}"
        );
        let projects = list(&db, ItemKind::Project, None).await.expect("list");
        assert_eq!(
            projects.iter().map(|p| p.id).collect::<Vec<_>>(),
            [launch.id]
        );

        // Deleting the Key Result leaves its Project without a parent.
        delete(&db, kr.id, 2).await.expect("delete");
        assert_eq!(
            get_by_id(&db, launch.id).await.expect("kept").parent_id,
            None
        );
    }
}
