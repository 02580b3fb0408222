//! The `goals-host` command line.

use crate::bindings::{Aggregation, CurrencyChoice, MetricSpec, ViewRef};
use crate::connections::{self, NewConnection, Secret};
use crate::db::Database;
use crate::render::{self, Report};
use crate::resolve;
use crate::runtime::{PluginRuntime, PluginSource};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage connections to environments
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Run the whole flow against the built-in Dataverse simulator
    Demo,
    #[command(flatten)]
    Plugin(PluginCommand),
}

/// Commands that call the integration.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show what the loaded integration is
    Describe,
    /// List the apps of a connection's environment
    Apps {
        #[arg(long)]
        connection: String,
    },
    /// List the entities an app shows (APP: id or exact name)
    Entities {
        #[arg(long)]
        connection: String,
        #[arg(long)]
        app: String,
    },
    /// List the views of an entity, optionally searching their names
    Views {
        #[arg(long)]
        connection: String,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        search: Option<String>,
    },
    /// List the columns of a view (VIEW: id or exact name)
    Columns {
        #[arg(long)]
        connection: String,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        view: String,
    },
    /// Measure a metric now: the preview shown before a link is saved
    Measure {
        #[arg(long)]
        connection: String,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        view: String,
        #[arg(long)]
        column: String,
        #[arg(long, value_enum)]
        aggregation: AggregationArg,
        /// Currency of money results
        #[arg(long, value_enum, default_value_t = CurrencyArg::Base)]
        currency: CurrencyArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a named connection (the client secret is read from an environment variable)
    Add {
        #[arg(long)]
        name: String,
        /// Environment URL, e.g. https://contoso.crm.dynamics.com
        #[arg(long)]
        url: String,
        /// Directory (tenant) id or domain of the app registration
        #[arg(long)]
        tenant: String,
        /// Application (client) id of the app registration
        #[arg(long)]
        client_id: String,
        /// Name of the environment variable holding the client secret
        #[arg(long, value_name = "VAR")]
        client_secret_env: String,
        /// Identity authority [default: https://login.microsoftonline.com]
        #[arg(long)]
        authority: Option<String>,
        /// Allow plain http and loopback addresses (simulators and tests only)
        #[arg(long)]
        allow_loopback: bool,
    },
    /// List connections
    List,
    /// Remove a connection and what the plugin cached for it
    Remove { name: String },
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
}

pub async fn run(cli: &Cli) -> anyhow::Result<Report> {
    match &cli.command {
        Command::Demo => crate::demo::run(cli.plugin_source()).await,
        Command::Connection(command) => {
            connection_command(&Database::open(&cli.data_dir())?, command).await
        }
        Command::Plugin(command) => {
            let db = Database::open(&cli.data_dir())?;
            let runtime = PluginRuntime::load(&cli.plugin_source(), db.clone()).await?;
            plugin_command(&db, &runtime, command).await
        }
    }
}

async fn plugin_command(
    db: &Database,
    runtime: &PluginRuntime,
    command: &PluginCommand,
) -> anyhow::Result<Report> {
    match command {
        PluginCommand::Describe => Ok(render::info(runtime.info())),
        PluginCommand::Apps { connection } => {
            let conn = connections::get(db, connection).await?;
            Ok(render::apps(&runtime.list_apps(&conn).await?))
        }
        PluginCommand::Entities { connection, app } => {
            let conn = connections::get(db, connection).await?;
            let app = resolve::app(runtime, &conn, app).await?;
            Ok(render::entities(
                &runtime.list_entities(&conn, &app.id).await?,
            ))
        }
        PluginCommand::Views {
            connection,
            entity,
            search,
        } => {
            let conn = connections::get(db, connection).await?;
            Ok(render::views(
                &runtime.list_views(&conn, entity, search.as_deref()).await?,
            ))
        }
        PluginCommand::Columns {
            connection,
            entity,
            view,
        } => {
            let conn = connections::get(db, connection).await?;
            let view = resolve::view(runtime, &conn, entity, view).await?;
            let view = ViewRef {
                id: view.id,
                kind: view.kind,
            };
            Ok(render::columns(
                &runtime.list_columns(&conn, entity, &view).await?,
            ))
        }
        PluginCommand::Measure {
            connection,
            entity,
            view,
            column,
            aggregation,
            currency,
        } => {
            let conn = connections::get(db, connection).await?;
            let view = resolve::view(runtime, &conn, entity, view).await?;
            let spec = MetricSpec {
                entity: entity.clone(),
                view: ViewRef {
                    id: view.id,
                    kind: view.kind,
                },
                column: column.clone(),
                aggregation: (*aggregation).into(),
                currency: (*currency).into(),
            };
            Ok(render::measurement(
                &runtime.fetch_and_aggregate(&conn, &spec).await?,
            ))
        }
    }
}

async fn connection_command(db: &Database, command: &ConnectionCommand) -> anyhow::Result<Report> {
    match command {
        ConnectionCommand::Add {
            name,
            url,
            tenant,
            client_id,
            client_secret_env,
            authority,
            allow_loopback,
        } => {
            let secret = std::env::var(client_secret_env).with_context(|| {
                format!(
                    "environment variable {client_secret_env} is not set; put the client \
                     secret in it (the secret is never taken from the command line)"
                )
            })?;
            let record = connections::add(
                db,
                NewConnection {
                    name: name.clone(),
                    environment_url: url.clone(),
                    authority_url: authority.clone(),
                    tenant: tenant.clone(),
                    client_id: client_id.clone(),
                    client_secret: Secret::new(secret),
                    allow_loopback: *allow_loopback,
                },
            )
            .await?;
            Ok(Report {
                text: format!(
                    "added connection '{}' to {}",
                    record.name, record.environment_url
                ),
                json: render::connection(&record),
            })
        }
        ConnectionCommand::List => Ok(render::connections(&connections::list(db).await?)),
        ConnectionCommand::Remove { name } => {
            let record = connections::remove(db, name).await?;
            Ok(Report {
                text: format!("removed connection '{}'", record.name),
                json: render::connection(&record),
            })
        }
    }
}

/// The JSON form of a failed command: `{"error": {"kind", "message", ...}}`, where
/// `kind` is stable for programs to act on.
pub fn error_json(error: &anyhow::Error) -> serde_json::Value {
    use crate::bindings::Error as PluginError;
    use crate::connections::ConnectionError;
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
        };
    }
    let kind = if let Some(connection) = error.downcast_ref::<ConnectionError>() {
        match connection {
            ConnectionError::DuplicateName(_) => "duplicate",
            ConnectionError::NotFound { .. } => "not-found",
            ConnectionError::Invalid { .. } => "invalid",
            ConnectionError::Db(_) => "storage",
        }
    } else if let Some(resolve) = error.downcast_ref::<ResolveError>() {
        match resolve {
            ResolveError::NotFound { .. } => "not-found",
            ResolveError::Ambiguous { .. } => "ambiguous",
        }
    } else {
        "error"
    };
    json!({ "error": { "kind": kind, "message": format!("{error:#}") } })
}
