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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use confiture_engine::diag::Diagnostics;
use confiture_engine::kdl::decode::Fields;
use confiture_engine::kdl::node::{Node, Text};
use confiture_engine::project::{DirSpec, Environment};
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Stage, StageContext, StageError, StageType};
use serde_json::json;

use crate::build::{self, Options, collect};

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
                build::write_output(&path, &files, &hash)?;
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
        let options = Options { drop_existing: self.drop_existing, cache: self.cache };
        let built = build::build_into(cx, &target, &dbname, &files, &hash, options).await?;

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
