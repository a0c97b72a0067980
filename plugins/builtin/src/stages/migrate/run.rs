//! The modes of the `migrate` stage, against a live database.

use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::event::{Event, EventKind, Tone};
use confiture_engine::pg::script::{self, Pending, ScriptError};
use confiture_engine::pg::{self, ConnInfo, PgError, Session};
use confiture_engine::stage::{Outputs, StageContext, StageError};
use tokio_postgres::types::ToSql;

use super::files::{self, Migration};
use super::prepare::{self, Prepared};
use super::report::{Counts, MigrateOutputs, MigrationReport, State};
use super::tracking::{self, Applied};
use super::{DEFAULT_LOCK_WAIT, DownTo, MigrateStage, Mode};
use super::{indexes, session};

/// Everything a mode works with.
struct Ctx<'a> {
    stage: &'a MigrateStage,
    cx: &'a StageContext,
    session: Session,
    info: ConnInfo,
    migrations: Vec<Migration>,
    server_version: i32,
    out: MigrateOutputs,
}

pub async fn run(stage: &MigrateStage, cx: &StageContext) -> Result<Outputs, StageError> {
    let database = match stage.mode {
        Mode::Preflight => stage.against.as_ref(),
        _ => stage.database.as_ref(),
    }
    .expect("configure requires a database for every mode");
    let info = cx.database(database).await?;
    let migrations = match stage.mode {
        Mode::Current => Vec::new(),
        _ => files::discover(&cx.project, &cx.project.resolve(&stage.dir))?,
    };
    let session = pg::connect(&info, &format!("confiture migrate {}", stage.mode.name())).await?;
    let server_version: i32 = session
        .client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(PgError::from)?
        .get(0);
    let settings = session::settings(stage);
    if !settings.is_empty() {
        session.client().batch_execute(&settings).await.map_err(PgError::from)?;
    }
    let table_exists = tracking::exists(&session, &stage.table).await?;
    let out = MigrateOutputs {
        mode: stage.mode.name().into(),
        database: info.to_string(),
        tracking_table: stage.table.to_string(),
        table_exists,
        ..MigrateOutputs::default()
    };
    let mut ctx = Ctx { stage, cx, session, info, migrations, server_version, out };
    let result = match stage.mode {
        Mode::Up => up(&mut ctx).await,
        Mode::Down => down(&mut ctx).await,
        Mode::Status | Mode::Verify | Mode::Current => inspect(&mut ctx).await,
        Mode::Baseline => baseline(&mut ctx).await,
        Mode::DryRun => dry_run(&mut ctx).await,
        Mode::DryRunExecute | Mode::Preflight => rehearse(&mut ctx).await,
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
                if !matches!(ctx.stage.mode, Mode::DryRunExecute | Mode::Preflight) {
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
    if matches!(ctx.stage.mode, Mode::DryRunExecute | Mode::Preflight | Mode::DryRun)
        || !tracking::exists(&ctx.session, &ctx.stage.table).await.unwrap_or(false)
    {
        ctx.out.current = latest(&ctx.out.migrations);
        return;
    }
    ctx.out.current = match tracking::applied(&ctx.session, &ctx.stage.table).await {
        Ok(rows) => rows.last().map(|r| r.version.clone()),
        Err(_) => latest(&ctx.out.migrations),
    };
}

fn latest(rows: &[MigrationReport]) -> Option<String> {
    rows.iter()
        .filter(|m| {
            matches!(m.state, State::Applied | State::Modified | State::MissingFromDisk | State::Baselined | State::Ran)
        })
        .filter_map(|m| files::version_number(&m.version).map(|n| (n, m.version.clone())))
        .max()
        .map(|(_, v)| v)
}

fn row(m: Option<&Migration>, a: Option<&Applied>, state: State) -> MigrationReport {
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
fn compare(migrations: &[Migration], applied: &[Applied]) -> Vec<MigrationReport> {
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

fn names(rows: &[MigrationReport], state: State) -> Vec<String> {
    rows.iter()
        .filter(|r| r.state == state)
        .map(|r| r.file.clone().unwrap_or_else(|| format!("{}_{} (no file)", r.version, r.name)))
        .collect()
}

fn no_table(ctx: &Ctx<'_>) -> StageError {
    StageError::new(
        ExitCode::NoTrackingTable,
        format!("no tracking table {} in {}: no migration has been applied here", ctx.stage.table, ctx.info),
    )
}

/// `status`, `verify` and `current`.
async fn inspect(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    if !ctx.out.table_exists {
        ctx.out.migrations = compare(&ctx.migrations, &[]);
        return Err(no_table(ctx));
    }
    let applied = tracking::applied(&ctx.session, &ctx.stage.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    if ctx.stage.mode == Mode::Current {
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
    if ctx.stage.mode == Mode::Status && !pending.is_empty() {
        return Err(StageError::new(
            ExitCode::Failure,
            format!("{} pending: {}", count(pending.len()), pending.join(", ")),
        ));
    }
    Ok(())
}

fn count(n: usize) -> String {
    if n == 1 { "1 migration".into() } else { format!("{n} migrations") }
}

/// Refuse to run over applied migrations whose files changed or vanished.
fn refuse_drift(rows: &[MigrationReport]) -> Result<(), StageError> {
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
fn pending<'m>(ctx: &'m Ctx<'_>, applied: &[Applied]) -> Result<Vec<&'m Migration>, StageError> {
    let limit = match &ctx.stage.target {
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

fn prepare_all(ctx: &Ctx<'_>, list: &[&Migration]) -> Result<Vec<Prepared>, StageError> {
    list.iter().map(|m| prepare::prepare(&m.up_shown, &m.up_sql, ctx.server_version)).collect()
}

fn event(ctx: &Ctx<'_>, kind: EventKind, m: &Migration, details: Vec<(String, String)>) -> Event {
    // Hooks judge what is about to run: the .up.sql, or the .down.sql when rolling back.
    let down = details.iter().any(|(k, v)| k == "direction" && v == "down");
    let sql = if down {
        m.down.as_ref().and_then(|p| std::fs::read(p).ok()).map(|b| String::from_utf8_lossy(&b).into_owned())
    } else {
        Some(String::from_utf8_lossy(&m.up_sql).into_owned())
    };
    let mut event = Event::new(kind).subject("migration", m.id());
    event.details = details;
    event.sql = sql;
    event.database = ctx.session.info().dbname().map(String::from);
    // What the progress display shows: a line per migration done or failed, the one running live.
    let ms = event.get("execution_ms").unwrap_or("?").to_string();
    match kind {
        super::AFTER_MIGRATION => event.note(format!("{} ({ms} ms)", m.id()), Tone::Good, false),
        super::MIGRATION_FAILED => event.note(m.id(), Tone::Bad, false),
        _ => event.note(format!("{}…", m.id()), Tone::Plain, true),
    }
}

/// `up`: every pending migration, each in its own transaction with its tracking row.
async fn up(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let wait = ctx.stage.lock_timeout.unwrap_or(DEFAULT_LOCK_WAIT);
    let lock = tracking::lock(&ctx.session, &ctx.stage.table, wait, &ctx.cx.cancel).await?;
    let result = up_locked(ctx).await;
    lock.release(&ctx.session).await;
    result
}

async fn up_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    if !ctx.out.table_exists {
        tracking::create(&ctx.session, &ctx.stage.table).await?;
    }
    let applied = tracking::applied(&ctx.session, &ctx.stage.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    refuse_drift(&ctx.out.migrations)?;
    let pending: Vec<Migration> = pending(ctx, &applied)?.into_iter().cloned().collect();
    let refs: Vec<&Migration> = pending.iter().collect();
    let prepared = prepare_all(ctx, &refs)?;
    let insert = ctx.session.client().prepare(&tracking::insert_sql(&ctx.stage.table)).await.map_err(PgError::from)?;
    if pending.is_empty() {
        tracing::info!("nothing to apply");
    }
    for (i, (m, p)) in pending.iter().zip(&prepared).enumerate() {
        ctx.cx.emit(event(ctx, super::BEFORE_MIGRATION, m, Vec::new())).await?;
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
                ctx.cx
                    .emit(event(ctx, super::AFTER_MIGRATION, m, vec![("execution_ms".into(), format!("{ms:.0}"))]))
                    .await?;
            }
            Err(err) => {
                report.state = State::Failed;
                report.error = Some(err.message.clone());
                // The migration's own error is what the stage reports; a hook failing here only logs.
                if let Err(e) = ctx
                    .cx
                    .emit(event(ctx, super::MIGRATION_FAILED, m, vec![("error".into(), err.message.clone())]))
                    .await
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

fn insert_params<'a>(m: &'a Migration, ms: &'a Option<f64>, baseline: &'a bool) -> [&'a (dyn ToSql + Sync); 6] {
    [&m.version, &m.name, &m.checksum, ms, baseline, &tracking::CONFITURE_VERSION]
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
        // BEGIN, the statements and the tracking row go out in one pipeline: a failing statement
        // aborts the transaction and the rest fail harmlessly. COMMIT is sent only once every
        // reply is in, so a runner that dies before that leaves nothing committed.
        let params = insert_params(m, &no_ms, &not_baseline);
        let reset = session::reset(ctx.stage);
        let mut requests: Vec<Pending<'_>> = Vec::with_capacity(p.statements.len() + 3);
        // The reset runs inside the transaction: if it fails, nothing after it can run.
        requests.push(Box::pin(client.batch_execute("BEGIN")));
        requests.push(Box::pin(client.batch_execute(&reset)));
        for i in 0..p.statements.len() {
            requests.push(Box::pin(client.batch_execute(p.text(i))));
        }
        requests.push(Box::pin(async move { client.execute(insert, &params).await.map(|_| ()) }));
        let n = p.statements.len();
        return match script::run_requests(&ctx.session, requests, &ctx.cx.cancel, &mut |_| {}).await {
            // Not raced against cancellation: once COMMIT is sent, its outcome is the outcome.
            Ok(_) => client.batch_execute("COMMIT").await.map_err(|e| commit_error(&m.up_shown, &e)),
            Err(ScriptError::Cancelled) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(StageError::cancelled())
            }
            Err(ScriptError::Statement { index, error }) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(match index {
                    i if i >= 2 && i <= n + 1 => statement_error(p, i - 2, &error, m, true),
                    _ => StageError::new(
                        ExitCode::Failure,
                        format!("{}: {} (rolled back)", m.up_shown, pg::describe(&error)),
                    ),
                })
            }
        };
    }
    // Outside a transaction: statement by statement, then the row.
    tracing::info!("{}: running statement by statement ({})", m.id(), p.outside_transaction.as_deref().unwrap_or(""));
    let t0 = Instant::now();
    client.batch_execute(&session::reset(ctx.stage)).await.map_err(PgError::from)?;
    for i in 0..p.statements.len() {
        // Ctrl-C stops between statements; a statement that completed is kept and, if it was the
        // last, the migration is recorded below.
        if ctx.cx.cancel.is_cancelled() {
            return Err(StageError::cancelled());
        }
        run_outside(ctx, m, p, i).await?;
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

/// Run statement `i` of a migration that runs outside a transaction. A concurrent index build is
/// watched: an INVALID index it leaves (failed or not) fails the migration, named (see
/// [`indexes`]).
async fn run_outside(ctx: &Ctx<'_>, m: &Migration, p: &Prepared, i: usize) -> Result<(), StageError> {
    let client = ctx.session.client();
    let watch = match &p.statements[i].index_build {
        Some(build) => Some(indexes::before(&ctx.session, build, &m.id()).await?),
        None => None,
    };
    let result = ctx.session.cancellable(&ctx.cx.cancel, client.batch_execute(p.text(i))).await;
    let left = match &watch {
        // After a lost connection there is nobody to ask; otherwise the check must work.
        Some(w) if !client.is_closed() => indexes::left_invalid(&ctx.session, w).await?,
        _ => Vec::new(),
    };
    match result {
        Ok(()) if left.is_empty() => {
            if let (Some(w), Some(confiture_engine::sql::IndexBuild::Create { name: None, .. })) =
                (&watch, &p.statements[i].index_build)
            {
                indexes::drop_superseded(&ctx.session, w, &m.id()).await?;
            }
            Ok(())
        }
        Ok(()) => {
            let st = &p.statements[i];
            let (line, column) = p.source.line_col(st.offset);
            Err(StageError::new(
                ExitCode::Failure,
                format!(
                    "{}:{line}:{column}: the statement completed, but {}; {} is not recorded",
                    p.source.name,
                    indexes::advice(&left),
                    m.id()
                ),
            )
            .with_field("file", p.source.name.clone())
            .with_field("invalid_indexes", left.join(", ")))
        }
        Err(PgError::Query(error)) => {
            let mut err = statement_error(p, i, &error, m, false);
            if !left.is_empty() {
                err.message = format!("{}; {}", err.message, indexes::advice(&left));
                err = err.with_field("invalid_indexes", left.join(", "));
            }
            Err(err)
        }
        Err(other) => Err(other.into()),
    }
}

/// A failed COMMIT: rolled back if the server said so; unknown if the connection was lost.
fn commit_error(what: &str, e: &tokio_postgres::Error) -> StageError {
    let exit = pg::exit_code(e, ExitCode::Failure);
    if exit != ExitCode::Connection {
        StageError::new(exit, format!("{what}: COMMIT failed: {} (rolled back)", pg::describe(e)))
    } else {
        StageError::new(
            ExitCode::Connection,
            format!(
                "{what}: the connection was lost during COMMIT, so whether it took effect is unknown: `confiture migrate \
                 status` tells ({})",
                pg::describe(e)
            ),
        )
    }
}

fn statement_error(
    p: &Prepared,
    i: usize,
    error: &tokio_postgres::Error,
    m: &Migration,
    rolled_back: bool,
) -> StageError {
    let st = &p.statements[i];
    let d = script::error_diagnostic(&p.source, st.offset, st.text(&p.source.text), error);
    let at =
        d.location().map(|l| format!("{}:{}:{}", l.file, l.line, l.column)).unwrap_or_else(|| p.source.name.clone());
    let tail = if rolled_back {
        "the migration was rolled back and is not recorded".to_string()
    } else {
        format!(
            "{} ran outside a transaction: statements before this one stay applied; the migration is not recorded",
            m.id()
        )
    };
    let exit = pg::exit_code(error, ExitCode::Failure);
    let mut err = StageError::new(exit, format!("{at}: {} ({tail})", pg::describe(error)))
        .with_field("file", p.source.name.clone());
    for (k, v) in script::error_fields(error) {
        err = err.with_field(k, v);
    }
    err.with_diagnostic(d)
}

/// `down`: roll back the last `steps` migrations, or everything after `to`, atomically.
async fn down(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    if !ctx.out.table_exists {
        return Err(no_table(ctx));
    }
    let wait = ctx.stage.lock_timeout.unwrap_or(DEFAULT_LOCK_WAIT);
    let lock = tracking::lock(&ctx.session, &ctx.stage.table, wait, &ctx.cx.cancel).await?;
    let result = down_locked(ctx).await;
    lock.release(&ctx.session).await;
    result
}

async fn down_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let applied = tracking::applied(&ctx.session, &ctx.stage.table).await?;
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    let victims: Vec<&Applied> = match &ctx.stage.down {
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
    let delete = ctx.session.client().prepare(&tracking::delete_sql(&ctx.stage.table)).await.map_err(PgError::from)?;
    let client = ctx.session.client();
    if plan.iter().all(|(_, _, p)| p.transactional()) {
        // One transaction for all: either every migration is rolled back or none is.
        let reset = session::reset(ctx.stage);
        let mut requests: Vec<Pending<'_>> = vec![Box::pin(client.batch_execute("BEGIN"))];
        let mut owners = vec![None];
        for (k, (a, _, p)) in plan.iter().enumerate() {
            requests.push(Box::pin(client.batch_execute(&reset)));
            owners.push(None);
            for i in 0..p.statements.len() {
                requests.push(Box::pin(client.batch_execute(p.text(i))));
                owners.push(Some((k, Some(i))));
            }
            let version = &a.version;
            let delete = &delete;
            requests.push(Box::pin(async move { client.execute(delete, &[version]).await.map(|_| ()) }));
            owners.push(Some((k, None)));
        }
        for (_, m, _) in &plan {
            ctx.cx.emit(event(ctx, super::BEFORE_MIGRATION, m, vec![("direction".into(), "down".into())])).await?;
        }
        let result = match script::run_requests(&ctx.session, requests, &ctx.cx.cancel, &mut |_| {}).await {
            Ok(n) => match client.batch_execute("COMMIT").await {
                Ok(()) => Ok(n),
                Err(e) => return Err(commit_error("the rollback", &e)),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                for (_, m, _) in &plan {
                    mark(&mut ctx.out.migrations, m, State::RolledBack, None);
                    ctx.cx
                        .emit(event(ctx, super::AFTER_MIGRATION, m, vec![("direction".into(), "down".into())]))
                        .await?;
                }
                Ok(())
            }
            Err(ScriptError::Cancelled) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(StageError::cancelled())
            }
            Err(ScriptError::Statement { index, error }) => {
                let _ = client.batch_execute("ROLLBACK").await;
                let err = match owners.get(index).copied().flatten() {
                    Some((k, Some(i))) => statement_error(&plan[k].2, i, &error, plan[k].1, true),
                    _ => StageError::new(ExitCode::Failure, pg::describe(&error)),
                };
                let failed = owners.get(index).copied().flatten().map(|(k, _)| k);
                if let Some(k) = failed {
                    mark(&mut ctx.out.migrations, plan[k].1, State::Failed, Some(err.message.clone()));
                }
                let mut err = err;
                err.message = format!("{}; nothing was rolled back", err.message);
                Err(err)
            }
        }
    } else {
        tracing::warn!("a .down.sql runs outside a transaction, so the rollback is not atomic");
        for (a, m, p) in &plan {
            ctx.cx.emit(event(ctx, super::BEFORE_MIGRATION, m, vec![("direction".into(), "down".into())])).await?;
            let result = down_one(ctx, a, m, p, &delete).await;
            match result {
                Ok(()) => {
                    mark(&mut ctx.out.migrations, m, State::RolledBack, None);
                    ctx.cx
                        .emit(event(ctx, super::AFTER_MIGRATION, m, vec![("direction".into(), "down".into())]))
                        .await?;
                }
                Err(e) => {
                    mark(&mut ctx.out.migrations, m, State::Failed, Some(e.message.clone()));
                    return Err(e);
                }
            }
        }
        Ok(())
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
    client.batch_execute(&session::reset(ctx.stage)).await.map_err(PgError::from)?;
    if p.transactional() {
        client.batch_execute("BEGIN").await.map_err(PgError::from)?;
    }
    for i in 0..p.statements.len() {
        if !p.transactional() {
            run_outside(ctx, m, p, i).await?;
            continue;
        }
        if let Err(e) = ctx.session.cancellable(&ctx.cx.cancel, client.batch_execute(p.text(i))).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(match e {
                PgError::Query(error) => statement_error(p, i, &error, m, true),
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
        client.batch_execute("COMMIT").await.map_err(|e| commit_error(&m.id(), &e))?;
    }
    Ok(())
}

fn mark(rows: &mut [MigrationReport], m: &Migration, state: State, error: Option<String>) {
    if let Some(r) = rows.iter_mut().find(|r| r.version == m.version) {
        r.state = state;
        r.error = error;
    }
}

/// `baseline`: record every migration up to `through` as applied, without running it.
async fn baseline(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let through = ctx.stage.through.clone().expect("configure requires `through` for baseline");
    let n = files::version_number(&through).expect("configure checked the version");
    if !ctx.migrations.iter().any(|m| m.number == n) {
        return Err(StageError::new(ExitCode::Config, format!("no migration file has version {through}")));
    }
    let wait = ctx.stage.lock_timeout.unwrap_or(DEFAULT_LOCK_WAIT);
    let lock = tracking::lock(&ctx.session, &ctx.stage.table, wait, &ctx.cx.cancel).await?;
    let result = async {
        tracking::create(&ctx.session, &ctx.stage.table).await?;
        let applied = tracking::applied(&ctx.session, &ctx.stage.table).await?;
        ctx.out.migrations = compare(&ctx.migrations, &applied);
        let client = ctx.session.client();
        let insert = client.prepare(&tracking::insert_sql(&ctx.stage.table)).await.map_err(PgError::from)?;
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
    .await;
    lock.release(&ctx.session).await;
    result
}

/// `dry-run`: what `up` would run, statement by statement, with the locks each takes.
async fn dry_run(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let applied =
        if ctx.out.table_exists { tracking::applied(&ctx.session, &ctx.stage.table).await? } else { Vec::new() };
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    let pending: Vec<Migration> = pending(ctx, &applied)?.into_iter().cloned().collect();
    let refs: Vec<&Migration> = pending.iter().collect();
    let prepared = prepare_all(ctx, &refs)?;
    for (m, p) in pending.iter().zip(&prepared) {
        if let Some(r) = ctx.out.migrations.iter_mut().find(|r| r.version == m.version) {
            r.state = State::WouldRun;
            r.transactional = Some(p.transactional());
            r.statements = p.report();
        }
    }
    refuse_drift(&ctx.out.migrations)
}

/// `dry-run-execute` (on the target) and `preflight` (on the `against` database): run every
/// pending migration inside one transaction, each in a savepoint so one failure does not hide the
/// next, then roll everything back. It takes the migration lock, as `up` does (a rehearsal and a
/// real run never interleave), and the runner's `lock_timeout`; until the final rollback it holds
/// every lock that every pending migration takes.
async fn rehearse(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let wait = ctx.stage.lock_timeout.unwrap_or(DEFAULT_LOCK_WAIT);
    let lock = tracking::lock(&ctx.session, &ctx.stage.table, wait, &ctx.cx.cancel).await?;
    let result = rehearse_locked(ctx).await;
    lock.release(&ctx.session).await;
    result
}

async fn rehearse_locked(ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let client = ctx.session.client();
    let applied =
        if ctx.out.table_exists { tracking::applied(&ctx.session, &ctx.stage.table).await? } else { Vec::new() };
    ctx.out.migrations = compare(&ctx.migrations, &applied);
    refuse_drift(&ctx.out.migrations)?;
    let pending: Vec<Migration> = pending(ctx, &applied)?.into_iter().cloned().collect();
    let refs: Vec<&Migration> = pending.iter().collect();
    let prepared = prepare_all(ctx, &refs)?;
    client.batch_execute("BEGIN").await.map_err(PgError::from)?;
    let result = async {
        if !ctx.out.table_exists {
            tracking::create(&ctx.session, &ctx.stage.table).await?;
        }
        let insert = client.prepare(&tracking::insert_sql(&ctx.stage.table)).await.map_err(PgError::from)?;
        let reset = &session::reset(ctx.stage);
        let mut failed = Vec::new();
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
                // The reset inside the savepoint, so a failure of it is rolled back with the rest.
                let mut requests: Vec<Pending<'_>> = vec![
                    Box::pin(client.batch_execute("SAVEPOINT confiture_rehearsal")),
                    Box::pin(client.batch_execute(reset)),
                ];
                for i in 0..p.statements.len() {
                    requests.push(Box::pin(client.batch_execute(p.text(i))));
                }
                let insert = &insert;
                requests.push(Box::pin(async move { client.execute(insert, &params).await.map(|_| ()) }));
                requests.push(Box::pin(client.batch_execute("RELEASE SAVEPOINT confiture_rehearsal")));
                match script::run_requests(&ctx.session, requests, &ctx.cx.cancel, &mut |_| {}).await {
                    Ok(_) => (State::Rehearsed, None),
                    Err(ScriptError::Cancelled) => return Err(StageError::cancelled()),
                    Err(ScriptError::Statement { index, error }) => {
                        client
                            .batch_execute("ROLLBACK TO SAVEPOINT confiture_rehearsal")
                            .await
                            .map_err(PgError::from)?;
                        let message = if index >= 2 && index <= p.statements.len() + 1 {
                            statement_error(p, index - 2, &error, m, true).message
                        } else {
                            format!("{}: {}", m.up_shown, pg::describe(&error))
                        };
                        failed.push(m.up_shown.clone());
                        (State::Failed, Some(message))
                    }
                }
            };
            if let Some(r) = ctx.out.migrations.iter_mut().find(|r| r.version == m.version) {
                r.state = state;
                r.error = error;
                r.transactional = Some(p.transactional());
            }
        }
        Ok::<_, StageError>(failed)
    }
    .await;
    let _ = client.batch_execute("ROLLBACK").await;
    let failed = result?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StageError::new(
            ExitCode::Drift,
            format!("{} failed in the rehearsal (rolled back): {}", count(failed.len()), failed.join(", ")),
        ))
    }
}
