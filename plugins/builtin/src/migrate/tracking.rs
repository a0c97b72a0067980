//! The tracking table (`public.confiture_migrations` unless configured) and the advisory lock
//! that serialises runners.
//!
//! ```sql
//! CREATE TABLE confiture_migrations (
//!     version           text PRIMARY KEY,      -- digits as in the file name
//!     name              text NOT NULL,
//!     checksum          text NOT NULL,         -- SHA-256 of the .up.sql bytes, hex
//!     applied_at        timestamptz NOT NULL,
//!     execution_ms      double precision NOT NULL,
//!     applied_by        text NOT NULL,         -- the database role
//!     confiture_version text NOT NULL,
//!     baseline          boolean NOT NULL       -- marked applied by `migrate baseline`
//! );
//! ```

use std::time::{Duration, Instant};

use confiture_engine::ExitCode;
use confiture_engine::pg::{PgError, Session, quote_ident};
use confiture_engine::stage::StageError;
use sha2::{Digest, Sha256};

/// `schema.table`, both parts unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    /// Parse `table` or `schema.table`.
    pub fn parse(s: &str) -> Option<Table> {
        let (schema, name) = s.split_once('.').unwrap_or(("public", s));
        let ok = |p: &str| !p.is_empty() && !p.contains('.');
        (ok(schema) && ok(name)).then(|| Table { schema: schema.into(), name: name.into() })
    }

    /// The quoted, qualified name for SQL.
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A row of the tracking table.
#[derive(Clone, Debug)]
pub struct Applied {
    pub version: String,
    pub number: u128,
    pub name: String,
    pub checksum: String,
    pub applied_at: String,
    pub execution_ms: f64,
    pub baseline: bool,
}

/// Whether the table exists.
pub async fn exists(session: &Session, table: &Table) -> Result<bool, PgError> {
    let row = session.client().query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.sql()]).await?;
    Ok(row.get(0))
}

/// Create the table (and its schema) unless it exists. Call with the lock held. Only what is
/// missing is created: `CREATE … IF NOT EXISTS` checks privileges first, and a migration role often
/// may create tables in its schema but not schemas in the database.
pub async fn create(session: &Session, table: &Table) -> Result<(), PgError> {
    if exists(session, table).await? {
        return Ok(());
    }
    let client = session.client();
    let schema_exists: bool =
        client.query_one("SELECT to_regnamespace($1) IS NOT NULL", &[&quote_ident(&table.schema)]).await?.get(0);
    if !schema_exists {
        client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&table.schema))).await?;
    }
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {t} (
             version text PRIMARY KEY,
             name text NOT NULL,
             checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now(),
             execution_ms double precision NOT NULL,
             applied_by text NOT NULL DEFAULT current_user,
             confiture_version text NOT NULL,
             baseline boolean NOT NULL DEFAULT false
         );
         COMMENT ON TABLE {t} IS 'migrations applied by confiture (https://github.com/confiture-rs/confiture)'",
        t = table.sql()
    );
    client.batch_execute(&sql).await?;
    Ok(())
}

