//! `goals-host connection ...`: named connections of an organization, signed in
//! as a service principal (client secret) or as a person (device code).

use super::Context;
use crate::bindings::{Identity, SignInStatus};
use crate::connections::{
    self, ConnectionError, ConnectionRecord, NewConnection, Secret, SignIn, Status,
};
use crate::db::Database;
use crate::goals::alerts::{self, AlertKind};
use crate::outbound::{OutboundPolicy, SystemResolver};
use crate::render::{self, Report};
use crate::runtime::PluginRuntime;
use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignInArg {
    /// A service principal's client secret (from --client-secret-env)
    Secret,
    /// A person signs in with a code shown here (device code)
    Device,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a named connection; a service principal's secret is read from an environment variable
    #[command(after_long_help = "Examples:
  export CONTOSO_SECRET='the client secret of the app registration'
  goals-host connection add --name Contoso --url https://contoso.crm.dynamics.com \\
    --tenant contoso.onmicrosoft.com --client-id 2f1c7a52-8d3e-4b6a-9c0d-5e7f8a9b0c1d \\
    --client-secret-env CONTOSO_SECRET
  goals-host --org Sales connection add --name Sandbox --sign-in device \\
    --url https://contoso-sandbox.crm.dynamics.com \\
    --tenant contoso.onmicrosoft.com --client-id 2f1c7a52-8d3e-4b6a-9c0d-5e7f8a9b0c1d")]
    Add {
        /// Name of the new connection: unique in its organization (--org)
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
        #[arg(long, value_name = "VAR", required_if_eq("sign_in", "secret"))]
        client_secret_env: Option<String>,
        /// How the connection signs in
        #[arg(long, value_enum, default_value_t = SignInArg::Secret)]
        sign_in: SignInArg,
        /// Identity authority [default: https://login.microsoftonline.com]
        #[arg(long)]
        authority: Option<String>,
        /// Allow plain http and loopback addresses (simulators and tests only)
        #[arg(long)]
        allow_loopback: bool,
        /// Who adds the connection, for the record [default: $USER]
        #[arg(long)]
        added_by: Option<String>,
        /// Save without signing in first (offline set-up); `connection test` checks it later
        #[arg(long)]
        no_verify: bool,
    },
    /// List connections (of --org when given)
    List,
    /// Remove a connection and what the plugin cached for it
    #[command(after_long_help = "Examples:
  goals-host connection remove Contoso
  goals-host --org Sales connection remove Sandbox")]
    Remove {
        /// Connection: its exact name (with --org when several organizations use it)
        name: String,
    },
    /// Sign a connection in again: a person with a new device code, or a service
    /// principal with a new secret. Its links resume.
    #[command(after_long_help = "Examples:
  goals-host connection sign-in Sandbox
  export CONTOSO_SECRET='the new client secret'
  goals-host connection sign-in Contoso --client-secret-env CONTOSO_SECRET")]
    SignIn {
        /// Connection: its exact name (with --org when several organizations use it)
        name: String,
        /// For a service principal: the environment variable holding the new secret
        #[arg(long, value_name = "VAR")]
        client_secret_env: Option<String>,
    },
    /// Check a connection: whom it signs in as (WhoAmI), or why it cannot
    #[command(after_long_help = "Examples:
  goals-host connection test Contoso
  goals-host --org Sales connection test Sandbox --json")]
    Test {
        /// Connection: its exact name (with --org when several organizations use it)
        name: String,
    },
    /// Stop every sync through a connection (its links say why) until it is enabled
    #[command(after_long_help = "Examples:
  goals-host connection disable Contoso --reason 'secret rotation until Monday'")]
    Disable {
        /// Connection: its exact name (with --org when several organizations use it)
        name: String,
        /// Why, shown on its links and Key Results
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let a disabled connection sync again; its links run at once
    #[command(after_long_help = "Examples:
  goals-host connection enable Contoso")]
    Enable {
        /// Connection: its exact name (with --org when several organizations use it)
        name: String,
    },
}

impl ConnectionCommand {
    /// Whether the command signs in with a client secret (and prints nothing of
    /// its own while it waits).
    pub fn signs_in_with_a_secret(&self) -> bool {
        match self {
            ConnectionCommand::Add { sign_in, .. } => *sign_in == SignInArg::Secret,
            ConnectionCommand::SignIn {
                client_secret_env, ..
            } => client_secret_env.is_some(),
            ConnectionCommand::Test { .. } => true,
            _ => false,
        }
    }
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
            sign_in,
            authority,
            allow_loopback,
            added_by,
            no_verify,
        } => {
            let (sign_in, client_secret) = match sign_in {
                SignInArg::Secret => (
                    SignIn::ClientSecret,
                    Some(secret_from(
                        client_secret_env.as_deref().unwrap_or_default(),
                    )?),
                ),
                SignInArg::Device => {
                    anyhow::ensure!(
                        client_secret_env.is_none(),
                        "a person's sign-in uses no client secret; drop --client-secret-env"
                    );
                    (SignIn::DeviceCode, None)
                }
            };
            let new = NewConnection {
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
                sign_in,
                client_secret,
                allow_loopback: *allow_loopback,
            };
            // Checked before anything is saved: the URLs against the outbound
            // policy every call meets (an internal address is refused now, not at
            // the first call), then a service principal's credentials, so a wrong
            // secret, tenant or client id is said now, not at the first sync.
            let candidate = connections::candidate(db, new.clone()).await?;
            OutboundPolicy::for_connection(&candidate)
                .check_origins(&SystemResolver)
                .await
                .map_err(|reason| ConnectionError::Invalid {
                    field: "environment or authority URL",
                    value: candidate.environment_url.clone(),
                    reason: format!("{reason}; nothing was saved"),
                })?;
            let identity = if sign_in == SignIn::ClientSecret && !no_verify {
                Some(verify(context, &candidate).await?)
            } else {
                None
            };
            let record = connections::add(db, new).await?;
            if sign_in == SignIn::DeviceCode {
                // Nothing half-made stays behind: a connection nobody could sign in
                // to is removed again.
                let runtime = context.runtime().await?;
                if let Err(error) = device_sign_in(db, &runtime, &record).await {
                    connections::remove(db, &record.name, Some(&record.organization))
                        .await
                        .ok();
                    return Err(error.context("the connection was not added"));
                }
            }
            let record = connections::get_by_id(db, &record.id).await?;
            let mut json = render::connection(&record);
            json["verified_as"] = match &identity {
                Some(identity) => json!({
                    "user_id": identity.user_id,
                    "environment_id": identity.environment_id,
                }),
                None => serde_json::Value::Null,
            };
            Ok(Report {
                text: format!(
                    "added connection '{}' of organization '{}' to {}{}",
                    record.name,
                    record.organization,
                    record.environment_url,
                    match &identity {
                        Some(identity) => format!("; signed in as user {}", identity.user_id),
                        None if *no_verify => "; not verified (--no-verify): check it with \
                            `goals-host connection test`"
                            .to_string(),
                        None => String::new(),
                    }
                ),
                json,
            })
        }
        ConnectionCommand::List => {
            // An organization that does not exist is an error, not an empty list.
            if let Some(name) = org {
                crate::goals::admin::organization(db, name).await?;
            }
            Ok(render::connections(&connections::list(db, org).await?))
        }
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
            let runtime = context.runtime().await?;
            match (record.sign_in, client_secret_env) {
                (SignIn::DeviceCode, None) => {
                    // A sign-in sealed under a lost key is of no use any more.
                    connections::forget_unreadable_storage(db, &record.id).await?;
                    let record = connections::get_by_id(db, &record.id).await?;
                    device_sign_in(db, &runtime, &record).await?
                }
                (SignIn::DeviceCode, Some(_)) => anyhow::bail!(
                    "connection '{}' signs in as a person; sign in without --client-secret-env",
                    record.name
                ),
                (SignIn::ClientSecret, None) => anyhow::bail!(
                    "connection '{}' signs in as a service principal; give the new secret with \
                     --client-secret-env",
                    record.name
                ),
                (SignIn::ClientSecret, Some(variable)) => {
                    let secret = secret_from(variable)?;
                    // Prove the new credential before it replaces the stored one, under
                    // a storage scope of its own: a token cached for the old secret
                    // must not vouch for it.
                    let mut candidate = record.clone();
                    candidate.id = format!("{}-sign-in", record.id);
                    candidate.client_secret = Some(secret.clone());
                    let verified = runtime.who_am_i(&candidate).await;
                    connections::forget_plugin_storage(db, &candidate.id).await?;
                    verified?;
                    connections::set_secret(db, &record.id, &secret).await?;
                    connections::forget_plugin_storage(db, &record.id).await?;
                }
            }
            usable_again(context, &record).await?;
            let record = connections::get_by_id(db, &record.id).await?;
            Ok(Report {
                text: format!(
                    "connection '{}' is signed in again; its links resume",
                    record.name
                ),
                json: render::connection(&record),
            })
        }
        ConnectionCommand::Disable { name, reason } => {
            let record = connections::get(db, name, org).await?;
            let reason = match reason {
                Some(reason) => format!("disabled by an admin: {reason}"),
                None => "disabled by an admin".to_string(),
            };
            connections::set_status(db, &record.id, Status::Disabled, Some(&reason)).await?;
            let record = connections::get_by_id(db, &record.id).await?;
            Ok(Report {
                text: format!(
                    "connection '{}' is disabled: its links stop until `goals-host connection enable {}`",
                    record.name, record.name
                ),
                json: render::connection(&record),
            })
        }
        ConnectionCommand::Enable { name } => {
            let record = connections::get(db, name, org).await?;
            if record.status != Status::Disabled {
                anyhow::bail!(
                    "connection '{}' is not disabled (it is {}); nothing to enable",
                    record.name,
                    record.status.as_str()
                );
            }
            usable_again(context, &record).await?;
            let record = connections::get_by_id(db, &record.id).await?;
            Ok(Report {
                text: format!(
                    "connection '{}' is enabled; its links sync at once",
                    record.name
                ),
                json: render::connection(&record),
            })
        }
        ConnectionCommand::Test { name } => {
            let record = connections::get(db, name, org).await?;
            let runtime = context.runtime().await?;
            let identity = runtime.who_am_i(&record).await?;
            Ok(Report {
                text: format!(
                    "connection '{}' reaches {} as user {}{}",
                    record.name,
                    record.environment_url,
                    identity.user_id,
                    render::identity_facts(&identity)
                ),
                json: json!({
                    "connection": record.name,
                    "environment_url": record.environment_url,
                    "user_id": identity.user_id,
                    "environment_id": identity.environment_id,
                    "details": identity
                        .details
                        .iter()
                        .map(|(label, value)| json!({"label": label, "value": value}))
                        .collect::<Vec<_>>(),
                }),
            })
        }
    }
}

