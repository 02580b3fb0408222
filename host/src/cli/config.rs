//! The configuration file: a TOML file (`--config PATH`, `GOALS_HOST_CONFIG`)
//! with the settings of the global flags and of `run`. Flags beat the
//! environment (clap resolves both), which beats the file, which beats the
//! defaults; figment layers the three. An unknown key is an error naming it.

use super::schedule::SchedulerArgs;
use super::{Cli, Command};
use crate::render::Report;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Every setting the file may hold, named as the flags are (with `_`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub plugin: Vec<PathBuf>,
    pub claim_lease: i64,
    pub call_timeout: f64,
    pub memory_limit: usize,
    pub response_limit: u64,
    pub storage_limit: u64,
    pub storage_keys: u64,
    pub instance_slots: u32,
    pub log_format: super::LogFormat,
    pub run: RunSettings,
    pub serve: ServeSettings,
}

/// `serve`'s own settings: `[serve]` in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    pub listen: String,
}

/// The scheduler's settings: `[run]` in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    pub poll: f64,
    pub concurrency: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_connection: Option<usize>,
    pub grace: f64,
    pub keep_history_days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the configuration file {path} cannot be read: {source}; check --config (or GOALS_HOST_CONFIG)"
    )]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("the configuration file {path}: {message}")]
    Invalid { path: String, message: String },
}

impl RunSettings {
    fn of(args: &SchedulerArgs) -> RunSettings {
        RunSettings {
            poll: args.poll,
            concurrency: args.concurrency,
            per_connection: args.per_connection,
            grace: args.grace,
            keep_history_days: args.keep_history_days,
        }
    }

    /// `run`'s defaults, for commands other than `run`: its arguments parsed
    /// from nothing, so they are clap's and never written twice.
    fn defaults() -> Result<RunSettings, ConfigError> {
        SchedulerArgs::augment_args(clap::Command::new("run"))
            .try_get_matches_from(["run"])
            .and_then(|matches| SchedulerArgs::from_arg_matches(&matches))
            .map(|args| RunSettings::of(&args))
            .map_err(|error| ConfigError::Invalid {
                path: "(run's defaults)".to_string(),
                message: error.to_string(),
            })
    }
}

impl Settings {
    fn of(cli: &Cli) -> Result<Settings, ConfigError> {
        Ok(Settings {
            data_dir: cli.data_dir.clone(),
            database_url: cli.database_url.clone(),
            secret_key_file: cli.secret_key_file.clone(),
            cache_dir: cli.cache_dir.clone(),
            plugin: cli.plugin.clone(),
            claim_lease: cli.claim_lease,
            call_timeout: cli.call_timeout,
            memory_limit: cli.memory_limit,
            response_limit: cli.response_limit,
            storage_limit: cli.storage_limit,
            storage_keys: cli.storage_keys,
            instance_slots: cli.instance_slots,
            log_format: cli.log_format,
            run: match &cli.command {
                Command::Run(args) => RunSettings::of(&args.scheduler),
                Command::Serve(args) => RunSettings::of(&args.scheduler),
                _ => RunSettings::defaults()?,
            },
            serve: ServeSettings {
                listen: match &cli.command {
                    Command::Serve(args) => args.listen.clone(),
                    _ => super::serve::DEFAULT_LISTEN.to_string(),
                },
            },
        })
    }

    fn apply_to(self, cli: &mut Cli) {
        cli.data_dir = self.data_dir;
        cli.database_url = self.database_url;
        cli.secret_key_file = self.secret_key_file;
        cli.cache_dir = self.cache_dir;
        cli.plugin = self.plugin;
        cli.claim_lease = self.claim_lease;
        cli.call_timeout = self.call_timeout;
        cli.memory_limit = self.memory_limit;
        cli.response_limit = self.response_limit;
        cli.storage_limit = self.storage_limit;
        cli.storage_keys = self.storage_keys;
        cli.instance_slots = self.instance_slots;
        cli.log_format = self.log_format;
        let scheduler = match &mut cli.command {
            Command::Run(args) => Some(&mut args.scheduler),
            Command::Serve(args) => {
                args.listen = self.serve.listen;
                Some(&mut args.scheduler)
            }
            _ => None,
        };
        if let Some(args) = scheduler {
            args.poll = self.run.poll;
            args.concurrency = self.run.concurrency;
            args.per_connection = self.run.per_connection;
            args.grace = self.run.grace;
            args.keep_history_days = self.run.keep_history_days;
        }
    }
}

