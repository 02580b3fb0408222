//! One way to run SQL on either backend: SQLite (rusqlite, the embedded
//! default) or PostgreSQL (tokio-postgres, for several hosts sharing one
//! database). Both run on the blocking pool: a PostgreSQL statement is awaited
//! there on the runtime's handle, so the callers' code is the same for both. Statements are written once, in SQL both understand, with `?N`
//! placeholders (sent to PostgreSQL as `$N`). Values bind and read as SQLite's
//! dynamic types, converted to the column's type on PostgreSQL, so a `bool` or
//! a `u32` binds to a BIGINT column of either.

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    // The backends' errors are messages here, not sources: their text is
    // already in the message, and a chain would repeat it.
    #[error("{0}")]
    Sqlite(rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(tokio_postgres::Error),
    #[error("the query returned no row")]
    NoRow,
    #[error("column {column}: {problem}")]
    Column { column: String, problem: String },
    #[error("a transaction cannot begin inside another")]
    NestedTransaction,
}

impl From<rusqlite::Error> for SqlError {
    fn from(error: rusqlite::Error) -> Self {
        SqlError::Sqlite(error)
    }
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(error: tokio_postgres::Error) -> Self {
        SqlError::Postgres(error)
    }
}

/// PostgreSQL's own message with its detail, which the client error's display
/// leaves out ("db error").
fn postgres_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}

/// A value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be bound to a placeholder.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

