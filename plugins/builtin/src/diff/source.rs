//! Where a model comes from: a live database, DDL files built into a scratch database, or the
//! migration chain replayed into one. Building into a real PostgreSQL means the server itself
//! normalizes every expression, so DDL and live databases compare exactly.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::diag::{Diagnostic, Diagnostics, SourceFile};
use confiture_engine::kdl::node::Entry;
use confiture_engine::pg::{self, ConnInfo, Session, quote_ident};
use confiture_engine::project::{DirSpec, Environment, display_path};
use confiture_engine::stage::{ConfigureCx, DatabaseRef, StageContext, StageError, looks_like_dsn};

use crate::build::{collect, execute};
use crate::catalog::{self, Model};
use crate::migrate::{files, prepare};

/// A source of a schema.
#[derive(Clone, Debug)]
pub enum Source {
    /// A live database.
    Live(DatabaseRef),
    /// DDL: schema directories (of an environment) or one file.
    Ddl { shown: String, dirs: Vec<DirSpec>, file: Option<PathBuf> },
    /// The migration chain in a directory, replayed in order.
    Migrations(PathBuf),
}

/// The keywords of the forms.
const ENV: &str = "env:";
const SCHEMA: &str = "schema";
const SCHEMA_OF: &str = "schema:";
const MIGRATIONS: &str = "migrations";
const MIGRATIONS_IN: &str = "migrations:";

/// A source as written on a command line, ready for a stage: a path (a file, a directory, the DIR
/// of `migrations:DIR`) that exists becomes absolute, since the stage resolves relative paths
/// against the project root and the user meant the working directory. Other forms are unchanged.
pub fn from_command_line(value: &str) -> String {
    let absolute = |p: &str| std::path::absolute(p).map(|a| a.display().to_string()).unwrap_or_else(|_| p.to_string());
    let keyword = looks_like_dsn(value)
        || value == SCHEMA
        || value == MIGRATIONS
        || [ENV, SCHEMA_OF, MIGRATIONS_IN].iter().any(|k| value.starts_with(k));
    if !keyword && std::path::Path::new(value).exists() {
        return absolute(value);
    }
    match value.strip_prefix(MIGRATIONS_IN) {
        Some(dir) if std::path::Path::new(dir).exists() => format!("{MIGRATIONS_IN}{}", absolute(dir)),
        _ => value.to_string(),
    }
}

/// How sources are written, for help texts.
pub const FORMS: &str = "a connection string, `env:NAME` (that environment's database), `schema` or `schema:ENV` \
(an environment's schema files), `migrations` or `migrations:DIR` (the migration chain), or a path to a \
.sql file or a directory of them";

impl Source {
    /// Decode a source setting. `env` is the environment `schema` and `migrations` refer to.
    pub fn decode(entry: &Entry, cx: &ConfigureCx<'_>, env: &Environment, d: &mut Diagnostics) -> Option<Source> {
        let text = confiture_engine::kdl::decode::text(entry, d)?;
        let Some(value) = text.rendered.clone() else {
            // Rendered at run time (e.g. another stage's database URL): a connection string.
            return Some(Source::Live(DatabaseRef::Dsn(text.clone())));
        };
        let err = |d: &mut Diagnostics, message: String| {
            d.push(
                Diagnostic::error("diff::invalid-source", entry.span, message)
                    .with_label("source")
                    .with_help(format!("a source is {FORMS}")),
            );
        };
        if looks_like_dsn(&value) {
            return cx.database_ref(entry, d).map(Source::Live);
        }
        if let Some(name) = value.strip_prefix(ENV) {
            return match cx.project.environment(name) {
                Ok(e) if e.database.is_some() => Some(Source::Live(DatabaseRef::Environment(e))),
                Ok(e) => {
                    err(d, format!("environment `{}` has no database", e.name));
                    None
                }
                Err(e) => {
                    err(d, e.to_string());
                    None
                }
            };
        }
        if value == SCHEMA || value.starts_with(SCHEMA_OF) {
            let env = match value.strip_prefix(SCHEMA_OF) {
                Some(name) => match cx.project.environment(name) {
                    Ok(e) => e,
                    Err(e) => {
                        err(d, e.to_string());
                        return None;
                    }
                },
                None => env.clone(),
            };
            let shown = env.schema.iter().map(|s| display_path(&s.path)).collect::<Vec<_>>().join(", ");
            return Some(Source::Ddl { shown, dirs: env.schema, file: None });
        }
        if value == MIGRATIONS {
            let dir = crate::migrate::project::migrations_dir(cx.project).unwrap_or_else(|| "db/migrations".into());
            return Some(Source::Migrations(cx.project.resolve(&dir)));
        }
        if let Some(dir) = value.strip_prefix(MIGRATIONS_IN) {
            return Some(Source::Migrations(cx.project.resolve(&PathBuf::from(dir))));
        }
        let path = cx.project.resolve(&PathBuf::from(&value));
        if path.is_file() {
            return Some(Source::Ddl { shown: display_path(&path), dirs: Vec::new(), file: Some(path) });
        }
        if path.is_dir() {
            // A directory of NNN_name.up.sql files is a migration chain.
            let migrations = std::fs::read_dir(&path)
                .map(|it| it.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".up.sql")))
                .unwrap_or(false);
            if migrations {
                return Some(Source::Migrations(path));
            }
            return Some(Source::Ddl { shown: display_path(&path), dirs: vec![DirSpec::new(path)], file: None });
        }
        if cx.databases.iter().any(|n| n == &value) {
            return Some(Source::Live(DatabaseRef::Declared(value)));
        }
        if let Ok(e) = cx.project.environment(&value)
            && e.database.is_some()
        {
            return Some(Source::Live(DatabaseRef::Environment(e)));
        }
        err(d, format!("`{value}` is not a connection string, a known environment or database, or an existing path"));
        None
    }

    /// For reports and `plan`.
    pub fn describe(&self) -> String {
        match self {
            Source::Live(r) => r.describe(),
            Source::Ddl { shown, .. } => shown.clone(),
            Source::Migrations(dir) => format!("migrations in {}", display_path(dir)),
        }
    }
}