/// Whether the value of `id` was given (flag or environment) rather than
/// left to its default.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .and_then(|_| matches.value_source(id)),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Splits `settings` into what was given and what was defaulted.
fn split(settings: &Settings, matches: &ArgMatches) -> (Map<String, Value>, Map<String, Value>) {
    let (mut given_values, mut defaults) = (Map::new(), Map::new());
    let Ok(Value::Object(all)) = serde_json::to_value(settings) else {
        return (given_values, defaults);
    };
    // The scheduler's flags belong to `run` or `serve`.
    let run_matches = match matches.subcommand() {
        Some(("run" | "serve", run)) => Some(run),
        _ => None,
    };
    for (key, value) in all {
        if key == "run" || key == "serve" {
            let Value::Object(run) = value else { continue };
            let (mut run_given, mut run_defaults) = (Map::new(), Map::new());
            for (inner, value) in run {
                if run_matches.is_some_and(|run| given(run, &inner)) {
                    run_given.insert(inner, value);
                } else {
                    run_defaults.insert(inner, value);
                }
            }
            given_values.insert(key.clone(), Value::Object(run_given));
            defaults.insert(key, Value::Object(run_defaults));
        } else if given(matches, &key) {
            given_values.insert(key, value);
        } else {
            defaults.insert(key, value);
        }
    }
    (given_values, defaults)
}

/// Layers the configuration file, if there is one, under what the command
/// line and the environment gave.
pub fn apply(cli: &mut Cli, matches: &ArgMatches) -> Result<(), ConfigError> {
    let Some(path) = cli.config.clone() else {
        return Ok(());
    };
    let shown = path.display().to_string();
    // figment skips a missing file; a named one must be there.
    std::fs::metadata(&path).map_err(|source| ConfigError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let (given_values, defaults) = split(&Settings::of(cli)?, matches);
    let settings: Settings = Figment::new()
        .merge(Serialized::defaults(Value::Object(defaults)))
        .merge(Toml::file_exact(&path))
        .merge(Serialized::defaults(Value::Object(given_values)))
        .extract()
        .map_err(|error| ConfigError::Invalid {
            path: shown.clone(),
            message: error.to_string(),
        })?;
    check_ranges(&settings).map_err(|message| ConfigError::Invalid {
        path: shown,
        message,
    })?;
    cli.effective = Some(settings.clone());
    settings.apply_to(cli);
    Ok(())
}

/// The bounds clap checks on flags, for values that came from the file.
fn check_ranges(settings: &Settings) -> Result<(), String> {
    let out_of = |key: &str, value: String, range: &str| {
        Err(format!(
            "{key} = {value} is out of range: it must be {range}"
        ))
    };
    if !(3..=3600).contains(&settings.claim_lease) {
        return out_of(
            "claim_lease",
            settings.claim_lease.to_string(),
            "3 to 3600 seconds",
        );
    }
    if !(settings.call_timeout.is_finite() && settings.call_timeout > 0.0) {
        return out_of(
            "call_timeout",
            settings.call_timeout.to_string(),
            "above 0 seconds",
        );
    }
    let run = &settings.run;
    if !(1..=36500).contains(&run.keep_history_days) {
        return out_of(
            "[run] keep_history_days",
            run.keep_history_days.to_string(),
            "1 to 36500 days",
        );
    }
    if run.concurrency == 0 {
        return out_of("[run] concurrency", "0".to_string(), "at least 1");
    }
    if run.per_connection == Some(0) {
        return out_of("[run] per_connection", "0".to_string(), "at least 1");
    }
    if !(run.poll.is_finite() && run.poll > 0.0) {
        return out_of("[run] poll", run.poll.to_string(), "above 0 seconds");
    }
    if !(run.grace.is_finite() && (0.0..=3600.0).contains(&run.grace)) {
        return out_of("[run] grace", run.grace.to_string(), "0 to 3600 seconds");
    }
    if !settings.serve.listen.contains(':') {
        return Err(format!(
            "[serve] listen = {:?} is not an address: give HOST:PORT, e.g. 127.0.0.1:8080",
            settings.serve.listen
        ));
    }
    Ok(())
}

/// `goals-host config show`: the effective settings, the database URL's
/// password hidden.
pub fn show(cli: &Cli) -> anyhow::Result<Report> {
    let mut settings = match &cli.effective {
        Some(settings) => settings.clone(),
        None => Settings::of(cli)?,
    };
    settings.database_url = settings
        .database_url
        .as_deref()
        .map(crate::db::redacted_url);
    let text = toml::to_string_pretty(&settings)?;
    let mut json = serde_json::to_value(&settings)?;
    json["config_file"] = serde_json::json!(cli.config.as_ref().map(|p| p.display().to_string()));
    Ok(Report {
        text: format!(
            "# effective settings ({})\n{}",
            match &cli.config {
                Some(path) => format!("flags, then the environment, then {}", path.display()),
                None => "flags, then the environment; no configuration file".to_string(),
            },
            text.trim_end()
        ),
        json,
    })
}
