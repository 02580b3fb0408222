//! Metadata kept in host storage between calls, so a scheduled sync of an unchanged
//! metric costs one request instead of five.

use crate::platform::Platform;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Table and column definitions change rarely; a day keeps renamed columns from
/// lingering long while costing one metadata request per table per day.
pub const METADATA_TTL_SECONDS: u32 = 24 * 3600;

/// An organization's base currency can never change once set.
pub const CURRENCY_TTL_SECONDS: u32 = 7 * 24 * 3600;

/// A value stored as JSON under `key`, if present and readable.
pub fn get<T: DeserializeOwned>(platform: &dyn Platform, key: &str) -> Option<T> {
    let bytes = platform.storage_get(key)?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Some(value),
        Err(_) => {
            // Written by another version of the plugin: forget it.
            platform.storage_delete(key);
            None
        }
    }
}

pub fn put<T: Serialize>(platform: &dyn Platform, key: &str, value: &T, ttl_seconds: u32) {
    if let Ok(bytes) = serde_json::to_vec(value) {
        platform.storage_set(key, &bytes, Some(ttl_seconds));
    }
}

pub fn forget(platform: &dyn Platform, key: &str) {
    platform.storage_delete(key);
}

/// The cached value, or `load`'s result, cached for `ttl_seconds`.
pub fn get_or_load<T, E>(
    platform: &dyn Platform,
    key: &str,
    ttl_seconds: u32,
    load: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
{
    if let Some(value) = get(platform, key) {
        return Ok(value);
    }
    let value = load()?;
    put(platform, key, &value, ttl_seconds);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::fake::FakePlatform;

    #[test]
    fn loads_once_then_serves_from_storage() {
        let platform = FakePlatform::default();
        let mut loads = 0;
        for _ in 0..3 {
            let value: Result<u32, ()> = get_or_load(&platform, "k", 60, || {
                loads += 1;
                Ok(7)
            });
            assert_eq!(value, Ok(7));
        }
        assert_eq!(loads, 1);
        forget(&platform, "k");
        assert_eq!(get::<u32>(&platform, "k"), None);
    }

    #[test]
    fn unreadable_entries_are_dropped() {
        let platform = FakePlatform::default();
        platform.storage_set("k", b"not json", None);
        assert_eq!(get::<u32>(&platform, "k"), None);
        assert!(platform.storage_get("k").is_none());
    }
}
