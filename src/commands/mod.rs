//! Command-line definitions (clap) and dispatch to one module per command.
//!
//! The argument types deliberately have no `Debug`: they hold connection strings as typed, and
//! nothing should be able to print them whole.

mod anonymize;
mod build;
mod cutover;
mod diff;
mod init;
mod lint;
mod migrate;
mod pipeline;
mod plugin;
mod sync;
mod target;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use confiture_engine::ExitCode;

macro_rules! exit_codes {
    () => {
        "Exit codes (docs/exit-codes.md):
  0  success                      5  invalid configuration or input
  1  findings or a failed step    6  lock held by another process
  2  tracking table absent        7  drift or preflight findings
  3  connection failed            8  irreversible rollback
  4  schema/build error         130  interrupted (Ctrl-C)"
    };
}

macro_rules! top_help {
    () => {
        "Examples:
  confiture init shop                      start a project in ./shop
  confiture build --env test               build the test environment's database
  confiture run pipelines/release.kdl      run a pipeline
  confiture check pipelines/release.kdl    validate it without touching a database

Environment: DATABASE_URL and CONFITURE_DATABASE_URL name a default database; PG* variables fill in
connection parameters as for psql; NO_COLOR turns colours off; RUST_LOG sets log filters."
    };
}

/// PostgreSQL schema lifecycle as pipelines.
#[derive(Parser)]
#[command(
    name = "confiture",
    version,
    about = "PostgreSQL schema lifecycle as pipelines: build, diff, lint, migrate, anonymize, sync",
    long_about = "confiture runs pipelines of schema work against PostgreSQL. A pipeline is a KDL file whose \
                  stages (build, diff, lint, migrate, …) form a graph: independent stages run concurrently, dependents wait.\n\n\
                  The DDL files in db/schema/ are the source of truth; environments in confiture.kdl say \
                  where each database lives.",
    after_help = top_help!(),
    after_long_help = concat!(top_help!(), "\n\n", exit_codes!()),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct Global {
    /// More logging on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr (no progress lines)
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a pipeline
    #[command(after_help = pipeline::run_help())]
    Run(pipeline::RunArgs),
    /// Validate a pipeline without touching a database
    #[command(after_help = "Examples:
  confiture check pipelines/release.kdl
  confiture check pipelines/release.kdl --format json    machine-readable diagnostics

Every problem is reported at once, with its file, line and a stable code (docs/pipelines.md).
Exits 0 when valid, 5 otherwise.")]
    Check(pipeline::CheckArgs),
    /// Show the order stages run in and each stage's resolved settings
    #[command(after_help = "Examples:
  confiture plan pipelines/release.kdl
  confiture plan pipelines/release.kdl --set region=eu --format json

Stages in the same wave have no dependency between them and run concurrently.")]
    Plan(pipeline::PlanArgs),
    /// Print the stage graph as Graphviz DOT or Mermaid
    #[command(after_help = "Examples:
  confiture graph pipelines/release.kdl | dot -Tsvg > release.svg
  confiture graph pipelines/release.kdl --format mermaid")]
    Graph(pipeline::GraphArgs),
    /// Create a project: confiture.kdl, db/schema, db/seeds, db/migrations, pipelines/release.kdl
    #[command(after_help = "Examples:
  confiture init            in the current directory
  confiture init shop       in ./shop (created if needed)

Existing files are kept, never overwritten.")]
    Init(init::InitArgs),
    /// Build an environment's database from db/schema (and seeds)
    #[command(after_help = build::HELP)]
    Build(build::BuildArgs),
    /// Check SQL (migrations, schema files, stdin) for unsafe or sloppy DDL
    #[command(after_help = lint::HELP)]
    Lint(lint::LintArgs),
    /// Compare two schemas (live, DDL files or migrations) and print the SQL between them
    #[command(after_help = diff::HELP)]
    Diff(diff::DiffArgs),
    /// Check an environment's database against its schema files (exit 7 on drift)
    #[command(after_help = diff::DRIFT_HELP)]
    Drift(diff::DriftArgs),
    /// Apply, roll back, check and rehearse versioned migrations (db/migrations)
    #[command(after_help = migrate::HELP)]
    Migrate(migrate::MigrateArgs),
    /// Mask PII with a keyed profile: scan, coverage check, preview, in-place run, leak check
    #[command(after_help = anonymize::HELP)]
    Anonymize(anonymize::AnonymizeArgs),
    /// Copy rows to another database over COPY: one snapshot, parallel, resumable, masked on the way
    #[command(after_help = sync::HELP)]
    Sync(sync::SyncArgs),
    /// Check, test and scaffold WebAssembly plugins (anonymizers and hooks)
    #[command(after_help = plugin::HELP)]
    Plugin(plugin::PluginArgs),
}

/// Output format of commands that print reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--set key=value`.
pub fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// A pipeline file argument.
#[derive(Args)]
pub struct PipelineFile {
    /// The pipeline file (.kdl)
    pub file: PathBuf,
    /// Set a pipeline variable: `--set region=eu` makes `{{ vars.region }}` "eu" (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
}

pub async fn dispatch(cli: Cli) -> ExitCode {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Run(args) => pipeline::run(args, quiet).await,
        Command::Check(args) => pipeline::check(args),
        Command::Plan(args) => pipeline::plan(args),
        Command::Graph(args) => pipeline::graph(args),
        Command::Init(args) => init::init(args),
        Command::Build(args) => build::build(args, quiet).await,
        Command::Migrate(args) => migrate::migrate(args, quiet).await,
        Command::Lint(args) => lint::lint(args, quiet).await,
        Command::Diff(args) => diff::diff(args, quiet).await,
        Command::Drift(args) => diff::drift(args, quiet).await,
        Command::Anonymize(args) => anonymize::anonymize(args, quiet).await,
        Command::Sync(args) => sync::sync(args, quiet).await,
        // Plugins run synchronously; WASI's sync mode drives its own I/O on the runtime from a
        // blocking thread.
        Command::Plugin(args) => {
            tokio::task::spawn_blocking(move || plugin::plugin(args)).await.unwrap_or(ExitCode::Failure)
        }
    }
}