/// Where DDL and migration sources are built: a server given as `dev-url`, or the run's
/// ephemeral cluster.
pub async fn scratch_server(dev: Option<&DatabaseRef>, cx: &StageContext) -> Result<ConnInfo, StageError> {
    match dev {
        Some(r) => cx.database_target(r, false).await,
        None => Ok(cx.databases.cluster().await.map_err(StageError::from)?.conninfo("postgres")),
    }
}

/// Read a source into a model.
pub async fn load(source: &Source, cx: &StageContext, dev: Option<&DatabaseRef>) -> Result<Model, StageError> {
    let t0 = Instant::now();
    let model = match source {
        Source::Live(r) => {
            let info = cx.database(r).await?;
            let session = pg::connect(&info, "confiture-diff").await?;
            catalog::introspect(&session).await?
        }
        Source::Ddl { .. } | Source::Migrations(_) => {
            let server = scratch_server(dev, cx).await?;
            let scratch = Scratch::create(&server).await?;
            let result = fill(source, cx, &scratch.session, dev.is_none()).await;
            let model = match result {
                Ok(()) => catalog::introspect(&scratch.session).await.map_err(StageError::from),
                Err(e) => Err(e),
            };
            scratch.drop().await;
            model?
        }
    };
    tracing::info!("read {} ({} objects) in {} ms", source.describe(), model.objects.len(), t0.elapsed().as_millis());
    Ok(model)
}

