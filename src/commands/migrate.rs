//! `confiture migrate …`: one-stage pipelines running the `migrate` stage, plus `migrate new`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;

use super::Format;

pub const HELP: &str = "Examples:
  confiture migrate new add_users               db/migrations/20260101120000_add_users.{up,down}.sql
  confiture migrate generate --name add_users   the same, written from the diff to db/schema
  confiture migrate status --env production     what is applied, pending, modified
  confiture migrate up --env production --lock-timeout 5s
  confiture migrate up --dry-run                what would run, with the locks each statement takes
  confiture migrate down --to 20260101120000    roll back everything after that version, atomically
  confiture migrate preflight --against postgresql://localhost/scratch

Each migration runs in its own transaction together with its row in the tracking table
(public.confiture_migrations), so it is applied exactly once or not at all. Runners take an
advisory lock: a second `up` waits (up to --lock-timeout), then exits 6 naming the holder.

The database is --database-url, else the environment's (--env; one without a database is an
error), else — when neither is given — CONFITURE_DATABASE_URL, else DATABASE_URL. Exit codes: 0 done/up to date, 1 failed or pending (status), 2 no tracking
table, 5 bad files or settings, 6 lock held, 7 modified files or failed rehearsal, 8 no .down.sql.";

#[derive(Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: MigrateCommand,
}

/// Where and how: shared by every subcommand that touches a database.
#[derive(Args, Clone)]
pub struct Common {
    /// The environment whose database to use (confiture.kdl or db/environments/NAME.yaml)
    #[arg(long, short = 'e', env = "CONFITURE_ENV", global = true)]
    pub env: Option<String>,
    /// The database (URL or key=value); overrides --env
    #[arg(long, value_name = "DSN", global = true)]
    pub database_url: Option<String>,
    /// The migrations directory [default: `migrations` in confiture.kdl's `migrate { }`, else
    /// db/migrations]
    #[arg(long, value_name = "DIR", global = true)]
    pub migrations: Option<PathBuf>,
    /// The tracking table, `table` or `schema.table` [default: `tracking-table` in confiture.kdl's
    /// `migrate { }`, else public.confiture_migrations]
    #[arg(long, value_name = "TABLE", global = true)]
    pub tracking_table: Option<String>,
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub format: Format,
}

