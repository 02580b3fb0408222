//! The host's SQLite database: one file under the data directory, in WAL mode,
//! with versioned migrations. Every statement runs off the async runtime.

use crate::lease::ProcessLease;
use crate::params;
use crate::secrets::{Keyring, SecretError};
use crate::sql::{Sql, SqlError};
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
    M::up(include_str!("../migrations/0005_claim_leases.sql")),
    M::up(include_str!("../migrations/0006_history_retention.sql")),
    // Rebuilds a table others refer to: checked as a whole before it commits.
    M::up(include_str!("../migrations/0007_generic_connections.sql")).foreign_key_check(),
    M::up(include_str!("../migrations/0008_hosts.sql")),
    M::up(include_str!("../migrations/0009_api_tokens.sql")),
    M::up(include_str!("../migrations/0010_projects.sql")),
    M::up(include_str!("../migrations/0011_periods.sql")),
    M::up(include_str!("../migrations/0012_backfill.sql")),
    M::up(include_str!("../migrations/0013_charts.sql")),
];

/// PostgreSQL's schema versions, oldest first: the same data as SQLite's, in
/// PostgreSQL's types. Never edited once released, like SQLite's.
const POSTGRES_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_schema.sql"),
    include_str!("../migrations/postgres/0002_key_check.sql"),
    include_str!("../migrations/postgres/0003_connection_slots.sql"),
    include_str!("../migrations/postgres/0004_hosts.sql"),
    include_str!("../migrations/postgres/0005_api_tokens.sql"),
    include_str!("../migrations/postgres/0006_projects.sql"),
    include_str!("../migrations/postgres/0007_periods.sql"),
    include_str!("../migrations/postgres/0008_backfill.sql"),
    include_str!("../migrations/postgres/0009_charts.sql"),
];

/// Where the key check value is sealed.
const KEY_CHECK_CONTEXT: &str = "key_check";

/// Makes sure this host's key is the one the database's secrets are sealed
/// with: the first host to start seals a check value, every later one must
/// open it.
async fn check_key(client: &tokio_postgres::Client, keyring: &Keyring) -> Result<(), DbError> {
    let check = keyring.seal_text(KEY_CHECK_CONTEXT, "goals-host")?;
    client
        .execute(
            "INSERT INTO key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&check],
        )
        .await
        .map_err(SqlError::from)?;
    let sealed: String = client
        .query_one("SELECT sealed FROM key_check WHERE id = 1", &[])
        .await
        .map_err(SqlError::from)?
        .get(0);
    match keyring.open_text(KEY_CHECK_CONTEXT, &sealed) {
        Ok(_) => Ok(()),
        Err(_) => Err(DbError::OtherKey {
            source_of_key: keyring.source().to_string(),
        }),
    }
}

/// Any number to key the advisory lock under which a host migrates, so hosts
/// starting together apply each migration once.
const MIGRATION_LOCK: i64 = 0x676f_616c_735f_6462;

/// Brings a PostgreSQL schema up to date, each migration in its own
/// transaction, the version kept in `schema_version`.
async fn migrate_postgres(client: &mut tokio_postgres::Client) -> Result<(), DbError> {
    let tx = client.transaction().await.map_err(SqlError::from)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(SqlError::from)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await
        .map_err(SqlError::from)?;
    let applied: Option<i64> = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(SqlError::from)?
        .map(|row| row.get(0));
    let applied = usize::try_from(applied.unwrap_or(0)).unwrap_or(usize::MAX);
    if applied > POSTGRES_MIGRATIONS.len() {
        return Err(DbError::NewerSchema {
            found: applied,
            known: POSTGRES_MIGRATIONS.len(),
        });
    }
    if applied == POSTGRES_MIGRATIONS.len() {
        // Up to date: every start asks, and nothing needs writing.
        return Ok(());
    }
    for migration in &POSTGRES_MIGRATIONS[applied..] {
        tx.batch_execute(migration).await.map_err(SqlError::from)?;
    }
    let version = i64::try_from(POSTGRES_MIGRATIONS.len()).unwrap_or(i64::MAX);
    tx.execute("DELETE FROM schema_version", &[])
        .await
        .map_err(SqlError::from)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&version],
    )
    .await
    .map_err(SqlError::from)?;
    tx.commit().await.map_err(SqlError::from)?;
    Ok(())
}