/// Every applied migration, ordered by version. A table of that name that is not confiture's
/// (other columns or types) is an error naming what does not fit, not a crash.
pub async fn applied(session: &Session, table: &Table) -> Result<Vec<Applied>, StageError> {
    let sql = format!(
        "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                execution_ms, baseline
         FROM {}",
        table.sql()
    );
    let not_ours = |what: String| {
        StageError::new(
            ExitCode::Config,
            format!("{table} is not a confiture tracking table ({what}); choose another with --tracking-table"),
        )
    };
    let rows = session.client().query(&sql, &[]).await.map_err(|e| match e.code() {
        Some(c)
            if *c == tokio_postgres::error::SqlState::UNDEFINED_COLUMN
                || *c == tokio_postgres::error::SqlState::UNDEFINED_FUNCTION =>
        {
            not_ours(confiture_engine::pg::describe(&e))
        }
        _ => StageError::from(PgError::from(e)),
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let get_err = |e: tokio_postgres::Error| not_ours(e.to_string());
        let version: String = r.try_get(0).map_err(get_err)?;
        out.push(Applied {
            number: super::files::version_number(&version).unwrap_or(u128::MAX),
            version,
            name: r.try_get(1).map_err(get_err)?,
            checksum: r.try_get(2).map_err(get_err)?,
            applied_at: r.try_get::<_, Option<String>>(3).map_err(get_err)?.unwrap_or_default(),
            execution_ms: r.try_get::<_, Option<f64>>(4).map_err(get_err)?.unwrap_or(0.0),
            baseline: r.try_get::<_, Option<bool>>(5).map_err(get_err)?.unwrap_or(false),
        });
    }
    out.sort_by_key(|a| a.number);
    Ok(out)
}

/// The INSERT that records a migration; parameters: version, name, checksum, execution_ms
/// (NULL: measured by the server since the transaction began), baseline, confiture version.
pub fn insert_sql(table: &Table) -> String {
    format!(
        "INSERT INTO {} (version, name, checksum, execution_ms, baseline, confiture_version)
         VALUES ($1, $2, $3, coalesce($4::float8, (extract(epoch FROM clock_timestamp() - now()) * 1000)::float8),
                 $5, $6)",
        table.sql()
    )
}

/// This confiture's version, recorded with each migration.
pub const CONFITURE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn delete_sql(table: &Table) -> String {
    format!("DELETE FROM {} WHERE version = $1", table.sql())
}

/// The advisory lock key for `table` in the connected database.
async fn lock_key(session: &Session, table: &Table) -> Result<i64, PgError> {
    let db: String = session.client().query_one("SELECT current_database()", &[]).await?.get(0);
    let digest = Sha256::digest(format!("confiture:migrate:{db}:{table}").as_bytes());
    Ok(i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes")))
}

/// A held session advisory lock; released by [`Lock::release`] or when the session closes.
pub struct Lock {
    key: i64,
}

impl Lock {
    pub async fn release(self, session: &Session) {
        let _ = session.client().execute("SELECT pg_advisory_unlock($1)", &[&self.key]).await;
    }
}

/// Take the migration lock for `table`, waiting up to `wait`. On timeout: exit 6, naming who holds it.
pub async fn lock(
    session: &Session,
    table: &Table,
    wait: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Lock, StageError> {
    let key = lock_key(session, table).await?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(20);
    let mut said = false;
    loop {
        let got: bool =
            session.client().query_one("SELECT pg_try_advisory_lock($1)", &[&key]).await.map_err(PgError::from)?.get(0);
        if got {
            return Ok(Lock { key });
        }
        if Instant::now() >= deadline {
            let holder = holder(session, key).await.unwrap_or_else(|| "another session".into());
            return Err(StageError::new(
                ExitCode::LockContention,
                format!(
                    "another migration runner holds the lock on {table}: {holder}; waited {}",
                    humantime::format_duration(wait)
                ),
            )
            .with_field("holder", holder));
        }
        if !said {
            tracing::info!("waiting for the migration lock on {table}");
            said = true;
        }
        tokio::select! {
            () = tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))) => {}
            () = cancel.cancelled() => return Err(StageError::cancelled()),
        }
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Who holds advisory lock `key`: pid, application_name, host and since when.
async fn holder(session: &Session, key: i64) -> Option<String> {
    let (classid, objid) = ((key >> 32) as u32, key as u32);
    let row = session
        .client()
        .query_opt(
            "SELECT l.pid, nullif(a.application_name, ''),
                    CASE WHEN a.backend_start IS NOT NULL
                         THEN coalesce(a.client_hostname, host(a.client_addr), 'local socket') END,
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1",
            &[&classid, &objid],
        )
        .await
        .ok()??;
    // Another role's session shows NULL for most columns of pg_stat_activity unless we have
    // pg_read_all_stats: say what we know.
    let pid: i32 = row.try_get(0).ok()?;
    let app: Option<String> = row.try_get(1).ok().flatten();
    let host: Option<String> = row.try_get(2).ok().flatten();
    let since: Option<String> = row.try_get(3).ok().flatten();
    let mut out = format!("pid {pid} ({})", app.as_deref().unwrap_or("?"));
    if let Some(host) = host {
        out.push_str(&format!(" from {host}"));
    }
    match since {
        Some(since) => out.push_str(&format!(", connected since {since}")),
        None => out.push_str(" (another role: its details are hidden without pg_read_all_stats)"),
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(Table::parse("confiture_migrations").unwrap().to_string(), "public.confiture_migrations");
        assert_eq!(Table::parse("ops.Migrations").unwrap().sql(), "\"ops\".\"Migrations\"");
        assert!(Table::parse("a.b.c").is_none());
        assert!(Table::parse(".x").is_none());
    }
}
