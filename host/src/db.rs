//! The host's SQLite database: one file under the data directory, in WAL mode,
//! with versioned migrations. Every statement runs off the async runtime.

use crate::lease::ProcessLease;
use crate::secrets::{Keyring, SecretError};
use rusqlite_migration::{M, Migrations};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Schema versions, oldest first. Released migrations are never edited: a change is
/// a new entry.
const MIGRATIONS: &[M<'_>] = &[
    M::up(include_str!("../migrations/0001_connections.sql")),
    M::up(include_str!("../migrations/0002_goals.sql")),
    M::up(include_str!("../migrations/0003_sign_in.sql")),
    M::up(include_str!("../migrations/0004_sync_owners.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot take this process's lease in {path}: {source}")]
    Lease {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("a database task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A shared handle; clones use the same connection.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<rusqlite::Connection>>,
    keyring: Arc<Keyring>,
    lease: Arc<ProcessLease>,
}

impl Database {
    /// Opens (creating if needed) `goals.db` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Database, DbError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::CreateDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join("goals.db");
        let conn = rusqlite::Connection::open(&path).map_err(|source| DbError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let lease = ProcessLease::acquire(data_dir).map_err(|source| DbError::Lease {
            path: data_dir.display().to_string(),
            source,
        })?;
        Self::prepare(conn, Keyring::load(data_dir)?, lease)
    }

    pub fn open_in_memory() -> Result<Database, DbError> {
        Self::prepare(
            rusqlite::Connection::open_in_memory()?,
            Keyring::ephemeral()?,
            ProcessLease::private(),
        )
    }

    fn prepare(
        mut conn: rusqlite::Connection,
        keyring: Keyring,
        lease: ProcessLease,
    ) -> Result<Database, DbError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every transaction here writes. Taking the write lock at BEGIN makes a
        // second process (a `kr sync` beside `goals-host run`) wait for it under
        // the busy timeout, where a deferred transaction upgrading its read lock
        // would fail with SQLITE_BUSY at once.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        seal_plaintext(&mut conn, &keyring)?;
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
            keyring: Arc::new(keyring),
            lease: Arc::new(lease),
        })
    }

    /// This process's lease, which marks the syncs it claims as its own.
    pub fn lease(&self) -> &Arc<ProcessLease> {
        &self.lease
    }

    /// The key secrets are sealed with.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Runs `work` on the blocking pool with the connection.
    pub async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, DbError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves SQLite itself consistent
            // (transactions roll back), so a poisoned lock is still usable.
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

/// Where a connection's secret is stored, for sealing it there.
pub fn connection_secret_context(connection_id: &str) -> String {
    format!("connections.client_secret:{connection_id}")
}

/// Where a plugin value is stored, for sealing it there.
pub fn plugin_value_context(plugin: &str, connection_id: &str, key: &str) -> String {
    format!("plugin_kv:{plugin}\u{0}{connection_id}\u{0}{key}")
}

/// Seals secrets that an older version stored in plaintext.
fn seal_plaintext(conn: &mut rusqlite::Connection, keyring: &Keyring) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    let secrets: Vec<(String, String)> = {
        let mut statement = tx.prepare(
            "SELECT id, client_secret FROM connections
             WHERE client_secret <> '' AND client_secret NOT LIKE 'gh1.%'",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, plaintext) in secrets {
        let sealed = keyring.seal_text(&connection_secret_context(&id), &plaintext)?;
        tx.execute(
            "UPDATE connections SET client_secret = ?2 WHERE id = ?1",
            rusqlite::params![id, sealed],
        )?;
    }
    let values: Vec<(String, String, String, Vec<u8>)> = {
        let mut statement =
            tx.prepare("SELECT plugin, connection_id, key, value FROM plugin_kv")?;
        let rows = statement.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Vec<u8>>(3)?))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|(_, _, _, value)| !Keyring::is_sealed(value))
            .collect()
    };
    for (plugin, connection, key, value) in values {
        let sealed = keyring.seal(&plugin_value_context(&plugin, &connection, &key), &value)?;
        tx.execute(
            "UPDATE plugin_kv SET value = ?4 WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3",
            rusqlite::params![plugin, connection, key, sealed],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }

    #[tokio::test]
    async fn opens_a_file_in_wal_mode_and_reopens_it() {
        let dir = std::env::temp_dir().join(format!("goals-db-test-{}", std::process::id()));
        let db = Database::open(&dir).unwrap();
        let mode: String = db
            .run(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        drop(db);
        assert!(
            Database::open(&dir).is_ok(),
            "reopening an up-to-date schema"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
