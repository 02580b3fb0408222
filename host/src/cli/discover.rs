//! Browsing a connection and measuring a metric: what the link wizard does step
//! by step, as separate commands.

use super::{AggregationArg, Context, CurrencyArg};
use crate::bindings::{MetricSpec, ViewRef};
use crate::connections;
use crate::render::{self, Report};
use crate::resolve;
use clap::Subcommand;

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

pub async fn run(context: &Context<'_>, command: &PluginCommand) -> anyhow::Result<Report> {
    let runtime = context.runtime().await?;
    let org = context.cli.org.as_deref();
    let db = &context.db;
    match command {
        PluginCommand::Describe => Ok(render::info(runtime.info())),
        PluginCommand::Apps { connection } => {
            let conn = connections::get(db, connection, org).await?;
            Ok(render::apps(&runtime.list_apps(&conn).await?))
        }
        PluginCommand::Entities { connection, app } => {
            let conn = connections::get(db, connection, org).await?;
            let app = resolve::app(&runtime, &conn, app).await?;
            Ok(render::entities(
                &runtime.list_entities(&conn, &app.id).await?,
            ))
        }
        PluginCommand::Views {
            connection,
            entity,
            search,
        } => {
            let conn = connections::get(db, connection, org).await?;
            Ok(render::views(
                &runtime.list_views(&conn, entity, search.as_deref()).await?,
            ))
        }
        PluginCommand::Columns {
            connection,
            entity,
            view,
        } => {
            let conn = connections::get(db, connection, org).await?;
            let view = resolve::view(&runtime, &conn, entity, view).await?;
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
            let conn = connections::get(db, connection, org).await?;
            let view = resolve::view(&runtime, &conn, entity, view).await?;
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
