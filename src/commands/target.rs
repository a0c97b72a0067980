//! Which database a single-stage command works on: `--database-url`, else the environment's
//! database (`--env`), else `CONFITURE_DATABASE_URL`, else `DATABASE_URL`. The choice is logged,
//! without the password.

use confiture_engine::ExitCode;
use confiture_engine::pipeline::node::Node;
use confiture_engine::project::Project;

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
    if let Some(name) = env
        && let Err(e) = project.environment(name)
    {
        let names = project.environment_names();
        crate::render::error(if names.is_empty() {
            format!("{e}: no environments are declared (confiture.kdl or db/environments/*.yaml)")
        } else {
            format!("{e} (declared: {})", names.join(", "))
        });
        return Err(ExitCode::Config);
    }
    let env_database = env.and_then(|name| project.environment(name).ok()).and_then(|e| e.database);
    let (url, source) = match (url, &env_database) {
        (Some(url), _) => (Some(url.clone()), "--database-url".to_string()),
        (None, Some(db)) => {
            let shown = match db {
                confiture_engine::project::DatabaseSpec::Url(u) => describe(u),
                confiture_engine::project::DatabaseSpec::Ephemeral => "an ephemeral database".into(),
            };
            tracing::info!("target database: {shown} (environment `{}`)", env.map(String::as_str).unwrap_or(""));
            return Ok(Target { env: env.cloned(), url: None });
        }
        (None, None) => match fallback() {
            Some((var, url)) => (Some(url), var.to_string()),
            None => (None, String::new()),
        },
    };
    match &url {
        Some(u) if !confiture_engine::stage::looks_like_dsn(u) => {
            crate::render::error(format!(
                "`{}` (from {source}) is not a connection string (postgresql://… or key=value)",
                confiture_engine::pg::dsn::redact(u)
            ));
            Err(ExitCode::Config)
        }
        Some(u) => {
            tracing::info!("target database: {} (from {source})", describe(u));
            Ok(Target { env: env.cloned(), url })
        }
        None => {
            let names = project.environment_names();
            crate::render::error(match (env, names.is_empty()) {
                (Some(e), _) if project.environment(e).is_ok() => format!(
                    "environment `{e}` has no database: give it one in confiture.kdl, or pass --database-url, or set \
                     CONFITURE_DATABASE_URL or DATABASE_URL"
                ),
                (_, true) => "no database: pass --env NAME or --database-url DSN, or set CONFITURE_DATABASE_URL or \
                              DATABASE_URL (no environments are declared)"
                    .to_string(),
                (_, false) => format!(
                    "no database: pass --env NAME (declared: {}) or --database-url DSN, or set CONFITURE_DATABASE_URL or \
                     DATABASE_URL",
                    names.join(", ")
                ),
            });
            Err(ExitCode::Config)
        }
    }
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