#[derive(Subcommand)]
pub enum MigrateCommand {
    /// Move the data into a new schema in another database while writes go on (postgres_fdw,
    /// change capture, verify, a short freeze, switch, rollback)
    #[command(name = "schema-to-schema", after_help = super::cutover::HELP)]
    SchemaToSchema(super::cutover::SchemaToSchemaArgs),
    /// Apply pending migrations
    Up {
        /// Stop after this version
        #[arg(long, value_name = "VERSION")]
        target: Option<String>,
        /// How long to wait for another runner's lock, and PostgreSQL's lock_timeout (e.g. 5s)
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        lock_timeout: Option<Duration>,
        /// PostgreSQL's statement_timeout for the migrations (e.g. 10m)
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        statement_timeout: Option<Duration>,
        /// List what would run, statement by statement, with the locks each takes; change nothing
        #[arg(long, conflicts_with = "dry_run_execute")]
        dry_run: bool,
        /// Run everything pending inside one transaction, report each migration, roll back
        #[arg(long)]
        dry_run_execute: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Roll back the last migration (or --steps N, or everything after --to V), atomically
    Down {
        #[arg(long, value_name = "N", conflicts_with = "to")]
        steps: Option<u64>,
        /// Keep this version and roll back everything after it
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        lock_timeout: Option<Duration>,
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        statement_timeout: Option<Duration>,
        #[command(flatten)]
        common: Common,
    },
    /// Show applied, pending, modified and missing migrations (exit 1 if any are pending)
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Print the latest applied version
    Current {
        #[command(flatten)]
        common: Common,
    },
    /// Check that applied migrations still match their files (exit 7 if not)
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Mark migrations up to VERSION as applied without running them (to adopt an existing database)
    Baseline {
        #[arg(long, value_name = "VERSION")]
        through: String,
        #[command(flatten)]
        common: Common,
    },
    /// Rehearse pending migrations on another (scratch) database and roll back (exit 7 on failures)
    Preflight {
        /// The database to rehearse on
        #[arg(long, value_name = "DSN")]
        against: String,
        #[arg(long, value_name = "VERSION")]
        target: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Write the next migration: the diff from the migration chain to the schema files
    #[command(after_help = "Examples:
  confiture migrate generate --name add_orders            db/migrations/{timestamp}_add_orders.{up,down}.sql
  confiture migrate generate --name add_orders --env staging --dev-url postgresql://localhost/postgres
  confiture migrate generate --name add_orders --concurrently

Replays db/migrations into a throwaway database, builds db/schema (of --env, else the default
environment) into another, and writes the statements between them as a new .up.sql, with the way
back as its .down.sql. Hazards are comments; renames appear as a drop and an add — review before
committing. Writes nothing when there is no difference. With --concurrently, indexes on tables
that already exist are built by a second pair ({timestamp+1}_NAME_indexes, marked
`-- confiture:no-transaction`) with CREATE INDEX CONCURRENTLY, as `confiture lint` asks.")]
    Generate {
        /// What the migration does, e.g. add_orders (becomes snake_case)
        #[arg(long)]
        name: String,
        /// The environment whose schema files are the target [default: `default`]
        #[arg(long, short = 'e', value_name = "ENV", env = "CONFITURE_ENV")]
        env: Option<String>,
        /// The migrations directory [default: `migrations` in confiture.kdl's `migrate { }`, else
        /// db/migrations]
        #[arg(long, value_name = "DIR")]
        migrations: Option<PathBuf>,
        /// A server to build on, instead of an ephemeral one
        #[arg(long, value_name = "DSN")]
        dev_url: Option<String>,
        /// Put index builds on existing tables in a second, non-transactional migration, as
        /// CREATE INDEX CONCURRENTLY (writes go on while they build)
        #[arg(long)]
        concurrently: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Create an empty, timestamped pair of migration files
    New {
        /// What the migration does, e.g. add_users (becomes snake_case)
        name: String,
        /// The migrations directory [default: `migrations` in confiture.kdl's `migrate { }`, else
        /// db/migrations]
        #[arg(long, value_name = "DIR")]
        migrations: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

pub async fn migrate(args: MigrateArgs, quiet: bool) -> ExitCode {
    let mut stage = Node::synthetic("stage").arg("migrate").prop("uses", "migrate");
    let text = |name: &str, value: &str| Node::synthetic(name).arg(value);
    let duration = |name: &str, d: Duration| Node::synthetic(name).arg(format!("{}ms", d.as_millis()));
    let (mode, common) = match args.command {
        MigrateCommand::SchemaToSchema(a) => return super::cutover::schema_to_schema(a, quiet).await,
        MigrateCommand::New { name, migrations, format } => return new(&name, migrations.as_deref(), format),
        MigrateCommand::Generate { name, env, migrations, dev_url, concurrently, format } => {
            let options = super::diff::Generate { env, migrations, dev_url, concurrently };
            return super::diff::generate(&name, options, format, quiet).await;
        }
        MigrateCommand::Up { target, lock_timeout, statement_timeout, dry_run, dry_run_execute, common } => {
            if let Some(t) = target {
                stage = stage.child(text("target", &t));
            }
            if let Some(d) = lock_timeout {
                stage = stage.child(duration("lock-timeout", d));
            }
            if let Some(d) = statement_timeout {
                stage = stage.child(duration("statement-timeout", d));
            }
            let mode = if dry_run {
                "dry-run"
            } else if dry_run_execute {
                "dry-run-execute"
            } else {
                "up"
            };
            (mode, common)
        }
        MigrateCommand::Down { steps, to, lock_timeout, statement_timeout, common } => {
            if let Some(n) = steps {
                stage = stage.child(Node::synthetic("steps").arg_int(i128::from(n)));
            }
            if let Some(v) = to {
                stage = stage.child(text("to", &v));
            }
            if let Some(d) = lock_timeout {
                stage = stage.child(duration("lock-timeout", d));
            }
            if let Some(d) = statement_timeout {
                stage = stage.child(duration("statement-timeout", d));
            }
            ("down", common)
        }
        MigrateCommand::Status { common } => ("status", common),
        MigrateCommand::Current { common } => ("current", common),
        MigrateCommand::Verify { common } => ("verify", common),
        MigrateCommand::Baseline { through, common } => {
            stage = stage.child(text("through", &through));
            ("baseline", common)
        }
        MigrateCommand::Preflight { against, target, common } => {
            if !confiture_engine::stage::looks_like_dsn(&against) {
                crate::render::error("--against takes a connection string (postgresql://… or key=value)");
                return ExitCode::Config;
            }
            stage = stage.child(text("against", &against));
            if let Some(t) = target {
                stage = stage.child(text("target", &t));
            }
            ("preflight", common)
        }
    };
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    // Without the flags, confiture.kdl's `migrate { … }` (then the built-in defaults) decide.
    stage = stage.child(text("mode", mode));
    if let Some(dir) = &common.migrations {
        stage = stage.child(text("migrations", &dir.display().to_string()));
    }
    if let Some(table) = &common.tracking_table {
        stage = stage.child(text("tracking-table", table));
    }
    if mode != "preflight" || common.env.is_some() || common.database_url.is_some() {
        match super::target::resolve(&project, common.env.as_ref(), common.database_url.as_ref()) {
            Ok(t) => stage = t.apply(stage),
            Err(code) => return code,
        }
    }
    let printing = if mode == "current" && common.format == Format::Text {
        super::pipeline::Printing { format: common.format, quiet: true, text: print_current }
    } else {
        super::pipeline::Printing::standard(common.format, quiet)
    };
    super::pipeline::run_stage("migrate", stage, project, printing).await
}

fn new(name: &str, dir: Option<&std::path::Path>, format: Format) -> ExitCode {
    let Some(stem) = confiture_plugins::migrate::new_stem(name, std::time::SystemTime::now()) else {
        crate::render::error(format!("`{name}` has no letters or digits to name a migration with"));
        return ExitCode::Config;
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let project = confiture_engine::project::Project::discover(&cwd).ok();
    let dir = dir
        .map(std::path::Path::to_path_buf)
        .or_else(|| project.as_ref().and_then(confiture_plugins::migrate::project::migrations_dir))
        .unwrap_or_else(|| PathBuf::from("db/migrations"));
    let root = project.map(|p| p.root).unwrap_or(cwd);
    let dir = if dir.is_absolute() { dir } else { root.join(dir) };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        crate::render::error(format!("cannot create {}: {e}", dir.display()));
        return ExitCode::Config;
    }
    let up = dir.join(format!("{stem}.up.sql"));
    let down = dir.join(format!("{stem}.down.sql"));
    let header = |what: &str| {
        format!(
            "-- {stem}: {what}\n-- Runs in one transaction with its tracking row. For statements that cannot run in a\n-- \
             transaction (CREATE INDEX CONCURRENTLY, …), make the first line: -- confiture:no-transaction\n\n"
        )
    };
    for (path, content) in [(&up, header("apply")), (&down, header("undo what the .up.sql does"))] {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()));
        if let Err(e) = created {
            crate::render::error(format!("cannot create {}: {e}", path.display()));
            return ExitCode::Config;
        }
    }
    let shown = |p: &std::path::Path| confiture_engine::project::display_path(p);
    match format {
        Format::Json => crate::render::print_json(&confiture_plugins::migrate::NewMigration {
            schema_version: 1,
            version: stem.split('_').next().unwrap_or_default().to_string(),
            up: shown(&up),
            down: shown(&down),
        }),
        Format::Text => {
            outln!("created {}", shown(&up));
            outln!("created {}", shown(&down));
        }
    }
    ExitCode::Success
}

/// `migrate current`: the bare version (nothing when nothing is applied).
fn print_current(report: &confiture_engine::report::RunReport) {
    if let Some(serde_json::Value::String(v)) = report.stages.first().and_then(|s| s.outputs.get("current")) {
        outln!("{v}");
    }
}
