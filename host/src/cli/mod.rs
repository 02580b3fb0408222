//! The `goals-host` command line.

mod admin;
pub mod config;
mod connection;
mod discover;
pub mod failure;
mod keyresult;
pub mod progress;
mod schedule;
pub mod serve;

use crate::bindings::{Aggregation, CurrencyChoice};
use crate::connections::DEFAULT_ORGANIZATION;
use crate::db::Database;
use crate::engine::Engine;
use crate::goals::clock::{Clock, OffsetClock};
use crate::integrations::Integrations;
use crate::limits::Limits;
use crate::render::Report;
use crate::runtime::PluginSource;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use admin::{OrgCommand, TenantCommand};
pub use connection::ConnectionCommand;
pub use discover::PluginCommand;
pub use keyresult::{ItemCommand, KrCommand, ProjectCommand};
pub use schedule::StopSignal;

#[derive(Debug, Parser)]
#[command(
    name = "goals-host",
    version = env!("GOALS_HOST_LONG_VERSION"),
    about = "Reference host of the Goals integration world, with the Dynamics 365 plugin built in."
)]
pub struct Cli {
    /// A TOML file with the settings of these flags (and `run`'s, under
    /// `[run]`); flags and the environment take precedence over it
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Directory of the host's database [default: $XDG_DATA_HOME/goals-host]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_DATA_DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// Keep the data on PostgreSQL (postgres://user[:password]@host[:port]/db)
    /// instead of SQLite in the data directory; hosts sharing it share the
    /// schedules. The data directory still holds this host's key file
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// The file holding the key that seals secrets (64 hex digits), shared by
    /// hosts on one database [default: DATA_DIR/secret.key]; GOALS_HOST_SECRET_KEY
    /// gives the key itself
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_SECRET_KEY_FILE",
        value_name = "PATH"
    )]
    pub secret_key_file: Option<PathBuf>,
    /// An integration component to run beside the built-in Dynamics 365 one
    /// (repeatable); one with the id of a loaded integration replaces it
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_PLUGIN"
    )]
    pub plugin: Vec<PathBuf>,
    /// Where compiled plugins are kept between runs [default: DATA_DIR/precompiled]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_CACHE_DIR"
    )]
    pub cache_dir: Option<PathBuf>,
    /// Seconds added to the wall clock, for tests of the schedule that would
    /// otherwise wait out its intervals; not for production use.
    #[arg(
        long,
        global = true,
        hide = true,
        help_heading = "Global options",
        env = "GOALS_HOST_CLOCK_OFFSET",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset: i64,
    /// How long a sync's claims hold without renewal: a host that dies (kill -9,
    /// a lost machine) leaves its syncs to other hosts after this long
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_CLAIM_LEASE",
        default_value_t = crate::lease::CLAIM_LEASE_SECONDS,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(i64).range(3..=3600)
    )]
    pub claim_lease: i64,
    /// Organization the command acts in [default: "default", or the connection's]
    #[arg(long, global = true, help_heading = "Global options")]
    pub org: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        action = clap::ArgAction::Count
    )]
    pub verbose: u8,
    /// Log lines on stderr as text, or as one JSON object per line (requests
    /// and syncs of `serve` and `run` included)
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GOALS_HOST_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// Seconds one plugin call may take, waiting included
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 60.0,
        value_name = "SECONDS"
    )]
    pub call_timeout: f64,
    /// Memory one plugin instance may use
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 128,
        value_name = "MIB"
    )]
    pub memory_limit: usize,
    /// Largest HTTP response body passed to a plugin
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 32,
        value_name = "MIB"
    )]
    pub response_limit: u64,
    /// Storage of one plugin for one connection
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 4096,
        value_name = "KIB"
    )]
    pub storage_limit: u64,
    /// Keys in the storage of one plugin for one connection
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 1000
    )]
    pub storage_keys: u64,
    /// Plugin instances alive at once, kept in a pre-reserved pool; 0 allocates
    /// each on demand
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 256,
        value_name = "N"
    )]
    pub instance_slots: u32,
    #[command(subcommand)]
    pub command: Command,
    /// The settings after the configuration file was layered in.
    #[arg(skip)]
    pub effective: Option<config::Settings>,
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
    /// Projects, linked and synced like Key Results, optionally under one
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Run the scheduler: sync every due link, every interval
    #[command(after_long_help = "Examples:
  goals-host run
  goals-host run --once
  goals-host run --concurrency 16 --per-connection 4 --duration 3600")]
    Run(schedule::RunArgs),
    /// Serve the HTTP API (/api/v1) with the scheduler in the same process
    #[command(
        after_long_help = "Prints `listening on http://HOST:PORT` first; SIGTERM or \
Ctrl-C stops accepting, lets requests and running syncs finish within --grace, and exits 0.
Every /api/v1 request needs `Authorization: Bearer TOKEN` (`goals-host token create`); \
/healthz, /readyz and /metrics need none. GET /api/v1/openapi.json describes the API.