/// Brings the schema up to date, then enforces foreign keys. Migrations that
/// rebuild a table run with enforcement off, as SQLite's own procedure for
/// schema changes asks (it cannot change inside a transaction); those that
/// need it check the references themselves before committing.
fn migrate(conn: &mut rusqlite::Connection) -> Result<(), DbError> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Migrations::from_slice(MIGRATIONS).to_latest(conn)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path} is empty (0 bytes), not a database: restore it from a backup, or move it \
         away to start with a new, empty one"
    )]
    EmptyFile { path: String },
    #[error(
        "the data directory {path} does not exist: check --data-dir (or GOALS_HOST_DATA_DIR); \
         commands that add something create it"
    )]
    NoDataDir { path: String },
    #[error(
        "{path} is from an older version and its directory cannot be written, so it \
         cannot be upgraded: run goals-host once where the data directory is writable"
    )]
    ReadOnlyOutdated { path: String },
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
    #[error(
        "the database's schema is version {found}, newer than this goals-host knows ({known}): \
         run the newer goals-host, or a database of this version"
    )]
    NewerSchema { found: usize, known: usize },
    #[error(
        "this database's secrets are sealed with another key than this host's ({source_of_key}); \
         hosts sharing a database must share its key: give this host the others' key in \
         GOALS_HOST_SECRET_KEY or GOALS_HOST_SECRET_KEY_FILE. Nothing was changed"
    )]
    OtherKey { source_of_key: String },
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    // Not a source: the message says it all, and a chain would repeat it.
    #[error("database error: {0}")]
    Sql(SqlError),
    #[error("a database task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl From<SqlError> for DbError {
    fn from(error: SqlError) -> Self {
        DbError::Sql(error)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        DbError::Sql(SqlError::Sqlite(error))
    }
}

/// Where the data lives.
#[derive(Clone)]
enum Backend {
    /// One connection to the file, shared by the process's tasks.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// A pool of connections to a server several hosts may share.
    Postgres(deadpool_postgres::Pool),
}

/// Connections one host keeps to PostgreSQL: enough for the scheduler's
/// concurrent syncs, each of which holds one only for a statement or two.
const POSTGRES_POOL_SIZE: usize = 16;

/// The URL without its password, for messages.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// A shared handle; clones use the same connection.
#[derive(Clone)]
pub struct Database {
    backend: Backend,
    keyring: Arc<Keyring>,
    lease: Arc<ProcessLease>,
    read_only: bool,
}

