//! Files and tracking rows side by side: the report rows every mode starts from, and what they
//! say (pending, modified, missing).

use confiture_engine::ExitCode;
use confiture_engine::stage::StageError;

use super::Ctx;
use super::files::{self, Migration};
use super::report::{MigrationReport, State};
use super::tracking::Applied;

pub fn latest(rows: &[MigrationReport]) -> Option<String> {
    rows.iter()
        .filter(|m| {
            matches!(m.state, State::Applied | State::Modified | State::MissingFromDisk | State::Baselined | State::Ran)
        })
        .filter_map(|m| files::version_number(&m.version).map(|n| (n, m.version.clone())))
        .max()
        .map(|(_, v)| v)
}

pub fn row(m: Option<&Migration>, a: Option<&Applied>, state: State) -> MigrationReport {
    MigrationReport {
        version: m.map(|m| m.version.clone()).or_else(|| a.map(|a| a.version.clone())).unwrap_or_default(),
        name: m.map(|m| m.name.clone()).or_else(|| a.map(|a| a.name.clone())).unwrap_or_default(),
        file: m.map(|m| m.up_shown.clone()),
        state,
        checksum: m.map(|m| m.checksum.clone()),
        applied_checksum: match (m, a) {
            (Some(m), Some(a)) if m.checksum != a.checksum => Some(a.checksum.clone()),
            (None, Some(a)) => Some(a.checksum.clone()),
            _ => None,
        },
        applied_at: a.map(|a| a.applied_at.clone()),
        execution_ms: a.map(|a| a.execution_ms),
        baseline: a.is_some_and(|a| a.baseline),
        transactional: None,
        statements: Vec::new(),
        error: None,
    }
}

/// Files and rows side by side: applied, modified, missing from disk, pending.
pub fn compare(migrations: &[Migration], applied: &[Applied]) -> Vec<MigrationReport> {
    let mut out = Vec::new();
    let mut numbers: Vec<u128> = migrations.iter().map(|m| m.number).chain(applied.iter().map(|a| a.number)).collect();
    numbers.sort_unstable();
    numbers.dedup();
    for n in numbers {
        let m = migrations.iter().find(|m| m.number == n);
        let a = applied.iter().find(|a| a.number == n);
        let state = match (m, a) {
            (Some(m), Some(a)) if m.checksum == a.checksum => State::Applied,
            (Some(_), Some(_)) => State::Modified,
            (None, Some(_)) => State::MissingFromDisk,
            (Some(_), None) => State::Pending,
            (None, None) => continue,
        };
        out.push(row(m, a, state));
    }
    out
}

pub fn names(rows: &[MigrationReport], state: State) -> Vec<String> {
    rows.iter()
        .filter(|r| r.state == state)
        .map(|r| r.file.clone().unwrap_or_else(|| format!("{}_{} (no file)", r.version, r.name)))
        .collect()
}

pub fn mark(rows: &mut [MigrationReport], m: &Migration, state: State, error: Option<String>) {
    if let Some(r) = rows.iter_mut().find(|r| r.version == m.version) {
        r.state = state;
        r.error = error;
    }
}

pub fn count(n: usize) -> String {
    if n == 1 { "1 migration".into() } else { format!("{n} migrations") }
}

pub fn no_table(ctx: &Ctx<'_>) -> StageError {
    StageError::new(
        ExitCode::NoTrackingTable,
        format!("no tracking table {} in {}: no migration has been applied here", ctx.job.table, ctx.info),
    )
}

/// Refuse to run over applied migrations whose files changed or vanished.
pub fn refuse_drift(rows: &[MigrationReport]) -> Result<(), StageError> {
    let modified = names(rows, State::Modified);
    if modified.is_empty() {
        return Ok(());
    }
    Err(StageError::new(
        ExitCode::Drift,
        format!(
            "applied migrations changed since they ran: {}; restore them (the recorded checksums are in the tracking \
             table) and put new changes in a new migration. Nothing ran.",
            modified.join(", ")
        ),
    ))
}

/// The pending migrations `up` would run, in order, limited by `target`.
pub fn pending<'m>(ctx: &'m Ctx<'_>, applied: &[Applied]) -> Result<Vec<&'m Migration>, StageError> {
    let limit = match &ctx.job.target {
        Some(t) => {
            let n = files::version_number(t).expect("configure checked the version");
            if !ctx.migrations.iter().any(|m| m.number == n) && !applied.iter().any(|a| a.number == n) {
                return Err(StageError::new(ExitCode::Config, format!("no migration has version {t}")));
            }
            n
        }
        None => u128::MAX,
    };
    let latest = applied.iter().map(|a| a.number).max();
    let pending: Vec<&Migration> =
        ctx.migrations.iter().filter(|m| m.number <= limit && !applied.iter().any(|a| a.number == m.number)).collect();
    if let (Some(latest), Some(first)) = (latest, pending.first())
        && first.number < latest
    {
        tracing::warn!("{} is older than the latest applied migration; it runs now, after newer ones", first.up_shown);
    }
    Ok(pending)
}
