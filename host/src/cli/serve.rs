//! `goals-host serve` (the HTTP API with the scheduler beside it) and
//! `goals-host token ...` (the API's bearer tokens).

use super::Context;
use super::schedule::{SchedulerArgs, StopSignal, round_json};
use crate::api::{self, Shared};
use crate::goals::clock;
use crate::goals::hosts;
use crate::goals::tokens::{self, NewToken, Role, Token};
use crate::render::{Report, table};
use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one
    #[arg(long, env = "GOALS_HOST_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: String,
    /// Serve the API only; syncs run where `goals-host run` or another
    /// `serve` runs the scheduler
    #[arg(long)]
    pub no_scheduler: bool,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Creates tenants; reaches every tenant
    PlatformAdmin,
    /// Switches the integration for the tenant's organizations (--tenant)
    TenantAdmin,
    /// Switches it for one organization and manages its connections (--org)
    OrgAdmin,
    /// Browses, previews, creates and links Key Results in one organization (--org)
    Member,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::PlatformAdmin => Role::PlatformAdmin,
            RoleArg::TenantAdmin => Role::TenantAdmin,
            RoleArg::OrgAdmin => Role::OrgAdmin,
            RoleArg::Member => Role::Member,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and stored only as a hash
    #[command(after_long_help = "Examples:
  goals-host token create --role platform-admin --json
  goals-host token create --role tenant-admin --tenant Contoso
  goals-host --org Sales token create --role member --user ana@contoso.com --json")]
    Create {
        /// What the token may do
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The tenant of a tenant-admin token: its exact name
        #[arg(long)]
        tenant: Option<String>,
        /// Who the token is for, for the record
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
    },
    /// List tokens (never the tokens themselves)
    List,
    /// Revoke a token: requests with it are refused from now on
    Revoke {
        /// The token's id, as `token list` shows
        id: String,
    },
}

fn token_json(token: &Token) -> Value {
    json!({
        "id": token.id,
        "role": token.role.as_str(),
        "tenant": token.tenant,
        "organization": token.organization,
        "user": token.user,
        "created_at": clock::json(token.created_at),
        "revoked_at": clock::json_opt(token.revoked_at),
    })
}

pub async fn token(context: &Context<'_>, command: &TokenCommand) -> anyhow::Result<Report> {
    let db = &context.db;
    let now = context.clock.now();
    match command {
        TokenCommand::Create { role, tenant, user } => {
            let new = NewToken {
                tenant: tenant.clone(),
                organization: context.cli.org.clone(),
                user: user.clone(),
            };
            let (secret, record) = tokens::create(db, (*role).into(), new, now).await?;
            let mut json = token_json(&record);
            json["token"] = json!(secret);
            Ok(Report {
                text: format!(
                    "{secret}\n\nThe {} token {} (shown once: keep it secret; send it as \
                     `Authorization: Bearer TOKEN`)",
                    record.role.as_str(),
                    record.id
                ),
                json,
            })
        }
        TokenCommand::List => {
            let list = tokens::list(db).await?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.role.as_str().to_string(),
                        t.organization
                            .clone()
                            .or_else(|| t.tenant.clone())
                            .unwrap_or_else(|| "every tenant".to_string()),
                        t.user.clone().unwrap_or_default(),
                        clock::format(t.created_at),
                        t.revoked_at.map(clock::format).unwrap_or_default(),
                    ]
                })
                .collect();
            Ok(Report {
                text: if list.is_empty() {
                    "no tokens (create one with `goals-host token create`)".to_string()
                } else {
                    table(
                        &["ID", "ROLE", "SCOPE", "USER", "CREATED", "REVOKED"],
                        &rows,
                    )
                },
                json: Value::Array(list.iter().map(token_json).collect()),
            })
        }
        TokenCommand::Revoke { id } => {
            let token = tokens::revoke(db, id, now).await?;
            Ok(Report {
                text: format!("token {} revoked", token.id),
                json: token_json(&token),
            })
        }
    }
}

/// Resolves when `stop` turns true.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

pub async fn serve(context: &Context<'_>, args: &ServeArgs) -> anyhow::Result<Report> {
    // Before the address is printed: whoever reads it may stop us at once.
    let stop_requested = StopSignal::install();
    let state = Shared::new(
        context.db.clone(),
        context.engine().await?,
        Arc::clone(&context.clock),
        // The syncer caps it at the integration's declared maximum.
        args.scheduler.per_connection.unwrap_or(usize::MAX),
        !args.no_scheduler,
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|error| {
            super::failure::UsageError(format!(
                "cannot listen on {}: {error}; choose another --listen address (port 0 picks a \
                 free one)",
                args.listen
            ))
        })?;
    let address = listener.local_addr().context("the listening address")?;
    // The first line on stdout, for whoever started the process (a test, a
    // supervisor) to learn the port.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{address}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }

    let (stop, stop_seen) = tokio::sync::watch::channel(false);
    let scheduler = if args.no_scheduler {
        None
    } else {
        let registration = hosts::register(&context.db, Arc::clone(&context.clock)).await?;
        let scheduler = args.scheduler.scheduler(Arc::clone(&state.syncer));
        let recovered = scheduler.recover().await?;
        let (poll, seen, running) = (
            args.scheduler.poll(),
            stop_seen.clone(),
            Arc::clone(&state.scheduler_running),
        );
        running.store(true, Ordering::Relaxed);
        Some(tokio::spawn(async move {
            let round = scheduler.run(poll, stopped(seen)).await;
            running.store(false, Ordering::Relaxed);
            registration.end().await?;
            anyhow::Ok((round?, recovered))
        }))
    };
    let server = tokio::spawn(
        axum::serve(listener, api::app(state))
            .with_graceful_shutdown(stopped(stop_seen))
            .into_future(),
    );
    stop_requested.wait().await;
    let _ = stop.send(true);
    // Requests in flight (a Sync now among them) get the same grace as syncs.
    let grace = Duration::from_secs_f64(args.scheduler.grace.clamp(0.0, 3600.0));
    let served = tokio::time::timeout(grace + Duration::from_secs(1), server).await;
    let round = match scheduler {
        Some(task) => Some(task.await.context("the scheduler task")??),
        None => None,
    };
    if served.is_err() {
        tracing::warn!("requests still running after the grace period were cut off");
    }
    let json = json!({
        "listen": address.to_string(),
        "scheduler": round.as_ref().map(|(round, recovered)| round_json(round, *recovered)),
    });
    Ok(Report {
        text: match &round {
            Some((round, _)) => format!(
                "stopped; the scheduler ran {} sync(s): {} succeeded, {} failed, {} interrupted",
                round.started, round.succeeded, round.failed, round.interrupted
            ),
            None => "stopped".to_string(),
        },
        json,
    })
}