Examples:
  goals-host serve
  goals-host serve --listen 0.0.0.0:8080 --log-format json
  goals-host --config /etc/goals-host/goals-host.toml serve --no-scheduler"
    )]
    Serve(serve::ServeArgs),
    /// Bearer tokens of the HTTP API: create (shown once), list, revoke
    #[command(subcommand)]
    Token(serve::TokenCommand),
    /// Open problems: connections needing sign-in, broken links, stale Key Results
    #[command(after_long_help = "Examples:
  goals-host alerts
  goals-host alerts --all --json")]
    Alerts {
        /// Include closed alerts
        #[arg(long)]
        all: bool,
    },
    /// The effective settings: flags, environment, configuration file, defaults
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Scheduler processes on this database: alive or gone, and what each syncs
    #[command(after_long_help = "Examples:
  goals-host hosts
  goals-host --database-url postgres://goals@db.internal/goals hosts --json")]
    Hosts,
    /// Run the whole flow against the built-in Dataverse simulator
    #[cfg(feature = "simulator")]
    #[command(after_long_help = "Examples:
  goals-host demo
  goals-host demo --serve            # then open the address it prints
  goals-host demo --serve --listen 127.0.0.1:0")]
    Demo {
        /// Then serve the demo's data in the web console (and the API) until
        /// Ctrl-C, with a platform admin's token printed to sign in with
        #[arg(long)]
        serve: bool,
        /// Address of the console with --serve; port 0 picks a free one
        #[arg(long, default_value = serve::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
    },
    /// Measure the host (overhead per sync, throughput, cold start, memory)
    /// against the built-in simulator; run it from a release build
    #[cfg(feature = "simulator")]
    Bench {
        /// What to measure; `all` measures each in turn
        #[arg(value_enum, default_value = "all")]
        kind: crate::bench::BenchKind,
    },
    /// Move this data directory's SQLite database to an empty PostgreSQL
    /// database (--database-url), all or nothing
    #[command(after_long_help = "Copies every table of DATA_DIR/goals.db to the \
PostgreSQL database of --database-url, in one transaction: tenants, organizations, \
connections with their sealed secrets, Key Results, links, history, alerts and the \
plugins' storage, ids kept. The target must be empty (a new database): one holding \
data is refused, and so is a run while another goals-host process (`goals-host run`) \
uses the data directory: stop it first. goals.db is left as it was.

The secrets stay sealed with this data directory's key, which opens the target here \
too: run every host on PostgreSQL with the same key (copy DATA_DIR/secret.key to \
each, or give each the same GOALS_HOST_SECRET_KEY).