impl Database {
    /// Opens (creating if needed) `goals.db` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Database, DbError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::CreateDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join("goals.db");
        // SQLite takes an empty file for a new database: a goals.db truncated by
        // a bad copy or a full disk would silently start over, empty.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            return Err(DbError::EmptyFile {
                path: path.display().to_string(),
            });
        }
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

    /// The database at a PostgreSQL URL (`postgres://user@host/db`), migrated;
    /// `data_dir` holds what stays with each host (its key file and lease).
    pub async fn open_postgres(url: &str, data_dir: &Path) -> Result<Database, DbError> {
        let connect_error = |reason: String| DbError::Connect {
            url: redacted_url(url),
            reason,
        };
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| connect_error(e.to_string()))?;
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::CreateDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POSTGRES_POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| connect_error(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| connect_error(e.to_string()))?;
        migrate_postgres(&mut client).await?;
        let keyring = Keyring::load(data_dir)?;
        check_key(&client, &keyring).await?;
        drop(client);
        let lease = ProcessLease::acquire_shared(data_dir).map_err(|source| DbError::Lease {
            path: data_dir.display().to_string(),
            source,
        })?;
        Ok(Database {
            backend: Backend::Postgres(pool),
            keyring: Arc::new(keyring),
            lease: Arc::new(lease),
            read_only: false,
        })
    }

    /// Whether the data is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// [`Database::open`] for commands that only read: a data directory that
    /// does not exist is an error (a mistyped --data-dir must not show an empty
    /// list), never created.
    pub fn open_existing(data_dir: &Path) -> Result<Database, DbError> {
        if !data_dir.is_dir() {
            return Err(DbError::NoDataDir {
                path: data_dir.display().to_string(),
            });
        }
        // A directory this process cannot write to (a read-only mount, a backup
        // being inspected) is still readable.
        if tempfile::tempfile_in(data_dir).is_err() {
            return Self::open_read_only(data_dir);
        }
        Self::open(data_dir)
    }

    /// The database of a data directory that cannot be written: no migration, no
    /// lease file, no new key file, and no write ever.
    fn open_read_only(data_dir: &Path) -> Result<Database, DbError> {
        let path = data_dir.join("goals.db");
        let open_error = |source| DbError::Open {
            path: path.display().to_string(),
            source,
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(DbError::EmptyFile {
                    path: path.display().to_string(),
                });
            }
            Ok(_) => {}
            Err(_) => {
                return Err(DbError::NoDataDir {
                    path: path.display().to_string(),
                });
            }
        }
        // A database closed cleanly has no -wal file and is read as immutable (no
        // -shm to create); after a crash its -wal holds committed frames that must
        // be read, which SQLite does read-only while the -shm beside it exists.
        let mode = if data_dir.join("goals.db-wal").exists() {
            "mode=ro"
        } else {
            "immutable=1"
        };
        let mut uri = url::Url::from_file_path(&path).map_err(|()| DbError::NoDataDir {
            path: path.display().to_string(),
        })?;
        uri.set_query(Some(mode));
        let conn = rusqlite::Connection::open_with_flags(
            uri.as_str(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_URI
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_error)?;
        if version != MIGRATIONS.len() {
            return Err(DbError::ReadOnlyOutdated {
                path: path.display().to_string(),
            });
        }
        Ok(Database {
            backend: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            keyring: Arc::new(Keyring::load_existing(data_dir)?),
            lease: Arc::new(ProcessLease::private()),
            read_only: true,
        })
    }

    /// Whether this database is open only for reading (its directory cannot be
    /// written): commands then show what is recorded and record nothing.
    pub fn is_read_only(&self) -> bool {
        self.read_only
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
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every transaction here writes. Taking the write lock at BEGIN makes a
        // second process (a `kr sync` beside `goals-host run`) wait for it under
        // the busy timeout, where a deferred transaction upgrading its read lock
        // would fail with SQLITE_BUSY at once.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrate(&mut conn)?;
        seal_plaintext(&mut conn, &keyring)?;
        Ok(Database {
            backend: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            keyring: Arc::new(keyring),
            lease: Arc::new(lease),
            read_only: false,
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
        F: FnOnce(&mut Sql<'_>) -> Result<T, DbError> + Send + 'static,
    {
        let task = match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = Arc::clone(conn);
                tokio::task::spawn_blocking(move || {
                    // A panic while holding the lock leaves SQLite itself consistent
                    // (transactions roll back), so a poisoned lock is still usable.
                    let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    work(&mut Sql::sqlite(&mut guard))
                })
            }
            Backend::Postgres(pool) => {
                let mut client = pool
                    .get()
                    .await
                    .map_err(|e| DbError::Task(format!("no PostgreSQL connection: {e}")))?;
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || work(&mut Sql::postgres(&mut client, runtime)))
            }
        };
        task.await.map_err(|e| DbError::Task(e.to_string()))?
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

/// Moves what a plugin stored under the scope `from` to the scope `to`, sealing
/// each value again for its new place, in one transaction; values already under
/// `to` win. Returns how many moved. A read-only database moves nothing.
///
/// Plugins built against `goals:integration@0.1.0` were scoped by their display
/// name; from 0.2 on, by their id.
pub async fn move_plugin_scope(db: &Database, from: &str, to: &str) -> Result<usize, DbError> {
    if db.read_only || from == to {
        return Ok(0);
    }
    let (from, to, keyring) = (from.to_string(), to.to_string(), Arc::clone(&db.keyring));
    db.run(move |conn| {
        // Every load of a plugin asks; the answer is almost always no, and a
        // read costs no write lock (transactions here take it at BEGIN).
        let pending: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM plugin_kv WHERE plugin = ?1)",
            params![from],
            |r| r.get(0),
        )?;
        if !pending {
            return Ok(0);
        }
        let tx = conn.transaction()?;
        let rows = tx.query_map(
            "SELECT connection_id, key, value, expires_at FROM plugin_kv WHERE plugin = ?1",
            params![from],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<Vec<u8>>(2)?,
                    r.get::<Option<i64>>(3)?,
                ))
            },
        )?;
        let mut moved = 0;
        for (connection, key, sealed, expires_at) in rows {
            // A value sealed under a key this host lost stays where it is: it
            // could not be read in either place.
            let Ok(value) = keyring.open(&plugin_value_context(&from, &connection, &key), &sealed)
            else {
                continue;
            };
            let resealed = keyring.seal(&plugin_value_context(&to, &connection, &key), &value)?;
            moved += tx.execute(
                "INSERT INTO plugin_kv (plugin, connection_id, key, value, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (plugin, connection_id, key) DO NOTHING",
                params![to, connection, key, resealed, expires_at],
            )?;
            tx.execute(
                "DELETE FROM plugin_kv WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3",
                params![from, connection, key],
            )?;
        }
        tx.commit()?;
        Ok(moved)
    })
    .await
}

