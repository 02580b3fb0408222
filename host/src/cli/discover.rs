//! Browsing a connection and measuring a metric: what the link wizard does step
//! by step, as separate commands.

use super::failure::UsageError;
use super::{AggregationArg, Context, CurrencyArg};
use crate::bindings::{Error as PluginError, MetricSpec, ViewRef};
use crate::connections;
use crate::engine::Engine;
use crate::goals::linking::{self, WantedMeasure};
use crate::render::{self, Report};
use crate::resolve;
use crate::runtime::CallError;
use clap::Subcommand;

/// Commands that call the integration.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show what the loaded integration is
    #[command(after_long_help = "Examples:
  goals-host describe
  goals-host --plugin ./my_integration.wasm describe --integration example.tally --json")]
    Describe {
        /// The integration's id [default: the built-in Dynamics 365 one]
        #[arg(long, value_name = "ID")]
        integration: Option<String>,
    },
    /// List the apps of a connection's environment
    #[command(after_long_help = "Examples:
  goals-host apps --connection Contoso
  goals-host --org Sales apps --connection Sandbox --json")]
    Apps {
        /// Connection: its exact name, as `connection list` shows
        #[arg(long)]
        connection: String,
    },
    /// List the entities an app shows
    #[command(after_long_help = "Examples:
  goals-host entities --connection Contoso --app 'Sales Hub'
  goals-host entities --connection Contoso --app 'sales hub' --json")]
    Entities {
        /// Connection: its exact name, as `connection list` shows
        #[arg(long)]
        connection: String,
        /// App: its id, unique name or display name (any case), as `apps` lists
        #[arg(long)]
        app: String,
    },
    /// List the views of an entity, optionally searching their names
    #[command(after_long_help = "Examples:
  goals-host views --connection Contoso --entity opportunity
  goals-host views --connection Contoso --entity opportunity --search open
  goals-host views --connection Contoso --entity lead --search 'hot leads'")]
    Views {
        /// Connection: its exact name, as `connection list` shows
        #[arg(long)]
        connection: String,
        /// Table: its logical name (e.g. opportunity) or display name (any case), as `entities` lists
        #[arg(long)]
        entity: String,
        /// Only views whose name contains this text (any case, no wildcards)
        #[arg(long)]
        search: Option<String>,
    },
    /// List the columns of a view
    #[command(after_long_help = "Examples:
  goals-host columns --connection Contoso --entity opportunity --view 'Open Opportunities'
  goals-host columns --connection Contoso --entity lead --view 'hot leads' --json")]
    Columns {
        /// Connection: its exact name, as `connection list` shows
        #[arg(long)]
        connection: String,
        /// Table: its logical name (e.g. opportunity) or display name (any case), as `entities` lists
        #[arg(long)]
        entity: String,
        /// View: its id or name (any case), as `views` lists
        #[arg(long)]
        view: String,
    },
    /// List the charts of an entity, with their measures and categories
    #[command(after_long_help = "Examples:
  goals-host charts --connection Contoso --entity opportunity
  goals-host charts --connection Contoso --entity lead --json")]
    Charts {
        /// Connection: its exact name, as `connection list` shows
        #[arg(long)]
        connection: String,
        /// Table: its logical name (e.g. opportunity) or display name (any case), as `entities` lists
        #[arg(long)]
        entity: String,
    },
    /// Measure a metric now: the preview shown before a link is saved
    #[command(after_long_help = "Examples:
  goals-host measure --connection Contoso --entity opportunity \\
    --view 'Open Opportunities' --column estimatedvalue --aggregation sum
  goals-host measure --connection Contoso --entity lead --view 'Hot Leads' \\
    --column fullname --aggregation count --json
  goals-host measure --connection Contoso --entity opportunity \\
    --view 'All Opportunities' --chart 'Pipeline by Status Reason' \\
    --measure sum_estimatedvalue --category Won")]
    Measure {
        /// Connection: its exact name, as `connection list` shows
        #[arg(long)]
        connection: String,
        /// Table: its logical name (e.g. opportunity) or display name (any case), as `entities` lists
        #[arg(long)]
        entity: String,
        /// View: its id or name (any case), as `views` lists
        #[arg(long)]
        view: String,
        /// Column: its name as `columns` lists (e.g. estimatedvalue, or alias.attribute for a joined table)
        #[arg(long, required_unless_present = "chart")]
        column: Option<String>,
        /// How the column's values are reduced to one number; `columns` lists those it allows
        #[arg(long, value_enum, required_unless_present = "chart")]
        aggregation: Option<AggregationArg>,
        /// A chart of the table (its id or name, as `charts` lists): its measure
        /// over the view's rows, instead of --column and --aggregation
        #[arg(long, conflicts_with_all = ["column", "aggregation"])]
        chart: Option<String>,
        /// The chart's measure (its alias, as `charts` lists), when it has several
        #[arg(long, requires = "chart", value_name = "ALIAS")]
        measure: Option<String>,
        /// Only the rows of one of the chart's categories: a choice's label (Won),
        /// or a month 2024-03, a quarter 2024-Q1, a year 2024, a day 2024-03-15
        #[arg(long, requires = "chart", value_name = "VALUE")]
        category: Option<String>,
        /// Currency of money results
        #[arg(long, value_enum, default_value_t = CurrencyArg::Base)]
        currency: CurrencyArg,
    },
}

