//! `goals-host connection ...`: named connections of an organization, signed in
//! as a service principal (client secret) or as a person (device code).

use super::Context;
use crate::bindings::SignInStatus;
use crate::connections::{self, ConnectionRecord, NewConnection, Secret, SignIn, Status};
use crate::db::Database;
use crate::engine::Engine;
use crate::render::{self, Report};
use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignInArg {
    /// An application's client secret (from --client-secret-env)
    Secret,
    /// A person signs in with a code shown here (device code)
    Device,
    /// An API key the service issued (from --api-key-env)
    ApiKey,
    /// An application's certificate (--certificate) and private key (--private-key-env)
    Certificate,
}

impl SignInArg {
    fn sign_in(self) -> SignIn {
        match self {
            SignInArg::Secret => SignIn::ClientSecret,
            SignInArg::Device => SignIn::DeviceCode,
            SignInArg::ApiKey => SignIn::ApiKey,
            SignInArg::Certificate => SignIn::Certificate,
        }
    }
}

/// Where the secret material comes from: environment variables and files, never
/// the command line itself (it would stay in shell history and `ps`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecretArgs {
    /// Name of the environment variable holding the client secret
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// Name of the environment variable holding the API key
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// PEM file of the application's certificate
    #[arg(long, value_name = "PEM")]
    pub certificate: Option<std::path::PathBuf>,
    /// Name of the environment variable holding the certificate's private key (PEM)
    #[arg(long, value_name = "VAR")]
    pub private_key_env: Option<String>,
}

impl SecretArgs {
    fn given(&self) -> bool {
        self.client_secret_env.is_some()
            || self.api_key_env.is_some()
            || self.certificate.is_some()
            || self.private_key_env.is_some()
    }

    /// The secret for `sign_in`, refusing flags of another kind.
    fn secret_for(&self, sign_in: SignIn) -> anyhow::Result<Option<Secret>> {
        let stray = match sign_in {
            SignIn::ClientSecret => {
                self.api_key_env.is_some()
                    || self.certificate.is_some()
                    || self.private_key_env.is_some()
            }
            SignIn::ApiKey => {
                self.client_secret_env.is_some()
                    || self.certificate.is_some()
                    || self.private_key_env.is_some()
            }
            SignIn::Certificate => self.client_secret_env.is_some() || self.api_key_env.is_some(),
            SignIn::DeviceCode => self.given(),
        };
        if stray {
            return Err(super::failure::UsageError(format!(
                "signing in with {} takes {}; drop the other secret flags",
                sign_in.as_str(),
                match sign_in {
                    SignIn::ClientSecret => "--client-secret-env",
                    SignIn::ApiKey => "--api-key-env",
                    SignIn::Certificate => "--certificate and --private-key-env",
                    SignIn::DeviceCode => "no secret",
                }
            ))
            .into());
        }
        let from_env = |variable: &Option<String>, flag: &str, what: &str| match variable {
            Some(variable) => secret_from(variable, what),
            None => Err(anyhow::Error::from(super::failure::UsageError(format!(
                "signing in with {} needs {flag}",
                sign_in.as_str()
            )))),
        };
        Ok(match sign_in {
            SignIn::DeviceCode => None,
            SignIn::ClientSecret => Some(from_env(
                &self.client_secret_env,
                "--client-secret-env VAR",
                "the client secret",
            )?),
            SignIn::ApiKey => Some(from_env(
                &self.api_key_env,
                "--api-key-env VAR",
                "the API key",
            )?),
            SignIn::Certificate => {
                let key = from_env(
                    &self.private_key_env,
                    "--private-key-env VAR",
                    "the private key (PEM)",
                )?;
                let Some(path) = &self.certificate else {
                    return Err(super::failure::UsageError(
                        "signing in with certificate needs --certificate PEM".to_string(),
                    )
                    .into());
                };
                let certificate = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the certificate {}", path.display()))?;
                Some(Secret::new(connections::join_certificate(
                    &certificate,
                    key.expose(),
                )))
            }
        })
    }
}

/// `KEY=VALUE` of `--setting`.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!(
            "'{text}' is not KEY=VALUE; `goals-host describe` lists the integration's settings"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a named connection with the settings its integration declares
    /// (`describe` lists them); secrets are read from environment variables
    #[command(after_long_help = "Examples:
  export CONTOSO_SECRET='the client secret of the app registration'
  goals-host connection add --name Contoso --url https://contoso.crm.dynamics.com \\
    --tenant contoso.onmicrosoft.com --client-id 2f1c7a52-8d3e-4b6a-9c0d-5e7f8a9b0c1d \\
    --client-secret-env CONTOSO_SECRET
  goals-host --org Sales connection add --name Sandbox --sign-in device \\
    --url https://contoso-sandbox.crm.dynamics.com \\
    --setting tenant=contoso.onmicrosoft.com \\
    --setting client_id=2f1c7a52-8d3e-4b6a-9c0d-5e7f8a9b0c1d")]
    Add {
        /// Name of the new connection: unique in its organization (--org)
        #[arg(long)]
        name: String,
        /// The integration's id [default: the only integration this host runs]
        #[arg(long, value_name = "ID")]
        integration: Option<String>,
        /// The integration's first endpoint setting (for Dynamics 365 the
        /// environment URL, e.g. https://contoso.crm.dynamics.com)
        #[arg(long)]
        url: Option<String>,
        /// A setting the integration declares, as KEY=VALUE (repeatable)
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
        settings: Vec<(String, String)>,
        /// Shorthand for --setting tenant=VALUE
        #[arg(long)]
        tenant: Option<String>,
        /// Shorthand for --setting client_id=VALUE
        #[arg(long)]
        client_id: Option<String>,
        /// Shorthand for --setting authority_url=VALUE
        #[arg(long)]
        authority: Option<String>,
        /// How the connection signs in
        #[arg(long, value_enum, default_value_t = SignInArg::Secret)]
        sign_in: SignInArg,
        #[command(flatten)]
        secrets: SecretArgs,
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
        /// For an application: where its new secret comes from
        #[command(flatten)]
        secrets: SecretArgs,
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
            ConnectionCommand::Add { sign_in, .. } => *sign_in != SignInArg::Device,
            ConnectionCommand::SignIn { secrets, .. } => secrets.given(),
            ConnectionCommand::Test { .. } => true,
            _ => false,
        }
    }
}

