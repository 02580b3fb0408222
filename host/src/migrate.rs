//! Moving an SQLite installation to PostgreSQL: every table of the data
//! directory's `goals.db` copied, row by row and column by column, into an
//! empty PostgreSQL database in one transaction. Columns go by name, so a
//! column a later migration adds is carried without a change here.

use crate::db::{Database, DbError};
use crate::params;
use crate::sql::{Sql, SqlError, ToValue, Value};
use std::path::Path;

/// Tables that are not data to move: SQLite's own, and those only hosts
/// sharing a PostgreSQL database keep (the schema's version, the key check,
/// the connections' slots and the hosts' heartbeats), which each side makes
/// for itself.
const SKIPPED: &[&str] = &["schema_version", "key_check", "connection_slots", "hosts"];

/// The default tenant and organization every new database holds (id 1): a
/// PostgreSQL database holding only these is empty, and the copy replaces them.
const DEFAULTS: &[&str] = &["tenants", "organizations"];

/// Rows read from SQLite at a time, so a long history is never all in memory.
const PAGE_ROWS: usize = 500;

/// Placeholders in one INSERT, well under PostgreSQL's 65,535.
const MAX_PARAMS: usize = 30_000;

/// The alias of the rowid the pages are read by, beside the table's columns.
const ROWID: &str = "goals_migrate_rowid";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the data directory {path} holds no goals.db to move: check --data-dir (or GOALS_HOST_DATA_DIR)"
    )]
    NoDatabase { path: String },
    #[error("migrate-to copies an SQLite database to a PostgreSQL one")]
    Backends,
    #[error(
        "other goals-host processes use this data directory (pid {pids}): stop `goals-host run` \
         (and any other goals-host command using it) first, so that nothing changes while it is \
         copied"
    )]
    InUse { pids: String },
    #[error(
        "the PostgreSQL database already holds data ({holds}); nothing was copied. Move to an \
         empty database (a new one, e.g. `createdb goals`), or drop this one's data first if it \
         is not needed"
    )]
    NotEmpty { holds: String },
    #[error(
        "goals.db has the table {table}, which the PostgreSQL database lacks: both must be of \
         this goals-host version; nothing was copied"
    )]
    NoTable { table: String },
    // Not a source: the message says it all, as SqlError's own do.
    #[error("copying the table {table}: {error}; nothing was copied")]
    Copy { table: String, error: SqlError },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<SqlError> for MigrateError {
    fn from(error: SqlError) -> Self {
        MigrateError::Db(DbError::from(error))
    }
}

/// What was copied: each table with its rows, parents first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub tables: Vec<(String, u64)>,
}

impl Moved {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, rows)| rows).sum()
    }
}

/// The SQLite database of `data_dir`, which must exist: a mistyped
/// --data-dir must not move a new, empty database.
pub fn open_source(data_dir: &Path) -> Result<Database, MigrateError> {
    if data_dir.is_dir() && !data_dir.join("goals.db").is_file() {
        return Err(MigrateError::NoDatabase {
            path: data_dir.display().to_string(),
        });
    }
    Ok(Database::open_existing(data_dir)?)
}

/// Copies every table of `source` (SQLite) into `target` (PostgreSQL, empty
/// but for the default tenant and organization) in one transaction, ids kept,
/// then moves the identities on past the copied ids. Sealed secrets are
/// copied as they are: `target` must be opened with the same key (the same
/// data directory) to open them.
pub async fn sqlite_to_postgres(
    source: &Database,
    target: &Database,
) -> Result<Moved, MigrateError> {
    if source.is_postgres() || !target.is_postgres() {
        return Err(MigrateError::Backends);
    }
    // Both leases are this process's; any other is a host or command that
    // could write to goals.db while it is read.
    let others: Vec<String> = source
        .lease()
        .others_alive()
        .into_iter()
        .filter(|id| id != target.lease().id())
        // A lease id is the process id, a dash and a random part.
        .map(|id| id.split('-').next().unwrap_or_default().to_string())
        .collect();
    if !others.is_empty() {
        return Err(MigrateError::InUse {
            pids: others.join(", "),
        });
    }
    let tables = source.run(|sql| Ok(tables_in_order(sql)?)).await?;
    let (source, runtime) = (source.clone(), tokio::runtime::Handle::current());
    target
        .run(move |sql| Ok(copy(sql, &source, &runtime, &tables)))
        .await?
}

/// A table to copy, and how it is read.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    /// The tables its foreign keys refer to.
    parents: Vec<String>,
    /// Whether it has a rowid to read it page by page; a WITHOUT ROWID table
    /// (the plugins' storage, bounded by its limits) is read at once.
    rowid: bool,
}

