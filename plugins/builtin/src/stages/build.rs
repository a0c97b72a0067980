//! `build`: create a database from the schema files (and seeds) of an environment.
//!
//! Reads `*.sql` under the environment's schema directories in a fixed order (see
//! [`collect`]), then its seed directories unless `schema-only`. Writes: a new database (or an
//! existing empty one), a cached template database on the same server (unless `cache #false`),
//! and the concatenated SQL when `output` is set.
//!
//! All transactional statements run in one transaction, pipelined; a failure rolls everything back
//! and drops the database if the build created it, so nothing is left behind. Statements that
//! cannot run in a transaction (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …) run after it, one by one;
//! they need a database the build creates. Idempotent with `drop-existing`: the same files give the
//! same database.
//!
//! ```kdl
//! stage "build" uses="build" {
//!     env "test"                 // schema and seed directories (and the default target)
//!     database "scratch"         // target: a declared database, a DSN or a template
//!     schema-only #false         // skip seeds
//!     drop-existing #true        // replace the target if it exists
//!     cache #true                // use and fill the template cache
//!     output "build/schema.sql"  // also write the SQL that ran
//! }
//! ```

mod cache;
pub(crate) mod collect;
pub(crate) mod execute;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use confiture_engine::ExitCode;
use confiture_engine::diag::Diagnostics;
use confiture_engine::kdl::decode::Fields;
use confiture_engine::kdl::node::{Node, Text};
use confiture_engine::pg::{self, ConnInfo, Session, quote_ident};
use confiture_engine::project::{DirSpec, Environment};
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Stage, StageContext, StageError, StageType};
use serde_json::json;

pub use collect::{natural_cmp, schema_hash};

/// The `build` stage type.
pub struct Build;

/// What a `build` stage produced (`schemas/stages/build.json`).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "outputs of a build stage")]
pub struct BuildOutputs {
    /// The database's name.
    pub database: String,
    /// A connection string for it (redacted in reports; whole in `{{ stages.X.outputs.url }}`).
    pub url: String,
    /// The schema hash of the files (docs/build.md).
    pub hash: String,
    pub files: usize,
    pub statements: usize,
    /// Whether the database was copied from a cached template.
    pub cache_hit: bool,
    /// The SQL file written with `output`, if any.
    pub output: Option<String>,
}

/// A configured build.
#[derive(Debug)]
pub struct BuildStage {
    env: Environment,
    target: Option<DatabaseRef>,
    schema_only: bool,
    drop_existing: bool,
    cache: bool,
    output: Option<Text>,
}

impl StageType for Build {
    fn name(&self) -> &'static str {
        "build"
    }

    fn summary(&self) -> &'static str {
        "create a database from the schema files and seeds of an environment"
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(BuildOutputs))
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (build)", cx.stage));
        let env = match f.setting("env", d) {
            Some(e) => cx.environment(e, d),
            None => Some(default_environment(cx)),
        };
        let target = f.setting("database", d).map(|e| cx.database_ref(e, d));
        let schema_only = f.setting_bool("schema-only", d).unwrap_or(false);
        let drop_existing = f.setting_bool("drop-existing", d).unwrap_or(false);
        let cache = f.setting_bool("cache", d).unwrap_or(true);
        let output = f.setting_text("output", d).cloned();
        f.finish(d);
        let env = env?;
        let target = match target {
            Some(t) => Some(t?),
            None => None,
        };
        if target.is_none() && env.database.is_none() {
            d.push(
                confiture_engine::diag::Diagnostic::error(
                    "build::no-database",
                    node.span,
                    format!("stage `{}` has no database to build into", cx.stage),
                )
                .with_label("no target")
                .with_help(format!(
                    "add `database \"NAME\"` (a declared database) to the stage, or give environment `{}` a database",
                    env.name
                )),
            );
            return None;
        }
        Some(Arc::new(BuildStage { env, target, schema_only, drop_existing, cache, output }))
    }
}

fn default_environment(cx: &ConfigureCx<'_>) -> Environment {
    Environment {
        name: "default".into(),
        database: None,
        protected: false,
        schema: vec![DirSpec::new("db/schema")],
        seeds: vec![DirSpec::new("db/seeds/common")],
        origin: cx.project.root.clone(),
    }
}

impl BuildStage {
    fn target_ref(&self) -> DatabaseRef {
        self.target.clone().unwrap_or_else(|| DatabaseRef::Environment(self.env.clone()))
    }
}

#[async_trait]
impl Stage for BuildStage {
    fn settings(&self) -> serde_json::Value {
        let dirs = |v: &[DirSpec]| v.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>();
        json!({
            "env": self.env.name,
            "database": self.target_ref().describe(),
            "schema": dirs(&self.env.schema),
            "seeds": if self.schema_only { Vec::new() } else { dirs(&self.env.seeds) },
            "schema_only": self.schema_only,
            "drop_existing": self.drop_existing,
            "cache": self.cache,
            "output": self.output.as_ref().map(|t| t.shown().to_string()),
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let t0 = Instant::now();
        let seeds: &[DirSpec] = if self.schema_only { &[] } else { &self.env.seeds };
        let files = collect::collect(&cx.project, &self.env.schema, seeds)?;
        let hash = collect::schema_hash(&files);
        if files.is_empty() {
            tracing::warn!("no .sql files found for environment `{}`", self.env.name);
        }
        tracing::info!("{} files, schema hash {} ({} ms)", files.len(), &hash[..12], t0.elapsed().as_millis());
        let output = match &self.output {
            Some(t) => {
                let path = cx.project.resolve(&PathBuf::from(cx.render(t)?));
                write_output(&path, &files, &hash)?;
                Some(path)
            }
            None => None,
        };

        let target = if self.drop_existing {
            cx.destructive_target(&self.target_ref(), "drop and rebuild the database", false).await?
        } else {
            cx.database_target(&self.target_ref(), false).await?
        };
        let dbname = target.dbname().unwrap_or("postgres").to_string();
        let built = build_into(cx, &target, &dbname, &files, &hash, self).await?;

        let mut outputs = Outputs::default();
        outputs
            .extend_from(&BuildOutputs {
                database: dbname.clone(),
                url: target.to_string(),
                hash: hash.clone(),
                files: files.len(),
                statements: built.statements,
                cache_hit: built.cache_hit,
                output: output.map(|p| confiture_engine::project::display_path(&p)),
            })
            .set_dsn("url", &target);
        tracing::info!(
            "built {dbname} in {} ms{}",
            t0.elapsed().as_millis(),
            if built.cache_hit { " (from the template cache)" } else { "" }
        );
        Ok(outputs)
    }
}

struct Built {
    cache_hit: bool,
    statements: usize,
}

/// How the target is filled.
enum Mode {
    /// The build creates the database (and drops it again on failure).
    Create,
    /// The database exists and is empty; the build fills it.
    Fill,
}

async fn build_into(
    cx: &StageContext,
    target: &ConnInfo,
    dbname: &str,
    files: &[collect::SqlFile],
    hash: &str,
    settings: &BuildStage,
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
fn write_output(path: &std::path::Path, files: &[collect::SqlFile], hash: &str) -> Result<(), StageError> {
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
