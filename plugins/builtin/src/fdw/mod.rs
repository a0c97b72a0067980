//! `fdw-cutover`: move a database to a new schema in a new database while the application keeps
//! writing, then switch (docs/fdw-cutover.md).
//!
//! - [`mapping`]: the KDL mapping file (renamed tables and columns, computed columns, split
//!   tables, dropped columns and tables);
//! - [`plan`]: both catalogs and the mapping turned into, per NEW table, the SQL that reads its
//!   rows from OLD, and every reason to refuse (exit 5);
//! - [`state`]: the `confiture_cutover` schema on NEW (the run, its phases, copied ranges) and the
//!   `confiture_capture` schema on OLD (the change log, its triggers, the write refusal);
//! - [`setup`]: the `postgres_fdw` server, user mapping and foreign schema on NEW;
//! - [`copy`]: the bulk copy at one snapshot (COPY streams, or `INSERT … SELECT` through the
//!   foreign tables for small tables);
//! - [`replay`]: catch-up — the change log replayed in batches, idempotently, forwards (OLD →
//!   NEW) and, after a cutover, backwards for a rollback;
//! - [`verify`]: counts and checksums of the mapped columns on both sides, mismatches narrowed
//!   to key ranges;
//! - [`cutover`]: the write freeze, the drain, sequences, the switch (event, PgBouncer), rollback;
//! - [`pgbouncer`]: PAUSE, repoint, RELOAD, RESUME on PgBouncer's admin console;
//! - [`run`]: the phases in order, each resumable, and `status`.

pub mod copy;
pub mod cutover;
pub mod mapping;
pub mod pgbouncer;
pub mod plan;
pub mod replay;
pub mod run;
pub mod setup;
pub mod state;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use confiture_engine::event::EventKind;
use serde::{Deserialize, Serialize};

/// A session in the text forms both sides print values in (so that checksums compare).
pub async fn session(
    info: &confiture_engine::pg::ConnInfo,
    what: &str,
) -> Result<confiture_engine::pg::Session, confiture_engine::stage::StageError> {
    let s = confiture_engine::pg::connect(info, what).await?;
    s.client()
        .batch_execute(&crate::anonymize::verify::FORMS.replace("SET LOCAL", "SET"))
        .await
        .map_err(confiture_engine::pg::PgError::from)?;
    Ok(s)
}

/// The switch: hooks attach to it (details: `run`, `from`, `to`).
pub const CUTOVER: EventKind = EventKind("cutover");
/// Each phase done (details: `phase`).
pub const AFTER_PHASE: EventKind = EventKind("after-cutover-phase");

/// The phases, in the order a full run takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Plan,
    Setup,
    Capture,
    Copy,
    CatchUp,
    Verify,
    Cutover,
    Rollback,
    Cleanup,
    Status,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Plan,
        Phase::Setup,
        Phase::Capture,
        Phase::Copy,
        Phase::CatchUp,
        Phase::Verify,
        Phase::Cutover,
        Phase::Rollback,
        Phase::Cleanup,
        Phase::Status,
    ];

    /// What a run without a phase does.
    pub const FORWARD: [Phase; 8] = [
        Phase::Plan,
        Phase::Setup,
        Phase::Capture,
        Phase::Copy,
        Phase::CatchUp,
        Phase::Verify,
        Phase::Cutover,
        Phase::Cleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Setup => "setup",
            Phase::Capture => "capture",
            Phase::Copy => "copy",
            Phase::CatchUp => "catch-up",
            Phase::Verify => "verify",
            Phase::Cutover => "cutover",
            Phase::Rollback => "rollback",
            Phase::Cleanup => "cleanup",
            Phase::Status => "status",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// PgBouncer in front of the application: the built-in switch.
#[derive(Clone, Debug)]
pub struct Bouncer {
    /// The admin console (`postgresql://admin@127.0.0.1:6432/pgbouncer`).
    pub admin: String,
    /// The database name applications connect to through PgBouncer.
    pub database: String,
    /// pgbouncer.ini, whose `[databases]` entry is repointed.
    pub config: PathBuf,
}

/// How a cutover runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The phases to run, in order (a full run: [`Phase::FORWARD`]).
    pub phases: Vec<Phase>,
    /// The mapping file (none: same names everywhere).
    pub mapping: Option<PathBuf>,
    /// Where NEW's schema comes from when it has no tables.
    pub schema_dir: PathBuf,
    pub jobs: usize,
    /// Tables with fewer estimated rows go through the foreign tables (`INSERT … SELECT`).
    pub small_rows: u64,
    /// Rows per range of a large table's copy.
    pub range_rows: u64,
    /// Change-log rows per catch-up batch.
    pub batch: i64,
    /// Catch-up stops (and cutover may start) when fewer changes than this are waiting.
    pub max_lag: i64,
    /// `lock_timeout` of each attempt to freeze writes, and how many attempts.
    pub lock_timeout: Duration,
    pub lock_attempts: u32,
    pub bouncer: Option<Bouncer>,
    pub dry_run: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            phases: Phase::FORWARD.to_vec(),
            mapping: None,
            schema_dir: PathBuf::from("db/schema"),
            jobs: crate::sync::default_jobs(),
            small_rows: 10_000,
            range_rows: 250_000,
            batch: 10_000,
            max_lag: 1_000,
            lock_timeout: Duration::from_millis(500),
            lock_attempts: 20,
            bouncer: None,
            dry_run: false,
        }
    }
}

/// What a cutover run did: the stage's outputs (`schemas/stages/fdw-cutover.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "outputs of an fdw-cutover stage")]
pub struct CutoverReport {
    /// The run's id (in NEW's `confiture_cutover.runs`).
    pub run: String,
    /// OLD and NEW as `host:port/dbname` (no password).
    pub from: String,
    pub to: String,
    pub dry_run: bool,
    /// The phases this invocation ran, in order.
    pub phases: Vec<PhaseReport>,
    /// Where the run stands now: the last phase done (`none` before setup).
    pub state: String,
    /// The plan: one entry per NEW table filled from OLD.
    pub tables: Vec<plan::TableSummary>,
    /// OLD columns and tables the mapping drops; NEW tables with no source (left as they are).
    pub dropped: Vec<String>,
    pub unfilled: Vec<String>,
    /// The bulk copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<copy::CopySummary>,
    /// Catch-up (and the drain at cutover, and a rollback's reverse replay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<replay::ReplaySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Vec<verify::TableCheck>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutover: Option<cutover::SwitchReport>,
    pub notes: Vec<String>,
    pub duration_ms: u64,
}

/// One phase run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseReport {
    pub phase: String,
    /// `done`, `skipped` (already done by an earlier invocation), `planned` (dry run).
    pub result: String,
    pub duration_ms: u64,
    pub summary: String,
}
