//! `goals-host run` (the scheduler) and `goals-host alerts`.

use super::Context;
use super::keyresult::syncer;
use crate::connections;
use crate::goals::alerts;
use crate::goals::clock;
use crate::goals::hosts;
use crate::goals::keyresults;
use crate::goals::scheduler::{Round, Scheduler};
use crate::render::{Report, table};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Sync what is due once, then exit
    #[arg(long)]
    pub once: bool,
    /// Stop after this many seconds [default: run until interrupted]
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
}

/// The scheduler's settings, for `run` and `serve` (`[run]` in the
/// configuration file).
#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Seconds between checks for due links
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub poll: f64,
    /// Syncs running at once over all connections
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub concurrency: usize,
    /// Days sync runs are kept; each link's latest run of each outcome stays for good
    #[arg(long, default_value_t = crate::goals::history::DEFAULT_KEEP_DAYS, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub keep_history_days: u32,
    /// On SIGTERM or Ctrl-C: seconds running syncs get to finish before they are
    /// recorded as interrupted
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub grace: f64,
    /// Syncs running at once per connection (capped at the integration's maximum)
    /// [default: the integration's maximum]
    #[arg(long, value_name = "N")]
    pub per_connection: Option<usize>,
}

impl SchedulerArgs {
    /// The scheduler these settings describe, over `syncer`.
    pub fn scheduler(&self, syncer: Arc<crate::goals::sync::Syncer>) -> Scheduler {
        Scheduler::new(syncer, self.concurrency)
            .with_grace(Duration::from_secs_f64(self.grace.clamp(0.0, 3600.0)))
            .with_keep_days(self.keep_history_days)
    }

    pub fn poll(&self) -> Duration {
        Duration::from_secs_f64(self.poll.max(0.01))
    }
}

pub(super) fn round_json(round: &Round, recovered: usize) -> Value {
    json!({
        "started": round.started,
        "succeeded": round.succeeded,
        "failed": round.failed,
        "skipped": round.skipped,
        "interrupted": round.interrupted,
        "recovered_interrupted": recovered,
    })
}

pub async fn run(context: &Context<'_>, args: &RunArgs) -> anyhow::Result<Report> {
    let stop_requested = StopSignal::install();
    let runtime = context.engine().await?;
    let scheduler = args.scheduler.scheduler(Arc::new(syncer(
        context,
        runtime,
        // The syncer caps it at the integration's declared maximum.
        args.scheduler.per_connection.unwrap_or(usize::MAX),
    )));
    // Registered before it claims anything, so other hosts can tell who runs what.
    let registration = hosts::register(&context.db, Arc::clone(&context.clock)).await?;
    let recovered = scheduler.recover().await?;
    let round = if args.once {
        scheduler.run_due().await?
    } else {
        let duration = args.duration;
        let stop = async move {
            match duration {
                Some(seconds) => {
                    tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await
                }
                None => stop_requested.wait().await,
            }
        };
        scheduler.run(args.scheduler.poll(), stop).await?
    };
    registration.end().await?;
    Ok(Report {
        text: format!(
            "{} sync(s): {} succeeded, {} failed, {} skipped, {} interrupted{}",
            round.started,
            round.succeeded,
            round.failed,
            round.skipped,
            round.interrupted,
            if recovered > 0 {
                format!("; {recovered} interrupted sync(s) from the last run were retried")
            } else {
                String::new()
            }
        ),
        json: round_json(&round, recovered),
    })
}

/// SIGTERM (systemd, containers) or SIGINT (Ctrl-C): either starts a graceful
/// stop, bounded by `--grace`. The handlers are registered when this is made,
/// so a signal that comes before anyone waits (right after a service printed
/// its address) is kept, not left to kill the process.
pub struct StopSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignal {
    pub fn install() -> StopSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(terminate), Ok(interrupt)) => StopSignal {
                    signals: Some((terminate, interrupt)),
                },
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!("no SIGTERM handler ({error}); only Ctrl-C stops gracefully");
                    StopSignal { signals: None }
                }
            }
        }
        #[cfg(not(unix))]
        StopSignal {}
    }

    /// Resolves at the first SIGTERM or SIGINT since [`StopSignal::install`].
    pub async fn wait(self) {
        #[cfg(unix)]
        match self.signals {
            Some((mut terminate, mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stop requested");
    }
}

pub async fn alerts(context: &Context<'_>, all: bool) -> anyhow::Result<Report> {
    let db = &context.db;
    // Alerts found now are recorded, unless the data directory is read-only.
    if !db.is_read_only() {
        alerts::open_stale(db, context.clock.now()).await?;
        alerts::open_lost_keys(db, context.clock.now()).await?;
    }
    let list = alerts::list(db, all).await?;
    let mut rows = Vec::with_capacity(list.len());
    let mut documents = Vec::with_capacity(list.len());
    for alert in &list {
        let about = match alert.subject.split_once(':') {
            Some(("kr", id)) => match id.parse::<i64>() {
                Ok(id) => keyresults::get_by_id(db, id)
                    .await
                    .map(|kr| format!("{} {}: {}", kr.kind.noun(), kr.id, kr.title))
                    .unwrap_or_else(|_| format!("item {id}")),
                Err(_) => alert.subject.clone(),
            },
            Some(("connection", id)) => connections::get_by_id(db, id)
                .await
                .map(|c| format!("connection '{}' ({})", c.name, c.organization))
                .unwrap_or_else(|_| format!("connection {id}")),
            _ => alert.subject.clone(),
        };
        rows.push(vec![
            alert.kind.clone(),
            about.clone(),
            clock::format(alert.opened_at),
            alert.closed_at.map(clock::format).unwrap_or_default(),
            alert.message.clone(),
        ]);
        documents.push(json!({
            "id": alert.id,
            "kind": alert.kind,
            "subject": alert.subject,
            "about": about,
            "message": alert.message,
            "opened_at": clock::json(alert.opened_at),
            "closed_at": clock::json_opt(alert.closed_at),
        }));
    }
    Ok(Report {
        text: if list.is_empty() {
            "no open problems".to_string()
        } else {
            table(&["KIND", "ABOUT", "OPENED", "CLOSED", "PROBLEM"], &rows)
        },
        json: Value::Array(documents),
    })
}

/// `goals-host hosts`: the scheduler processes registered on the database.
pub async fn hosts(context: &Context<'_>) -> anyhow::Result<Report> {
    let now = context.clock.now();
    let list = hosts::list(&context.db, now).await?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|host| {
            vec![
                host.id.clone(),
                host.hostname.clone(),
                host.pid.to_string(),
                host.version.clone(),
                clock::format(host.started_at),
                clock::format(host.heartbeat_at),
                if host.alive { "alive" } else { "gone" }.to_string(),
                host.running.to_string(),
            ]
        })
        .collect();
    let documents: Vec<Value> = list
        .iter()
        .map(|host| {
            json!({
                "id": host.id,
                "hostname": host.hostname,
                "pid": host.pid,
                "version": host.version,
                "started_at": clock::json(host.started_at),
                "heartbeat_at": clock::json(host.heartbeat_at),
                "lease_seconds": host.lease_seconds,
                "alive": host.alive,
                "running": host.running,
            })
        })
        .collect();
    Ok(Report {
        text: if list.is_empty() {
            "no host is running the scheduler (start one with `goals-host run`)".to_string()
        } else {
            table(
                &[
                    "ID",
                    "HOST",
                    "PID",
                    "VERSION",
                    "STARTED",
                    "HEARTBEAT",
                    "STATE",
                    "RUNNING",
                ],
                &rows,
            )
        },
        json: Value::Array(documents),
    })
}