Examples:
  goals-host migrate-to --database-url postgres://goals@db.internal/goals
  goals-host --data-dir /srv/goals migrate-to --database-url postgres://db/goals --json")]
    MigrateTo,
    /// Print a completion script for a shell
    #[command(after_long_help = "Examples:
  goals-host completions bash > ~/.local/share/bash-completion/completions/goals-host
  goals-host completions zsh > ~/.zfunc/_goals-host
  goals-host completions fish > ~/.config/fish/completions/goals-host.fish")]
    Completions {
        /// Shell to write the script for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (the database URL's password hidden)
    #[command(after_long_help = "Examples:
  goals-host --config /etc/goals-host.toml config show
  GOALS_HOST_CONFIG=/etc/goals-host.toml goals-host config show --json")]
    Show,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AggregationArg {
    /// Number of rows in the view
    Count,
    /// Number of rows whose column has a value
    CountValues,
    /// Number of distinct values of the column
    CountDistinct,
    /// Total of the column's values (numbers and money)
    Sum,
    /// Mean of the column's values (numbers and money)
    Average,
    /// Smallest value (numbers, money and dates)
    Min,
    /// Largest value (numbers, money and dates)
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
    /// The organization's base currency: every record converted at its exchange rate
    Base,
    /// The records' own transaction currency; only when they all share one
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
    /// The one component the demo and the benches run: the first `--plugin`, or
    /// the built-in one.
    pub fn plugin_source(&self) -> PluginSource {
        match self.plugin.first() {
            Some(path) => PluginSource::File(path.clone()),
            None => PluginSource::Embedded,
        }
    }

    /// Every component this host runs: the built-in one, then each `--plugin`.
    pub fn plugin_sources(&self) -> Vec<PluginSource> {
        std::iter::once(PluginSource::Embedded)
            .chain(self.plugin.iter().cloned().map(PluginSource::File))
            .collect()
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
    pub progress: progress::Progress,
}

impl Context<'_> {
    /// Loads every integration this host runs.
    pub async fn engine(&self) -> anyhow::Result<Arc<Integrations>> {
        let mut runtimes = Vec::new();
        for source in self.cli.plugin_sources() {
            let runtime = crate::runtime::load_with_limits(
                &source,
                self.db.clone(),
                self.cli.limits(),
                Some(&self.cli.cache_dir()),
            )
            .await?;
            runtimes.push(match self.progress.observer() {
                Some(observer) => runtime.observed_by(observer),
                None => runtime,
            });
        }
        Ok(Arc::new(Integrations::new(runtimes)))
    }
}

pub async fn run(cli: &Cli) -> anyhow::Result<Report> {
    // The demo and the benches bring their own simulator and data directory.
    let progress = if shows_progress(&cli.command) {
        progress::Progress::on_stderr()
    } else {
        progress::Progress::none()
    };
    let reads_only = only_reads(&cli.command);
    let context = async || -> anyhow::Result<Context<'_>> {
        let db = match &cli.database_url {
            Some(url) => Database::open_postgres(url, &cli.data_dir()).await?,
            None if reads_only => Database::open_existing(&cli.data_dir())?,
            None => Database::open(&cli.data_dir())?,
        };
        db.lease().set_lease_seconds(cli.claim_lease);
        Ok(Context {
            cli,
            db,
            clock: Arc::new(OffsetClock(cli.clock_offset)),
            progress: progress.clone(),
        })
    };
    let result = dispatch(cli, context).await;
    progress.finish();
    result
}

/// Makes a measurement's evidence everything the command sent since `before`,
/// as the host counted it, not only the plugin's measuring call.
fn count_everything(
    measurement: &mut crate::bindings::Measurement,
    runtime: &dyn Engine,
    before: crate::outbound::TrafficReading,
) {
    let spent = runtime.traffic().since(before);
    measurement.requests = u32::try_from(spent.requests).unwrap_or(u32::MAX);
    measurement.bytes_received = spent.bytes_received;
}

/// Commands that only read the host's data: they never create a data
/// directory, so a mistyped --data-dir is an error, not an empty answer.
fn only_reads(command: &Command) -> bool {
    matches!(
        command,
        Command::Tenant(TenantCommand::List)
            | Command::Org(OrgCommand::List)
            | Command::Connection(ConnectionCommand::List)
            | Command::Kr(KrCommand::Item(
                ItemCommand::List | ItemCommand::Show { .. } | ItemCommand::History { .. }
            ))
            | Command::Project(ProjectCommand::Item(
                ItemCommand::List | ItemCommand::Show { .. } | ItemCommand::History { .. }
            ))
            | Command::Alerts { .. }
            | Command::Hosts
            | Command::Token(serve::TokenCommand::List)
    )
}

/// Commands that wait on an environment show a spinner; the scheduler, the
/// demo and the benches print their own, and a person's sign-in prints a code.
fn shows_progress(command: &Command) -> bool {
    match command {
        Command::Plugin(_) => true,
        Command::Kr(KrCommand::Item(item)) | Command::Project(ProjectCommand::Item(item)) => {
            matches!(item, ItemCommand::Sync { .. } | ItemCommand::Link(_))
        }
        Command::Connection(connection) => connection.signs_in_with_a_secret(),
        _ => false,
    }
}

