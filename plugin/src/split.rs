//! Splitting a view's rows into disjoint parts by `createdon`, so that each part
//! stays under Dataverse's 50,000-row aggregate limit and the parts' aggregates
//! add up to the whole.
//!
//! The parts are `(-∞, c₀)`, `[c₀, c₁)`, …, `[cₙ, +∞)` over the cut points, and
//! the first also holds the rows whose `createdon` is empty: every row falls in
//! exactly one part, including rows created after the plan was made.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// The column parts are cut on; every Dataverse table has it.
pub const SPLIT_ATTRIBUTE: &str = "createdon";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitPlan {
    /// Earliest and latest `createdon` of the view when the plan was made; they
    /// bound the open-ended first and last parts when those must be split.
    first: String,
    last: String,
    /// Ascending cut points, RFC 3339 in whole seconds.
    cuts: Vec<String>,
}

/// One part of a plan: rows with `from <= createdon < to` (an absent bound is
/// open); the part without a lower bound also holds rows without a `createdon`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("'{0}' is not an RFC 3339 date-time")]
pub struct BadTimestamp(pub String);

fn parse(text: &str) -> Result<SystemTime, BadTimestamp> {
    humantime::parse_rfc3339_weak(text).map_err(|_| BadTimestamp(text.to_string()))
}

fn format(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Dataverse takes at most 1,000 requests in one `$batch`.
const MAX_PIECES: u32 = 1000;

impl SplitPlan {
    /// A plan of `pieces` equal time spans between the earliest and latest row.
    pub fn new(first: &str, last: &str, pieces: u32) -> Result<SplitPlan, BadTimestamp> {
        let start = parse(first)?;
        let end = parse(last)?;
        let span = end.duration_since(start).unwrap_or_default();
        let first = format(start);
        // Cuts fall on whole seconds: a span has no more distinct pieces than
        // seconds, and no more parts than one $batch carries are ever useful.
        let whole_seconds = u32::try_from(span.as_secs()).unwrap_or(u32::MAX);
        let pieces = pieces.clamp(1, whole_seconds.saturating_add(1).min(MAX_PIECES));
        let mut cuts: Vec<String> = (1..pieces)
            .map(|i| format(start + span.mul_f64(f64::from(i) / f64::from(pieces))))
            .filter(|cut| *cut > first)
            .collect();
        cuts.dedup();
        Ok(SplitPlan {
            first,
            last: format(end),
            cuts,
        })
    }

    /// Every part, in time order.
    pub fn parts(&self) -> Vec<Part> {
        let mut parts = Vec::with_capacity(self.cuts.len() + 1);
        let mut from: Option<String> = None;
        for cut in &self.cuts {
            parts.push(Part {
                from: from.take(),
                to: Some(cut.clone()),
            });
            from = Some(cut.clone());
        }
        parts.push(Part { from, to: None });
        parts
    }

    /// Splits the part at `index` in two at its middle. False when it spans at
    /// most a second (it cannot be cut finer) or does not exist.
    pub fn split(&mut self, index: usize) -> bool {
        if index > self.cuts.len() {
            return false;
        }
        let lower = if index == 0 {
            &self.first
        } else {
            &self.cuts[index - 1]
        };
        let upper = self.cuts.get(index).unwrap_or(&self.last);
        let (Ok(lower), Ok(upper)) = (parse(lower), parse(upper)) else {
            return false;
        };
        // The last part also holds rows at exactly `last` and any created since.
        let upper = if index == self.cuts.len() {
            upper + Duration::from_secs(1)
        } else {
            upper
        };
        let span = upper.duration_since(lower).unwrap_or_default();
        if span <= Duration::from_secs(1) {
            return false;
        }
        let middle = format(lower + span / 2);
        if self.cuts.contains(&middle) {
            return false;
        }
        self.cuts.insert(index, middle);
        true
    }

    pub fn len(&self) -> usize {
        self.cuts.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(part: &Part, time: &str) -> bool {
        part.from.as_deref().is_none_or(|from| from <= time)
            && part.to.as_deref().is_none_or(|to| time < to)
    }

    #[test]
    fn parts_cover_every_instant_exactly_once() {
        let mut plan = SplitPlan::new("2022-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 4).unwrap();
        assert!(plan.split(0));
        assert!(plan.split(4));
        let parts = plan.parts();
        assert_eq!(parts.len(), plan.len());
        assert_eq!(
            parts[0].from, None,
            "the first part is open below (and holds undated rows)"
        );
        for time in [
            "1999-01-01T00:00:00Z",
            "2022-01-01T00:00:00Z",
            "2023-01-01T06:00:00Z",
            "2024-01-01T12:00:00Z",
            "2025-12-31T23:59:59Z",
            "2026-01-01T00:00:00Z",
            "2030-05-05T00:00:00Z",
        ] {
            let owners = parts.iter().filter(|p| contains(p, time)).count();
            assert_eq!(owners, 1, "{time} is in {owners} parts");
        }
        // Neighbouring parts meet exactly: no gap, no overlap.
        for pair in parts.windows(2) {
            assert_eq!(pair[0].to, pair[1].from);
        }
    }

    #[test]
    fn splitting_stops_at_one_second() {
        let mut plan = SplitPlan::new("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 4).unwrap();
        assert_eq!(plan.parts().len(), 1, "one part for a single instant");
        assert!(!plan.split(0), "a single instant cannot be split");
        let mut plan = SplitPlan::new("2024-01-01T00:00:00Z", "2024-01-01T00:00:08Z", 1).unwrap();
        let mut splits = 0;
        while plan.split(0) {
            splits += 1;
        }
        assert!((3..=4).contains(&splits), "{splits}");
        assert!(!plan.split(99));
    }

    #[test]
    fn timestamps_must_be_rfc3339() {
        assert!(SplitPlan::new("yesterday", "2024-01-01T00:00:00Z", 2).is_err());
    }

    #[test]
    fn plans_survive_storage() {
        let plan = SplitPlan::new("2022-01-01T00:00:00Z", "2023-01-01T00:00:00Z", 3).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<SplitPlan>(&json).unwrap(), plan);
    }
}
