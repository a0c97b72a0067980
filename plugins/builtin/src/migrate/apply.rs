//! What the modes share to run migrations: the migration lock around a mode, one pipelined
//! transaction (or savepoint) for migrations that run in one, statement by statement for those
//! that cannot, the events hooks see, and the errors that say what was and was not applied.

use confiture_engine::ExitCode;
use confiture_engine::event::{Event, EventKind, Tone};
use confiture_engine::pg::script::{self, Pending, ScriptError};
use confiture_engine::pg::{self, PgError};
use confiture_engine::stage::StageError;
use tokio_postgres::types::ToSql;

use super::files::Migration;
use super::prepare::{self, Prepared};
use super::{AFTER_MIGRATION, Ctx, DEFAULT_LOCK_WAIT, MIGRATION_FAILED, indexes, session, tracking};

/// Run `work` holding the migration lock (the tracking table's advisory lock), waiting for it at
/// most `lock-timeout`; the lock is released whatever `work` returns.
pub async fn locked<'a, T>(
    ctx: &mut Ctx<'a>,
    work: impl AsyncFnOnce(&mut Ctx<'a>) -> Result<T, StageError>,
) -> Result<T, StageError> {
    let wait = ctx.job.lock_timeout.unwrap_or(DEFAULT_LOCK_WAIT);
    let lock = tracking::lock(&ctx.session, &ctx.job.table, wait, &ctx.cx.cancel).await?;
    let result = work(ctx).await;
    lock.release(&ctx.session).await;
    result
}

/// One migration's part of a pipelined transaction: after the session reset, its statements,
/// then `record` (the change to its tracking row).
pub struct Unit<'a> {
    pub prepared: &'a Prepared,
    pub record: Pending<'a>,
}

/// A request of a pipelined transaction: which unit (migration) and which of its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// BEGIN or SAVEPOINT.
    Open,
    /// The session reset before unit `k`.
    Reset(usize),
    /// Statement `i` of unit `k`.
    Statement(usize, usize),
    /// The tracking change of unit `k`.
    Record(usize),
    /// RELEASE SAVEPOINT.
    Close,
}

/// Where a pipelined transaction stopped.
pub enum Stopped {
    Cancelled,
    Failed { at: Part, error: tokio_postgres::Error },
}

impl Stopped {
    /// The stage's error for one migration `m` (prepared as `p`) that ran in a transaction now
    /// rolled back.
    pub fn into_error(self, m: &Migration, p: &Prepared) -> StageError {
        match self {
            Stopped::Cancelled => StageError::cancelled(),
            Stopped::Failed { at: Part::Statement(_, i), error } => statement_error(p, i, &error, m, true),
            Stopped::Failed { error, .. } => {
                StageError::new(ExitCode::Failure, format!("{}: {} (rolled back)", m.up_shown, pg::describe(&error)))
            }
        }
    }
}

/// Send `open`, then every unit (reset, statements, tracking change), then `close` if any, in one
/// pipeline on the migration session: a failing statement aborts the transaction and the rest
/// fail harmlessly. Neither commits nor rolls back: what the outcome means is the caller's — and
/// a runner that dies before its COMMIT leaves nothing committed.
pub async fn pipelined<'a>(
    ctx: &'a Ctx<'_>,
    open: &'a str,
    units: Vec<Unit<'a>>,
    close: Option<&'a str>,
) -> Result<(), Stopped> {
    let client = ctx.session.client();
    let reset = session::reset(ctx.job);
    let reset = reset.as_str();
    let mut owners: Vec<Part> = vec![Part::Open];
    let mut requests: Vec<Pending<'_>> = vec![Box::pin(client.batch_execute(open))];
    for (k, unit) in units.into_iter().enumerate() {
        // The reset runs inside the transaction: if it fails, nothing after it can run.
        requests.push(Box::pin(client.batch_execute(reset)));
        owners.push(Part::Reset(k));
        for i in 0..unit.prepared.statements.len() {
            requests.push(Box::pin(client.batch_execute(unit.prepared.text(i))));
            owners.push(Part::Statement(k, i));
        }
        requests.push(unit.record);
        owners.push(Part::Record(k));
    }
    if let Some(close) = close {
        requests.push(Box::pin(client.batch_execute(close)));
        owners.push(Part::Close);
    }
    match script::run_requests(&ctx.session, requests, &ctx.cx.cancel, &mut |_| {}).await {
        Ok(_) => Ok(()),
        Err(ScriptError::Cancelled) => Err(Stopped::Cancelled),
        Err(ScriptError::Statement { index, error }) => {
            let at = owners.get(index).copied().unwrap_or(Part::Close);
            Err(Stopped::Failed { at, error })
        }
    }
}

pub fn insert_params<'a>(m: &'a Migration, ms: &'a Option<f64>, baseline: &'a bool) -> [&'a (dyn ToSql + Sync); 6] {
    [&m.version, &m.name, &m.checksum, ms, baseline, &tracking::CONFITURE_VERSION]
}

pub fn prepare_all(ctx: &Ctx<'_>, list: &[&Migration]) -> Result<Vec<Prepared>, StageError> {
    list.iter().map(|m| prepare::prepare(&m.up_shown, &m.up_sql, ctx.server_version)).collect()
}

pub fn event(ctx: &Ctx<'_>, kind: EventKind, m: &Migration, details: Vec<(String, String)>) -> Event {
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
        AFTER_MIGRATION => event.note(format!("{} ({ms} ms)", m.id()), Tone::Good, false),
        MIGRATION_FAILED => event.note(m.id(), Tone::Bad, false),
        _ => event.note(format!("{}…", m.id()), Tone::Plain, true),
    }
}

/// Run statement `i` of a migration that runs outside a transaction. A concurrent index build is
/// watched: an INVALID index it leaves (failed or not) fails the migration, named (see
/// [`indexes`]).
pub async fn run_outside(ctx: &Ctx<'_>, m: &Migration, p: &Prepared, i: usize) -> Result<(), StageError> {
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
pub fn commit_error(what: &str, e: &tokio_postgres::Error) -> StageError {
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

pub fn statement_error(
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
