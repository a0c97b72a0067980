//! Which database a single-stage command works on: `--database-url` if given, else the database
//! of the environment named by `--env` (an environment without one is an error, never a reason
//! to look elsewhere), else — only when neither flag is given — `CONFITURE_DATABASE_URL`, then
//! `DATABASE_URL`, announced on stderr. The choice is shown without the password.

use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;
use confiture_engine::project::{DatabaseSpec, Project};

/// The stage settings that name the target: `env` and/or `database`.
pub struct Target {
    pub env: Option<String>,
    pub url: Option<String>,
}

impl Target {
    /// Add `env "…"` / `database "…"` children to a stage node.
    pub fn apply(&self, mut stage: Node) -> Node {
        if let Some(env) = &self.env {
            stage = stage.child(Node::synthetic("env").arg(env));
        }
        if let Some(url) = &self.url {
            stage = stage.child(Node::synthetic("database").arg(url));
        }
        stage
    }
}

fn fallback() -> Option<(&'static str, String)> {
    ["CONFITURE_DATABASE_URL", "DATABASE_URL"]
        .into_iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()).map(|s| (v, s)))
}

/// Resolve the target; on failure the error is printed and the exit code returned.
pub fn resolve(project: &Project, env: Option<&String>, url: Option<&String>) -> Result<Target, ExitCode> {
    let environment = match env {
        Some(name) => match project.environment(name) {
            Ok(e) => Some(e),
            Err(e) => {
                let names = project.environment_names();
                crate::render::error(if names.is_empty() {
                    format!("{e}: no environments are declared (confiture.kdl or db/environments/*.yaml)")
                } else {
                    format!("{e} (declared: {})", names.join(", "))
                });
                return Err(ExitCode::Config);
            }
        },
        None => None,
    };
    // An explicit --database-url wins over the environment's database.
    if let Some(u) = url {
        check_dsn(u, "--database-url")?;
        tracing::info!("target database: {} (from --database-url)", describe(u));
        return Ok(Target { env: env.cloned(), url: Some(u.clone()) });
    }
    if let Some(e) = &environment {
        return match &e.database {
            Some(db) => {
                let shown = match db {
                    DatabaseSpec::Url(u) => describe(u),
                    DatabaseSpec::Ephemeral => "an ephemeral database".into(),
                };
                tracing::info!("target database: {shown} (environment `{}`)", e.name);
                Ok(Target { env: env.cloned(), url: None })
            }
            // Never fall back to DATABASE_URL here: the user named an environment, and a
            // variable left over in the shell may point anywhere (staging, production).
            None => {
                crate::render::error(format!(
                    "environment `{}` has no database: declare one in {} (`database url=\"…\"` or `database \
                     ephemeral=#true` inside `environment \"{}\"`), or pass --database-url; DATABASE_URL is not used \
                     when --env is given",
                    e.name,
                    confiture_engine::project::display_path(&e.origin),
                    e.name
                ));
                Err(ExitCode::Config)
            }
        };
    }
    match fallback() {
        Some((var, u)) => {
            check_dsn(&u, var)?;
            // Said at the default log level: the user did not name this database.
            tracing::warn!("target database: {} (from {var}; no --env or --database-url given)", describe(&u));
            Ok(Target { env: None, url: Some(u) })
        }
        None => {
            let names = project.environment_names();
            crate::render::error(if names.is_empty() {
                "no database: pass --env NAME or --database-url DSN, or set CONFITURE_DATABASE_URL or DATABASE_URL (no \
                 environments are declared)"
                    .to_string()
            } else {
                format!(
                    "no database: pass --env NAME (declared: {}) or --database-url DSN, or set CONFITURE_DATABASE_URL or \
                     DATABASE_URL",
                    names.join(", ")
                )
            });
            Err(ExitCode::Config)
        }
    }
}

fn check_dsn(u: &str, source: &str) -> Result<(), ExitCode> {
    if confiture_engine::stage::looks_like_dsn(u) {
        return Ok(());
    }
    crate::render::error(format!(
        "`{}` (from {source}) is not a connection string (postgresql://… or key=value)",
        confiture_engine::pg::dsn::redact(u)
    ));
    Err(ExitCode::Config)
}

fn describe(url: &str) -> String {
    confiture_engine::pg::ConnInfo::parse(url)
        .map(|c| c.to_string())
        .unwrap_or_else(|_| confiture_engine::pg::dsn::redact(url))
}

/// The project of the working directory, or the diagnostics that stop loading it.
pub fn project() -> Result<std::sync::Arc<Project>, ExitCode> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    Project::discover(&cwd).map(std::sync::Arc::new).map_err(|d| {
        crate::render::eprint_diagnostics(&d);
        ExitCode::Config
    })
}