macro_rules! integer_values {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                // Counts and limits beyond i64 do not occur; saturate rather than wrap.
                Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
integer_values!(i64, i32, u32, u64, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// The placeholders' values of one statement: `params![a, b]`.
pub type Params<'p> = &'p [&'p dyn ToValue];

#[macro_export]
macro_rules! params {
    () => {
        &[] as $crate::sql::Params<'_>
    };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::sql::ToValue),+] as $crate::sql::Params<'_>
    };
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, String>;
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Integer(n) => Ok(n),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! narrow_integers {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, String> {
                let n = i64::from_value(value)?;
                <$t>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}
narrow_integers!(i32, u32, u64, usize);

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, String> {
        i64::from_value(value).map(|n| n != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Real(x) => Ok(x),
            // SQLite keeps a REAL column's whole numbers as integers.
            Value::Integer(n) => Ok(n as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, String> {
        Ok(value)
    }
}

/// Names a column of a row, by position or by name.
pub trait ColumnIndex {
    fn position(&self, names: &[String]) -> Option<usize>;
    fn label(&self) -> String;
}

impl ColumnIndex for usize {
    fn position(&self, names: &[String]) -> Option<usize> {
        (*self < names.len()).then_some(*self)
    }
    fn label(&self) -> String {
        format!("#{self}")
    }
}

impl ColumnIndex for &str {
    fn position(&self, names: &[String]) -> Option<usize> {
        names.iter().position(|name| name == self)
    }
    fn label(&self) -> String {
        (*self).to_string()
    }
}

/// One row of a result, read off the backend.
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The result's column names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The row's values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T, SqlError> {
        let problem = |problem: String| SqlError::Column {
            column: column.label(),
            problem,
        };
        let at = column
            .position(&self.names)
            .ok_or_else(|| problem("no such column in the result".to_string()))?;
        T::from_value(self.values[at].clone()).map_err(problem)
    }
}

/// A connection, or a transaction on one, of either backend.
pub struct Sql<'a> {
    inner: Inner<'a>,
    /// The runtime PostgreSQL's statements are awaited on.
    runtime: Option<tokio::runtime::Handle>,
}

enum Inner<'a> {
    SqliteConnection(&'a mut rusqlite::Connection),
    SqliteTransaction(rusqlite::Transaction<'a>),
    PostgresClient(&'a mut tokio_postgres::Client),
    PostgresTransaction(tokio_postgres::Transaction<'a>),
}

/// Awaits `$call` on `$client`, the PostgreSQL client or transaction of `$sql`
/// (the two have the same methods but no object-safe common trait), or gives
/// `None` on SQLite.
macro_rules! on_postgres {
    ($sql:expr, |$client:ident| $call:expr) => {
        match (&$sql.inner, &$sql.runtime) {
            (Inner::PostgresClient(client), Some(runtime)) => {
                let $client = &**client;
                Some(runtime.block_on($call))
            }
            (Inner::PostgresTransaction(tx), Some(runtime)) => {
                let $client = tx;
                Some(runtime.block_on($call))
            }
            _ => None,
        }
    };
}

impl<'a> Sql<'a> {
    pub fn sqlite(conn: &'a mut rusqlite::Connection) -> Sql<'a> {
        Sql {
            inner: Inner::SqliteConnection(conn),
            runtime: None,
        }
    }

    /// Statements on `client`, awaited on `runtime`: call it from a thread of
    /// the blocking pool, never from a task.
    pub fn postgres(
        client: &'a mut tokio_postgres::Client,
        runtime: tokio::runtime::Handle,
    ) -> Sql<'a> {
        Sql {
            inner: Inner::PostgresClient(client),
            runtime: Some(runtime),
        }
    }

    /// Whether statements go to PostgreSQL, for the few that differ.
    pub fn is_postgres(&self) -> bool {
        matches!(
            self.inner,
            Inner::PostgresClient(_) | Inner::PostgresTransaction(_)
        )
    }

    fn on_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::SqliteConnection(conn) => Some(conn),
            Inner::SqliteTransaction(tx) => Some(tx),
            Inner::PostgresClient(_) | Inner::PostgresTransaction(_) => None,
        }
    }

    /// Begins a transaction (on SQLite, taking the write lock at once).
    pub fn transaction(&mut self) -> Result<Sql<'_>, SqlError> {
        let runtime = self.runtime.clone();
        let inner = match (&mut self.inner, &runtime) {
            (Inner::SqliteConnection(conn), _) => Inner::SqliteTransaction(conn.transaction()?),
            (Inner::PostgresClient(client), Some(runtime)) => {
                Inner::PostgresTransaction(runtime.block_on(client.transaction())?)
            }
            _ => return Err(SqlError::NestedTransaction),
        };
        Ok(Sql { inner, runtime })
    }

    /// Commits a transaction; on a plain connection there is nothing to commit.
    pub fn commit(self) -> Result<(), SqlError> {
        match (self.inner, self.runtime) {
            (Inner::SqliteTransaction(tx), _) => tx.commit()?,
            (Inner::PostgresTransaction(tx), Some(runtime)) => runtime.block_on(tx.commit())?,
            _ => {}
        }
        Ok(())
    }

    /// Runs a statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: Params<'_>) -> Result<usize, SqlError> {
        if let Some(conn) = self.on_sqlite() {
            let mut statement = conn.prepare_cached(sql)?;
            return Ok(statement.execute(rusqlite::params_from_iter(sqlite_values(params)))?);
        }
        let values = postgres_values(params);
        let sql = postgres_sql(sql);
        let changed = on_postgres!(self, |client| client.execute(sql.as_str(), &bound(&values)))
            .unwrap_or(Ok(0))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    /// Runs statements without parameters, separated by semicolons.
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        if let Some(conn) = self.on_sqlite() {
            return Ok(conn.execute_batch(sql)?);
        }
        on_postgres!(self, |client| client.batch_execute(sql)).unwrap_or(Ok(()))?;
        Ok(())
    }

    /// Every row of a query, each mapped by `map`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        mut map: impl FnMut(&Row) -> Result<T, SqlError>,
    ) -> Result<Vec<T>, SqlError> {
        self.rows(sql, params)?.iter().map(&mut map).collect()
    }

    /// The first row of a query, if there is one.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnOnce(&Row) -> Result<T, SqlError>,
    ) -> Result<Option<T>, SqlError> {
        self.rows(sql, params)?.first().map(map).transpose()
    }

    /// The first row of a query, which must have one.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnOnce(&Row) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        self.query_opt(sql, params, map)?.ok_or(SqlError::NoRow)
    }

    fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, SqlError> {
        if let Some(conn) = self.on_sqlite() {
            let mut statement = conn.prepare_cached(sql)?;
            let names: Arc<[String]> = statement
                .column_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            let width = names.len();
            let mut rows = statement.query(rusqlite::params_from_iter(sqlite_values(params)))?;
            let mut read = Vec::new();
            while let Some(row) = rows.next()? {
                let values = (0..width)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i).map(from_sqlite))
                    .collect::<Result<Vec<_>, _>>()?;
                read.push(Row {
                    names: Arc::clone(&names),
                    values,
                });
            }
            return Ok(read);
        }
        let values = postgres_values(params);
        let sql = postgres_sql(sql);
        let rows = on_postgres!(self, |client| client.query(sql.as_str(), &bound(&values)))
            .unwrap_or_else(|| Ok(Vec::new()))?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let names: Arc<[String]> = first
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        rows.iter()
            .map(|row| {
                let values = (0..names.len())
                    .map(|i| row.try_get::<_, PgValue>(i).map(|v| v.0))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Row {
                    names: Arc::clone(&names),
                    values,
                })
            })
            .collect()
    }
}