async fn dispatch<'a>(
    cli: &'a Cli,
    context: impl AsyncFn() -> anyhow::Result<Context<'a>>,
) -> anyhow::Result<Report> {
    match &cli.command {
        #[cfg(feature = "simulator")]
        Command::Demo { serve, listen } => {
            crate::demo::run(cli.plugin_source(), serve.then_some(listen.as_str())).await
        }
        #[cfg(feature = "simulator")]
        Command::Bench { kind } => crate::bench::run(*kind, cli.plugin_source()).await,
        Command::Completions { shell } => Ok(completions(*shell)),
        Command::Config(ConfigCommand::Show) => config::show(cli),
        // Opens both databases itself: the context would open PostgreSQL as
        // the one to work on.
        Command::MigrateTo => migrate_to(cli).await,
        Command::Tenant(command) => admin::tenant(&context().await?, command).await,
        Command::Org(command) => admin::org(&context().await?, command).await,
        Command::Connection(command) => connection::run(&context().await?, command).await,
        Command::Kr(command) => keyresult::run_kr(&context().await?, command).await,
        Command::Project(command) => keyresult::run_project(&context().await?, command).await,
        Command::Run(args) => schedule::run(&context().await?, args).await,
        Command::Serve(args) => serve::serve(&context().await?, args).await,
        Command::Token(command) => serve::token(&context().await?, command).await,
        Command::Alerts { all } => schedule::alerts(&context().await?, *all).await,
        Command::Hosts => schedule::hosts(&context().await?).await,
        Command::Plugin(command) => discover::run(&context().await?, command).await,
    }
}

/// `goals-host migrate-to`: the data directory's SQLite database copied to the
/// PostgreSQL one of --database-url, opened with the same data directory so
/// that the copied secrets open with the same key.
async fn migrate_to(cli: &Cli) -> anyhow::Result<Report> {
    let Some(url) = &cli.database_url else {
        return Err(failure::UsageError(
            "migrate-to needs --database-url postgres://user@host/database (or \
             GOALS_HOST_DATABASE_URL): the empty PostgreSQL database to move this data \
             directory's goals.db to"
                .to_string(),
        )
        .into());
    };
    let data_dir = cli.data_dir();
    // Database errors stay themselves, so that they keep their kind and exit code.
    let unwrapped = |error: crate::migrate::MigrateError| match error {
        crate::migrate::MigrateError::Db(db) => anyhow::Error::from(db),
        other => anyhow::Error::from(other),
    };
    let source = crate::migrate::open_source(&data_dir).map_err(unwrapped)?;
    let target = Database::open_postgres(url, &data_dir).await?;
    let moved = crate::migrate::sqlite_to_postgres(&source, &target)
        .await
        .map_err(unwrapped)?;
    let shown_url = crate::db::redacted_url(url);
    let rows: Vec<Vec<String>> = moved
        .tables
        .iter()
        .map(|(table, rows)| vec![table.clone(), rows.to_string()])
        .collect();
    let text = format!(
        "Copied {} to {shown_url}, in one transaction:\n{}\n{} rows in all.\n\n\
         Next: run every host with this --database-url (or GOALS_HOST_DATABASE_URL) and \
         this key, from {}: copy it to each host's data directory, or give each the same \
         GOALS_HOST_SECRET_KEY. goals.db is left as it was, unused by hosts on PostgreSQL.",
        data_dir.join("goals.db").display(),
        crate::render::table(&["table", "rows"], &rows),
        moved.rows(),
        target.keyring().source(),
    );
    let tables: serde_json::Map<String, serde_json::Value> = moved
        .tables
        .iter()
        .map(|(table, rows)| (table.clone(), serde_json::json!(rows)))
        .collect();
    Ok(Report {
        text,
        json: serde_json::json!({
            "database_url": shown_url,
            "tables": tables,
            "rows": moved.rows(),
        }),
    })
}

/// `goals-host completions SHELL`: the script on stdout, or in `{"shell", "script"}`.
fn completions(shell: clap_complete::Shell) -> Report {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "goals-host", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    Report {
        text: script.trim_end_matches('\n').to_string(),
        json: serde_json::json!({ "shell": shell.to_string(), "script": script }),
    }
}
