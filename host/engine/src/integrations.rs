//! The integrations one host runs, by id. Every call names its integration, and
//! goes to that integration's component.

use crate::outbound::TrafficReading;
use crate::runtime::{CallError, CallTarget, PluginRuntime};

/// The loaded integrations; the first is the default of commands that name none.
pub struct Integrations {
    runtimes: Vec<PluginRuntime>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "this host runs no integration '{wanted}' (it runs {}); load its component with \
     --plugin PATH",
    .loaded.join(", ")
)]
pub struct UnknownIntegration {
    pub wanted: String,
    pub loaded: Vec<String>,
}

impl Integrations {
    /// `runtimes` in order of precedence: a later component with the id of an
    /// earlier one replaces it (a newer build of the same integration).
    pub fn new(runtimes: Vec<PluginRuntime>) -> Integrations {
        let mut kept: Vec<PluginRuntime> = Vec::new();
        for runtime in runtimes {
            match kept.iter().position(|r| r.info().id == runtime.info().id) {
                Some(at) => kept[at] = runtime,
                None => kept.push(runtime),
            }
        }
        Integrations { runtimes: kept }
    }

    fn ids(&self) -> Vec<String> {
        self.runtimes.iter().map(|r| r.info().id.clone()).collect()
    }

    /// The integration `wanted`, or the default one.
    pub fn get(&self, wanted: Option<&str>) -> Result<&PluginRuntime, UnknownIntegration> {
        let found = match wanted {
            Some(id) => self.runtimes.iter().find(|r| r.info().id == id),
            None => self.runtimes.first(),
        };
        found.ok_or_else(|| UnknownIntegration {
            wanted: wanted.unwrap_or_default().to_string(),
            loaded: self.ids(),
        })
    }

    /// Every loaded integration, the default first.
    pub fn all(&self) -> impl Iterator<Item = &PluginRuntime> {
        self.runtimes.iter()
    }

    /// The integration that serves `target`.
    pub fn for_target(&self, target: &CallTarget) -> Result<&PluginRuntime, CallError> {
        self.get(Some(&target.integration))
            .map_err(|missing| CallError::NoIntegration(missing.to_string()))
    }

    /// Requests and bytes of every call so far, over all integrations.
    pub fn traffic(&self) -> TrafficReading {
        self.runtimes.iter().map(PluginRuntime::traffic).fold(
            TrafficReading::default(),
            |sum, r| TrafficReading {
                requests: sum.requests + r.requests,
                bytes_received: sum.bytes_received + r.bytes_received,
            },
        )
    }
}
