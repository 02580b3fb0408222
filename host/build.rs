//! Builds the Dynamics 365 plugin component from this workspace and embeds it, so
//! `cargo run --bin goals-host` needs no separate step and can never run a stale
//! plugin: any change under plugin/ or wit/ rebuilds it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGIN_PACKAGE: &str = "dynamics365-plugin";
const PLUGIN_FILE: &str = "dynamics365_plugin.wasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives inside the workspace")
        .to_path_buf();
    // The root manifest holds the plugin's profile and dependency features, and
    // the toolchain file its compiler: a change to either changes the component.
    for watched in [
        "plugin/src",
        "plugin/Cargo.toml",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
        "rust-toolchain.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    watch_git_head(&workspace);
    println!(
        "cargo:rustc-env=GOALS_HOST_LONG_VERSION={} ({}, accepts {})",
        env!("CARGO_PKG_VERSION"),
        commit(&workspace),
        wit_package(&workspace)
    );

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // The outer cargo holds the lock on its target directory, so the guest gets a
    // directory of its own beside it; it is shared by every profile and by clippy.
    let target_dir = cargo_target_dir(&out_dir).join("plugin-build");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--quiet", "--package", PLUGIN_PACKAGE])
        .args(["--target", "wasm32-wasip2", "--profile", "plugin"])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags and wrappers meant for the host build (clippy, coverage) must not
        // leak into the guest build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo to build the plugin");
    if !output.status.success() {
        panic!(
            "building the plugin component failed (is the wasm32-wasip2 target installed? \
             `rustup toolchain install` adds it):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let built = target_dir
        .join("wasm32-wasip2")
        .join("plugin")
        .join(PLUGIN_FILE);
    std::fs::copy(&built, out_dir.join(PLUGIN_FILE)).expect("copy the plugin component");
}

/// The commit for `--version` changes with HEAD, and with the branch HEAD names
/// when a commit moves it; outside a git checkout nothing is watched.
fn watch_git_head(workspace: &Path) {
    let git = workspace.join(".git");
    let head = git.join("HEAD");
    if !head.is_file() {
        return;
    }
    println!("cargo:rerun-if-changed={}", head.display());
    let branch = std::fs::read_to_string(&head)
        .ok()
        .and_then(|text| text.trim().strip_prefix("ref: ").map(|r| git.join(r)));
    if let Some(branch) = branch.filter(|path| path.is_file()) {
        println!("cargo:rerun-if-changed={}", branch.display());
    }
}

/// `commit 1bff5d8`, or `commit unknown` without git or outside a checkout.
fn commit(workspace: &Path) -> String {
    let hash = Command::new("git")
        .current_dir(workspace)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|hash| hash.trim().to_string())
        .filter(|hash| !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()));
    match hash {
        Some(hash) => format!("commit {hash}"),
        None => "commit unknown".to_string(),
    }
}

/// The WIT package the host is generated from, e.g. `goals:integration@0.1.0`,
/// from its `package goals:integration@X;` line.
fn wit_package(workspace: &Path) -> String {
    const PACKAGE: &str = "goals:integration";
    // One directory per released version (wit/v0.1.0, wit/v0.2.0, ...).
    let mut versions: Vec<String> = std::fs::read_dir(workspace.join("wit"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let wit = std::fs::read_to_string(entry.ok()?.path().join("integration.wit")).ok()?;
            wit.lines().find_map(|line| {
                let rest = line
                    .trim()
                    .strip_prefix("package ")?
                    .strip_prefix(PACKAGE)?;
                let version = rest.strip_prefix('@')?.split(';').next()?.trim();
                (!version.is_empty()).then(|| version.to_string())
            })
        })
        .collect();
    versions.sort();
    versions.reverse();
    if versions.is_empty() {
        format!("{PACKAGE} (version unknown)")
    } else {
        format!("{PACKAGE}@{}", versions.join(", @"))
    }
}

/// `<target>/<profile>/build/<package>-<hash>/out` → `<target>`.
fn cargo_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.join("target"))
}
