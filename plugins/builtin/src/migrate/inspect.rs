//! The modes that change nothing: `status`, `verify` and `current` compare the files with the
//! tracking table; `dry-run` shows what `up` would run, statement by statement, with its locks.

use confiture_engine::ExitCode;
use confiture_engine::stage::StageError;

use super::apply;
use super::compare::{compare, count, names, no_table, pending, refuse_drift, row};
use super::files::Migration;
use super::report::State;
use super::{Ctx, Mode, tracking};

/// `status`, `verify` and `current`.
pub async fn inspect(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    if !ctx.out.table_exists {
        ctx.out.migrations = compare(&ctx.migrations, &[]);
        return Err(no_table(ctx));
    }
    let applied = tracking::applied(&ctx.session, &ctx.job.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    if ctx.job.mode == Mode::Current {
        ctx.out.migrations = applied.iter().map(|a| row(None, Some(a), State::Applied)).collect();
        return Ok(());
    }
    let modified = names(&ctx.out.migrations, State::Modified);
    let missing = names(&ctx.out.migrations, State::MissingFromDisk);
    if !modified.is_empty() || !missing.is_empty() {
        let mut parts = Vec::new();
        if !modified.is_empty() {
            parts.push(format!("changed since they were applied: {}", modified.join(", ")));
        }
        if !missing.is_empty() {
            parts.push(format!("applied but not on disk: {}", missing.join(", ")));
        }
        return Err(StageError::new(
            ExitCode::Drift,
            format!("migrations differ from what was applied — {}", parts.join("; ")),
        ));
    }
    let pending = names(&ctx.out.migrations, State::Pending);
    if ctx.job.mode == Mode::Status && !pending.is_empty() {
        return Err(StageError::new(
            ExitCode::Failure,
            format!("{} pending: {}", count(pending.len()), pending.join(", ")),
        ));
    }
    Ok(())
}

/// `dry-run`: what `up` would run, statement by statement, with the locks each takes.
pub async fn dry_run(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let applied =
        if ctx.out.table_exists { tracking::applied(&ctx.session, &ctx.job.table).await? } else { Vec::new() };
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    let pending: Vec<Migration> = pending(ctx, &applied)?.into_iter().cloned().collect();
    let refs: Vec<&Migration> = pending.iter().collect();
    let prepared = apply::prepare_all(ctx, &refs)?;
    for (m, p) in pending.iter().zip(&prepared) {
        if let Some(r) = ctx.out.migrations.iter_mut().find(|r| r.version == m.version) {
            r.state = State::WouldRun;
            r.transactional = Some(p.transactional());
            r.statements = p.report();
        }
    }
    refuse_drift(&ctx.out.migrations)
}
