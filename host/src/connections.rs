//! Named connections to environments of the integrated service.

use crate::db::{Database, DbError};
use rusqlite::{OptionalExtension, params};
use std::fmt;
use url::Url;

/// The identity authority used when a connection does not name one.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

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

/// What an admin supplies to add a connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: String,
    pub environment_url: String,
    pub authority_url: Option<String>,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Allows plain HTTP and loopback addresses: for simulators and tests only.
    pub allow_loopback: bool,
}

#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub id: String,
    pub name: String,
    pub environment_url: String,
    pub authority_url: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub allow_loopback: bool,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("a connection named '{0}' already exists; choose another name or remove it first")]
    DuplicateName(String),
    #[error("no connection named '{name}'{}", known_names(.known))]
    NotFound { name: String, known: Vec<String> },
    #[error("invalid {field} '{value}': {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "; add one with `goals-host connection add`".to_string()
    } else {
        format!("; known connections: {}", known.join(", "))
    }
}

impl NewConnection {
    /// Checks and normalises what was supplied; the environment and authority
    /// become bare origins (`scheme://host[:port]`).
    fn validated(self) -> Result<NewConnection, ConnectionError> {
        let name = self.name.trim().to_string();
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(ConnectionError::Invalid {
                field: "name",
                value: self.name,
                reason: format!("use 1 to {MAX_NAME_LEN} printable characters"),
            });
        }
        let environment_url = origin(
            "environment URL",
            &self.environment_url,
            self.allow_loopback,
        )?;
        let authority_url = origin(
            "authority URL",
            self.authority_url.as_deref().unwrap_or(DEFAULT_AUTHORITY),
            self.allow_loopback,
        )?;
        let tenant = self.tenant.trim().to_string();
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(ConnectionError::Invalid {
                field: "tenant",
                value: self.tenant,
                reason: "use the directory (tenant) id or a verified domain of the tenant"
                    .to_string(),
            });
        }
        let client_id = self.client_id.trim().to_string();
        if client_id.is_empty() || client_id.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(ConnectionError::Invalid {
                field: "client id",
                value: self.client_id,
                reason: "use the application (client) id of the app registration".to_string(),
            });
        }
        if self.client_secret.expose().is_empty() {
            return Err(ConnectionError::Invalid {
                field: "client secret",
                value: String::new(),
                reason: "the secret is empty".to_string(),
            });
        }
        Ok(NewConnection {
            name,
            environment_url,
            authority_url: Some(authority_url),
            tenant,
            client_id,
            ..self
        })
    }
}

fn origin(
    field: &'static str,
    value: &str,
    allow_loopback: bool,
) -> Result<String, ConnectionError> {
    let invalid = |reason: &str| ConnectionError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(value.trim())
        .map_err(|e| invalid(&format!("{e}; use e.g. https://contoso.crm.dynamics.com")))?;
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
            "give only the scheme and host, e.g. https://contoso.crm.dynamics.com",
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

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectionRecord> {
    Ok(ConnectionRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        environment_url: row.get("environment_url")?,
        authority_url: row.get("authority_url")?,
        tenant: row.get("tenant")?,
        client_id: row.get("client_id")?,
        client_secret: Secret::new(row.get::<_, String>("client_secret")?),
        allow_loopback: row.get("allow_loopback")?,
        created_at: row.get("created_at")?,
    })
}

pub async fn add(db: &Database, new: NewConnection) -> Result<ConnectionRecord, ConnectionError> {
    let new = new.validated()?;
    let name = new.name.clone();
    let inserted = db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let exists: Option<String> = tx
                .query_row(
                    "SELECT id FROM connections WHERE name = ?1",
                    [&new.name],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Ok(None);
            }
            let record = tx.query_row(
                "INSERT INTO connections (id, name, environment_url, authority_url, tenant,
                     client_id, client_secret, allow_loopback, created_at)
                 VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, ?4, ?5, ?6, ?7, unixepoch())
                 RETURNING *",
                params![
                    new.name,
                    new.environment_url,
                    new.authority_url.unwrap_or_default(),
                    new.tenant,
                    new.client_id,
                    new.client_secret.expose(),
                    new.allow_loopback
                ],
                from_row,
            )?;
            tx.commit()?;
            Ok(Some(record))
        })
        .await?;
    inserted.ok_or(ConnectionError::DuplicateName(name))
}

pub async fn list(db: &Database) -> Result<Vec<ConnectionRecord>, ConnectionError> {
    Ok(db
        .run(|conn| {
            let mut statement = conn.prepare("SELECT * FROM connections ORDER BY name")?;
            let rows = statement.query_map([], from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?)
}

pub async fn get(db: &Database, name: &str) -> Result<ConnectionRecord, ConnectionError> {
    let wanted = name.to_string();
    let found = db
        .run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT * FROM connections WHERE name = ?1",
                    [&wanted],
                    from_row,
                )
                .optional()?)
        })
        .await?;
    match found {
        Some(record) => Ok(record),
        None => Err(not_found(db, name).await),
    }
}

/// Removes the connection and everything the plugin stored for it.
pub async fn remove(db: &Database, name: &str) -> Result<ConnectionRecord, ConnectionError> {
    let record = get(db, name).await?;
    let id = record.id.clone();
    db.run(move |conn| {
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM plugin_kv WHERE connection_id = ?1", [&id])?;
        tx.execute("DELETE FROM connections WHERE id = ?1", [&id])?;
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(record)
}

async fn not_found(db: &Database, name: &str) -> ConnectionError {
    let known = list(db)
        .await
        .map(|all| all.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    ConnectionError::NotFound {
        name: name.to_string(),
        known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewConnection {
        NewConnection {
            name: name.to_string(),
            environment_url: "https://contoso.crm.dynamics.com/".to_string(),
            authority_url: None,
            tenant: "contoso.onmicrosoft.com".to_string(),
            client_id: "6a1b2c3d".to_string(),
            client_secret: Secret::new("s3cret"),
            allow_loopback: false,
        }
    }

    #[tokio::test]
    async fn adds_lists_and_removes() {
        let db = Database::open_in_memory().unwrap();
        let added = add(&db, new(" Sales ")).await.unwrap();
        assert_eq!(added.name, "Sales");
        assert_eq!(added.environment_url, "https://contoso.crm.dynamics.com");
        assert_eq!(added.authority_url, DEFAULT_AUTHORITY);
        assert_eq!(added.id.len(), 32);
        assert_eq!(list(&db).await.unwrap().len(), 1);
        let fetched = get(&db, "Sales").await.unwrap();
        assert_eq!(fetched.client_secret, Secret::new("s3cret"));
        remove(&db, "Sales").await.unwrap();
        assert!(matches!(
            get(&db, "Sales").await,
            Err(ConnectionError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn duplicate_names_are_refused() {
        let db = Database::open_in_memory().unwrap();
        add(&db, new("Sales")).await.unwrap();
        let error = add(&db, new("Sales")).await.unwrap_err();
        assert!(matches!(error, ConnectionError::DuplicateName(_)));
        assert!(error.to_string().contains("already exists"));
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

    #[test]
    fn secrets_do_not_print() {
        let record = new("x");
        assert!(!format!("{record:?}").contains("s3cret"));
    }
}
