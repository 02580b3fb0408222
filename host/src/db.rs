//! The host's SQLite database: one file under the data directory, in WAL mode,
//! with versioned migrations. Every statement runs off the async runtime.

use rusqlite_migration::{M, Migrations};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Schema versions, oldest first. Released migrations are never edited: a change is
/// a new entry.
const MIGRATIONS: &[M<'_>] = &[
    M::up(include_str!("../migrations/0001_connections.sql")),
    M::up(include_str!("../migrations/0002_goals.sql")),
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
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("a database task failed: {0}")]
    Task(String),
}

/// A shared handle; clones use the same connection.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<rusqlite::Connection>>,
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
        Self::prepare(conn)
    }

    pub fn open_in_memory() -> Result<Database, DbError> {
        Self::prepare(rusqlite::Connection::open_in_memory()?)
    }

    fn prepare(mut conn: rusqlite::Connection) -> Result<Database, DbError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
        })
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
