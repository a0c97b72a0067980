//! Versioned migrations: files on disk (`files`), a tracking table and its advisory lock
//! (`tracking`), statements prepared and classified before anything runs (`prepare`), the session
//! reset between migrations (`session`), concurrent index builds watched (`indexes`), and one
//! module per mode — `up`, `down`, `inspect` (status, verify, current, dry-run), `baseline`,
//! `rehearse` (dry-run-execute, preflight) — sharing one lock helper and one pipelined
//! transaction (`apply`). [`run`] is the entry point; the `migrate` stage (stages/migrate.rs) and
//! `confiture migrate …` only decode settings into a [`Job`]. What confiture.kdl's `migrate { … }`
//! block sets for every stage is in `project`.

mod apply;
mod baseline;
mod compare;
mod down;
pub mod files;
mod indexes;
mod inspect;
pub mod prepare;
pub mod project;
mod rehearse;
pub mod report;
mod session;
pub mod tracking;
mod up;

use std::path::PathBuf;
use std::time::Duration;

use confiture_engine::event::EventKind;
use confiture_engine::pg::{self, ConnInfo, PgError, Session};
use confiture_engine::stage::{DatabaseRef, Outputs, StageContext, StageError};

pub use files::new_stem;
pub use prepare::NO_TRANSACTION;
pub use report::{MigrateOutputs, NewMigration};

use compare::latest;
use files::Migration;
use report::{Counts, State};

/// What a migrate run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Up,
    Down,
    Status,
    Verify,
    Current,
    Baseline,
    DryRun,
    DryRunExecute,
    Preflight,
}

impl Mode {
    pub const ALL: [(&'static str, Mode); 9] = [
        ("up", Mode::Up),
        ("down", Mode::Down),
        ("status", Mode::Status),
        ("verify", Mode::Verify),
        ("current", Mode::Current),
        ("baseline", Mode::Baseline),
        ("dry-run", Mode::DryRun),
        ("dry-run-execute", Mode::DryRunExecute),
        ("preflight", Mode::Preflight),
    ];

    pub fn name(self) -> &'static str {
        Mode::ALL.iter().find(|(_, m)| *m == self).map(|(n, _)| *n).expect("every mode is listed")
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }
}

/// How far `down` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownTo {
    Steps(u64),
    Version(String),
}

/// One migrate run, as the stage's settings decoded it.
#[derive(Debug)]
pub struct Job {
    pub mode: Mode,
    /// The database migrated (every mode but `preflight`, which needs `against`).
    pub database: Option<DatabaseRef>,
    pub dir: PathBuf,
    pub table: tracking::Table,
    /// `up` and its dry runs: stop after this version.
    pub target: Option<String>,
    pub down: DownTo,
    /// `baseline`: mark everything up to this version as applied.
    pub through: Option<String>,
    /// `preflight`: the database to rehearse on.
    pub against: Option<DatabaseRef>,
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
}

/// Before each migration runs (up or down, with its SQL): hooks may deny it.
pub const BEFORE_MIGRATION: EventKind = EventKind("before-migration");
/// After a migration ran, with `execution_ms`.
pub const AFTER_MIGRATION: EventKind = EventKind("after-migration");
/// When a migration failed, with the `error`.
pub const MIGRATION_FAILED: EventKind = EventKind("migration-failed");

/// How long `up`, `down`, `baseline` and the rehearsals wait for another runner without
/// `lock-timeout`.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Everything a mode works with.
struct Ctx<'a> {
    job: &'a Job,
    cx: &'a StageContext,
    session: Session,
    info: ConnInfo,
    migrations: Vec<Migration>,
    server_version: i32,
    out: MigrateOutputs,
}

/// Run `job` against its database: the one place that connects, reads the migrations and the
/// tracking table, and turns what a mode did into the stage's outputs.
pub async fn run(job: &Job, cx: &StageContext) -> Result<Outputs, StageError> {
    let database = match job.mode {
        Mode::Preflight => job.against.as_ref(),
        _ => job.database.as_ref(),
    }
    .expect("configure requires a database for every mode");
    let info = cx.database(database).await?;
    let migrations = match job.mode {
        Mode::Current => Vec::new(),
        _ => files::discover(&cx.project, &cx.project.resolve(&job.dir))?,
    };
    let session = pg::connect(&info, &format!("confiture migrate {}", job.mode.name())).await?;
    let server_version: i32 = session
        .client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(PgError::from)?
        .get(0);
    let settings = session::settings(job);
    if !settings.is_empty() {
        session.client().batch_execute(&settings).await.map_err(PgError::from)?;
    }
    let table_exists = tracking::exists(&session, &job.table).await?;
    let out = MigrateOutputs {
        mode: job.mode.name().into(),
        database: info.to_string(),
        tracking_table: job.table.to_string(),
        table_exists,
        ..MigrateOutputs::default()
    };
    let mut ctx = Ctx { job, cx, session, info, migrations, server_version, out };
    let result = match job.mode {
        Mode::Up => up::up(&mut ctx).await,
        Mode::Down => down::down(&mut ctx).await,
        Mode::Status | Mode::Verify | Mode::Current => inspect::inspect(&mut ctx).await,
        Mode::Baseline => baseline::baseline(&mut ctx).await,
        Mode::DryRun => inspect::dry_run(&mut ctx).await,
        Mode::DryRunExecute | Mode::Preflight => rehearse::rehearse(&mut ctx).await,
    };
    finish(&mut ctx).await;
    let mut outputs = Outputs::default();
    outputs.extend_from(&ctx.out);
    outputs.set_dsn("database", &ctx.info);
    match result {
        Ok(()) => Ok(outputs),
        Err(e) => Err(e.with_outputs(outputs)),
    }
}

/// Counts and `current` from the report rows, and the latest applied version from the table.
async fn finish(ctx: &mut Ctx<'_>) {
    let mut counts = Counts::default();
    for m in &ctx.out.migrations {
        match m.state {
            State::Applied | State::Baselined => counts.applied += 1,
            State::Pending | State::WouldRun | State::NotRun => counts.pending += 1,
            State::Modified => counts.modified += 1,
            State::MissingFromDisk => counts.missing_from_disk += 1,
            State::Ran => {
                counts.ran += 1;
                if !matches!(ctx.job.mode, Mode::DryRunExecute | Mode::Preflight) {
                    counts.applied += 1;
                }
            }
            State::Rehearsed => {
                counts.ran += 1;
                counts.pending += 1;
            }
            State::RolledBack => {
                counts.ran += 1;
                counts.pending += 1;
            }
            State::Failed => {
                counts.failed += 1;
                counts.pending += 1;
            }
        }
    }
    ctx.out.counts = counts;
    if matches!(ctx.job.mode, Mode::DryRunExecute | Mode::Preflight | Mode::DryRun)
        || !tracking::exists(&ctx.session, &ctx.job.table).await.unwrap_or(false)
    {
        ctx.out.current = latest(&ctx.out.migrations);
        return;
    }
    ctx.out.current = match tracking::applied(&ctx.session, &ctx.job.table).await {
        Ok(rows) => rows.last().map(|r| r.version.clone()),
        Err(_) => latest(&ctx.out.migrations),
    };
}
