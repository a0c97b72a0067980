//! `confiture migrate schema-to-schema --strategy fdw`: a one-stage pipeline running the
//! `fdw-cutover` stage.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;

use super::Format;
use super::pipeline::Printing;

pub const HELP: &str = "Examples:
  confiture migrate schema-to-schema --strategy fdw --from production --to production_v2 --mapping db/cutover.kdl --dry-run
  confiture migrate schema-to-schema --strategy fdw --from production --to production_v2 --mapping db/cutover.kdl
  confiture migrate schema-to-schema --strategy fdw --from production --to production_v2 status
  confiture migrate schema-to-schema --strategy fdw --from production --to production_v2 copy      one phase
  confiture migrate schema-to-schema --strategy fdw --from production --to production_v2 --keep    stop after the switch
  confiture migrate schema-to-schema --strategy fdw --from production --to production_v2 rollback  back to OLD, NEW's writes included

Phases, in order (without a phase, all of them but rollback and status):
  plan      map OLD's tables and columns onto NEW's (same names, or the mapping); refuse what would
            lose data or fail half way (exit 5, every problem listed)
  setup     on NEW: a postgres_fdw server from OLD's connection parameters, a user mapping (its
            password is never printed), OLD's tables as foreign tables
  capture   on OLD: a change log and row triggers on every migrated table
  copy      the bulk copy at one snapshot: COPY streams (large tables) or INSERT … SELECT through
            the foreign tables (small ones); NEW's secondary indexes after the load
  catch-up  replay the change log in batches until fewer than --max-lag changes wait
  verify    counts and checksums of every table on both sides; differences narrowed to key ranges (exit 7)
  cutover   freeze writes on OLD (LOCK TABLE … IN EXCLUSIVE MODE, --lock-timeout per attempt,
            retried), drain, sequences past OLD's, the `cutover` event (hooks) and the PgBouncer
            switch; afterwards OLD refuses writes to the migrated tables
  cleanup   drop the triggers, change logs, the refusal, the foreign server and schemas
  rollback  before the switch: remove what setup and capture made. After it: replay NEW's writes
            into OLD and switch back
  status    where the run stands, and the lag

Every phase records itself on NEW (schema confiture_cutover): run the same command again after a
kill and it goes on where it stopped. NEW gets its schema from db/schema when it has no tables.
See docs/fdw-cutover.md.

Exit codes: 0 done, 1 a step failed, 3 cannot connect, 5 refused plan or options, 6 another run
holds NEW or the tables stayed locked, 7 verify found a difference, 130 interrupted (run again to resume).";

#[derive(Clone, Copy, ValueEnum)]
pub enum Strategy {
    /// postgres_fdw, change capture and a switch (the only one so far)
    Fdw,
}

#[derive(Args)]
pub struct SchemaToSchemaArgs {
    /// One phase (default: plan, setup, capture, copy, catch-up, verify, cutover, cleanup)
    #[arg(value_name = "PHASE", value_parser = ["plan", "setup", "capture", "copy", "catch-up", "verify", "cutover", "rollback", "cleanup", "status"])]
    pub phase: Option<String>,
    #[arg(long, value_enum, default_value = "fdw")]
    pub strategy: Strategy,
    /// The database the application uses now: an environment or a connection string
    #[arg(long, value_name = "ENV|DSN")]
    pub from: String,
    /// The database with the new schema (built from --schema when it has no tables)
    #[arg(long, value_name = "ENV|DSN")]
    pub to: String,
    /// How OLD's tables and columns map onto NEW's (KDL; see docs/fdw-cutover.md)
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Where NEW's schema comes from when it is empty
    #[arg(long, value_name = "DIR", default_value = "db/schema")]
    pub schema: PathBuf,
    /// Parallel copy workers (default: the machine's cores)
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Rows per range of a large table's copy (ranges are copied in parallel and resumed whole)
    #[arg(long, value_name = "ROWS", default_value_t = 250_000)]
    pub range_rows: u64,
    /// Change-log entries per catch-up batch
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch: u64,
    /// Catch-up stops, and cutover may start, below this many waiting changes
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_lag: u64,
    /// lock_timeout of each attempt to freeze writes (e.g. 500ms)
    #[arg(long, value_name = "DURATION", default_value = "500ms")]
    pub lock_timeout: String,
    /// Attempts to freeze writes before giving up (exit 6)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub lock_attempts: u64,
    /// Stop after the switch (no cleanup), so that rollback stays possible
    #[arg(long)]
    pub keep: bool,
    /// PgBouncer's admin console, to switch applications connected through it
    #[arg(long, value_name = "DSN", requires_all = ["pgbouncer_database", "pgbouncer_config"])]
    pub pgbouncer_admin: Option<String>,
    /// The PgBouncer database applications use
    #[arg(long, value_name = "NAME")]
    pub pgbouncer_database: Option<String>,
    /// pgbouncer.ini, whose [databases] entry is repointed
    #[arg(long, value_name = "FILE")]
    pub pgbouncer_config: Option<PathBuf>,
    /// Print the plan; write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub async fn schema_to_schema(args: SchemaToSchemaArgs, quiet: bool) -> ExitCode {
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Strategy::Fdw = args.strategy;
    let text = |name: &str, value: &str| Node::synthetic(name).arg(value);
    let int = |name: &str, value: u64| Node::synthetic(name).arg_int(i128::from(value));
    let mut stage = Node::synthetic("stage").arg("schema-to-schema").prop("uses", "fdw-cutover");
    stage = stage.child(text("from", &args.from)).child(text("to", &args.to));
    if let Some(m) = &args.mapping {
        stage = stage.child(text("mapping", &m.display().to_string()));
    }
    if let Some(p) = &args.phase {
        stage = stage.child(text("phase", p));
    }
    stage = stage.child(text("schema", &args.schema.display().to_string()));
    if let Some(j) = args.jobs {
        stage = stage.child(int("jobs", j as u64));
    }
    stage = stage
        .child(int("range-rows", args.range_rows))
        .child(int("batch", args.batch))
        .child(int("max-lag", args.max_lag))
        .child(text("lock-timeout", &args.lock_timeout))
        .child(int("lock-attempts", args.lock_attempts));
    if args.keep {
        stage = stage.child(Node::synthetic("keep").arg_bool(true));
    }
    if let (Some(admin), Some(db), Some(config)) =
        (&args.pgbouncer_admin, &args.pgbouncer_database, &args.pgbouncer_config)
    {
        stage = stage.child(
            Node::synthetic("pgbouncer")
                .prop("admin", admin)
                .prop("database", db)
                .prop("config", config.display().to_string()),
        );
    }
    if args.dry_run {
        stage = stage.child(Node::synthetic("dry-run").arg_bool(true));
    }
    super::pipeline::run_stage(
        "fdw-cutover",
        stage,
        project,
        Printing { format: args.format, quiet, text: crate::render::print_run_report },
    )
    .await
}
