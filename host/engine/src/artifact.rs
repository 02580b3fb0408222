//! Compiling a component once: the native code is kept in a file keyed by the
//! component's hash and the engine's compatibility hash, so later starts load it
//! instead of compiling. A changed component or wasmtime gets a new key; a file
//! that is corrupt or not ours fails its checksum or wasmtime's own checks and is
//! rebuilt, never executed.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Marks our artifact files and their layout: magic, SHA-256 of the payload,
/// then wasmtime's serialized component.
const MAGIC: &[u8; 8] = b"GHCWASM1";
const HEADER: usize = MAGIC.len() + 32;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and stored, when a cache directory is given).
    Compiled,
    /// Loaded from a stored artifact.
    Precompiled,
    /// A stored artifact was unusable (corrupt, foreign); compiled and replaced.
    Rebuilt,
}

/// The artifact file for `component` under `dir`.
pub fn artifact_path(engine: &Engine, dir: &Path, component: &[u8]) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = Sha256::digest(component);
    dir.join(format!(
        "{}-{:016x}.cwasm",
        hex::encode(&digest[..16]),
        hasher.finish()
    ))
}

/// The component, from `dir`'s artifact when it is sound, else compiled (and the
/// artifact written). Without `dir`, always compiled.
pub fn load(
    engine: &Engine,
    component: &[u8],
    dir: Option<&Path>,
) -> anyhow::Result<(Component, Origin)> {
    let Some(dir) = dir else {
        return Ok((compile(engine, component)?, Origin::Compiled));
    };
    let path = artifact_path(engine, dir, component);
    let origin = match std::fs::read(&path) {
        Ok(stored) => match verified_payload(&stored) {
            // SAFETY: the payload is byte for byte what this host wrote from
            // `Engine::precompile_component` (its SHA-256 matches the header),
            // and wasmtime checks that it was built by a compatible engine.
            Some(payload) => match unsafe { Component::deserialize(engine, payload) } {
                Ok(loaded) => return Ok((loaded, Origin::Precompiled)),
                Err(error) => {
                    tracing::warn!(
                        "rebuilding {}: wasmtime refused it: {error}",
                        path.display()
                    );
                    Origin::Rebuilt
                }
            },
            None => {
                tracing::warn!("rebuilding {}: it is corrupt or not ours", path.display());
                Origin::Rebuilt
            }
        },
        Err(_) => Origin::Compiled,
    };
    let precompiled = engine
        .precompile_component(component)
        .map_err(anyhow::Error::from)?;
    // SAFETY: these bytes were produced by this engine just now.
    let loaded =
        unsafe { Component::deserialize(engine, &precompiled) }.map_err(anyhow::Error::from)?;
    if let Err(error) = store(&path, &precompiled) {
        // The cache is an optimisation: a read-only disk costs compile time only.
        tracing::warn!(
            "cannot keep the compiled plugin at {}: {error}",
            path.display()
        );
    }
    Ok((loaded, origin))
}

fn compile(engine: &Engine, component: &[u8]) -> anyhow::Result<Component> {
    Component::new(engine, component).map_err(anyhow::Error::from)
}

/// The payload of a stored artifact whose checksum holds.
fn verified_payload(stored: &[u8]) -> Option<&[u8]> {
    if stored.len() < HEADER || &stored[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (header, payload) = stored.split_at(HEADER);
    (Sha256::digest(payload).as_slice() == &header[MAGIC.len()..]).then_some(payload)
}

/// Writes the artifact whole or not at all: a temporary file renamed into place.
fn store(path: &Path, payload: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut contents = Vec::with_capacity(HEADER + payload.len());
    contents.extend_from_slice(MAGIC);
    contents.extend_from_slice(&Sha256::digest(payload));
    contents.extend_from_slice(payload);
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny component: compiling it is quick, so these tests stay fast.
    const COMPONENT: &str = "(component (core module (func (export \"f\"))))";

    fn engine() -> Engine {
        Engine::default()
    }

    fn component() -> Vec<u8> {
        wat::parse_str(COMPONENT).unwrap()
    }

    #[test]
    fn the_first_start_compiles_and_later_ones_reuse_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let (_, origin) = load(&engine, &component(), Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Compiled);
        assert!(artifact_path(&engine, dir.path(), &component()).exists());
        let (_, origin) = load(&engine, &component(), Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Precompiled);
    }

    #[test]
    fn a_changed_component_gets_its_own_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        load(&engine, &component(), Some(dir.path())).unwrap();
        let changed = wat::parse_str("(component (core module (func (export \"g\"))))").unwrap();
        assert_ne!(
            artifact_path(&engine, dir.path(), &changed),
            artifact_path(&engine, dir.path(), &component())
        );
        let (_, origin) = load(&engine, &changed, Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Compiled);
    }

    #[test]
    fn another_engine_configuration_gets_its_own_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).unwrap();
        assert_ne!(
            artifact_path(&engine(), dir.path(), &component()),
            artifact_path(&other, dir.path(), &component())
        );
    }

    #[test]
    fn a_corrupt_or_foreign_artifact_is_rebuilt_never_run() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        load(&engine, &component(), Some(dir.path())).unwrap();
        let path = artifact_path(&engine, dir.path(), &component());

        // One flipped byte in the machine code.
        let mut stored = std::fs::read(&path).unwrap();
        let last = stored.len() - 1;
        stored[last] ^= 0xff;
        std::fs::write(&path, &stored).unwrap();
        let (_, origin) = load(&engine, &component(), Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Rebuilt);
        let (_, origin) = load(&engine, &component(), Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Precompiled, "the rebuilt artifact is sound");

        // Something else entirely under our name.
        std::fs::write(&path, b"#!/bin/sh\necho not a component\n").unwrap();
        let (_, origin) = load(&engine, &component(), Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Rebuilt);

        // Our header over a payload wasmtime did not write.
        let mut forged = MAGIC.to_vec();
        let payload = b"not wasmtime's format";
        forged.extend_from_slice(&Sha256::digest(payload));
        forged.extend_from_slice(payload);
        std::fs::write(&path, forged).unwrap();
        let (_, origin) = load(&engine, &component(), Some(dir.path())).unwrap();
        assert_eq!(origin, Origin::Rebuilt);
    }
}
