//! Aggregation arithmetic done by the plugin: combining the server-side
//! aggregates of disjoint parts, and aggregating rows read page by page.
//!
//! Semantics are Dataverse's: empty values count only for `count`; the sum of no
//! values is 0; the average, min and max of no values do not exist.

use crate::types::{Aggregation, MetricValue};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashSet;

/// What the server returns for one part, or what a page read accumulates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    /// Rows of the view.
    pub rows: u64,
    /// Rows whose column has a value.
    pub values: u64,
    /// Total of the numeric values.
    pub sum: f64,
    pub min: Option<Extreme>,
    pub max: Option<Extreme>,
    /// Distinct values; only exact for one part or a full read.
    pub distinct: u64,
}

/// A min or max: numbers compare as numbers, date-times as RFC 3339 text.
#[derive(Debug, Clone, PartialEq)]
pub enum Extreme {
    Number(f64),
    Text(String),
}

impl Extreme {
    pub fn from_json(value: &Value) -> Option<Extreme> {
        match value {
            Value::Number(n) => n.as_f64().map(Extreme::Number),
            Value::String(s) => Some(
                s.trim()
                    .parse::<f64>()
                    .map(Extreme::Number)
                    .unwrap_or_else(|_| Extreme::Text(s.clone())),
            ),
            _ => None,
        }
    }

    fn compare(&self, other: &Extreme) -> Ordering {
        match (self, other) {
            (Extreme::Number(a), Extreme::Number(b)) => a.total_cmp(b),
            (Extreme::Text(a), Extreme::Text(b)) => a.cmp(b),
            (Extreme::Number(_), Extreme::Text(_)) => Ordering::Less,
            (Extreme::Text(_), Extreme::Number(_)) => Ordering::Greater,
        }
    }
}

fn pick(a: Option<Extreme>, b: Option<Extreme>, keep: Ordering) -> Option<Extreme> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.compare(&a) == keep { b } else { a }),
        (a, b) => a.or(b),
    }
}

impl Partial {
    /// Adds a disjoint part. Distinct counts do not add up across parts; callers
    /// only combine parts for the other aggregations.
    pub fn merge(&mut self, other: Partial) {
        self.rows = self.rows.saturating_add(other.rows);
        self.values = self.values.saturating_add(other.values);
        self.sum += other.sum;
        self.distinct = self.distinct.saturating_add(other.distinct);
        self.min = pick(self.min.take(), other.min, Ordering::Less);
        self.max = pick(self.max.take(), other.max, Ordering::Greater);
    }

    /// The metric's value from the combined parts.
    pub fn value(&self, aggregation: Aggregation) -> Option<MetricValue> {
        let extreme = |e: &Option<Extreme>| match e {
            Some(Extreme::Number(n)) => Some(MetricValue::Number(*n)),
            Some(Extreme::Text(t)) => Some(MetricValue::DateTime(t.clone())),
            None => None,
        };
        match aggregation {
            Aggregation::Count => Some(MetricValue::Number(self.rows as f64)),
            Aggregation::CountValues => Some(MetricValue::Number(self.values as f64)),
            Aggregation::CountDistinct => Some(MetricValue::Number(self.distinct as f64)),
            Aggregation::Sum => Some(MetricValue::Number(self.sum)),
            // Dividing here rather than asking the server for `avg` keeps the mean
            // exact: the server averages whole-number columns in whole numbers.
            Aggregation::Average => {
                (self.values > 0).then(|| MetricValue::Number(self.sum / self.values as f64))
            }
            Aggregation::Min => extreme(&self.min),
            Aggregation::Max => extreme(&self.max),
        }
    }
}

/// Aggregates values one row at a time, for reads that page through a view.
/// Memory stays constant, except for `count-distinct`, which must remember the
/// distinct values it has seen.
pub struct Accumulator {
    aggregation: Aggregation,
    partial: Partial,
    seen: HashSet<String>,
}

impl Accumulator {
    pub fn new(aggregation: Aggregation) -> Self {
        Accumulator {
            aggregation,
            partial: Partial::default(),
            seen: HashSet::new(),
        }
    }