/// Signs in with the credentials of a connection not yet saved and asks WhoAmI;
/// nothing stays behind either way.
async fn verify(context: &Context<'_>, candidate: &ConnectionRecord) -> anyhow::Result<Identity> {
    let runtime = context.runtime().await?;
    let verified = runtime.who_am_i(candidate).await;
    connections::forget_plugin_storage(&context.db, &candidate.id).await?;
    verified.map_err(|error| {
        anyhow::Error::from(error).context(format!(
            "connection '{}' was not added: signing in to {} failed (nothing was saved; \
             --no-verify saves without signing in)",
            candidate.name, candidate.environment_url
        ))
    })
}

/// A person signs in: the code and address go to the terminal (stderr, so that
/// `--json` output stays one document), then the plugin is polled until the
/// person is done, declines, or the code expires.
async fn device_sign_in(
    db: &Database,
    runtime: &PluginRuntime,
    record: &ConnectionRecord,
) -> anyhow::Result<()> {
    let code = runtime.start_device_sign_in(record).await?;
    eprintln!("{}", code.message);
    eprintln!(
        "Waiting for the sign-in (code {}, valid {} s)...",
        code.user_code, code.expires_in_seconds
    );
    let interval = Duration::from_secs(u64::from(code.interval_seconds.max(1)));
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(u64::from(code.expires_in_seconds.max(1)));
    loop {
        match runtime.poll_device_sign_in(record).await? {
            SignInStatus::Complete => break,
            SignInStatus::Pending => {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the sign-in code expired before it was used; start again"
                );
                tokio::time::sleep(interval).await;
            }
        }
    }
    let identity = runtime.who_am_i(record).await?;
    eprintln!("Signed in as user {}.", identity.user_id);
    connections::set_status(db, &record.id, Status::Ok, None).await?;
    Ok(())
}

/// After a successful sign-in, or enabled by an admin: the connection is usable
/// again and its links that waited run at once.
async fn usable_again(context: &Context<'_>, record: &ConnectionRecord) -> anyhow::Result<()> {
    let db = &context.db;
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
        tx.execute(
            "UPDATE metric_links SET next_run_at = min(next_run_at, ?2)
             WHERE connection_id = ?1",
            rusqlite::params![id, now],
        )?;
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(())
}
