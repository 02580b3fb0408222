//! A history's points measured together: one aggregate per point, all in one
//! `$batch` with the view's check, so back-filling a year of weekly points
//! costs one request once metadata is cached. What a batch of plain
//! aggregates cannot answer exactly (a view over the aggregate limit, rows
//! that must share one transaction currency) is measured point by point, the
//! way a sync measures.

use super::{
    Currency, Failure, check_definitions, check_window, fetch_and_aggregate, fetch_path,
    measurement, partial, prepare, split_key,
};
use crate::client::Session;
use crate::split::SplitPlan;
use crate::types::{ChartSelection, DateWindow, Error, Measurement, MetricSpec};
use crate::{batch, cache, charts, errors, metadata};

/// Points per batch, beside the view's and the chart's checks.
const POINTS_PER_BATCH: usize = batch::MAX_PARTS - 2;

/// Measures `spec` (within `windows`, as `chart`'s measure when given) once per
/// point window; the first measurement carries the cost of the whole series.
pub fn fetch_series(
    session: &mut Session,
    spec: &MetricSpec,
    windows: &[DateWindow],
    chart: Option<&ChartSelection>,
    points: &[DateWindow],
) -> Result<Vec<Measurement>, Error> {
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let together = match together(session, spec, windows, chart, points) {
        Err(Failure::Stale) => together(session, spec, windows, chart, points),
        other => other,
    };
    let mut measured = match together {
        Ok(Some(measured)) => measured,
        Ok(None) => one_by_one(session, spec, windows, chart, points)?,
        Err(Failure::Error(error)) => return Err(error),
        Err(Failure::Stale) => {
            return Err(Error::Upstream(
                "the view changed twice while its history was being measured; try again"
                    .to_string(),
            ));
        }
    };
    for (index, measurement) in measured.iter_mut().enumerate() {
        (measurement.requests, measurement.bytes_received) = if index == 0 {
            (session.requests(), session.bytes_received())
        } else {
            (0, 0)
        };
    }
    Ok(measured)
}

/// Every point in as few batches as there is room for; `None` when the
/// points must be measured one by one.
fn together(
    session: &mut Session,
    spec: &MetricSpec,
    windows: &[DateWindow],
    chart: Option<&ChartSelection>,
    points: &[DateWindow],
) -> Result<Option<Vec<Measurement>>, Failure> {
    let plan = prepare(session, spec, windows, chart)?;
    let currency = match &plan.currency {
        Currency::None => None,
        Currency::Base(code) => Some(code.clone()),
        // Each point's rows must be probed for their one currency.
        Currency::Transaction => return Ok(None),
    };
    // A view known to be over the limit is split per point by the sync's path.
    if cache::get::<SplitPlan>(session.platform(), &split_key(spec, &plan)).is_some() {
        return Ok(None);
    }
    for point in points {
        check_window(session, &plan.view, point)?;
    }
    let queries = points
        .iter()
        .map(|point| {
            let mut query = plan.query.clone();
            query.within(
                &point.column,
                point.first_day.as_deref(),
                point.last_day.as_deref(),
            );
            query.aggregate(&plan.target, &plan.functions, &plan.primary_id, None)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Invalid(format!(
                "view '{}' cannot be aggregated: {e}",
                plan.view.name
            ))
        })?;
    let check_path = metadata::view_check_path(&spec.view)?;
    let chart_check = chart.map(charts::check_path).transpose()?;
    let subject = format!("the history of view '{}'", plan.view.name);
    let mut measured = Vec::with_capacity(points.len());
    for chunk in queries.chunks(POINTS_PER_BATCH) {
        let mut paths = vec![check_path.clone()];
        paths.extend(chart_check.iter().cloned());
        paths.extend(chunk.iter().map(|q| fetch_path(&plan.entity_set, q)));
        let mut answers = session.batch(&paths, &subject)?.into_iter();
        check_definitions(session, spec, chart, &plan, &mut answers)?;
        for (answer, query) in answers.zip(chunk) {
            if errors::is_aggregate_limit(&answer) {
                return Ok(None);
            }
            if !(200..300).contains(&answer.status) {
                return Err(errors::from_dataverse(&answer, &subject).into());
            }
            let total = partial(&answer, &plan.view.name)?;
            measured.push(measurement(
                session,
                spec,
                &total,
                currency.clone(),
                query.clone(),
            ));
        }
    }
    Ok(Some(measured))
}

/// Each point as a sync measures it: split past the aggregate limit, probed
/// for its currency.
fn one_by_one(
    session: &mut Session,
    spec: &MetricSpec,
    windows: &[DateWindow],
    chart: Option<&ChartSelection>,
    points: &[DateWindow],
) -> Result<Vec<Measurement>, Error> {
    points
        .iter()
        .map(|point| {
            let mut within = windows.to_vec();
            within.push(point.clone());
            fetch_and_aggregate(session, spec, &within, chart)
        })
        .collect()
}