/// The source's tables to copy, each after the tables it refers to.
fn tables_in_order(sql: &Sql<'_>) -> Result<Vec<Table>, SqlError> {
    let names: Vec<String> = sql.query_map(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         ORDER BY name",
        params![],
        |r| r.get(0),
    )?;
    let mut tables = Vec::new();
    for name in names.into_iter().filter(|n| !SKIPPED.contains(&n.as_str())) {
        let parents = sql.query_map(
            "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)",
            params![name],
            |r| r.get(0),
        )?;
        let without_rowid: bool = sql.query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        tables.push(Table {
            name,
            parents,
            rowid: !without_rowid,
        });
    }
    Ok(parents_first(tables))
}

/// `tables` ordered so that each comes after those it refers to.
fn parents_first(mut tables: Vec<Table>) -> Vec<Table> {
    let mut ordered: Vec<Table> = Vec::new();
    while !tables.is_empty() {
        let ready = tables.iter().position(|table| {
            table
                .parents
                .iter()
                .all(|parent| *parent == table.name || !tables.iter().any(|t| t.name == *parent))
        });
        // A cycle (this schema has none) goes in name order; PostgreSQL then
        // refuses the first row whose parent is missing, and nothing is copied.
        ordered.push(tables.remove(ready.unwrap_or(0)));
    }
    ordered
}

/// Rows of one table read from SQLite.
struct Page {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    /// The rowid of the last row, to read the next page after it.
    last_rowid: Option<i64>,
}

fn read_page(sql: &Sql<'_>, table: &Table, after: i64) -> Result<Page, SqlError> {
    let name = quoted(&table.name);
    let rows = if table.rowid {
        let limit = i64::try_from(PAGE_ROWS).unwrap_or(i64::MAX);
        sql.query_map(
            &format!(
                "SELECT rowid AS {ROWID}, * FROM {name} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
            ),
            params![after, limit],
            |r| Ok((r.names().to_vec(), r.values().to_vec())),
        )?
    } else {
        sql.query_map(&format!("SELECT * FROM {name}"), params![], |r| {
            Ok((r.names().to_vec(), r.values().to_vec()))
        })?
    };
    let skip = usize::from(table.rowid);
    let columns = rows
        .first()
        .map(|(names, _)| names[skip..].to_vec())
        .unwrap_or_default();
    let last_rowid = match rows.last() {
        Some((_, values)) if table.rowid => match values.first() {
            Some(Value::Integer(rowid)) => Some(*rowid),
            _ => None,
        },
        _ => None,
    };
    Ok(Page {
        columns,
        rows: rows
            .into_iter()
            .map(|(_, values)| values[skip..].to_vec())
            .collect(),
        last_rowid,
    })
}

/// The whole copy, in one transaction on the target (`sql`), reading the
/// source page by page on `runtime`.
fn copy(
    sql: &mut Sql<'_>,
    source: &Database,
    runtime: &tokio::runtime::Handle,
    tables: &[Table],
) -> Result<Moved, MigrateError> {
    let tx = sql.transaction()?;
    let present: Vec<String> = tx.query_map(
        "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = current_schema()",
        params![],
        |r| r.get(0),
    )?;
    if let Some(missing) = tables.iter().find(|t| !present.contains(&t.name)) {
        return Err(MigrateError::NoTable {
            table: missing.name.clone(),
        });
    }
    let mut holds = Vec::new();
    for table in tables {
        let defaults = if DEFAULTS.contains(&table.name.as_str()) {
            " WHERE NOT (id = 1 AND name = 'default')"
        } else {
            ""
        };
        let count: i64 = tx.query_row(
            &format!("SELECT count(*) FROM {}{defaults}", quoted(&table.name)),
            params![],
            |r| r.get(0),
        )?;
        if count > 0 {
            holds.push(format!("{count} row(s) in {}", table.name));
        }
    }
    if !holds.is_empty() {
        return Err(MigrateError::NotEmpty {
            holds: holds.join(", "),
        });
    }
    // Only the defaults are left: children first, they make way for the
    // source's own.
    for table in tables.iter().rev() {
        tx.execute(&format!("DELETE FROM {}", quoted(&table.name)), params![])?;
    }
    let mut moved = Vec::new();
    for table in tables {
        let copy_error = |error: SqlError| MigrateError::Copy {
            table: table.name.clone(),
            error,
        };
        let mut copied = 0;
        let mut after = i64::MIN;
        loop {
            let (reading, from) = (table.clone(), after);
            let page = runtime.block_on(source.run(move |s| Ok(read_page(s, &reading, from)?)))?;
            insert(&tx, &table.name, &page).map_err(copy_error)?;
            copied += page.rows.len() as u64;
            match page.last_rowid {
                Some(last) if page.rows.len() == PAGE_ROWS => after = last,
                _ => break,
            }
        }
        moved.push((table.name.clone(), copied));
    }
    continue_identities(&tx, tables)?;
    tx.commit()?;
    Ok(Moved { tables: moved })
}

