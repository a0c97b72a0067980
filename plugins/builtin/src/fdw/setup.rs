//! `setup`: on NEW, a `postgres_fdw` server made from OLD's real connection parameters, a user
//! mapping with OLD's credentials, and OLD's tables imported as foreign tables.
//!
//! The values never appear in a statement's text: they are handed to the session as settings
//! (bind parameters of `set_config`) and a `DO` block quotes them with `format('%L')`, so neither
//! `pg_stat_activity`, the server log (`log_statement`) nor an error message shows the password.

use confiture_engine::ExitCode;
use confiture_engine::pg::{ConnInfo, PgError, Session};
use confiture_engine::stage::StageError;

use super::plan::{FOREIGN_PREFIX, Plan};
use crate::catalog::model::ident;

/// The foreign server's name on NEW.
pub const SERVER: &str = "confiture_old";

/// The libpq parameters postgres_fdw gets for the server (the rest go to the user mapping).
const SERVER_KEYS: [&str; 7] = ["host", "hostaddr", "port", "dbname", "sslmode", "sslrootcert", "connect_timeout"];

/// Create the server, the user mapping and the foreign tables (again, if they exist).
pub async fn setup(new: &Session, old: &ConnInfo, plan: &Plan) -> Result<usize, StageError> {
    let c = new.client();
    let fail = |what: &str, e: tokio_postgres::Error| {
        StageError::new(ExitCode::Failure, format!("setup on NEW: {what}: {}", confiture_engine::pg::describe(&e)))
    };
    c.batch_execute("BEGIN; CREATE EXTENSION IF NOT EXISTS postgres_fdw")
        .await
        .map_err(|e| fail("CREATE EXTENSION postgres_fdw (contrib; a superuser may create it)", e))?;
    c.batch_execute(&format!("DROP SERVER IF EXISTS {SERVER} CASCADE"))
        .await
        .map_err(|e| fail("dropping an old server", e))?;
    let mut server_opts = Vec::new();
    for (i, key) in SERVER_KEYS.iter().enumerate() {
        if let Some(v) = old.get(key) {
            c.execute("SELECT set_config($1, $2, true)", &[&format!("confiture.fdw_s{i}"), &v])
                .await
                .map_err(PgError::from)?;
            server_opts.push(format!("{key} %L"));
        }
    }
    let args: Vec<String> = (0..SERVER_KEYS.len())
        .filter(|i| old.get(SERVER_KEYS[*i]).is_some())
        .map(|i| format!("current_setting('confiture.fdw_s{i}')"))
        .collect();
    server_opts.push("fetch_size '10000'".into());
    server_opts.push("application_name 'confiture fdw-cutover'".into());
    let fmt_args = if args.is_empty() { String::new() } else { format!(", {}", args.join(", ")) };
    c.batch_execute(&format!(
        "DO $$ BEGIN EXECUTE format('CREATE SERVER {SERVER} FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({})'{fmt_args}); END $$",
        server_opts.join(", ").replace('\'', "''")
    ))
    .await
    .map_err(|e| fail("CREATE SERVER", e))?;
    let user = old.get("user").map(str::to_string).unwrap_or_else(whoami);
    c.execute("SELECT set_config('confiture.fdw_u', $1, true)", &[&user]).await.map_err(PgError::from)?;
    let mut um = vec!["user %L".to_string()];
    let mut um_args = vec!["current_setting('confiture.fdw_u')".to_string()];
    if let Some(pw) = old.get("password") {
        c.execute("SELECT set_config('confiture.fdw_p', $1, true)", &[&pw]).await.map_err(PgError::from)?;
        um.push("password %L".into());
        um_args.push("current_setting('confiture.fdw_p')".into());
    }
    c.batch_execute(&format!(
        "DO $$ BEGIN EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER {SERVER} OPTIONS ({})', {}); END $$;
         SELECT set_config('confiture.fdw_p', '', true)",
        um.join(", "),
        um_args.join(", ")
    ))
    .await
    .map_err(|e| fail("CREATE USER MAPPING", e))?;
    let mut by_schema: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for t in plan.old_tables() {
        let (schema, name) = t.old.split_once('.').unwrap_or(("public", &t.old));
        by_schema.entry(schema).or_default().push(name);
    }
    let mut imported = 0;
    for (schema, names) in &by_schema {
        let local = ident(&format!("{FOREIGN_PREFIX}{schema}"));
        let list: Vec<String> = names.iter().map(|n| ident(n)).collect();
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {local} CASCADE; CREATE SCHEMA {local};
             IMPORT FOREIGN SCHEMA {} LIMIT TO ({}) FROM SERVER {SERVER} INTO {local}",
            ident(schema),
            list.join(", ")
        ))
        .await
        .map_err(|e| fail(&format!("IMPORT FOREIGN SCHEMA {schema}"), e))?;
        imported += names.len();
    }
    c.batch_execute("COMMIT").await.map_err(|e| fail("COMMIT", e))?;
    // NEW's server must reach OLD the way the parameters say (its view of `host` may differ
    // from ours): try it now rather than half way through a copy.
    if let Some(t) = plan.old_tables().first() {
        c.batch_execute(&format!("SELECT 1 FROM {} LIMIT 1", t.foreign_sql())).await.map_err(|e| {
            StageError::new(
                ExitCode::Connection,
                format!(
                    "setup: NEW's server cannot read OLD through postgres_fdw ({}): {}",
                    old,
                    confiture_engine::pg::describe(&e)
                ),
            )
        })?;
    }
    Ok(imported)
}

/// The foreign server (and with it the user mapping and foreign tables) and the foreign schemas.
pub fn teardown(plan: &Plan) -> String {
    let mut sql = vec![format!("DROP SERVER IF EXISTS {SERVER} CASCADE;")];
    let mut seen = std::collections::BTreeSet::new();
    for t in plan.old_tables() {
        let schema = t.old.split_once('.').map_or("public", |(s, _)| s);
        if seen.insert(schema) {
            sql.push(format!("DROP SCHEMA IF EXISTS {} CASCADE;", ident(&format!("{FOREIGN_PREFIX}{schema}"))));
        }
    }
    sql.join("\n")
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "postgres".into())
}