pub async fn run(context: &Context<'_>, command: &PluginCommand) -> anyhow::Result<Report> {
    let runtime = context.engine().await?;
    let org = context.cli.org.as_deref();
    let db = &context.db;
    match command {
        PluginCommand::Describe { integration } => {
            Ok(render::info(runtime.get(integration.as_deref())?.info()))
        }
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
            let entity = resolve::entity(&runtime, &conn, entity).await?;
            Ok(render::views(
                &runtime
                    .list_views(&conn, &entity, search.as_deref())
                    .await?,
            ))
        }
        PluginCommand::Columns {
            connection,
            entity,
            view,
        } => {
            let conn = connections::get(db, connection, org).await?;
            let entity = resolve::entity(&runtime, &conn, entity).await?;
            let view = resolve::view(&runtime, &conn, &entity, view).await?;
            let view = ViewRef {
                id: view.id,
                kind: view.kind,
            };
            Ok(render::columns(
                &runtime.list_columns(&conn, &entity, &view).await?,
            ))
        }
        PluginCommand::Charts { connection, entity } => {
            let conn = connections::get(db, connection, org).await?;
            let entity = resolve::entity(&runtime, &conn, entity).await?;
            Ok(render::charts(&runtime.list_charts(&conn, &entity).await?))
        }
        PluginCommand::Measure {
            connection,
            entity,
            view,
            column,
            aggregation,
            chart,
            measure,
            category,
            currency,
        } => {
            let conn = connections::get(db, connection, org).await?;
            context.progress.step(format!(
                "measuring view '{view}' of connection '{connection}'"
            ));
            let before = runtime.traffic();
            let entity = &resolve::entity(&runtime, &conn, entity).await?;
            let view = resolve::view(&runtime, &conn, entity, view).await?;
            let view_ref = ViewRef {
                id: view.id.clone(),
                kind: view.kind,
            };
            // A chart's measure is its column and aggregation, as the chart
            // defines them now.
            let wanted = WantedMeasure::from_parts(
                column.as_deref(),
                aggregation.map(Into::into),
                chart.as_deref(),
                measure.as_deref(),
                category.as_deref(),
            )?
            .ok_or_else(|| UsageError("give --column and --aggregation, or --chart".into()))?;
            let (column, aggregation, selection) =
                linking::measured_as(&runtime, &conn, entity, &wanted).await?;
            let spec = MetricSpec {
                entity: entity.clone(),
                view: view_ref.clone(),
                column: column.clone(),
                aggregation,
                currency: (*currency).into(),
            };
            let measured = runtime
                .fetch_and_aggregate_within(&conn, &spec, &[], selection.as_ref())
                .await;
            let mut measured = match measured {
                Ok(measured) => measured,
                // A column the view never had is a typing mistake, not a removed
                // column: list what the view offers.
                Err(
                    error @ CallError::Plugin {
                        error: PluginError::NotFound(_),
                        ..
                    },
                ) if chart.is_none() => {
                    let columns = runtime.list_columns(&conn, entity, &view_ref).await?;
                    linking::find_column(&view, columns, &column)?;
                    return Err(error.into());
                }
                Err(error) => return Err(error.into()),
            };
            // The name look-ups and a sign-in count too.
            super::count_everything(&mut measured, &runtime, before);
            Ok(render::measurement(&measured, context.cli.verbose > 0))
        }
    }
}