/// Inserts a page's rows, several per statement.
fn insert(tx: &Sql<'_>, table: &str, page: &Page) -> Result<(), SqlError> {
    let width = page.columns.len();
    if width == 0 {
        return Ok(());
    }
    let columns: Vec<String> = page.columns.iter().map(|c| quoted(c)).collect();
    for chunk in page.rows.chunks((MAX_PARAMS / width).max(1)) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|row| {
                let placeholders: Vec<String> = (1..=width)
                    .map(|col| format!("?{}", row * width + col))
                    .collect();
                format!("({})", placeholders.join(", "))
            })
            .collect();
        let statement = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quoted(table),
            columns.join(", "),
            tuples.join(", ")
        );
        let values: Vec<&dyn ToValue> = chunk.iter().flatten().map(|v| v as &dyn ToValue).collect();
        tx.execute(&statement, &values)?;
    }
    Ok(())
}

/// Moves every identity of the copied tables past its largest copied id, so
/// new rows continue after them instead of colliding.
fn continue_identities(tx: &Sql<'_>, tables: &[Table]) -> Result<(), SqlError> {
    let identities: Vec<(String, String)> = tx.query_map(
        "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
         WHERE table_schema = current_schema()
           AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (table, column) in identities {
        if !tables.iter().any(|t| t.name == table) {
            continue;
        }
        let (table, column) = (quoted(&table), column);
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence(?1, ?2),
                     COALESCE((SELECT max({}) FROM {table}), 0) + 1, false)",
                quoted(&column)
            ),
            params![table, column],
        )?;
    }
    Ok(())
}

/// A table or column name as an SQL identifier, for both backends.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, parents: &[&str]) -> Table {
        Table {
            name: name.to_string(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            rowid: true,
        }
    }

    #[test]
    fn parents_come_first() {
        let ordered = parents_first(vec![
            table("alerts", &[]),
            table("metric_links", &["connections", "key_results"]),
            table("connections", &["organizations"]),
            table("key_results", &["organizations"]),
            table("organizations", &["tenants"]),
            table("tenants", &[]),
            table("sync_runs", &["key_results", "sync_queries", "sync_runs"]),
            table("sync_queries", &[]),
            table("notes", &["skipped_table"]),
        ]);
        let names: Vec<&str> = ordered.iter().map(|t| t.name.as_str()).collect();
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
        for (child, parent) in [
            ("organizations", "tenants"),
            ("connections", "organizations"),
            ("key_results", "organizations"),
            ("metric_links", "connections"),
            ("metric_links", "key_results"),
            ("sync_runs", "key_results"),
            ("sync_runs", "sync_queries"),
        ] {
            assert!(at(parent) < at(child), "{parent} before {child}: {names:?}");
        }
        assert_eq!(names.len(), 9);
    }

    #[tokio::test]
    async fn the_source_is_read_parents_first_page_by_page_and_skips_what_is_not_data() {
        let db = Database::open_in_memory().unwrap();
        let (tables, pages) = db
            .run(|sql| {
                sql.execute_batch(
                    "CREATE TABLE IF NOT EXISTS hosts (id TEXT PRIMARY KEY);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)
                     INSERT INTO key_results (organization_id, title, owner, unit, start_value,
                         target_value, direction, created_at)
                     SELECT 1, 'KR ' || i, 'ana', 'number', 0, 10, 'increase', 0 FROM n;",
                )?;
                let tables = tables_in_order(sql)?;
                let key_results = tables.iter().find(|t| t.name == "key_results").unwrap();
                let mut pages = Vec::new();
                let mut after = i64::MIN;
                loop {
                    let page = read_page(sql, key_results, after)?;
                    pages.push(page.rows.len());
                    assert_eq!(page.columns[0], "id", "the rowid's alias is left out");
                    match page.last_rowid {
                        Some(last) if page.rows.len() == PAGE_ROWS => after = last,
                        _ => break,
                    }
                }
                Ok((tables, pages))
            })
            .await
            .unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert!(!names.contains(&"hosts"), "{names:?}");
        assert!(
            tables.iter().any(|t| t.name == "plugin_kv" && !t.rowid),
            "read at once"
        );
        assert_eq!(names.first(), Some(&"alerts"), "{names:?}");
        assert_eq!(pages.iter().sum::<usize>(), 1001, "{pages:?}");
    }
}
