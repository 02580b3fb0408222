//! Time as the Goals side sees it, injectable so tests can run hours in
//! milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds.
pub type Timestamp = i64;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as Timestamp)
            .unwrap_or_default()
    }
}

/// The wall clock moved ahead by a fixed number of seconds: a test starts the
/// CLI an interval "later" instead of waiting that long.
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().saturating_add(self.0)
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

/// A timestamp as RFC 3339 UTC, the form JSON output uses for every time.
pub fn json(timestamp: Timestamp) -> serde_json::Value {
    serde_json::Value::String(format(timestamp))
}

/// An optional timestamp as RFC 3339 UTC, or null.
pub fn json_opt(timestamp: Option<Timestamp>) -> serde_json::Value {
    timestamp.map_or(serde_json::Value::Null, json)
}

/// A timestamp as RFC 3339, for people.
pub fn format(timestamp: Timestamp) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_secs(timestamp.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The start (00:00 UTC) of a calendar day written YYYY-MM-DD; `None` for
/// anything else, a day that no month has included.
pub fn day_start(day: &str) -> Option<Timestamp> {
    if day.len() != 10 {
        return None;
    }
    let time = humantime::parse_rfc3339(&format!("{day}T00:00:00Z")).ok()?;
    Timestamp::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
}

/// The calendar day (YYYY-MM-DD, UTC) a timestamp falls on.
pub fn day(timestamp: Timestamp) -> String {
    format(timestamp).chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_calendar_days_of_utc() {
        assert_eq!(day_start("1970-01-02"), Some(86_400));
        assert_eq!(day(86_400 + 3_600), "1970-01-02");
        for wrong in ["2023-02-29", "2024-4-01", "2024-04-01T00:00:00Z", ""] {
            assert_eq!(day_start(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(1_000);
        let shared = clock.clone();
        clock.advance(3600);
        assert_eq!(shared.now(), 4_600);
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert!(SystemClock.now() > 1_700_000_000);
    }
}
