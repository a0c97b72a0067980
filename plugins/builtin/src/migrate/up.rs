//! `up`: every pending migration, each in its own transaction with its tracking row.

use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::pg::script::Pending;
use confiture_engine::pg::{self, PgError};
use confiture_engine::stage::StageError;

use super::apply::{self, Unit, event, insert_params};
use super::compare::{compare, pending, refuse_drift};
use super::files::Migration;
use super::prepare::Prepared;
use super::report::State;
use super::{AFTER_MIGRATION, BEFORE_MIGRATION, Ctx, MIGRATION_FAILED, session, tracking};

pub async fn up(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    apply::locked(ctx, up_locked).await
}

async fn up_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    if !ctx.out.table_exists {
        tracking::create(&ctx.session, &ctx.job.table).await?;
    }
    let applied = tracking::applied(&ctx.session, &ctx.job.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    refuse_drift(&ctx.out.migrations)?;
    let pending: Vec<Migration> = pending(ctx, &applied)?.into_iter().cloned().collect();
    let refs: Vec<&Migration> = pending.iter().collect();
    let prepared = apply::prepare_all(ctx, &refs)?;
    let insert = ctx.session.client().prepare(&tracking::insert_sql(&ctx.job.table)).await.map_err(PgError::from)?;
    if pending.is_empty() {
        tracing::info!("nothing to apply");
    }
    for (i, (m, p)) in pending.iter().zip(&prepared).enumerate() {
        ctx.cx.emit(event(ctx, BEFORE_MIGRATION, m, Vec::new())).await?;
        ctx.cx.progress(&format!("{} ({}/{})", m.id(), i + 1, pending.len()));
        let t0 = Instant::now();
        let result = apply_one(ctx, m, p, &insert).await;
        let report =
            ctx.out.migrations.iter_mut().find(|r| r.version == m.version).expect("pending migrations are listed");
        report.transactional = Some(p.transactional());
        match result {
            Ok(()) => {
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                report.state = State::Ran;
                report.execution_ms = Some(ms);
                ctx.cx.emit(event(ctx, AFTER_MIGRATION, m, vec![("execution_ms".into(), format!("{ms:.0}"))])).await?;
            }
            Err(err) => {
                report.state = State::Failed;
                report.error = Some(err.message.clone());
                // The migration's own error is what the stage reports; a hook failing here only logs.
                if let Err(e) =
                    ctx.cx.emit(event(ctx, MIGRATION_FAILED, m, vec![("error".into(), err.message.clone())])).await
                {
                    tracing::warn!("{e}");
                }
                for later in &pending[i + 1..] {
                    if let Some(r) = ctx.out.migrations.iter_mut().find(|r| r.version == later.version) {
                        r.state = State::NotRun;
                    }
                }
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Apply one migration and record it; on failure nothing of it is recorded.
async fn apply_one(
    ctx: &Ctx<'_>,
    m: &Migration,
    p: &Prepared,
    insert: &tokio_postgres::Statement,
) -> Result<(), StageError> {
    let client = ctx.session.client();
    let no_ms: Option<f64> = None;
    let not_baseline = false;
    if p.transactional() {
        // BEGIN, the reset, the statements and the tracking row in one pipeline; COMMIT is sent
        // only once every reply is in.
        let params = insert_params(m, &no_ms, &not_baseline);
        let record: Pending<'_> = Box::pin(async move { client.execute(insert, &params).await.map(|_| ()) });
        return match apply::pipelined(ctx, "BEGIN", vec![Unit { prepared: p, record }], None).await {
            // Not raced against cancellation: once COMMIT is sent, its outcome is the outcome.
            Ok(()) => client.batch_execute("COMMIT").await.map_err(|e| apply::commit_error(&m.up_shown, &e)),
            Err(stopped) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(stopped.into_error(m, p))
            }
        };
    }
    // Outside a transaction: statement by statement, then the row.
    tracing::info!("{}: running statement by statement ({})", m.id(), p.outside_transaction.as_deref().unwrap_or(""));
    let t0 = Instant::now();
    client.batch_execute(&session::reset(ctx.job)).await.map_err(PgError::from)?;
    for i in 0..p.statements.len() {
        // Ctrl-C stops between statements; a statement that completed is kept and, if it was the
        // last, the migration is recorded below.
        if ctx.cx.cancel.is_cancelled() {
            return Err(StageError::cancelled());
        }
        apply::run_outside(ctx, m, p, i).await?;
    }
    let ms = Some(t0.elapsed().as_secs_f64() * 1000.0);
    client.execute(insert, &insert_params(m, &ms, &not_baseline)).await.map_err(|e| {
        StageError::new(
            ExitCode::Failure,
            format!(
                "{}: every statement ran, but recording it failed: {}; the migration is applied and NOT recorded — \
                 record it with `confiture migrate baseline --through {}` once earlier ones are applied",
                m.up_shown,
                pg::describe(&e),
                m.version
            ),
        )
    })?;
    Ok(())
}
