//! Named connections to environments of the integrated service.

use crate::bindings::{CredentialKind, PluginInfo, SettingKind};
use crate::db::{Database, DbError, connection_secret_context, plugin_value_context};
use crate::params;
use crate::secrets::Keyring;
use crate::sql::{Row, Sql, SqlError};
use std::fmt;
use std::sync::Arc;
use url::Url;

const MAX_NAME_LEN: usize = 100;

/// A secret value: printed as `***` by `Debug`, never by `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must hand it over (the plugin call).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The organization connections belong to unless another is named.
pub const DEFAULT_ORGANIZATION: &str = "default";

/// Whether a connection's links may sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// The credential was refused: someone must sign in again.
    NeedsSignIn,
    /// Switched off by an admin.
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NeedsSignIn => "needs-sign-in",
            Status::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "needs-sign-in" => Status::NeedsSignIn,
            "disabled" => Status::Disabled,
            _ => Status::Ok,
        }
    }
}

/// How a connection signs in: the credential kinds of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// An application with a client secret: keeps syncing whoever leaves.
    ClientSecret,
    /// An application with a certificate and its private key.
    Certificate,
    /// A person, with a device code; the integration keeps the refresh token.
    DeviceCode,
    /// A key the service issued.
    ApiKey,
}

impl SignIn {
    pub fn as_str(self) -> &'static str {
        match self {
            SignIn::ClientSecret => "client-secret",
            SignIn::Certificate => "certificate",
            SignIn::DeviceCode => "device-code",
            SignIn::ApiKey => "api-key",
        }
    }

    fn parse(text: &str) -> SignIn {
        match text {
            "certificate" => SignIn::Certificate,
            "device-code" => SignIn::DeviceCode,
            "api-key" => SignIn::ApiKey,
            _ => SignIn::ClientSecret,
        }
    }

    /// The contract's credential kind.
    pub fn kind(self) -> CredentialKind {
        match self {
            SignIn::ClientSecret => CredentialKind::ClientSecret,
            SignIn::Certificate => CredentialKind::Certificate,
            SignIn::DeviceCode => CredentialKind::User,
            SignIn::ApiKey => CredentialKind::ApiKey,
        }
    }

    /// Whether the host keeps a secret for it (all but a person's sign-in).
    pub fn has_secret(self) -> bool {
        self != SignIn::DeviceCode
    }

    /// What the secret is called in messages.
    pub fn secret_name(self) -> &'static str {
        match self {
            SignIn::ClientSecret => "client secret",
            SignIn::Certificate => "certificate and private key",
            SignIn::DeviceCode => "person's sign-in",
            SignIn::ApiKey => "API key",
        }
    }
}

/// What an admin supplies to add a connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Name of the organization that owns it.
    pub organization: String,
    /// Who added it, for the record.
    pub added_by: String,
    pub name: String,
    /// The integration's id.
    pub integration: String,
    /// Setting values as given, by key; checked against what the integration
    /// declares when the connection is added.
    pub settings: Vec<(String, String)>,
    pub sign_in: SignIn,
    /// The secret material: required for every sign-in but a person's.
    pub secret: Option<Secret>,
    /// Allows plain HTTP and loopback addresses: for simulators and tests only.
    pub allow_loopback: bool,
}

#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub id: String,
    pub organization_id: i64,
    pub organization: String,
    pub added_by: String,
    pub status: Status,
    pub status_reason: Option<String>,
    pub name: String,
    /// The id of the integration the connection belongs to.
    pub integration: String,
    /// The value of each setting the integration declares (given or default),
    /// in its declared order.
    pub settings: Vec<(String, String)>,
    /// Where the integration may send requests for this connection: the
    /// origins of its endpoint settings, the first being the service itself.
    pub origins: Vec<String>,
    pub sign_in: SignIn,
    /// The secret material; `None` for a person's sign-in, or when the stored
    /// secret cannot be opened with this host's key.
    pub secret: Option<Secret>,
    /// Something sealed for the connection (its client secret, or a sign-in the
    /// plugin keeps) cannot be opened with this host's key: the key changed or
    /// was lost, and the connection needs sign-in.
    pub key_lost: bool,
    pub allow_loopback: bool,
    pub created_at: i64,
}

impl ConnectionRecord {
    /// Where the connection points, for people: its first endpoint's origin.
    pub fn url(&self) -> &str {
        self.origins.first().map(String::as_str).unwrap_or_default()
    }