/// Seals secrets that an older version stored in plaintext, and makes sure the
/// plaintext does not outlive the sealing anywhere in the files: the rows are
/// rewritten with `secure_delete` on (the space they leave is zeroed), then the
/// database is rebuilt (`VACUUM`) and the write-ahead log written back and
/// truncated.
fn seal_plaintext(conn: &mut rusqlite::Connection, keyring: &Keyring) -> Result<(), DbError> {
    let secure_delete: i64 =
        conn.query_row("PRAGMA secure_delete", rusqlite::params![], |r| r.get(0))?;
    conn.pragma_update(None, "secure_delete", true)?;
    let sealed = seal_rows(conn, keyring);
    conn.pragma_update(None, "secure_delete", secure_delete)?;
    if sealed? == 0 {
        return Ok(());
    }
    // Rebuilt, free pages included, where the older version's deletes left
    // plaintext behind. Sealing is done either way, so a failure is not fatal.
    if let Err(error) = conn.execute_batch("VACUUM") {
        tracing::warn!(
            "the secrets an older version stored in plaintext are sealed now, but the \
             database could not be rebuilt to drop their old copies ({error}); run `VACUUM` \
             on goals.db with the sqlite3 shell while goals-host is stopped"
        );
    }
    let (busy, _, _): (i64, i64, i64) = conn.query_row(
        "PRAGMA wal_checkpoint(TRUNCATE)",
        rusqlite::params![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if busy != 0 {
        // Another process is reading: the old pages stay in the log until a
        // later checkpoint overwrites them.
        tracing::warn!(
            "the secrets an older version stored in plaintext are sealed now, but the \
             database's write-ahead log could not be written back while another process \
             reads it; the log is written back and removed when the last goals-host process \
             using the database stops"
        );
    }
    Ok(())
}

/// Seals the plaintext secrets in one transaction; returns how many there were.
fn seal_rows(conn: &mut rusqlite::Connection, keyring: &Keyring) -> Result<usize, DbError> {
    let tx = conn.transaction()?;
    let secrets: Vec<(String, String)> = {
        let mut statement = tx.prepare(
            "SELECT id, client_secret FROM connections
             WHERE client_secret <> '' AND client_secret NOT LIKE 'gh1.%'",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut count = secrets.len();
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
    count += values.len();
    for (plugin, connection, key, value) in values {
        let sealed = keyring.seal(&plugin_value_context(&plugin, &connection, &key), &value)?;
        tx.execute(
            "UPDATE plugin_kv SET value = ?4 WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3",
            rusqlite::params![plugin, connection, key, sealed],
        )?;
    }
    tx.commit()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 7 turns a Dynamics-shaped connection into a generic one, its
    /// sealed secret and the links that use it intact.
    #[test]
    fn connections_become_integration_neutral_and_keep_their_links() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        Migrations::from_slice(&MIGRATIONS[..6])
            .to_latest(&mut conn)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO connections (id, organization_id, name, environment_url, authority_url,
                 tenant, client_id, client_secret, sign_in, allow_loopback, added_by, status,
                 created_at)
             VALUES ('c1', 1, 'Contoso', 'https://contoso.crm.dynamics.com',
                 'https://login.microsoftonline.com', 'contoso.onmicrosoft.com', 'app-1',
                 'gh1.sealed', 'client-secret', 0, 'admin', 'ok', 0);
             INSERT INTO key_results (id, organization_id, title, owner, unit, start_value,
                 target_value, direction, created_at)
             VALUES (7, 1, 'Deals', 'ana', 'number', 0, 10, 'increase', 0);
             INSERT INTO metric_links (key_result_id, connection_id, app_id, app_name, entity,
                 entity_name, view_id, view_kind, view_name, column_name, column_display,
                 aggregation, currency, interval_seconds, next_run_at, created_at)
             VALUES (7, 'c1', 'a', 'Sales Hub', 'opportunity', 'Opportunity', 'v', 'system',
                 'Open', 'name', 'Name', 'count', 'base', 3600, 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (integration, settings, origins, secret): (String, String, String, String) = conn
            .query_row(
                "SELECT integration, settings, origins, client_secret FROM connections",
                rusqlite::params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(integration, "microsoft.dynamics365");
        let settings: serde_json::Value = serde_json::from_str(&settings).unwrap();
        assert_eq!(
            settings,
            serde_json::json!([
                ["environment_url", "https://contoso.crm.dynamics.com"],
                ["tenant", "contoso.onmicrosoft.com"],
                ["client_id", "app-1"],
                ["authority_url", "https://login.microsoftonline.com"],
            ])
        );
        let origins: Vec<String> = serde_json::from_str(&origins).unwrap();
        assert_eq!(
            origins,
            [
                "https://contoso.crm.dynamics.com",
                "https://login.microsoftonline.com"
            ]
        );
        assert_eq!(secret, "gh1.sealed");
        let linked: String = conn
            .query_row(
                "SELECT connection_id FROM metric_links",
                rusqlite::params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(linked, "c1");
        let problems: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_foreign_key_check",
                rusqlite::params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(problems, 0);
        // The links still refer to the rebuilt table.
        assert!(
            conn.execute(
                "UPDATE metric_links SET connection_id = 'gone'",
                rusqlite::params![]
            )
            .is_err()
        );
    }

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }

    const CLIENT_SECRET: &str = "legacy-client-secret-Qx7";
    const DELETED_SECRET: &str = "legacy-deleted-secret-Jw2";
    const DELETED_TOKEN: &str = "legacy-deleted-token-Dt4";
    /// What must not be found after sealing: the stored secrets, and those the
    /// old version deleted.
    const PLAINTEXTS: [&str; 4] = [
        CLIENT_SECRET,
        "legacy-refresh-token-",
        DELETED_SECRET,
        DELETED_TOKEN,
    ];

    /// A long token, so that it spills into overflow pages as real ones do.
    fn refresh_token() -> Vec<u8> {
        format!("legacy-refresh-token-{}", "Rt9".repeat(2000)).into_bytes()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// Whether the database file or its write-ahead log holds `needle`.
    fn on_disk(dir: &Path, needle: &[u8]) -> bool {
        ["goals.db", "goals.db-wal"]
            .iter()
            .any(|file| std::fs::read(dir.join(file)).is_ok_and(|bytes| contains(&bytes, needle)))
    }

    /// A database as the version before sealing left it: schema 2, secrets in
    /// the clear, with rows around them so the pages have neighbours.
    fn old_database(dir: &Path) -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open(dir.join("goals.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        Migrations::from_slice(&MIGRATIONS[..2])
            .to_latest(&mut conn)
            .unwrap();
        // Migration 2 made the default organization, 1.
        let organization = 1;
        for (id, secret) in [("c1", CLIENT_SECRET), ("c2", ""), ("c3", DELETED_SECRET)] {
            conn.execute(
                "INSERT INTO connections (id, organization_id, name, environment_url,
                     authority_url, tenant, client_id, client_secret, allow_loopback,
                     added_by, status, created_at)
                 VALUES (?1, ?2, ?1, 'https://x', 'https://y', 't', 'c', ?3, 0, 'a', 'ok', 0)",
                rusqlite::params![id, organization, secret],
            )
            .unwrap();
        }
        // Removed by the old version, whose deletes left the bytes behind: in
        // the page, and in free pages (the overflow of a long value).
        conn.execute(
            "DELETE FROM connections WHERE id = 'c3'",
            rusqlite::params![],
        )
        .unwrap();
        for key in ["a", "refresh", "z"] {
            let value = if key == "refresh" {
                refresh_token()
            } else {
                vec![b'.'; 300]
            };
            conn.execute(
                "INSERT INTO plugin_kv (plugin, connection_id, key, value) VALUES ('p', 'c2', ?1, ?2)",
                rusqlite::params![key, value],
            )
            .unwrap();
        }
        let deleted = DELETED_TOKEN.repeat(2000);
        conn.execute(
            "INSERT INTO plugin_kv (plugin, connection_id, key, value) VALUES ('p', 'c3', 'r', ?1)",
            rusqlite::params![deleted.as_bytes()],
        )
        .unwrap();
        conn.execute(
            "DELETE FROM plugin_kv WHERE connection_id = 'c3'",
            rusqlite::params![],
        )
        .unwrap();
        conn
    }

    async fn assert_sealed(dir: &Path) {
        let db = Database::open(dir).unwrap();
        for plaintext in PLAINTEXTS {
            assert!(!on_disk(dir, plaintext.as_bytes()), "{plaintext} left");
        }
        let keyring = Arc::clone(db.keyring());
        let (secret, value) = db
            .run(move |c| {
                let secret: String = c.query_row(
                    "SELECT client_secret FROM connections WHERE id = 'c1'",
                    crate::params![],
                    |r| r.get(0),
                )?;
                let value: Vec<u8> = c.query_row(
                    "SELECT value FROM plugin_kv WHERE key = 'refresh'",
                    crate::params![],
                    |r| r.get(0),
                )?;
                Ok((
                    keyring.open_text(&connection_secret_context("c1"), &secret)?,
                    keyring.open(&plugin_value_context("p", "c2", "refresh"), &value)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(secret, CLIENT_SECRET, "sealed, not lost");
        assert_eq!(value, refresh_token());
        drop(db);
        for plaintext in PLAINTEXTS {
            assert!(!on_disk(dir, plaintext.as_bytes()), "{plaintext} left");
        }
    }

    #[tokio::test]
    async fn sealing_leaves_no_plaintext_in_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        drop(old_database(dir.path()));
        for plaintext in PLAINTEXTS {
            assert!(
                on_disk(dir.path(), plaintext.as_bytes()),
                "set-up: {plaintext}"
            );
        }
        assert_sealed(dir.path()).await;
    }

    #[tokio::test]
    async fn sealing_leaves_no_plaintext_in_the_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let old = old_database(dir.path());
        old.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        old.execute(
            "UPDATE connections SET added_by = 'b' WHERE id = 'c1'",
            rusqlite::params![],
        )
        .unwrap();
        // The old version stopped without writing its log back.
        let wal = std::fs::read(dir.path().join("goals.db-wal")).unwrap();
        assert!(contains(&wal, CLIENT_SECRET.as_bytes()), "the set-up");
        std::mem::forget(old);
        assert_sealed(dir.path()).await;
    }

    #[tokio::test]
    async fn opens_a_file_in_wal_mode_and_reopens_it() {
        let dir = std::env::temp_dir().join(format!("goals-db-test-{}", std::process::id()));
        let db = Database::open(&dir).unwrap();
        let mode: String = db
            .run(|c| Ok(c.query_row("PRAGMA journal_mode", crate::params![], |r| r.get(0))?))
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
