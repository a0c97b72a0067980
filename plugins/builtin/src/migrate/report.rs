//! The outputs of a `migrate` stage (`schemas/stages/migrate.json`).

use confiture_engine::event::Tone;
use confiture_engine::stage::Paint;
use serde::{Deserialize, Serialize};

/// What a `migrate` stage did or found.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema, Deserialize)]
#[schemars(title = "outputs of a migrate stage")]
pub struct MigrateOutputs {
    /// up, down, status, verify, current, baseline, dry-run, dry-run-execute or preflight.
    pub mode: String,
    /// The database (connection string, password redacted).
    pub database: String,
    /// `schema.table` of the tracking table.
    pub tracking_table: String,
    /// Whether the tracking table existed when the stage started.
    pub table_exists: bool,
    /// The latest applied version when the stage finished (none: nothing applied).
    pub current: Option<String>,
    pub counts: Counts,
    /// The migrations the stage looked at, in version order.
    pub migrations: Vec<MigrationReport>,
}

impl MigrateOutputs {
    /// The text report: the target, a line per migration (with its statements in dry runs),
    /// and the counts.
    pub fn text(&self, paint: Paint<'_>) -> Vec<String> {
        let mut out = vec![format!("database: {}   tracking table: {}", self.database, self.tracking_table)];
        let width = self.migrations.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &self.migrations {
            let state = r.state.name();
            let tone = match r.state {
                State::Ran | State::Applied | State::Rehearsed | State::RolledBack | State::Baselined => Tone::Good,
                State::Failed | State::Modified | State::MissingFromDisk => Tone::Bad,
                _ => Tone::Warn,
            };
            let mut line = format!("{:>14}  {:<width$}  {}", r.version, r.name, paint(state, tone));
            if let Some(ms) = r.execution_ms.filter(|_| r.state == State::Ran) {
                line.push_str(&format!(" ({ms:.0} ms)"));
            }
            if r.transactional == Some(false) {
                line.push_str(" [outside a transaction]");
            }
            out.push(line);
            for st in &r.statements {
                let locks: Vec<String> =
                    st.locks.iter().map(|l| format!("{} on {}", l.mode.as_str(), l.relation)).collect();
                let mut detail = String::new();
                if let Some(why) = &st.why {
                    detail.push_str(&format!(" [{why}: outside a transaction]"));
                }
                if !locks.is_empty() {
                    detail.push_str(&format!(" — takes {}", locks.join(", ")));
                }
                out.push(format!("    line {:>4}: {}{detail}", st.line, st.sql));
            }
            if let Some(e) = &r.error {
                out.push(format!("    {}", e.lines().next().unwrap_or("")));
            }
        }
        let c = &self.counts;
        out.push(format!(
            "current: {}   applied {} · pending {} · modified {} · missing {}",
            self.current.as_deref().unwrap_or("none"),
            c.applied,
            c.pending,
            c.modified,
            c.missing_from_disk
        ));
        out
    }
}

/// How many migrations are in each state.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Counts {
    pub applied: usize,
    pub pending: usize,
    pub modified: usize,
    pub missing_from_disk: usize,
    /// Applied (or rolled back, or rehearsed successfully) by this stage.
    pub ran: usize,
    pub failed: usize,
}

/// One migration.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema, Deserialize)]
pub struct MigrationReport {
    pub version: String,
    pub name: String,
    /// The `.up.sql` file, when it is on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub state: State,
    /// SHA-256 of the `.up.sql` on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The checksum recorded when it was applied, when it differs from the file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_checksum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_ms: Option<f64>,
    /// Recorded by `baseline` rather than run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
    /// Whether it runs in one transaction (false: statement by statement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional: Option<bool>,
    /// Its statements, for dry runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state of a migration, as a stage saw or left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Recorded, and the file matches its checksum.
    Applied,
    /// On disk, not recorded.
    Pending,
    /// Recorded, but the file changed since.
    Modified,
    /// Recorded, but no file.
    MissingFromDisk,
    /// Applied by this run.
    Ran,
    /// Failed in this run (nothing of it is recorded).
    Failed,
    /// Not run because an earlier one failed or it cannot run in a rehearsal.
    NotRun,
    /// Rolled back by this run.
    RolledBack,
    /// Marked applied without running (`baseline`).
    Baselined,
    /// Would run (`--dry-run`).
    WouldRun,
    /// Ran successfully in a rehearsal that was rolled back.
    Rehearsed,
}

impl State {
    /// As in the JSON report: `applied`, `missing-from-disk`, …
    pub fn name(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Modified => "modified",
            State::MissingFromDisk => "missing-from-disk",
            State::Ran => "ran",
            State::Failed => "failed",
            State::NotRun => "not-run",
            State::RolledBack => "rolled-back",
            State::Baselined => "baselined",
            State::WouldRun => "would-run",
            State::Rehearsed => "rehearsed",
        }
    }
}

/// One statement of a migration, for dry runs.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema, Deserialize)]
pub struct StatementReport {
    /// 1-based line in the file.
    pub line: usize,
    /// Whether it can run inside a transaction.
    pub transactional: bool,
    /// Why not, e.g. `CREATE INDEX CONCURRENTLY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The table locks it takes on existing tables.
    pub locks: Vec<confiture_engine::sql::locks::Lock>,
    /// The statement's first line (at most 120 characters).
    pub sql: String,
}

/// `confiture migrate new --format json`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "confiture migrate new")]
pub struct NewMigration {
    pub schema_version: u32,
    /// The new migration's version (a UTC timestamp, YYYYMMDDHHMMSS).
    pub version: String,
    /// The `.up.sql` file created.
    pub up: String,
    /// The `.down.sql` file created.
    pub down: String,
}