    /// The command that signs this connection in again, for messages that say
    /// it needs sign-in.
    pub fn sign_in_command(&self) -> String {
        let org = if self.organization == DEFAULT_ORGANIZATION {
            String::new()
        } else {
            format!(" --org '{}'", self.organization)
        };
        let secret = match self.sign_in {
            SignIn::ClientSecret => " --client-secret-env VAR",
            SignIn::Certificate => " --certificate PEM --private-key-env VAR",
            SignIn::ApiKey => " --api-key-env VAR",
            SignIn::DeviceCode => "",
        };
        format!("goals-host connection sign-in '{}'{org}{secret}", self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(
        "organization '{organization}' already has a connection named '{name}'; choose another \
         name or remove it first"
    )]
    DuplicateName { organization: String, name: String },
    #[error("no connection named '{name}'{}{}", in_organization(.organization.as_deref()), known_names(.known))]
    NotFound {
        name: String,
        organization: Option<String>,
        known: Vec<String>,
    },
    #[error(
        "several organizations have a connection named '{name}' ({}); name the organization \
         with --org",
        .organizations.join(", ")
    )]
    Ambiguous {
        name: String,
        organizations: Vec<String>,
    },
    #[error("no organization named '{0}'; create it with `goals-host org create`")]
    NoOrganization(String),
    #[error(
        "connection '{name}' is used by {links} linked Key Result(s); unlink them or move them \
         to another connection first"
    )]
    InUse { name: String, links: i64 },
    #[error("invalid {field} '{value}': {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

fn in_organization(organization: Option<&str>) -> String {
    organization
        .map(|name| format!(" in organization '{name}'"))
        .unwrap_or_default()
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "; add one with `goals-host connection add`".to_string()
    } else {
        format!("; known connections: {}", known.join(", "))
    }
}

