//! `down`: roll back the last `steps` migrations, or everything after `to` — atomically when every
//! .down.sql can run in a transaction.

use confiture_engine::ExitCode;
use confiture_engine::pg::script::Pending;
use confiture_engine::pg::{self, PgError};
use confiture_engine::stage::StageError;

use super::apply::{self, Part, Stopped, Unit, event};
use super::compare::{compare, count, mark, no_table};
use super::files::{self, Migration};
use super::prepare::{self, Prepared};
use super::report::State;
use super::tracking::{self, Applied};
use super::{AFTER_MIGRATION, BEFORE_MIGRATION, Ctx, DownTo, session};

pub async fn down(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    if !ctx.out.table_exists {
        return Err(no_table(ctx));
    }
    apply::locked(ctx, down_locked).await
}

async fn down_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let applied = tracking::applied(&ctx.session, &ctx.job.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    let victims: Vec<&Applied> = match &ctx.job.down {
        DownTo::Steps(n) => applied.iter().rev().take(*n as usize).collect(),
        DownTo::Version(v) => {
            let n = files::version_number(v).expect("configure checked the version");
            if n != 0 && !applied.iter().any(|a| a.number == n) {
                return Err(StageError::new(
                    ExitCode::Config,
                    format!("version {v} is not applied; `to` names the version to keep"),
                ));
            }
            applied.iter().rev().filter(|a| a.number > n).collect()
        }
    };
    if victims.is_empty() {
        tracing::info!("nothing to roll back");
        return Ok(());
    }
    // Every .down.sql must exist before anything is touched.
    let mut missing = Vec::new();
    let mut plan: Vec<(&Applied, &Migration, Prepared)> = Vec::new();
    for a in &victims {
        match ctx.migrations.iter().find(|m| m.number == a.number) {
            Some(m) => match (&m.down, &m.down_shown) {
                (Some(path), Some(shown)) => {
                    let bytes = std::fs::read(path)
                        .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read {shown}: {e}")))?;
                    plan.push((a, m, prepare::prepare(shown, &bytes, ctx.server_version)?));
                }
                _ => missing.push(format!("{} has no .down.sql", m.up_shown)),
            },
            None => missing.push(format!("{}_{} is not on disk", a.version, a.name)),
        }
    }
    if !missing.is_empty() {
        return Err(StageError::new(
            ExitCode::Irreversible,
            format!("cannot roll back {}: {}; nothing was rolled back", count(victims.len()), missing.join(", ")),
        ));
    }
    let delete = ctx.session.client().prepare(&tracking::delete_sql(&ctx.job.table)).await.map_err(PgError::from)?;
    let down = || vec![("direction".to_string(), "down".to_string())];
    if !plan.iter().all(|(_, _, p)| p.transactional()) {
        tracing::warn!("a .down.sql runs outside a transaction, so the rollback is not atomic");
        for (a, m, p) in &plan {
            ctx.cx.emit(event(ctx, BEFORE_MIGRATION, m, down())).await?;
            match down_one(ctx, a, m, p, &delete).await {
                Ok(()) => {
                    mark(&mut ctx.out.migrations, m, State::RolledBack, None);
                    ctx.cx.emit(event(ctx, AFTER_MIGRATION, m, down())).await?;
                }
                Err(e) => {
                    mark(&mut ctx.out.migrations, m, State::Failed, Some(e.message.clone()));
                    return Err(e);
                }
            }
        }
        return Ok(());
    }
    // One transaction for all: either every migration is rolled back or none is.
    for (_, m, _) in &plan {
        ctx.cx.emit(event(ctx, BEFORE_MIGRATION, m, down())).await?;
    }
    let client = ctx.session.client();
    let units: Vec<Unit<'_>> = plan
        .iter()
        .map(|(a, _, p)| {
            let (version, delete) = (&a.version, &delete);
            let record: Pending<'_> = Box::pin(async move { client.execute(delete, &[version]).await.map(|_| ()) });
            Unit { prepared: p, record }
        })
        .collect();
    match apply::pipelined(ctx, "BEGIN", units, None).await {
        Ok(()) => {
            client.batch_execute("COMMIT").await.map_err(|e| apply::commit_error("the rollback", &e))?;
            for (_, m, _) in &plan {
                mark(&mut ctx.out.migrations, m, State::RolledBack, None);
                ctx.cx.emit(event(ctx, AFTER_MIGRATION, m, down())).await?;
            }
            Ok(())
        }
        Err(Stopped::Cancelled) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(StageError::cancelled())
        }
        Err(Stopped::Failed { at, error }) => {
            let _ = client.batch_execute("ROLLBACK").await;
            let mut err = match at {
                Part::Statement(k, i) => apply::statement_error(&plan[k].2, i, &error, plan[k].1, true),
                _ => StageError::new(ExitCode::Failure, pg::describe(&error)),
            };
            if let Part::Statement(k, _) | Part::Record(k) = at {
                mark(&mut ctx.out.migrations, plan[k].1, State::Failed, Some(err.message.clone()));
            }
            err.message = format!("{}; nothing was rolled back", err.message);
            Err(err)
        }
    }
}

async fn down_one(
    ctx: &Ctx<'_>,
    a: &Applied,
    m: &Migration,
    p: &Prepared,
    delete: &tokio_postgres::Statement,
) -> Result<(), StageError> {
    let client = ctx.session.client();
    client.batch_execute(&session::reset(ctx.job)).await.map_err(PgError::from)?;
    if p.transactional() {
        client.batch_execute("BEGIN").await.map_err(PgError::from)?;
    }
    for i in 0..p.statements.len() {
        if !p.transactional() {
            apply::run_outside(ctx, m, p, i).await?;
            continue;
        }
        if let Err(e) = ctx.session.cancellable(&ctx.cx.cancel, client.batch_execute(p.text(i))).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(match e {
                PgError::Query(error) => apply::statement_error(p, i, &error, m, true),
                other => other.into(),
            });
        }
    }
    if let Err(e) = client.execute(delete, &[&a.version]).await {
        if p.transactional() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        return Err(PgError::from(e).into());
    }
    if p.transactional() {
        client.batch_execute("COMMIT").await.map_err(|e| apply::commit_error(&m.id(), &e))?;
    }
    Ok(())
}