/// Role names the statements grant to, own things as, or attach policies to.
fn roles_in(texts: &[&str]) -> BTreeSet<String> {
    use confiture_engine::pg_query::NodeEnum;
    use confiture_engine::pg_query::protobuf::{Node, RoleSpec, RoleSpecType};
    let mut roles = BTreeSet::new();
    let mut add = |r: Option<&RoleSpec>| {
        if let Some(r) = r
            && r.roletype == RoleSpecType::RolespecCstring as i32
        {
            roles.insert(r.rolename.clone());
        }
    };
    let role_of = |n: &Node| match &n.node {
        Some(NodeEnum::RoleSpec(r)) => Some(r.clone()),
        _ => None,
    };
    for text in texts {
        let Ok(statements) = confiture_engine::sql::parse(text) else { continue };
        for node in statements.iter().filter_map(|(_, n)| n.as_ref()) {
            match node {
                NodeEnum::GrantStmt(g) => g.grantees.iter().for_each(|n| add(role_of(n).as_ref())),
                NodeEnum::CreatePolicyStmt(p) => p.roles.iter().for_each(|n| add(role_of(n).as_ref())),
                NodeEnum::AlterPolicyStmt(p) => p.roles.iter().for_each(|n| add(role_of(n).as_ref())),
                NodeEnum::AlterOwnerStmt(o) => add(o.newowner.as_ref()),
                NodeEnum::CreateSchemaStmt(c) => add(c.authrole.as_ref()),
                NodeEnum::AlterTableStmt(t) => {
                    for cmd in &t.cmds {
                        if let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node {
                            add(c.newowner.as_ref());
                        }
                    }
                }
                NodeEnum::AlterDefaultPrivilegesStmt(d) => {
                    if let Some(g) = &d.action {
                        g.grantees.iter().for_each(|n| add(role_of(n).as_ref()));
                    }
                    for o in &d.options {
                        if let Some(NodeEnum::DefElem(e)) = &o.node
                            && e.defname == "roles"
                            && let Some(NodeEnum::List(list)) = e.arg.as_ref().and_then(|a| a.node.as_ref())
                        {
                            list.items.iter().for_each(|n| add(role_of(n).as_ref()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    roles
}

/// Roles are cluster-wide, not part of a schema: on the run's own throwaway cluster, the roles
/// the files name are created (NOLOGIN, no privileges) so `GRANT … TO app_reader` builds.
async fn create_roles(session: &Session, texts: &[&str]) -> Result<(), StageError> {
    for role in roles_in(texts) {
        let sql = format!(
            "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            quote_ident(&role)
        );
        session.client().batch_execute(&sql).await.map_err(pg::PgError::from)?;
    }
    Ok(())
}

async fn fill(source: &Source, cx: &StageContext, session: &Session, own_cluster: bool) -> Result<(), StageError> {
    match source {
        Source::Ddl { dirs, file, .. } => {
            let mut sql_files = match file {
                Some(path) => vec![collect::SqlFile {
                    path: path.clone(),
                    relative: display_path(path),
                    role: collect::Role::Schema,
                    bytes: std::fs::read(path).map_err(|e| {
                        StageError::new(ExitCode::Config, format!("cannot read {}: {e}", display_path(path)))
                    })?,
                }],
                None => collect::collect(&cx.project, dirs, &[])?,
            };
            sql_files.retain(|f| f.role == collect::Role::Schema);
            let script = execute::parse(&sql_files)?;
            if own_cluster {
                let texts: Vec<&str> = script.files.iter().map(|f| &*f.source.text).collect();
                create_roles(session, &texts).await?;
            }
            execute::run_transaction(session, &script, &cx.cancel, &mut |_| {}).await?;
            execute::run_deferred(session, &script, &cx.cancel).await
        }
        Source::Migrations(dir) => {
            let migrations = files::discover(&cx.project, dir)?;
            let version: i32 = session
                .client()
                .query_one("SELECT current_setting('server_version_num')::int", &[])
                .await
                .map_err(pg::PgError::from)?
                .get(0);
            let prepared = migrations
                .iter()
                .map(|m| prepare::prepare(&m.up_shown, &m.up_sql, version))
                .collect::<Result<Vec<_>, _>>()?;
            if own_cluster {
                let texts: Vec<&str> = prepared.iter().map(|p| &*p.source.text).collect();
                create_roles(session, &texts).await?;
            }
            for (i, p) in prepared.iter().enumerate() {
                cx.progress(&format!("replaying migration {}/{}", i + 1, prepared.len()));
                for (si, st) in p.statements.iter().enumerate() {
                    let text = p.text(si);
                    if let Err(e) = session.cancellable(&cx.cancel, session.client().batch_execute(text)).await {
                        return Err(match e {
                            pg::PgError::Query(error) => statement_error(&p.source, st.offset, text, &error),
                            other => other.into(),
                        });
                    }
                }
            }
            Ok(())
        }
        Source::Live(_) => Ok(()),
    }
}

fn statement_error(file: &SourceFile, offset: usize, text: &str, error: &tokio_postgres::Error) -> StageError {
    let d = pg::script::error_diagnostic(file, offset, text, error);
    let at = d.location().map(|l| format!("{}:{}:{}: ", l.file, l.line, l.column)).unwrap_or_default();
    StageError::new(ExitCode::Build, format!("{at}{}", pg::describe(error)))
        .with_field("file", file.name.clone())
        .with_diagnostic(d)
}

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A throwaway database on the scratch server, dropped when done.
struct Scratch {
    admin: Session,
    name: String,
    session: Session,
}

impl Scratch {
    async fn create(server: &ConnInfo) -> Result<Scratch, StageError> {
        let admin = pg::connect(server, "confiture-diff").await?;
        let name = format!("confiture_diff_{}_{}", std::process::id(), SCRATCH.fetch_add(1, Ordering::SeqCst));
        admin
            .client()
            .batch_execute(&format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name)))
            .await
            .map_err(pg::PgError::from)?;
        let session = match pg::connect(&server.with_dbname(&name), "confiture-diff").await {
            Ok(s) => s,
            Err(e) => {
                let _ = admin.client().batch_execute(&format!("DROP DATABASE {}", quote_ident(&name))).await;
                return Err(e.into());
            }
        };
        Ok(Scratch { admin, name, session })
    }

    async fn drop(self) {
        drop(self.session);
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        if let Err(e) = self.admin.client().batch_execute(&sql).await {
            tracing::warn!("could not drop scratch database {}: {}", self.name, pg::describe(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn roles_are_read_from_grants_policies_and_owners() {
        let roles = super::roles_in(&[
            "GRANT SELECT ON t TO reader, PUBLIC;\nCREATE POLICY p ON t TO writer USING (true);\nALTER TABLE t OWNER TO owner_role;\nALTER DEFAULT PRIVILEGES FOR ROLE admin GRANT SELECT ON TABLES TO CURRENT_USER;",
        ]);
        assert_eq!(roles.into_iter().collect::<Vec<_>>(), ["admin", "owner_role", "reader", "writer"]);
    }
}