impl NewConnection {
    /// Sets setting `key` to `value`, replacing what was given for it.
    pub fn set(&mut self, key: &str, value: &str) {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.to_string(), value.to_string()));
    }

    /// Checks and normalises what was supplied against what `integration`
    /// declares: every required setting given, no unknown one, defaults filled
    /// in, endpoints reduced to bare origins (`scheme://host[:port]`), and a
    /// credential of a kind the integration accepts.
    fn validated(self, integration: &PluginInfo) -> Result<Checked, ConnectionError> {
        let name = self.name.trim().to_string();
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || crate::names::hidden_character(&name).is_some()
        {
            return Err(ConnectionError::Invalid {
                field: "name".to_string(),
                value: self.name,
                reason: format!("use 1 to {MAX_NAME_LEN} printable characters"),
            });
        }
        if let Some((key, value)) = self
            .settings
            .iter()
            .find(|(key, _)| !integration.settings.iter().any(|s| &s.key == key))
        {
            return Err(ConnectionError::Invalid {
                field: format!("setting '{key}'"),
                value: value.clone(),
                reason: format!(
                    "{} has no such setting; its settings are {}",
                    integration.name,
                    integration
                        .settings
                        .iter()
                        .map(|s| s.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let mut settings = Vec::new();
        let mut origins = Vec::new();
        for declared in &integration.settings {
            let given = self
                .settings
                .iter()
                .rev()
                .find(|(key, _)| key == &declared.key)
                .map(|(_, value)| value.trim().to_string())
                .filter(|value| !value.is_empty());
            let Some(value) = given.or_else(|| declared.default_value.clone()) else {
                if declared.required {
                    return Err(ConnectionError::Invalid {
                        field: format!("setting '{}'", declared.key),
                        value: String::new(),
                        reason: format!(
                            "{} needs it ({}): give it with --setting {}=VALUE",
                            integration.name, declared.label, declared.key
                        ),
                    });
                }
                continue;
            };
            let value = match declared.kind {
                SettingKind::Endpoint => {
                    let origin = origin(&declared.key, &value, self.allow_loopback)?;
                    if !origins.contains(&origin) {
                        origins.push(origin.clone());
                    }
                    origin
                }
                SettingKind::Text => {
                    if value.chars().any(char::is_control) {
                        return Err(ConnectionError::Invalid {
                            field: format!("setting '{}'", declared.key),
                            value,
                            reason: "use printable characters".to_string(),
                        });
                    }
                    value
                }
            };
            settings.push((declared.key.clone(), value));
        }
        if !integration.credentials.contains(&self.sign_in.kind()) {
            return Err(ConnectionError::Invalid {
                field: "sign-in".to_string(),
                value: self.sign_in.as_str().to_string(),
                reason: format!(
                    "{} signs in with {}",
                    integration.name,
                    integration
                        .credentials
                        .iter()
                        .map(|kind| crate::names::credential_name(*kind))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            });
        }
        let secret_given = self.secret.as_ref().is_some_and(|s| !s.expose().is_empty());
        match (self.sign_in.has_secret(), secret_given) {
            (true, false) => {
                return Err(ConnectionError::Invalid {
                    field: self.sign_in.secret_name().to_string(),
                    value: String::new(),
                    reason: format!("signing in with {} needs it", self.sign_in.as_str()),
                });
            }
            (false, true) => {
                return Err(ConnectionError::Invalid {
                    field: "secret".to_string(),
                    value: String::new(),
                    reason: "a person's sign-in uses no secret".to_string(),
                });
            }
            _ => {}
        }
        Ok(Checked {
            new: NewConnection {
                name,
                integration: integration.id.clone(),
                settings,
                ..self
            },
            origins,
        })
    }
}

/// A new connection, checked against its integration, with the origins its
/// endpoint settings allow.
struct Checked {
    new: NewConnection,
    origins: Vec<String>,
}

fn origin(key: &str, value: &str, allow_loopback: bool) -> Result<String, ConnectionError> {
    let invalid = |reason: &str| ConnectionError::Invalid {
        field: format!("setting '{key}'"),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(value.trim())
        .map_err(|e| invalid(&format!("{e}; use e.g. https://service.example.com")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        "http" => {
            return Err(invalid(
                "plain http is only allowed with --allow-loopback (simulators and tests)",
            ));
        }
        _ => return Err(invalid("use an https:// URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials do not belong in the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
        return Err(invalid(
            "give only the scheme and host, e.g. https://service.example.com",
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid("the URL has no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// A certificate credential kept as one secret: the certificate's PEM blocks,
/// then the private key's.
pub fn join_certificate(certificate_pem: &str, private_key_pem: &str) -> String {
    format!("{}\n{}\n", certificate_pem.trim(), private_key_pem.trim())
}

/// The certificate and the private key of a [`join_certificate`] secret.
pub fn split_certificate(secret: &str) -> Option<(String, String)> {
    let key_start = secret.match_indices("-----BEGIN ").find_map(|(at, _)| {
        let line = secret[at..].lines().next()?;
        line.ends_with("PRIVATE KEY-----").then_some(at)
    })?;
    let (certificate, key) = secret.split_at(key_start);
    let certificate = certificate.trim();
    (!certificate.is_empty()).then(|| (certificate.to_string(), key.trim().to_string()))
}

/// A new connection id: 128 random bits.
fn new_id() -> Result<String, ConnectionError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| DbError::from(crate::secrets::SecretError::Random))?;
    Ok(hex::encode(bytes))
}

/// Every column of a connection and its organization's name.
const SELECT: &str = "SELECT c.*, o.name AS organization
     FROM connections c JOIN organizations o ON o.id = c.organization_id";

/// Why a connection whose sealed secrets cannot be opened needs sign-in.
pub const UNREADABLE_SECRET: &str = "the connection's stored sign-in (client secret or refresh \
     token) cannot be opened with this host's secret key: the key file or \
     GOALS_HOST_SECRET_KEY changed or was lost. Restore the key, or have the connection's \
     owner sign in again with `goals-host connection sign-in`";

/// Whether a value the plugins keep for good (no expiry) for the connection
/// cannot be opened. Only those hold a sign-in (a refresh token); values with an
/// expiry are caches, which read as absent when they cannot be opened.
fn durable_value_unreadable(
    conn: &Sql<'_>,
    keyring: &Keyring,
    connection_id: &str,
) -> Result<bool, SqlError> {
    // The key is (plugin, connection, key): the few plugin names are walked one
    // by one (a loose index scan), so no row of other connections is read.
    let rows = conn.query_map(
        "WITH RECURSIVE plugins(name) AS (
             SELECT min(plugin) FROM plugin_kv
             UNION ALL
             SELECT (SELECT min(plugin) FROM plugin_kv WHERE plugin > name)
             FROM plugins WHERE name IS NOT NULL)
         SELECT kv.plugin, kv.key, kv.value FROM plugins
         JOIN plugin_kv kv ON kv.plugin = plugins.name AND kv.connection_id = ?1
         WHERE kv.expires_at IS NULL",
        params![connection_id],
        |row| {
            Ok((
                row.get::<String>(0)?,
                row.get::<String>(1)?,
                row.get::<Vec<u8>>(2)?,
            ))
        },
    )?;
    for (plugin, key, value) in rows {
        let context = plugin_value_context(&plugin, connection_id, &key);
        if keyring.open(&context, &value).is_err() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The stored settings: `[key, value]` pairs in the integration's declared
/// order (a JSON object would not keep it).
fn settings_from_json(json: &str) -> Vec<(String, String)> {
    serde_json::from_str(json).unwrap_or_default()
}

fn settings_to_json(settings: &[(String, String)]) -> String {
    serde_json::Value::from(
        settings
            .iter()
            .map(|(key, value)| serde_json::json!([key, value]))
            .collect::<Vec<_>>(),
    )
    .to_string()
}

fn from_row(row: &Row, keyring: &Keyring, conn: &Sql<'_>) -> Result<ConnectionRecord, SqlError> {
    let id: String = row.get("id")?;
    let sign_in = SignIn::parse(&row.get::<String>("sign_in")?);
    let sealed: String = row.get("client_secret")?;
    let secret = if sign_in.has_secret() {
        keyring
            .open_text(&connection_secret_context(&id), &sealed)
            .ok()
            .map(Secret::new)
    } else {
        None
    };
    // One key seals everything of a connection: a service principal's secret
    // that opens shows the key is right, so only a person's sign-in, kept by the
    // plugin, needs its values checked (and a scheduled sync of a service
    // principal reads nothing more).
    let key_lost = if sign_in.has_secret() {
        secret.is_none()
    } else {
        durable_value_unreadable(conn, keyring, &id)?
    };
    let mut status = Status::parse(&row.get::<String>("status")?);
    let mut status_reason: Option<String> = row.get("status_reason")?;
    // A lost key must not crash anything: the connection just needs sign-in
    // (unless an admin switched it off, which stays the stronger reason).
    if key_lost && status != Status::Disabled {
        status = Status::NeedsSignIn;
        status_reason = Some(UNREADABLE_SECRET.to_string());
    }
    Ok(ConnectionRecord {
        id,
        organization_id: row.get("organization_id")?,
        organization: row.get("organization")?,
        added_by: row.get("added_by")?,
        status,
        status_reason,
        sign_in,
        name: row.get("name")?,
        integration: row.get("integration")?,
        settings: settings_from_json(&row.get::<String>("settings")?),
        origins: serde_json::from_str(&row.get::<String>("origins")?).unwrap_or_default(),
        secret,
        key_lost,
        allow_loopback: row.get("allow_loopback")?,
        created_at: row.get("created_at")?,
    })
}

/// Adds a connection of `integration`, checked against what it declares.
pub async fn add(
    db: &Database,
    integration: &PluginInfo,
    new: NewConnection,
) -> Result<ConnectionRecord, ConnectionError> {
    let Checked { new, origins } = new.validated(integration)?;
    let (organization, name) = (new.organization.clone(), new.name.clone());
    let id = new_id()?;
    let keyring = Arc::clone(db.keyring());
    let sealed = match &new.secret {
        Some(secret) => keyring
            .seal_text(&connection_secret_context(&id), secret.expose())
            .map_err(DbError::from)?,
        None => String::new(),
    };
    // A person's connection works only once the person has signed in.
    let (initial_status, initial_reason) = if new.sign_in.has_secret() {
        (Status::Ok, None)
    } else {
        (Status::NeedsSignIn, Some("waiting for the first sign-in"))
    };
    db.run(move |conn| {
        let tx = conn.transaction()?;
        let Some(organization_id) = tx.query_opt(
            "SELECT id FROM organizations WHERE name = ?1",
            params![&new.organization],
            |r| r.get::<i64>(0),
        )?
        else {
            return Ok(Err(ConnectionError::NoOrganization(new.organization)));
        };
        let exists: Option<String> = tx.query_opt(
            "SELECT id FROM connections WHERE organization_id = ?1 AND name = ?2",
            params![organization_id, new.name],
            |r| r.get(0),
        )?;
        if exists.is_some() {
            return Ok(Err(ConnectionError::DuplicateName { organization, name }));
        }
        tx.execute(
            "INSERT INTO connections (id, organization_id, name, integration, settings,
                 origins, client_secret, sign_in, allow_loopback, added_by, status,
                 status_reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, unixepoch())",
            params![
                id,
                organization_id,
                new.name,
                new.integration,
                settings_to_json(&new.settings),
                serde_json::Value::from(origins).to_string(),
                sealed,
                new.sign_in.as_str(),
                new.allow_loopback,
                new.added_by,
                initial_status.as_str(),
                initial_reason,
            ],
        )?;
        let record = tx.query_row(&format!("{SELECT} WHERE c.id = ?1"), params![&id], |r| {
            from_row(r, &keyring, &tx)
        })?;
        tx.commit()?;
        Ok(Ok(record))
    })
    .await?
}

/// What `new` would be once added, without saving anything: checked and
/// normalised, under a throwaway id, so its credentials can be tried first. The
/// caller forgets the plugin storage of that id afterwards.
pub async fn candidate(
    db: &Database,
    integration: &PluginInfo,
    new: NewConnection,
) -> Result<ConnectionRecord, ConnectionError> {
    let Checked { new, origins } = new.validated(integration)?;
    let Some(organization_id) = organization_id(db, &new.organization).await? else {
        return Err(ConnectionError::NoOrganization(new.organization));
    };
    if list(db, Some(&new.organization))
        .await?
        .iter()
        .any(|c| c.name == new.name)
    {
        return Err(ConnectionError::DuplicateName {
            organization: new.organization,
            name: new.name,
        });
    }
    Ok(ConnectionRecord {
        id: format!("candidate-{}", new_id()?),
        organization_id,
        organization: new.organization,
        added_by: new.added_by,
        status: Status::Ok,
        status_reason: None,
        name: new.name,
        integration: new.integration,
        settings: new.settings,
        origins,
        sign_in: new.sign_in,
        secret: new.secret,
        key_lost: false,
        allow_loopback: new.allow_loopback,
        created_at: 0,
    })
}

async fn organization_id(db: &Database, name: &str) -> Result<Option<i64>, ConnectionError> {
    let name = name.to_string();
    Ok(db
        .run(move |conn| {
            Ok(conn.query_opt(
                "SELECT id FROM organizations WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )?)
        })
        .await?)
}

/// Connections, of one organization or of all.
pub async fn list(
    db: &Database,
    organization: Option<&str>,
) -> Result<Vec<ConnectionRecord>, ConnectionError> {
    let organization = organization.map(str::to_string);
    let keyring = Arc::clone(db.keyring());
    Ok(db
        .run(move |conn| {
            let conn: &Sql<'_> = conn;
            Ok(conn.query_map(
                &format!(
                    "{SELECT} WHERE CAST(?1 AS TEXT) IS NULL OR o.name = ?1 ORDER BY o.name, c.name"
                ),
                params![organization],
                |r| from_row(r, &keyring, conn),
            )?)
        })
        .await?)
}

/// The connection named `name`, in `organization` when given; without one the
/// name must be unique across organizations.
pub async fn get(
    db: &Database,
    name: &str,
    organization: Option<&str>,
) -> Result<ConnectionRecord, ConnectionError> {
    let mut found: Vec<ConnectionRecord> = list(db, organization)
        .await?
        .into_iter()
        .filter(|c| c.name == name)
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(not_found(db, name, organization).await),
        _ => Err(ConnectionError::Ambiguous {
            name: name.to_string(),
            organizations: found.into_iter().map(|c| c.organization).collect(),
        }),
    }
}

pub async fn get_by_id(db: &Database, id: &str) -> Result<ConnectionRecord, ConnectionError> {
    let wanted = id.to_string();
    let keyring = Arc::clone(db.keyring());
    db.run(move |conn| {
        let conn: &Sql<'_> = conn;
        Ok(conn.query_opt(
            &format!("{SELECT} WHERE c.id = ?1"),
            params![&wanted],
            |r| from_row(r, &keyring, conn),
        )?)
    })
    .await?
    .ok_or_else(|| ConnectionError::NotFound {
        name: id.to_string(),
        organization: None,
        known: Vec::new(),
    })
}

/// Removes the connection and everything the plugin stored for it; refused while
/// Key Results are linked to it.
pub async fn remove(
    db: &Database,
    name: &str,
    organization: Option<&str>,
) -> Result<ConnectionRecord, ConnectionError> {
    let record = get(db, name, organization).await?;
    let id = record.id.clone();
    let links = db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let links: i64 = tx.query_row(
                "SELECT count(*) FROM metric_links WHERE connection_id = ?1",
                params![&id],
                |r| r.get(0),
            )?;
            if links == 0 {
                tx.execute(
                    "DELETE FROM plugin_kv WHERE connection_id = ?1",
                    params![&id],
                )?;
                tx.execute("DELETE FROM connections WHERE id = ?1", params![&id])?;
                tx.commit()?;
            }
            Ok(links)
        })
        .await?;
    if links > 0 {
        return Err(ConnectionError::InUse {
            name: record.name,
            links,
        });
    }
    Ok(record)
}

/// Records whether the connection's links may sync, and why not.
pub async fn set_status(
    db: &Database,
    id: &str,
    status: Status,
    reason: Option<&str>,
) -> Result<(), ConnectionError> {
    let (id, reason) = (id.to_string(), reason.map(str::to_string));
    db.run(move |conn| {
        conn.execute(
            "UPDATE connections SET status = ?2, status_reason = ?3 WHERE id = ?1",
            params![id, status.as_str(), reason],
        )?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Drops everything plugins stored for a connection (cached tokens, metadata).
pub async fn forget_plugin_storage(
    db: &Database,
    connection_id: &str,
) -> Result<(), ConnectionError> {
    let id = connection_id.to_string();
    db.run(move |conn| {
        conn.execute(
            "DELETE FROM plugin_kv WHERE connection_id = ?1",
            params![&id],
        )?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Drops what plugins stored for a connection that cannot be opened with this
/// host's key (sealed under a key since lost): of no use to anyone, and it
/// would keep the connection marked as needing sign-in after a new sign-in.
pub async fn forget_unreadable_storage(
    db: &Database,
    connection_id: &str,
) -> Result<usize, ConnectionError> {
    let id = connection_id.to_string();
    let keyring = Arc::clone(db.keyring());
    Ok(db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let unreadable: Vec<(String, String)> = {
                let rows = tx.query_map(
                    "SELECT plugin, key, value FROM plugin_kv WHERE connection_id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<String>(0)?,
                            r.get::<String>(1)?,
                            r.get::<Vec<u8>>(2)?,
                        ))
                    },
                )?;
                rows.into_iter()
                    .filter(|(plugin, key, value)| {
                        keyring
                            .open(&plugin_value_context(plugin, &id, key), value)
                            .is_err()
                    })
                    .map(|(plugin, key, _)| (plugin, key))
                    .collect()
            };
            for (plugin, key) in &unreadable {
                tx.execute(
                    "DELETE FROM plugin_kv WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3",
                    params![plugin, id, key],
                )?;
            }
            tx.commit()?;
            Ok(unreadable.len())
        })
        .await?)
}

/// Replaces the connection's secret (its sign-in kind stays).
pub async fn set_secret(db: &Database, id: &str, secret: &Secret) -> Result<(), ConnectionError> {
    if secret.expose().is_empty() {
        return Err(ConnectionError::Invalid {
            field: "secret".to_string(),
            value: String::new(),
            reason: "the secret is empty".to_string(),
        });
    }
    let sealed = db
        .keyring()
        .seal_text(&connection_secret_context(id), secret.expose())
        .map_err(DbError::from)?;
    let id = id.to_string();
    db.run(move |conn| {
        conn.execute(
            "UPDATE connections SET client_secret = ?2 WHERE id = ?1 AND sign_in <> 'device-code'",
            params![id, sealed],
        )?;
        Ok(())
    })
    .await?;
    Ok(())
}

async fn not_found(db: &Database, name: &str, organization: Option<&str>) -> ConnectionError {
    if let Some(organization) = organization
        && organization_id(db, organization)
            .await
            .ok()
            .flatten()
            .is_none()
    {
        return ConnectionError::NoOrganization(organization.to_string());
    }
    let known = list(db, organization)
        .await
        .map(|all| all.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    ConnectionError::NotFound {
        name: name.to_string(),
        organization: organization.map(str::to_string),
        known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An integration declaring what Dynamics 365 declares.
    fn integration() -> PluginInfo {
        use crate::bindings::Setting;
        let setting = |key: &str, kind, default: Option<&str>| Setting {
            key: key.to_string(),
            label: key.to_string(),
            help: String::new(),
            kind,
            required: default.is_none(),
            default_value: default.map(str::to_string),
        };
        PluginInfo {
            id: "test.crm".to_string(),
            name: "Test CRM".to_string(),
            version: "1.0.0".to_string(),
            settings: vec![
                setting("environment_url", SettingKind::Endpoint, None),
                setting("tenant", SettingKind::Text, None),
                setting(
                    "authority_url",
                    SettingKind::Endpoint,
                    Some("https://login.example.com"),
                ),
            ],
            credentials: vec![CredentialKind::ClientSecret, CredentialKind::User],
            default_sync_interval_seconds: 3600,
            min_sync_interval_seconds: 60,
            max_concurrent_per_connection: 4,
            aggregations: Vec::new(),
        }
    }

    fn new(name: &str) -> NewConnection {
        NewConnection {
            organization: DEFAULT_ORGANIZATION.to_string(),
            added_by: "admin@contoso".to_string(),
            name: name.to_string(),
            integration: "test.crm".to_string(),
            settings: vec![
                (
                    "environment_url".to_string(),
                    "https://contoso.crm.example.com/".to_string(),
                ),
                ("tenant".to_string(), " contoso ".to_string()),
            ],
            sign_in: SignIn::ClientSecret,
            secret: Some(Secret::new("s3cret")),
            allow_loopback: false,
        }
    }

    async fn add(db: &Database, new: NewConnection) -> Result<ConnectionRecord, ConnectionError> {
        super::add(db, &integration(), new).await
    }

    #[tokio::test]
    async fn adds_lists_and_removes() {
        let db = Database::open_in_memory().unwrap();
        let added = add(&db, new(" Sales ")).await.unwrap();
        assert_eq!(added.name, "Sales");
        assert_eq!(added.integration, "test.crm");
        assert_eq!(
            added.origins,
            [
                "https://contoso.crm.example.com",
                "https://login.example.com"
            ]
        );
        assert_eq!(added.url(), "https://contoso.crm.example.com");
        // Every declared setting, in declared order, trimmed, defaults filled in.
        let pair = |key: &str, value: &str| (key.to_string(), value.to_string());
        assert_eq!(
            added.settings,
            [
                pair("environment_url", "https://contoso.crm.example.com"),
                pair("tenant", "contoso"),
                pair("authority_url", "https://login.example.com"),
            ]
        );
        assert_eq!(added.id.len(), 32);
        assert_eq!(added.organization, DEFAULT_ORGANIZATION);
        assert_eq!(added.added_by, "admin@contoso");
        assert_eq!(added.status, Status::Ok);
        assert_eq!(list(&db, None).await.unwrap().len(), 1);
        let fetched = get(&db, "Sales", None).await.unwrap();
        assert_eq!(fetched.secret, Some(Secret::new("s3cret")));
        assert_eq!(fetched.settings, added.settings);
        remove(&db, "Sales", None).await.unwrap();
        assert!(matches!(
            get(&db, "Sales", None).await,
            Err(ConnectionError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn settings_and_credentials_are_checked_against_the_integration() {
        let db = Database::open_in_memory().unwrap();
        let mut unknown = new("a");
        unknown
            .settings
            .push(("colour".to_string(), "red".to_string()));
        let error = add(&db, unknown).await.unwrap_err().to_string();
        assert!(
            error.contains("setting 'colour'") && error.contains("environment_url, tenant"),
            "{error}"
        );

        let mut missing = new("b");
        missing.settings.retain(|(key, _)| key != "tenant");
        let error = add(&db, missing).await.unwrap_err().to_string();
        assert!(
            error.contains("setting 'tenant'") && error.contains("--setting tenant="),
            "{error}"
        );

        let mut api_key = new("c");
        api_key.sign_in = SignIn::ApiKey;
        let error = add(&db, api_key).await.unwrap_err().to_string();
        assert!(error.contains("client-secret or user"), "{error}");

        let mut no_secret = new("d");
        no_secret.secret = None;
        let error = add(&db, no_secret).await.unwrap_err().to_string();
        assert!(error.contains("client secret"), "{error}");

        let mut plain_http = new("e");
        plain_http.settings[0].1 = "http://127.0.0.1:9".to_string();
        let error = add(&db, plain_http).await.unwrap_err().to_string();
        assert!(error.contains("setting 'environment_url'"), "{error}");
        assert!(
            list(&db, None).await.unwrap().is_empty(),
            "nothing half-added"
        );
    }

    #[test]
    fn a_certificate_secret_splits_into_the_certificate_and_its_key() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----";
        let joined = join_certificate(cert, key);
        assert_eq!(
            split_certificate(&joined),
            Some((cert.to_string(), key.to_string()))
        );
        assert_eq!(split_certificate(cert), None, "no key");
        assert_eq!(split_certificate(key), None, "no certificate");
    }

    #[tokio::test]
    async fn duplicate_names_are_refused() {
        let db = Database::open_in_memory().unwrap();
        add(&db, new("Sales")).await.unwrap();
        let error = add(&db, new("Sales")).await.unwrap_err();
        assert!(matches!(error, ConnectionError::DuplicateName { .. }));
        assert!(
            error
                .to_string()
                .contains("already has a connection named 'Sales'")
        );
    }

    #[test]
    fn urls_must_be_bare_https_origins_unless_loopback_is_allowed() {
        assert!(origin("u", "https://x.crm.dynamics.com/api/data", false).is_err());
        assert!(origin("u", "http://127.0.0.1:8080", false).is_err());
        assert_eq!(
            origin("u", "http://127.0.0.1:8080/", true).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(origin("u", "https://user:pw@x.com", false).is_err());
        assert!(origin("u", "ftp://x.com", true).is_err());
        assert!(origin("u", "not a url", true).is_err());
    }

    /// Stores `value` for the connection as the plugin does (sealed under the
    /// database's key), without expiry or with `ttl`.
    async fn store_plugin_value(db: &Database, id: &str, key: &str, ttl: Option<i64>) {
        let sealed = db
            .keyring()
            .seal(&plugin_value_context("p", id, key), b"a refresh token")
            .unwrap();
        let (id, key) = (id.to_string(), key.to_string());
        db.run(move |conn| {
            conn.execute(
                "INSERT INTO plugin_kv (plugin, connection_id, key, value, expires_at)
                 VALUES ('p', ?1, ?2, ?3, unixepoch() + ?4)",
                params![id, key, sealed, ttl],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    fn replace_key(dir: &std::path::Path) {
        std::fs::write(
            dir.join(crate::secrets::KEY_FILE),
            format!("{}\n", "7f".repeat(32)),
        )
        .unwrap();
    }

    #[tokio::test]
    async fn a_lost_key_makes_a_persons_connection_need_sign_in_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let mut person = new("alice");
        person.sign_in = SignIn::DeviceCode;
        person.secret = None;
        let alice = add(&db, person).await.unwrap();
        set_status(&db, &alice.id, Status::Ok, None).await.unwrap();
        store_plugin_value(&db, &alice.id, "refresh", None).await;
        // Another connection holding only a cache: a cache is not a sign-in.
        let mut cached = new("cached");
        cached.sign_in = SignIn::DeviceCode;
        cached.secret = None;
        let cached = add(&db, cached).await.unwrap();
        set_status(&db, &cached.id, Status::Ok, None).await.unwrap();
        store_plugin_value(&db, &cached.id, "token", Some(3600)).await;
        let read = get(&db, "alice", None).await.unwrap();
        assert_eq!(read.status, Status::Ok);
        assert!(!read.key_lost);
        drop(db);

        replace_key(dir.path());
        let db = Database::open(dir.path()).unwrap();
        for listed in [get(&db, "alice", None).await.unwrap(), {
            let all = list(&db, None).await.unwrap();
            all.into_iter().find(|c| c.name == "alice").unwrap()
        }] {
            assert_eq!(listed.status, Status::NeedsSignIn);
            assert!(listed.key_lost);
            let reason = listed.status_reason.unwrap_or_default();
            assert_eq!(reason, UNREADABLE_SECRET);
            assert!(reason.contains("changed or was lost"), "{reason}");
            assert!(reason.contains("sign in again"), "{reason}");
        }
        let cached = get(&db, "cached", None).await.unwrap();
        assert_eq!(cached.status, Status::Ok, "{:?}", cached.status_reason);

        // An admin's switch stays the stronger reason.
        set_status(&db, &alice.id, Status::Disabled, Some("paused by admin"))
            .await
            .unwrap();
        assert_eq!(
            get(&db, "alice", None).await.unwrap().status,
            Status::Disabled
        );
        set_status(&db, &alice.id, Status::Ok, None).await.unwrap();

        // Signing in again starts by dropping what the lost key sealed.
        assert_eq!(forget_unreadable_storage(&db, &alice.id).await.unwrap(), 1);
        assert_eq!(forget_unreadable_storage(&db, &cached.id).await.unwrap(), 1);
        store_plugin_value(&db, &alice.id, "refresh", None).await;
        assert_eq!(forget_unreadable_storage(&db, &alice.id).await.unwrap(), 0);
        let signed_in = get(&db, "alice", None).await.unwrap();
        assert_eq!(signed_in.status, Status::Ok);
        assert!(!signed_in.key_lost);
    }

    #[tokio::test]
    async fn a_lost_key_makes_a_service_principal_need_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        add(&db, new("Sales")).await.unwrap();
        drop(db);
        replace_key(dir.path());
        let db = Database::open(dir.path()).unwrap();
        let read = get(&db, "Sales", None).await.unwrap();
        assert_eq!(read.status, Status::NeedsSignIn);
        assert!(read.key_lost);
        assert_eq!(read.secret, None);
        assert_eq!(read.status_reason.as_deref(), Some(UNREADABLE_SECRET));
    }

    #[test]
    fn secrets_do_not_print() {
        let record = new("x");
        assert!(!format!("{record:?}").contains("s3cret"));
    }
}
