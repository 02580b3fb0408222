//! This host's integration components: the built-in Dynamics 365 one and any
//! given with `--plugin`, loaded by the engine over the application's database.

use crate::db::Database;
use crate::limits::Limits;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use goals_engine::runtime::{
    CONTRACT_VERSIONS, CallError, CallTarget, PluginRuntime, error_kind, error_message,
};

/// The Dynamics 365 plugin built from this workspace by the build script.
pub static EMBEDDED_PLUGIN: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dynamics365_plugin.wasm"));

/// Where the component comes from.
#[derive(Debug, Clone)]
pub enum PluginSource {
    Embedded,
    File(PathBuf),
}

pub async fn load(source: &PluginSource, db: Database) -> anyhow::Result<PluginRuntime> {
    load_with_limits(source, db, Limits::default(), None).await
}

/// With `cache_dir`, the compiled component is kept there and reused by later
/// starts (see [`crate::artifact`]).
pub async fn load_with_limits(
    source: &PluginSource,
    db: Database,
    limits: Limits,
    cache_dir: Option<&Path>,
) -> anyhow::Result<PluginRuntime> {
    let (bytes, name) = match source {
        PluginSource::Embedded => (
            std::borrow::Cow::Borrowed(EMBEDDED_PLUGIN),
            "the embedded plugin".to_string(),
        ),
        PluginSource::File(path) => (
            std::borrow::Cow::Owned(
                std::fs::read(path)
                    .with_context(|| format!("reading the plugin {}", path.display()))?,
            ),
            format!("the plugin {}", path.display()),
        ),
    };
    let runtime =
        PluginRuntime::load(&bytes, &name, Arc::new(db.clone()), limits, cache_dir).await?;
    let info = runtime.info();
    // Before 0.2, storage was scoped by the display name: move what the
    // integration kept there under its id, once.
    if info.id != info.name {
        let moved = crate::db::move_plugin_scope(&db, &info.name, &info.id)
            .await
            .context("moving the plugin's storage to its id")?;
        if moved > 0 {
            tracing::info!(
                "moved {moved} stored values of {} from its name to its id {}",
                info.name,
                info.id
            );
        }
    }
    Ok(runtime)
}

/// The same compiled plugin over another database: no recompilation.
pub fn with_database(runtime: &PluginRuntime, db: Database) -> PluginRuntime {
    runtime.with_store(Arc::new(db))
}