    /// One view row with its column's value (`None` when empty).
    pub fn add(&mut self, value: Option<&Value>) {
        self.partial.rows += 1;
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return;
        };
        self.partial.values += 1;
        match self.aggregation {
            Aggregation::CountDistinct => {
                let key = match value {
                    // Text compares case-insensitively in Dataverse.
                    Value::String(s) => s.to_lowercase(),
                    other => other.to_string(),
                };
                if self.seen.insert(key) {
                    self.partial.distinct += 1;
                }
            }
            Aggregation::Sum | Aggregation::Average => {
                if let Some(Extreme::Number(n)) = Extreme::from_json(value) {
                    self.partial.sum += n;
                }
            }
            Aggregation::Min | Aggregation::Max => {
                let extreme = Extreme::from_json(value);
                self.partial.min = pick(self.partial.min.take(), extreme.clone(), Ordering::Less);
                self.partial.max = pick(self.partial.max.take(), extreme, Ordering::Greater);
            }
            Aggregation::Count | Aggregation::CountValues => {}
        }
    }

    pub fn finish(self) -> Partial {
        self.partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(value: Option<MetricValue>) -> Option<f64> {
        match value {
            Some(MetricValue::Number(n)) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn the_documented_example_aggregates_as_dataverse_does() {
        // Ten accounts, one without numberofemployees (aggregate-data.md).
        let employees = [
            Some(1500),
            Some(2700),
            Some(2900),
            Some(2900),
            Some(3900),
            Some(4300),
            Some(4800),
            Some(6000),
            Some(6200),
            None,
        ];
        let run = |aggregation| {
            let mut acc = Accumulator::new(aggregation);
            for e in employees {
                acc.add(e.map(|n| json!(n)).as_ref());
            }
            number(acc.finish().value(aggregation))
        };
        assert_eq!(run(Aggregation::Count), Some(10.0));
        assert_eq!(run(Aggregation::CountValues), Some(9.0));
        assert_eq!(run(Aggregation::CountDistinct), Some(8.0));
        assert_eq!(run(Aggregation::Sum), Some(35200.0));
        assert_eq!(run(Aggregation::Min), Some(1500.0));
        assert_eq!(run(Aggregation::Max), Some(6200.0));
        let average = run(Aggregation::Average).unwrap();
        assert!((average - 35200.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn parts_combine_like_the_whole() {
        let values = [json!(5), json!(null), json!(2.5), json!(9), json!(-1)];
        for aggregation in [
            Aggregation::Count,
            Aggregation::CountValues,
            Aggregation::Sum,
            Aggregation::Average,
            Aggregation::Min,
            Aggregation::Max,
        ] {
            let mut whole = Accumulator::new(aggregation);
            values.iter().for_each(|v| whole.add(Some(v)));
            let mut combined = Partial::default();
            for chunk in values.chunks(2) {
                let mut part = Accumulator::new(aggregation);
                chunk.iter().for_each(|v| part.add(Some(v)));
                combined.merge(part.finish());
            }
            combined.merge(Partial::default());
            assert_eq!(
                combined.value(aggregation),
                whole.finish().value(aggregation),
                "{aggregation:?}"
            );
        }
    }

    #[test]
    fn empty_views_have_zero_counts_and_no_extremes() {
        let empty = Partial::default();
        assert_eq!(number(empty.value(Aggregation::Sum)), Some(0.0));
        assert_eq!(number(empty.value(Aggregation::Count)), Some(0.0));
        assert!(empty.value(Aggregation::Average).is_none());
        assert!(empty.value(Aggregation::Max).is_none());
    }

    #[test]
    fn dates_compare_as_text_and_distinct_text_ignores_case() {
        let mut max = Accumulator::new(Aggregation::Max);
        for d in [
            "2024-01-02T00:00:00Z",
            "2025-06-01T00:00:00Z",
            "2023-12-31T00:00:00Z",
        ] {
            max.add(Some(&json!(d)));
        }
        assert!(matches!(
            max.finish().value(Aggregation::Max),
            Some(MetricValue::DateTime(d)) if d == "2025-06-01T00:00:00Z"
        ));
        let mut distinct = Accumulator::new(Aggregation::CountDistinct);
        for name in ["Contoso", "contoso", "Fabrikam"] {
            distinct.add(Some(&json!(name)));
        }
        assert_eq!(
            number(distinct.finish().value(Aggregation::CountDistinct)),
            Some(2.0)
        );
    }
}
