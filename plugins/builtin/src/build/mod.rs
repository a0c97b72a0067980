//! Building a database from SQL files: [`collect`] finds and orders them and computes their
//! schema hash, [`execute`] parses and runs them (one pipelined transaction, then what cannot run
//! in one), [`cache`] keeps template databases by schema hash. [`build_into`] puts the three
//! together for the `build` stage; diff's `schema:` source uses `collect` and `execute` alone.

pub mod cache;
pub mod collect;
pub mod execute;

use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::pg::{self, ConnInfo, Session, quote_ident};
use confiture_engine::stage::{StageContext, StageError};

pub use collect::{SqlFile, natural_cmp, schema_hash};

/// What [`build_into`] did.
pub struct Built {
    /// Whether the database was copied from a cached template.
    pub cache_hit: bool,
    /// The statements the files hold.
    pub statements: usize,
}

/// How a build treats an existing target and the template cache.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Replace the target if it exists (the caller checked that it may: `destructive_target`).
    pub drop_existing: bool,
    /// Use and fill the template cache.
    pub cache: bool,
}

/// How the target is filled.
enum Mode {
    /// The build creates the database (and drops it again on failure).
    Create,
    /// The database exists and is empty; the build fills it.
    Fill,
}

/// Build `files` (whose schema hash is `hash`) into the database `dbname` that `target` names:
/// from a cached template when one matches, else by running them, all or nothing.
pub async fn build_into(
    cx: &StageContext,
    target: &ConnInfo,
    dbname: &str,
    files: &[SqlFile],
    hash: &str,
    settings: Options,
) -> Result<Built, StageError> {
    let admin = connect_maintenance(target).await?;
    let exists = admin
        .client()
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await
        .map_err(pg::PgError::from)?
        .is_some();
    let creates = !exists || settings.drop_existing;
    let template = cache::template_name(hash);
    let cached = match settings.cache && creates {
        true => cache::lookup(&admin, &template, hash).await?,
        false => None,
    };
    // Parse everything before touching the server: a file that does not parse stops the build
    // with nothing changed. Files that match a template were built before and need no parsing.
    let script = match cached {
        Some(_) => None,
        None => {
            let t0 = Instant::now();
            let script = execute::parse(files)?;
            tracing::info!("{} statements parsed in {} ms", script.statement_count(), t0.elapsed().as_millis());
            Some(script)
        }
    };

    let mode = if exists && settings.drop_existing {
        if dbname == "postgres" || dbname.starts_with("template") {
            return Err(StageError::new(ExitCode::Config, format!("refusing to drop the `{dbname}` database")));
        }
        tracing::info!("dropping existing database {dbname}");
        admin
            .cancellable(&cx.cancel, admin.client().batch_execute(&format!("DROP DATABASE {}", quote_ident(dbname))))
            .await
            .map_err(|e| drop_error(dbname, e))?;
        Mode::Create
    } else if exists {
        let session = pg::connect(target, "confiture build").await?;
        if let Some(objects) = non_empty(&session).await? {
            return Err(StageError::new(
                ExitCode::Build,
                format!(
                    "database {dbname} is not empty ({objects}); rebuild it with --drop-existing (`drop-existing #true` in a \
                     pipeline) or build into a new database"
                ),
            ));
        }
        Mode::Fill
    } else {
        Mode::Create
    };

    let script = match (cached, script) {
        (Some(cached), _) => {
            tracing::info!("schema unchanged: creating {dbname} from template {template}");
            cx.progress("copying the template");
            match cache::create_from(&admin, dbname, &template, &cached.database).await {
                Ok(()) => return Ok(Built { cache_hit: true, statements: cached.statements }),
                // The copy could not be given what the build had set on its database: build from
                // the files instead (they parsed before: their hash is the template's), and drop
                // the template so that the next build keeps a fresh one.
                Err(e) => {
                    tracing::warn!(
                        "the template {template} could not be used ({}); building from the files",
                        confiture_engine::pg::dsn::redact(&e.to_string())
                    );
                    cache::discard(&admin, &template).await;
                    execute::parse(files)?
                }
            }
        }
        (None, Some(script)) => script,
        (None, None) => unreachable!("a script is parsed whenever there is no template"),
    };

    if matches!(mode, Mode::Create) {
        admin
            .cancellable(&cx.cancel, admin.client().batch_execute(&format!("CREATE DATABASE {}", quote_ident(dbname))))
            .await?;
    } else if !script.deferred.is_empty() {
        let (f, s) = script.deferred[0];
        let file = &script.files[f];
        return Err(StageError::new(
            ExitCode::Build,
            format!(
                "{} has a statement that cannot run in a transaction; it needs a database the build creates: use \
                 --drop-existing or a new database name",
                file.source.name
            ),
        )
        .with_field("file", file.source.name.clone())
        .with_field("offset", file.statements[s].offset.to_string()));
    }

    let result = async {
        let session = pg::connect(target, "confiture build").await?;
        tracing::info!("running {} statements in one transaction", script.transactional.len());
        let total = script.transactional.len();
        let mut progress = |done: usize| cx.progress(&format!("{done}/{total} statements"));
        execute::run_transaction(&session, &script, &cx.cancel, &mut progress).await?;
        if !script.deferred.is_empty() {
            tracing::info!("running {} statements outside the transaction", script.deferred.len());
            execute::run_deferred(&session, &script, &cx.cancel).await?;
        }
        Ok::<(), StageError>(())
    }
    .await;
    if let Err(e) = result {
        if matches!(mode, Mode::Create) {
            tracing::info!("build failed: dropping {dbname}");
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(dbname));
            if let Err(drop) = admin.client().batch_execute(&drop).await {
                tracing::warn!("could not drop {dbname} after the failed build: {}", pg::describe(&drop));
            }
        }
        return Err(e);
    }
    if settings.cache {
        // Our session to the target is closed (dropped above), so the copy can start.
        let t0 = Instant::now();
        cx.progress("keeping a template");
        match cache::store(&admin, dbname, hash, script.statement_count()).await {
            Ok(()) => tracing::info!("kept template {template} ({} ms)", t0.elapsed().as_millis()),
            Err(e) => tracing::warn!("could not store the build template: {e}"),
        }
    }
    Ok(Built { cache_hit: false, statements: script.statement_count() })
}

