//! The Goals platform side of the reference host: tenants and organizations
//! with the integration policy, Key Results linked to metrics, the syncs that
//! update them, the scheduler, and the alerts people see.

pub mod admin;
pub mod alerts;
pub mod backfill;
pub mod clock;
pub mod history;
pub mod hosts;
pub mod keyresults;
pub mod linking;
pub mod progress;
pub mod scheduler;
pub mod slots;
pub mod sync;
pub mod tokens;

// The sync policy against a fake engine.
#[cfg(test)]
mod policy_tests;