fn sqlite_values(params: Params<'_>) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p.to_value() {
            Value::Null => rusqlite::types::Value::Null,
            Value::Integer(n) => rusqlite::types::Value::Integer(n),
            Value::Real(x) => rusqlite::types::Value::Real(x),
            Value::Text(s) => rusqlite::types::Value::Text(s),
            Value::Blob(b) => rusqlite::types::Value::Blob(b),
        })
        .collect()
}

fn from_sqlite(value: rusqlite::types::Value) -> Value {
    match value {
        rusqlite::types::Value::Null => Value::Null,
        rusqlite::types::Value::Integer(n) => Value::Integer(n),
        rusqlite::types::Value::Real(x) => Value::Real(x),
        rusqlite::types::Value::Text(s) => Value::Text(s),
        rusqlite::types::Value::Blob(b) => Value::Blob(b),
    }
}

/// `?N` placeholders as PostgreSQL's `$N`. Statements here hold no `?` in
/// literals, so every `?` followed by digits is a placeholder.
fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A value bound on PostgreSQL, converted to whatever type the statement
/// gives its placeholder.
#[derive(Debug)]
struct PgValue(Value);

fn postgres_values(params: Params<'_>) -> Vec<PgValue> {
    params.iter().map(|p| PgValue(p.to_value())).collect()
}

fn bound(values: &[PgValue]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl tokio_postgres::types::ToSql for PgValue {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, BoxError> {
        use tokio_postgres::types::Type;
        let mismatch = || -> BoxError {
            format!("cannot bind {:?} to a parameter of type {ty}", self.0).into()
        };
        match &self.0 {
            Value::Null => Ok(tokio_postgres::types::IsNull::Yes),
            Value::Integer(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Value::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(ty, out)
                }
                _ => Err(mismatch()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'r> tokio_postgres::types::FromSql<'r> for PgValue {
    fn from_sql(ty: &tokio_postgres::types::Type, raw: &'r [u8]) -> Result<Self, BoxError> {
        use tokio_postgres::types::Type;
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            _ => return Err(format!("a column of type {ty} cannot be read; cast it").into()),
        }))
    }

    fn from_sql_null(_: &tokio_postgres::types::Type) -> Result<Self, BoxError> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_for_postgres() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE b = ?1 AND c IS NOT DISTINCT FROM ?12"),
            "SELECT a FROM t WHERE b = $1 AND c IS NOT DISTINCT FROM $12"
        );
    }

    #[test]
    fn sqlite_rows_read_by_name_and_position_with_dynamic_types() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut sql = Sql::sqlite(&mut conn);
        sql.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, on_ INTEGER, x REAL, b BLOB)")
            .unwrap();
        let tx = sql.transaction().unwrap();
        tx.execute(
            "INSERT INTO t (on_, x, b) VALUES (?1, ?2, ?3)",
            params![true, 2.0_f64, vec![1_u8, 2]],
        )
        .unwrap();
        tx.commit().unwrap();
        let (on, x, b): (bool, f64, Vec<u8>) = sql
            .query_row(
                "SELECT on_, x, b FROM t WHERE id = ?1",
                params![1_i64],
                |r| Ok((r.get("on_")?, r.get(1)?, r.get("b")?)),
            )
            .unwrap();
        assert!(on);
        assert_eq!(x, 2.0);
        assert_eq!(b, [1, 2]);
        assert!(
            sql.query_opt("SELECT id FROM t WHERE id = ?1", params![7_i64], |r| r
                .get::<i64>(0))
                .unwrap()
                .is_none()
        );
        let missing = sql
            .query_row("SELECT id FROM t", params![], |r| r.get::<i64>("nope"))
            .unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