fn drop_error(dbname: &str, e: pg::PgError) -> StageError {
    let in_use = e.db_error().is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::OBJECT_IN_USE);
    if in_use {
        StageError::new(
            ExitCode::Build,
            format!("cannot drop {dbname}: other sessions are connected to it; close them (psql, your app) and retry"),
        )
    } else {
        e.into()
    }
}

/// Connect to the server's maintenance database (`postgres`, else `template1`).
async fn connect_maintenance(target: &ConnInfo) -> Result<Session, StageError> {
    match pg::connect(&target.with_dbname("postgres"), "confiture build").await {
        Ok(s) => Ok(s),
        Err(e)
            if e.db_error().is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) =>
        {
            Ok(pg::connect(&target.with_dbname("template1"), "confiture build").await?)
        }
        // Name the database the user asked for, not the maintenance database we tried.
        Err(pg::PgError::Connect { source, .. }) => {
            Err(pg::PgError::Connect { target: target.to_string(), source }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A short description of what a database holds besides the defaults, or `None` if it is empty.
async fn non_empty(session: &Session) -> Result<Option<String>, StageError> {
    let row = session
        .client()
        .query_one(
            r"
            WITH user_ns AS (
                SELECT oid, nspname FROM pg_namespace
                WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
                  AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
            ), objects AS (
                SELECT format('%s %I.%I', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
                       WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' ELSE 'relation' END, n.nspname, c.relname) AS what
                FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
                UNION ALL
                SELECT format('function %I.%I', n.nspname, p.proname)
                FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
                UNION ALL
                SELECT format('type %I.%I', n.nspname, t.typname)
                FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace
                WHERE t.typrelid = 0 AND t.typelem = 0
                UNION ALL
                SELECT format('schema %I', nspname) FROM user_ns WHERE nspname <> 'public'
                UNION ALL
                SELECT format('extension %I', extname) FROM pg_extension WHERE extname <> 'plpgsql'
            )
            SELECT count(*), (array_agg(what ORDER BY what))[1:3] FROM objects",
            &[],
        )
        .await
        .map_err(pg::PgError::from)?;
    let count: i64 = row.get(0);
    if count == 0 {
        return Ok(None);
    }
    let examples: Vec<String> = row.get(1);
    Ok(Some(format!("{count} objects, e.g. {}", examples.join(", "))))
}

/// Write the SQL that the build runs, with a marker line before each file.
pub fn write_output(path: &std::path::Path, files: &[SqlFile], hash: &str) -> Result<(), StageError> {
    let mut out = format!("-- confiture build, schema hash {hash}\n");
    for f in files {
        out.push_str(&format!("\n-- confiture:file {}\n", f.relative));
        out.push_str(&String::from_utf8_lossy(&f.bytes));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StageError::new(ExitCode::Build, format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, out)
        .map_err(|e| StageError::new(ExitCode::Build, format!("cannot write {}: {e}", path.display())))
}
