//! What one plugin call may use. Every limit has a safe default, can be changed
//! on the command line, and produces an error naming it when reached.

use std::time::Duration;
use wasmtime::ResourceLimiter;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock time of one call, computing and waiting included.
    pub call_timeout: Duration,
    /// Linear memory of one instance.
    pub memory_bytes: usize,
    /// Largest HTTP response body the host passes to the plugin.
    pub response_body_bytes: u64,
    /// Storage of one plugin for one connection.
    pub storage_bytes: u64,
    pub storage_keys: u64,
    /// Plugin instances alive at once. With a non-zero value the host keeps them
    /// in a pre-reserved pool (cheaper to create); more calls than slots wait for
    /// one. Zero allocates each instance on demand, without a bound.
    pub instance_slots: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(60),
            memory_bytes: 128 << 20,
            response_body_bytes: 32 << 20,
            storage_bytes: 4 << 20,
            storage_keys: 1000,
            instance_slots: 256,
        }
    }
}

/// Which limit stopped a call, for the error people read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    CallTimeout,
    Memory,
}

impl Limits {
    /// The error message for a limit that was reached.
    pub fn describe(&self, limit: Limit) -> String {
        match limit {
            Limit::CallTimeout => format!(
                "the plugin call ran longer than the {} s deadline (--call-timeout)",
                self.call_timeout.as_secs_f64()
            ),
            Limit::Memory => format!(
                "the plugin tried to use more than {} MiB of memory (--memory-limit)",
                self.memory_bytes >> 20
            ),
        }
    }
}

/// Caps an instance's memory and remembers whether it had to refuse growth, so a
/// resulting trap can be explained.
pub struct MemoryLimiter {
    max_bytes: usize,
    pub refused: bool,
}

/// Tables hold function references; no honest plugin needs more elements.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            refused: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.refused);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert!(limiter.refused);
        assert!(
            !limiter
                .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
    }

    #[test]
    fn messages_name_the_limit_and_its_flag() {
        let limits = Limits::default();
        assert!(
            limits
                .describe(Limit::CallTimeout)
                .contains("--call-timeout")
        );
        assert!(limits.describe(Limit::Memory).contains("128 MiB"));
    }
}