fn secret_from(variable: &str, what: &str) -> anyhow::Result<Secret> {
    let secret = std::env::var(variable).with_context(|| {
        format!(
            "environment variable {variable} is not set; put {what} in it (secrets are never \
             taken from the command line)"
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
            integration,
            url,
            settings,
            tenant,
            client_id,
            authority,
            sign_in,
            secrets,
            allow_loopback,
            added_by,
            no_verify,
        } => {
            let sign_in = sign_in.sign_in();
            let secret = secrets.secret_for(sign_in)?;
            let runtime = context.engine().await?;
            let info = runtime.get(integration.as_deref())?.info();
            // The shorthands first, so an explicit --setting of the same key wins.
            let first_endpoint = info
                .settings
                .iter()
                .find(|s| matches!(s.kind, crate::bindings::SettingKind::Endpoint))
                .map(|s| s.key.clone());
            let shorthands = [
                (first_endpoint, url),
                (Some("tenant".to_string()), tenant),
                (Some("client_id".to_string()), client_id),
                (Some("authority_url".to_string()), authority),
            ];
            let mut given: Vec<(String, String)> = shorthands
                .into_iter()
                .filter_map(|(key, value)| Some((key?, value.clone()?)))
                .collect();
            given.extend(settings.iter().cloned());
            let new = NewConnection {
                organization: context.cli.org().to_string(),
                added_by: added_by
                    .clone()
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_default(),
                name: name.clone(),
                integration: info.id.clone(),
                settings: given,
                sign_in,
                secret,
                allow_loopback: *allow_loopback,
            };
            let (record, identity) = crate::connecting::add(
                db,
                runtime.as_ref(),
                info,
                new,
                (!no_verify).then_some("; --no-verify saves without signing in"),
            )
            .await?;
            if sign_in == SignIn::DeviceCode {
                // Nothing half-made stays behind: a connection nobody could sign in
                // to is removed again.
                if let Err(error) = device_sign_in(db, &runtime, &record).await {
                    connections::remove(db, &record.name, Some(&record.organization))
                        .await
                        .ok();
                    return Err(error.context("the connection was not added"));
                }
            }
            let record = connections::get_by_id(db, &record.id).await?;
            let json = render::connection_added(&record, identity.as_ref());
            Ok(Report {
                text: format!(
                    "added connection '{}' of organization '{}' to {}{}",
                    record.name,
                    record.organization,
                    record.url(),
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
        ConnectionCommand::SignIn { name, secrets } => {
            let record = connections::get(db, name, org).await?;
            let runtime = context.engine().await?;
            match secrets.secret_for(record.sign_in).map_err(|error| {
                error.context(format!(
                    "connection '{}' signs in with {}",
                    record.name,
                    record.sign_in.as_str()
                ))
            })? {
                None => {
                    // A sign-in sealed under a lost key is of no use any more.
                    connections::forget_unreadable_storage(db, &record.id).await?;
                    let record = connections::get_by_id(db, &record.id).await?;
                    device_sign_in(db, &runtime, &record).await?
                }
                Some(secret) => {
                    crate::connecting::replace_secret(db, runtime.as_ref(), &record, &secret)
                        .await?;
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
            crate::connecting::disable(db, &record, reason.as_deref()).await?;
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
            let runtime = context.engine().await?;
            let identity = runtime.who_am_i(&record).await?;
            Ok(Report {
                text: format!(
                    "connection '{}' reaches {} as user {}{}",
                    record.name,
                    record.url(),
                    identity.user_id,
                    render::identity_facts(&identity)
                ),
                json: render::identity(&record, &identity),
            })
        }
    }
}

/// A person signs in: the code and address go to the terminal (stderr, so that
/// `--json` output stays one document), then the plugin is polled until the
/// person is done, declines, or the code expires.
async fn device_sign_in(
    db: &Database,
    runtime: &dyn Engine,
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

async fn usable_again(context: &Context<'_>, record: &ConnectionRecord) -> anyhow::Result<()> {
    crate::connecting::usable_again(&context.db, record, context.clock.now()).await
}
