//! `baseline`: record every migration up to `through` as applied, without running it.

use confiture_engine::ExitCode;
use confiture_engine::pg::PgError;
use confiture_engine::stage::StageError;

use super::apply::{self, insert_params};
use super::compare::compare;
use super::files::{self, Migration};
use super::report::State;
use super::{Ctx, tracking};

/// `baseline`: record every migration up to `through` as applied, without running it.
pub async fn baseline(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let (through, n) = through(ctx);
    if !ctx.migrations.iter().any(|m| m.number == n) {
        return Err(StageError::new(ExitCode::Config, format!("no migration file has version {through}")));
    }
    apply::locked(ctx, baseline_locked).await
}

fn through(ctx: &Ctx<'_>) -> (String, u128) {
    let through = ctx.job.through.clone().expect("configure requires `through` for baseline");
    let n = files::version_number(&through).expect("configure checked the version");
    (through, n)
}

async fn baseline_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let (_, n) = through(ctx);
    tracking::create(&ctx.session, &ctx.job.table).await?;
    let applied = tracking::applied(&ctx.session, &ctx.job.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    let client = ctx.session.client();
    let insert = client.prepare(&tracking::insert_sql(&ctx.job.table)).await.map_err(PgError::from)?;
    let zero = Some(0.0f64);
    let yes = true;
    let marked: Vec<&Migration> =
        ctx.migrations.iter().filter(|m| m.number <= n && !applied.iter().any(|a| a.number == m.number)).collect();
    client.batch_execute("BEGIN").await.map_err(PgError::from)?;
    for m in &marked {
        if let Err(e) = client.execute(&insert, &insert_params(m, &zero, &yes)).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(StageError::from(PgError::from(e)));
        }
    }
    client.batch_execute("COMMIT").await.map_err(PgError::from)?;
    let versions: Vec<String> = marked.iter().map(|m| m.version.clone()).collect();
    for r in ctx.out.migrations.iter_mut().filter(|r| versions.contains(&r.version)) {
        r.state = State::Baselined;
    }
    Ok(())
}
