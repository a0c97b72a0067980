//! `dry-run-execute` (on the target) and `preflight` (on the `against` database): run every
//! pending migration inside one transaction, each in a savepoint so one failure does not hide the
//! next, then roll everything back. It takes the migration lock, as `up` does (a rehearsal and a
//! real run never interleave), and the runner's `lock_timeout`; until the final rollback it holds
//! every lock that every pending migration takes.

use confiture_engine::ExitCode;
use confiture_engine::pg::script::Pending;
use confiture_engine::pg::{self, PgError};
use confiture_engine::stage::StageError;

use super::apply::{self, Part, Stopped, Unit, insert_params};
use super::compare::{compare, count, pending, refuse_drift};
use super::files::Migration;
use super::report::State;
use super::{Ctx, tracking};

pub async fn rehearse(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    apply::locked(ctx, rehearse_locked).await
}

async fn rehearse_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let client = ctx.session.client();
    let applied =
        if ctx.out.table_exists { tracking::applied(&ctx.session, &ctx.job.table).await? } else { Vec::new() };
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    refuse_drift(&ctx.out.migrations)?;
    let pending: Vec<Migration> = pending(ctx, &applied)?.into_iter().cloned().collect();
    let refs: Vec<&Migration> = pending.iter().collect();
    let prepared = apply::prepare_all(ctx, &refs)?;
    client.batch_execute("BEGIN").await.map_err(PgError::from)?;
    // What each migration came to, kept whatever stops the rehearsal part way (Ctrl-C).
    let mut outcomes = Vec::new();
    let result = async {
        if !ctx.out.table_exists {
            tracking::create(&ctx.session, &ctx.job.table).await?;
        }
        let insert = client.prepare(&tracking::insert_sql(&ctx.job.table)).await.map_err(PgError::from)?;
        for (m, p) in pending.iter().zip(&prepared) {
            let (state, error) = if !p.transactional() {
                (
                    State::NotRun,
                    Some(format!(
                        "cannot run inside a transaction ({})",
                        p.outside_transaction.as_deref().unwrap_or("")
                    )),
                )
            } else {
                let no_ms: Option<f64> = None;
                let not_baseline = false;
                let params = insert_params(m, &no_ms, &not_baseline);
                let insert = &insert;
                let record: Pending<'_> = Box::pin(async move { client.execute(insert, &params).await.map(|_| ()) });
                let unit = vec![Unit { prepared: p, record }];
                match apply::pipelined(
                    ctx,
                    "SAVEPOINT confiture_rehearsal",
                    unit,
                    Some("RELEASE SAVEPOINT confiture_rehearsal"),
                )
                .await
                {
                    Ok(()) => (State::Rehearsed, None),
                    Err(Stopped::Cancelled) => return Err(StageError::cancelled()),
                    Err(Stopped::Failed { at, error }) => {
                        client
                            .batch_execute("ROLLBACK TO SAVEPOINT confiture_rehearsal")
                            .await
                            .map_err(PgError::from)?;
                        let message = match at {
                            Part::Statement(_, i) => apply::statement_error(p, i, &error, m, true).message,
                            _ => format!("{}: {}", m.up_shown, pg::describe(&error)),
                        };
                        (State::Failed, Some(message))
                    }
                }
            };
            outcomes.push((m, p.transactional(), state, error));
        }
        Ok::<_, StageError>(())
    }
    .await;
    let _ = client.batch_execute("ROLLBACK").await;
    let mut failed = Vec::new();
    for (m, transactional, state, error) in outcomes {
        if state == State::Failed {
            failed.push(m.up_shown.clone());
        }
        if let Some(r) = ctx.out.migrations.iter_mut().find(|r| r.version == m.version) {
            r.state = state;
            r.error = error;
            r.transactional = Some(transactional);
        }
    }
    result?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StageError::new(
            ExitCode::Drift,
            format!("{} failed in the rehearsal (rolled back): {}", count(failed.len()), failed.join(", ")),
        ))
    }
}
