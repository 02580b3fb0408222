//! The `goals-host` command line.

mod admin;
mod connection;
mod discover;
mod keyresult;
mod schedule;
mod wizard;

use crate::bindings::{Aggregation, CurrencyChoice};
use crate::connections::DEFAULT_ORGANIZATION;
use crate::db::Database;
use crate::goals::clock::{Clock, SystemClock};
use crate::limits::Limits;
use crate::render::Report;
use crate::runtime::{PluginRuntime, PluginSource};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use admin::{OrgCommand, TenantCommand};
pub use connection::ConnectionCommand;
pub use discover::PluginCommand;
pub use keyresult::{KrCommand, details};

#[derive(Debug, Parser)]
#[command(
    name = "goals-host",
    version,
    about = "Reference host of the Goals integration world, with the Dynamics 365 plugin built in."
)]
pub struct Cli {
    /// Directory of the host's database [default: $XDG_DATA_HOME/goals-host]
    #[arg(long, global = true, env = "GOALS_HOST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Integration component to load instead of the built-in Dynamics 365 plugin
    #[arg(long, global = true, env = "GOALS_HOST_PLUGIN")]
    pub plugin: Option<PathBuf>,
    /// Where compiled plugins are kept between runs [default: DATA_DIR/precompiled]
    #[arg(long, global = true, env = "GOALS_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Organization the command acts in [default: "default", or the connection's]
    #[arg(long, global = true)]
    pub org: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Seconds one plugin call may take, waiting included
    #[arg(long, global = true, default_value_t = 60.0, value_name = "SECONDS")]
    pub call_timeout: f64,
    /// Memory one plugin instance may use
    #[arg(long, global = true, default_value_t = 128, value_name = "MIB")]
    pub memory_limit: usize,
    /// Largest HTTP response body passed to a plugin
    #[arg(long, global = true, default_value_t = 32, value_name = "MIB")]
    pub response_limit: u64,
    /// Storage of one plugin for one connection
    #[arg(long, global = true, default_value_t = 4096, value_name = "KIB")]
    pub storage_limit: u64,
    /// Keys in the storage of one plugin for one connection
    #[arg(long, global = true, default_value_t = 1000)]
    pub storage_keys: u64,
    /// Plugin instances alive at once, kept in a pre-reserved pool; 0 allocates
    /// each on demand
    #[arg(long, global = true, default_value_t = 256, value_name = "N")]
    pub instance_slots: u32,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tenants and the tenant admin's integration switch
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Organizations and the organization admin's integration switch
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage connections to environments
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Key Results: create, link to a metric, sync, details and history
    #[command(subcommand)]
    Kr(KrCommand),
    /// Run the scheduler: sync every due link, every interval
    Run(schedule::RunArgs),
    /// Open problems: connections needing sign-in, broken links, stale Key Results
    Alerts {
        /// Include closed alerts
        #[arg(long)]
        all: bool,
    },
    /// Run the whole flow against the built-in Dataverse simulator
    Demo,
    /// Measure the host (overhead per sync, throughput, cold start, memory)
    /// against the built-in simulator; run it from a release build
    Bench {
        #[arg(value_enum, default_value = "all")]
        kind: crate::bench::BenchKind,
    },
    #[command(flatten)]
    Plugin(PluginCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AggregationArg {
    Count,
    CountValues,
    CountDistinct,
    Sum,
    Average,
    Min,
    Max,
}

impl From<AggregationArg> for Aggregation {
    fn from(arg: AggregationArg) -> Aggregation {
        match arg {
            AggregationArg::Count => Aggregation::Count,
            AggregationArg::CountValues => Aggregation::CountValues,
            AggregationArg::CountDistinct => Aggregation::CountDistinct,
            AggregationArg::Sum => Aggregation::Sum,
            AggregationArg::Average => Aggregation::Average,
            AggregationArg::Min => Aggregation::Min,
            AggregationArg::Max => Aggregation::Max,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CurrencyArg {
    Base,
    Transaction,
}

impl From<CurrencyArg> for CurrencyChoice {
    fn from(arg: CurrencyArg) -> CurrencyChoice {
        match arg {
            CurrencyArg::Base => CurrencyChoice::Base,
            CurrencyArg::Transaction => CurrencyChoice::Transaction,
        }
    }
}

impl Cli {
    pub fn plugin_source(&self) -> PluginSource {
        match &self.plugin {
            Some(path) => PluginSource::File(path.clone()),
            None => PluginSource::Embedded,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
            });
        match base {
            Some(base) => base.join("goals-host"),
            None => PathBuf::from(".goals-host"),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("precompiled"))
    }

    /// The limits of plugin calls from the command line.
    pub fn limits(&self) -> Limits {
        Limits {
            call_timeout: Duration::from_secs_f64(self.call_timeout.max(0.001)),
            memory_bytes: self.memory_limit.saturating_mul(1 << 20),
            response_body_bytes: self.response_limit.saturating_mul(1 << 20),
            storage_bytes: self.storage_limit.saturating_mul(1 << 10),
            storage_keys: self.storage_keys,
            instance_slots: self.instance_slots,
        }
    }

    /// The organization named with `--org`, else the default one.
    pub fn org(&self) -> &str {
        self.org.as_deref().unwrap_or(DEFAULT_ORGANIZATION)
    }
}

/// What a command works with; the plugin is loaded only by commands that call it.
pub struct Context<'a> {
    pub cli: &'a Cli,
    pub db: Database,
    pub clock: Arc<dyn Clock>,
}

impl Context<'_> {
    pub async fn runtime(&self) -> anyhow::Result<Arc<PluginRuntime>> {
        Ok(Arc::new(
            PluginRuntime::load_with_limits(
                &self.cli.plugin_source(),
                self.db.clone(),
                self.cli.limits(),
                Some(&self.cli.cache_dir()),
            )
            .await?,
        ))
    }
}

pub async fn run(cli: &Cli) -> anyhow::Result<Report> {
    // The demo and the benches bring their own simulator and data directory.
    let context = || -> anyhow::Result<Context<'_>> {
        Ok(Context {
            cli,
            db: Database::open(&cli.data_dir())?,
            clock: Arc::new(SystemClock),
        })
    };
    match &cli.command {
        Command::Demo => crate::demo::run(cli.plugin_source()).await,
        Command::Bench { kind } => crate::bench::run(*kind, cli.plugin_source()).await,
        Command::Tenant(command) => admin::tenant(&context()?, command).await,
        Command::Org(command) => admin::org(&context()?, command).await,
        Command::Connection(command) => connection::run(&context()?, command).await,
        Command::Kr(command) => keyresult::run(&context()?, command).await,
        Command::Run(args) => schedule::run(&context()?, args).await,
        Command::Alerts { all } => schedule::alerts(&context()?, *all).await,
        Command::Plugin(command) => discover::run(&context()?, command).await,
    }
}

/// The JSON form of a failed command: `{"error": {"kind", "message", ...}}`, where
/// `kind` is stable for programs to act on.
pub fn error_json(error: &anyhow::Error) -> serde_json::Value {
    use crate::bindings::Error as PluginError;
    use crate::connections::ConnectionError;
    use crate::goals::admin::AdminError;
    use crate::goals::keyresults::KeyResultError;
    use crate::goals::sync::SyncError;
    use crate::resolve::ResolveError;
    use crate::runtime::{CallError, error_kind, error_message};
    use serde_json::json;

    if let Some(call) = error.downcast_ref::<CallError>() {
        return match call {
            CallError::Plugin { error, refusals } => {
                let retry_after = match error {
                    PluginError::Throttled(t) => Some(t.retry_after_seconds),
                    _ => None,
                };
                json!({ "error": {
                    "kind": error_kind(error),
                    "message": error_message(error),
                    "retry_after_seconds": retry_after,
                    "host_refusals": refusals,
                }})
            }
            CallError::Trap(_) => {
                json!({ "error": { "kind": "plugin-failure", "message": format!("{error:#}") } })
            }
            CallError::HostLimit(message) => {
                json!({ "error": { "kind": "host-limit", "message": message } })
            }
        };
    }
    let kind = if let Some(connection) = error.downcast_ref::<ConnectionError>() {
        match connection {
            ConnectionError::DuplicateName { .. } => "duplicate",
            ConnectionError::NotFound { .. } | ConnectionError::NoOrganization(_) => "not-found",
            ConnectionError::Ambiguous { .. } => "ambiguous",
            ConnectionError::Invalid { .. } => "invalid",
            ConnectionError::InUse { .. } => "in-use",
            ConnectionError::Db(_) => "storage",
        }
    } else if let Some(resolve) = error.downcast_ref::<ResolveError>() {
        match resolve {
            ResolveError::NotFound { .. } => "not-found",
            ResolveError::Ambiguous { .. } => "ambiguous",
        }
    } else if let Some(admin) = error.downcast_ref::<AdminError>() {
        match admin {
            AdminError::Duplicate { .. } => "duplicate",
            AdminError::NotFound { .. } => "not-found",
            AdminError::BadName { .. } => "invalid",
            AdminError::Db(_) => "storage",
        }
    } else if let Some(kr) = error.downcast_ref::<KeyResultError>() {
        match kr {
            KeyResultError::NotFound(_) => "not-found",
            KeyResultError::Ambiguous { .. } => "ambiguous",
            KeyResultError::NotLinked(_) => "not-linked",
            KeyResultError::Invalid(_) => "invalid",
            KeyResultError::Db(_) => "storage",
        }
    } else if let Some(sync) = error.downcast_ref::<SyncError>() {
        match sync {
            SyncError::NotLinked(_) => "not-linked",
            SyncError::AlreadyRunning { .. } => "already-running",
            SyncError::Disabled(_) => "disabled",
            SyncError::ConnectionUnavailable(_) => "needs-sign-in",
            SyncError::Db(_) => "storage",
        }
    } else {
        "error"
    };
    json!({ "error": { "kind": kind, "message": format!("{error:#}") } })
}
