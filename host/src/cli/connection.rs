//! `goals-host connection ...`: named connections of an organization.

use super::Context;
use crate::connections::{self, NewConnection, Secret, Status};
use crate::goals::alerts::{self, AlertKind};
use crate::render::{self, Report};
use anyhow::Context as _;
use clap::Subcommand;

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
        /// Who adds the connection, for the record [default: $USER]
        #[arg(long)]
        added_by: Option<String>,
    },
    /// List connections (of --org when given)
    List,
    /// Remove a connection and what the plugin cached for it
    Remove { name: String },
    /// Repair a connection that needs sign-in with a new client secret; its links resume
    SignIn {
        name: String,
        /// Name of the environment variable holding the client secret
        #[arg(long, value_name = "VAR")]
        client_secret_env: String,
    },
}

fn secret_from(variable: &str) -> anyhow::Result<Secret> {
    let secret = std::env::var(variable).with_context(|| {
        format!(
            "environment variable {variable} is not set; put the client secret in it (the \
             secret is never taken from the command line)"
        )
    })?;
    Ok(Secret::new(secret))
}

pub async fn run(context: &Context<'_>, command: &ConnectionCommand) -> anyhow::Result<Report> {
    let db = &context.db;
    let org = context.cli.org.as_deref();
    match command {
        ConnectionCommand::Add {
            name,
            url,
            tenant,
            client_id,
            client_secret_env,
            authority,
            allow_loopback,
            added_by,
        } => {
            let record = connections::add(
                db,
                NewConnection {
                    organization: context.cli.org().to_string(),
                    added_by: added_by
                        .clone()
                        .or_else(|| std::env::var("USER").ok())
                        .unwrap_or_default(),
                    name: name.clone(),
                    environment_url: url.clone(),
                    authority_url: authority.clone(),
                    tenant: tenant.clone(),
                    client_id: client_id.clone(),
                    client_secret: secret_from(client_secret_env)?,
                    allow_loopback: *allow_loopback,
                },
            )
            .await?;
            Ok(Report {
                text: format!(
                    "added connection '{}' of organization '{}' to {}",
                    record.name, record.organization, record.environment_url
                ),
                json: render::connection(&record),
            })
        }
        ConnectionCommand::List => Ok(render::connections(&connections::list(db, org).await?)),
        ConnectionCommand::Remove { name } => {
            let record = connections::remove(db, name, org).await?;
            Ok(Report {
                text: format!("removed connection '{}'", record.name),
                json: render::connection(&record),
            })
        }
        ConnectionCommand::SignIn {
            name,
            client_secret_env,
        } => {
            let record = connections::get(db, name, org).await?;
            let secret = secret_from(client_secret_env)?;
            // Prove the new credential works before it replaces the stored one, so
            // a wrong secret changes nothing. The check runs under a storage scope
            // of its own: a token cached for the old secret must not vouch for it.
            let mut candidate = record.clone();
            candidate.id = format!("{}-sign-in", record.id);
            candidate.client_secret = secret.clone();
            candidate.status = Status::Ok;
            let runtime = context.runtime().await?;
            let verified = runtime.list_apps(&candidate).await;
            connections::forget_plugin_storage(db, &candidate.id).await?;
            verified?;
            connections::set_secret(db, &record.id, &secret).await?;
            connections::forget_plugin_storage(db, &record.id).await?;
            connections::set_status(db, &record.id, Status::Ok, None).await?;
            let now = context.clock.now();
            let id = record.id.clone();
            db.run(move |conn| {
                let tx = conn.transaction()?;
                alerts::close(
                    &tx,
                    AlertKind::NeedsSignIn,
                    &alerts::connection_subject(&id),
                    now,
                )?;
                // Links that waited for the sign-in run at once.
                tx.execute(
                    "UPDATE metric_links SET next_run_at = min(next_run_at, ?2)
                     WHERE connection_id = ?1",
                    rusqlite::params![id, now],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
            let record = connections::get_by_id(db, &record.id).await?;
            Ok(Report {
                text: format!(
                    "connection '{}' is signed in again; its links resume",
                    record.name
                ),
                json: render::connection(&record),
            })
        }
    }
}
