//! A linked item's history before its first sync, reconstructed from today's
//! rows: the metric at points from the start of its period to yesterday, each
//! counting the rows created by that day (the view's filters as they are now,
//! the item's period window too when the link applies one). Rows deleted since,
//! or edited so that they left or entered the view, cannot be seen: the points
//! are marked back-filled and the details say so. The points are measured
//! together (the contract's `fetch-series`).

use crate::bindings::{DateWindow, MetricValue};
use crate::connections::ConnectionRecord;
use crate::db::Database;
use crate::engine::Engine;
use crate::goals::clock::{Timestamp, day, day_start};
use crate::goals::history;
use crate::goals::keyresults::{KeyResult, Link};
use crate::params;

/// The date column a history is back-filled from unless a person picks one.
pub const DEFAULT_COLUMN: &str = "createdon";

/// Periods shorter than this get a point a day; longer ones a point a week.
const DAILY_BELOW_DAYS: i64 = 60;

const DAY: i64 = 86_400;

#[derive(Debug, Clone, PartialEq)]
pub struct Backfilled {
    pub column: String,
    pub points: usize,
    /// Requests to the environment, all points together.
    pub requests: i64,
}

/// The days the history gets a point for (their starts): from the period's
/// start, every day (a period under two months) or every week, up to the
/// period's last day and before today (today's value is the first sync's).
pub fn points(item: &KeyResult, now: Timestamp) -> Vec<Timestamp> {
    let Some(first) = item.period.start.as_deref().and_then(day_start) else {
        return Vec::new();
    };
    let today = now - now.rem_euclid(DAY);
    let end = item.period.end.as_deref().and_then(day_start);
    let last = end.map_or(today - DAY, |end| end.min(today - DAY));
    let span_days = (end.unwrap_or(today) - first) / DAY;
    let step = if span_days < DAILY_BELOW_DAYS {
        DAY
    } else {
        7 * DAY
    };
    (0..)
        .map(|k| first + k * step)
        .take_while(|start| *start <= last)
        .collect()
}

/// Computes and records the back-filled points of `item`, linked by `link`
/// through `conn`, from `column` (a date column of the view's table). Points
/// back-filled earlier (for a metric since changed) are replaced.
pub async fn backfill(
    db: &Database,
    engine: &dyn Engine,
    conn: &ConnectionRecord,
    item: &KeyResult,
    link: &Link,
    column: &str,
    now: Timestamp,
) -> anyhow::Result<Backfilled> {
    let days = points(item, now);
    let spec = link.metric.spec();
    let chart = link.metric.chart_selection();
    let period: Vec<DateWindow> = item
        .period
        .window(link.metric.period_column.as_deref())
        .into_iter()
        .collect();
    // Each point counts the rows created by its day; the whole series is
    // measured in one call, one request once the metadata is cached.
    let windows: Vec<DateWindow> = days
        .iter()
        .map(|start| DateWindow {
            column: column.to_string(),
            first_day: None,
            last_day: Some(day(*start)),
        })
        .collect();
    let series = engine
        .fetch_series(conn, &spec, &period, chart.as_ref(), &windows)
        .await?;
    if series.len() != days.len() {
        anyhow::bail!(
            "the integration measured {} points of {} asked for",
            series.len(),
            days.len()
        );
    }
    let requests: i64 = series.iter().map(|m| i64::from(m.requests)).sum();
    let measured: Vec<_> = days.into_iter().zip(series).collect();
    let key_result = item.id;
    let points = measured.len();
    db.run(move |sql| {
        let tx = sql.transaction()?;
        tx.execute(
            "DELETE FROM sync_runs WHERE key_result_id = ?1 AND backfilled = 1",
            params![key_result],
        )?;
        for (start, measurement) in measured {
            // The point stands for the end of its day.
            let at = start + DAY - 1;
            let value = match measurement.value {
                Some(MetricValue::Number(number)) => Some(number),
                _ => None,
            };
            let query_id = history::query_id(&tx, &measurement.query)?;
            tx.execute(
                "INSERT INTO sync_runs (key_result_id, trigger, started_at, finished_at, status,
                     value, currency, records, requests, bytes, query_id, backfilled)
                 VALUES (?1, 'manual', ?2, ?2, 'success', ?3, ?4, ?5, ?6, ?7, ?8, 1)",
                params![
                    key_result,
                    at,
                    value,
                    measurement.currency,
                    i64::try_from(measurement.records).unwrap_or(i64::MAX),
                    i64::from(measurement.requests),
                    i64::try_from(measurement.bytes_received).unwrap_or(i64::MAX),
                    query_id
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(Backfilled {
        column: column.to_string(),
        points,
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::keyresults::{ItemKind, Period};
    use crate::goals::progress::{Direction, Unit};

    fn item(start: &str, end: Option<&str>) -> KeyResult {
        KeyResult {
            id: 1,
            kind: ItemKind::KeyResult,
            organization_id: 1,
            parent_id: None,
            due_date: None,
            period: Period {
                start: Some(start.to_string()),
                end: end.map(str::to_string),
            },
            title: "t".to_string(),
            owner: "o".to_string(),
            unit: Unit::Number,
            currency_code: None,
            start: 0.0,
            target: 1.0,
            direction: Direction::Increase,
            current_value: None,
            current_source: None,
            current_at: None,
        }
    }

    fn at(day: &str) -> Timestamp {
        day_start(day).expect("a day") + 12 * 3600
    }

    #[test]
    fn a_quarter_gets_weekly_points_a_short_period_daily_ones_up_to_yesterday() {
        let now = at("2026-12-07");
        let quarter = points(&item("2025-01-01", Some("2025-03-31")), now);
        assert_eq!(quarter.len(), 13);
        assert_eq!(
            (day(quarter[0]).as_str(), day(quarter[12]).as_str()),
            ("2025-01-01", "2025-03-26")
        );
        let year = points(&item("2024-01-01", Some("2024-12-31")), now);
        assert_eq!(year.len(), 53);
        let month = points(&item("2025-02-01", Some("2025-02-28")), now);
        assert_eq!(month.len(), 28, "{month:?}");
        // A period still running stops at yesterday; one starting later has none.
        let running = points(&item("2026-12-01", Some("2026-12-31")), now);
        assert_eq!(
            running.last().map(|start| day(*start)).as_deref(),
            Some("2026-12-06")
        );
        assert!(points(&item("2027-01-01", None), now).is_empty());
        let mut none = item("2025-01-01", None);
        none.period = Period::default();
        assert!(points(&none, now).is_empty());
    }
}
