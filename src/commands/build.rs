//! `confiture build`: a one-stage pipeline running the `build` stage.

use std::path::PathBuf;

use clap::Args;
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;

use super::Format;

pub const HELP: &str = "Examples:
  confiture build --env test                      build the test environment's database
  confiture build --env development --drop-existing
  confiture build --database-url postgresql://localhost/scratch --schema-only
  confiture build --env test --output build/schema.sql

Files run in path order within each schema directory (numeric prefixes compare as numbers:
2_x.sql before 10_x.sql), then seeds (db/seeds/common, then db/seeds/<env>), all in one
transaction: if any statement fails, nothing is left behind and the error shows the file, line
and column. A template of the result is kept on the server, keyed by the schema hash; rebuilding
unchanged files copies it instead (--no-cache to skip).

The database is --database-url if given, else the database of the environment (--env, from
confiture.kdl or db/environments/NAME.yaml; an environment without one is an error). Only when
neither flag is given are CONFITURE_DATABASE_URL and then DATABASE_URL used, and said so.

--drop-existing refuses a protected environment (`protected #true`), any connection string that
reaches one, and a connection string that does not name its database.";

#[derive(Args)]
pub struct BuildArgs {
    /// The environment to build (from confiture.kdl or db/environments/NAME.yaml)
    #[arg(long, short = 'e', env = "CONFITURE_ENV")]
    pub env: Option<String>,
    /// Build into this database instead of the environment's (URL or key=value; wins over --env)
    #[arg(long, value_name = "DSN")]
    pub database_url: Option<String>,
    /// Skip the seed files
    #[arg(long)]
    pub schema_only: bool,
    /// Drop the target database first if it exists (never a protected one)
    #[arg(long)]
    pub drop_existing: bool,
    /// Neither use nor fill the template cache
    #[arg(long)]
    pub no_cache: bool,
    /// Also write the SQL that runs, with a marker before each file
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub async fn build(args: BuildArgs, quiet: bool) -> ExitCode {
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let target = match super::target::resolve(&project, args.env.as_ref(), args.database_url.as_ref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut stage = target.apply(Node::synthetic("stage").arg("build").prop("uses", "build"));
    for (flag, name) in [(args.schema_only, "schema-only"), (args.drop_existing, "drop-existing")] {
        if flag {
            stage = stage.child(Node::synthetic(name).arg_bool(true));
        }
    }
    if args.no_cache {
        stage = stage.child(Node::synthetic("cache").arg_bool(false));
    }
    if let Some(output) = &args.output {
        let absolute = std::path::absolute(output).unwrap_or_else(|_| output.clone());
        stage = stage.child(Node::synthetic("output").arg(absolute.display().to_string()));
    }
    let ephemeral = target.url.is_none()
        && args
            .env
            .as_ref()
            .and_then(|name| project.environment(name).ok())
            .is_some_and(|e| e.database == Some(confiture_engine::project::DatabaseSpec::Ephemeral));
    let printing = super::pipeline::Printing::standard(args.format, quiet);
    let code = super::pipeline::run_stage("build", stage, project.clone(), printing).await;
    if ephemeral && code == ExitCode::Success && !quiet && args.format == Format::Text {
        eprintln!(
            "note: environment `{}` uses an ephemeral database, so it was removed when confiture exited; the build \
             proved the schema applies",
            args.env.as_deref().unwrap_or_default()
        );
    }
    code
}
