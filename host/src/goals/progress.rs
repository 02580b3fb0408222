//! How far a Key Result has come from its start towards its target.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Increase,
    Decrease,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Number,
    Percent,
    Currency,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
        }
    }

    pub fn parse(text: &str) -> Option<Direction> {
        match text {
            "increase" => Some(Direction::Increase),
            "decrease" => Some(Direction::Decrease),
            _ => None,
        }
    }
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Number => "number",
            Unit::Percent => "percent",
            Unit::Currency => "currency",
        }
    }

    pub fn parse(text: &str) -> Option<Unit> {
        match text {
            "number" => Some(Unit::Number),
            "percent" => Some(Unit::Percent),
            "currency" => Some(Unit::Currency),
            _ => None,
        }
    }
}

/// Progress in percent, unclamped: below 0 when the value moved the wrong way,
/// above 100 when the target is passed. `None` when start and target are equal.
pub fn raw_percent(start: f64, target: f64, value: f64, direction: Direction) -> Option<f64> {
    let span = match direction {
        Direction::Increase => target - start,
        Direction::Decrease => start - target,
    };
    if span == 0.0 || !span.is_finite() {
        return None;
    }
    let moved = match direction {
        Direction::Increase => value - start,
        Direction::Decrease => start - value,
    };
    Some(moved / span * 100.0)
}

/// Progress as a progress bar shows it: between 0 and 100.
pub fn display_percent(raw: f64) -> f64 {
    raw.clamp(0.0, 100.0)
}

/// A value in its unit, for people: `1,234.5`, `45%`, `1,234.50 EUR`.
pub fn format_value(value: f64, unit: Unit, currency: Option<&str>) -> String {
    let number = crate::numbers::format_number(value);
    match unit {
        Unit::Number => number,
        Unit::Percent => format!("{number}%"),
        Unit::Currency => match currency {
            Some(code) => format!("{} {code}", crate::numbers::format_number_fixed(value)),
            None => crate::numbers::format_number_fixed(value),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_key_results() {
        assert_eq!(
            raw_percent(0.0, 200.0, 50.0, Direction::Increase),
            Some(25.0)
        );
        assert_eq!(
            raw_percent(100.0, 200.0, 250.0, Direction::Increase),
            Some(150.0)
        );
        assert_eq!(
            raw_percent(100.0, 200.0, 50.0, Direction::Increase),
            Some(-50.0)
        );
    }

    #[test]
    fn decreasing_key_results() {
        // Churn from 10% down to 4%: at 7% halfway.
        assert_eq!(raw_percent(10.0, 4.0, 7.0, Direction::Decrease), Some(50.0));
        let worse = raw_percent(10.0, 4.0, 12.0, Direction::Decrease).unwrap();
        assert!((worse + 100.0 / 3.0).abs() < 1e-9, "{worse}");
        assert_eq!(
            raw_percent(10.0, 4.0, 1.0, Direction::Decrease),
            Some(150.0)
        );
    }

    #[test]
    fn degenerate_targets_have_no_progress() {
        assert_eq!(raw_percent(5.0, 5.0, 7.0, Direction::Increase), None);
    }

    #[test]
    fn display_is_clamped_but_raw_is_kept() {
        assert_eq!(display_percent(150.0), 100.0);
        assert_eq!(display_percent(-20.0), 0.0);
        assert_eq!(display_percent(42.5), 42.5);
    }

    #[test]
    fn each_unit_formats_its_way() {
        assert_eq!(format_value(1234.5, Unit::Number, None), "1,234.50");
        assert_eq!(format_value(45.0, Unit::Percent, None), "45%");
        assert_eq!(
            format_value(1234.5, Unit::Currency, Some("EUR")),
            "1,234.50 EUR"
        );
        assert_eq!(format_value(3.0, Unit::Currency, None), "3.00");
    }
}
