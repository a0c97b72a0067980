//! `cutover` and `rollback`.
//!
//! The switch: catch up until little is waiting; PgBouncer `PAUSE` (when configured); on OLD,
//! one transaction takes `LOCK TABLE … IN EXCLUSIVE MODE` on every migrated table under a short
//! `lock_timeout`, retried with backoff (reads go on, writes wait); the last changes are
//! drained; NEW's sequences are set past OLD's; NEW gets the reverse capture (so a rollback can
//! carry NEW's writes back); OLD gets the refusal trigger; the `cutover` event runs its hooks;
//! PgBouncer is repointed and reloaded; OLD commits (the refusal is in place, the lock is
//! released) and PgBouncer resumes. A hook that refuses, or any failure before OLD commits,
//! undoes the switch: OLD rolls back, NEW's reverse capture is dropped, PgBouncer resumes on
//! OLD.
//!
//! Rollback after the switch runs the same steps the other way: pause, freeze NEW, replay NEW's
//! reverse log into OLD, OLD's sequences past NEW's, the refusal lifted, PgBouncer pointed back.

use std::time::{Duration, Instant};

use confiture_engine::ExitCode;
use confiture_engine::event::{Event, Tone};
use confiture_engine::pg::{self, ConnInfo, PgError, Session};
use confiture_engine::stage::{StageContext, StageError};
use serde::{Deserialize, Serialize};

use super::pgbouncer::{self, Console};
use super::plan::{Plan, TablePlan};
use super::replay::{self, Direction, Pace, ReplaySummary};
use super::{CUTOVER, Options, state};

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SwitchReport {
    /// `cutover` or `rollback`.
    pub direction: String,
    /// Attempts it took to take the locks.
    pub lock_attempts: u32,
    /// From the start of the freeze (PAUSE, or the locks) to its end (RESUME, or the commit).
    pub freeze_ms: u64,
    /// Changes drained inside the freeze.
    pub drained: u64,
    pub sequences: usize,
    /// Whether PgBouncer was switched.
    pub pgbouncer: bool,
}

fn failure(m: impl Into<String>) -> StageError {
    StageError::new(ExitCode::Failure, m)
}

/// Take `tables` in EXCLUSIVE mode (reads go on, writes wait) in a transaction left open on `s`.
async fn freeze(s: &Session, tables: &[String], options: &Options, cx: &StageContext) -> Result<u32, StageError> {
    let sql = format!("LOCK TABLE {} IN EXCLUSIVE MODE", tables.join(", "));
    state::lock_retrying(s, &sql, options, "could not freeze writes", cx).await
}

/// Set `to`'s sequences of the migrated columns past `from`'s: `(from table, from column, to
/// table, to column)` pairs.
async fn sequences(
    from: &Session,
    to: &Session,
    pairs: &[(String, String, String, String)],
) -> Result<usize, StageError> {
    let mut n = 0;
    for (ft, fc, tt, tc) in pairs {
        let f: Option<String> = from
            .client()
            .query_one("SELECT pg_get_serial_sequence($1, $2)", &[ft, fc])
            .await
            .map_err(PgError::from)?
            .get(0);
        let t: Option<String> = to
            .client()
            .query_one("SELECT pg_get_serial_sequence($1, $2)", &[tt, tc])
            .await
            .map_err(PgError::from)?
            .get(0);
        let (Some(f), Some(t)) = (f, t) else { continue };
        let value: Option<i64> = from
            .client()
            .query_one("SELECT pg_sequence_last_value($1::text::regclass)", &[&f])
            .await
            .map_err(PgError::from)?
            .get(0);
        let Some(value) = value else { continue };
        to.client()
            .execute(
                "SELECT setval($1::text::regclass, greatest($2, coalesce(pg_sequence_last_value($1::text::regclass), $2)))",
                &[&t, &value],
            )
            .await
            .map_err(|e| failure(format!("setting sequence {t}: {}", pg::describe(&e))))?;
        n += 1;
    }
    Ok(n)
}

fn column_pairs(plan: &Plan, forward: bool) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for t in &plan.tables {
        for c in &t.columns {
            if let Some(oc) = &c.old_column {
                let (o, n) = ((t.old_sql.clone(), oc.clone()), (t.new_sql.clone(), c.new.clone()));
                let ((ft, fc), (tt, tc)) = if forward { (o, n) } else { (n, o) };
                out.push((ft, fc, tt, tc));
            }
        }
    }
    out
}

fn olds(plan: &Plan) -> Vec<&TablePlan> {
    plan.old_tables()
}

/// Connections a switch uses.
pub struct Sides<'a> {
    pub old: &'a ConnInfo,
    pub new: &'a ConnInfo,
    /// A session on NEW (state).
    pub control: &'a Session,
}

/// The switch to NEW.
pub async fn cutover(
    plan: &Plan,
    sides: &Sides<'_>,
    run: &str,
    options: &Options,
    cx: &StageContext,
) -> Result<(SwitchReport, ReplaySummary), StageError> {
    let mut report = SwitchReport { direction: "cutover".into(), ..SwitchReport::default() };
    let reader = super::session(sides.old, "confiture fdw-cutover (catch-up read)").await?;
    let writer = super::session(sides.new, "confiture fdw-cutover (catch-up write)").await?;
    // Close the gap while writes go on, so that the freeze only has a little to drain.
    let mut replayed = replay::replay(
        plan,
        Direction::Forward,
        &reader,
        &writer,
        Pace::until(options.batch, options.max_lag),
        run,
        cx,
    )
    .await?;
    // Closer still, so that the freeze drains one small batch.
    let tight = replay::replay(
        plan,
        Direction::Forward,
        &reader,
        &writer,
        Pace { batch: options.batch, until: 0, max_batches: 3 },
        run,
        cx,
    )
    .await?;
    replayed = replayed.merge(&tight);
    // The reverse capture, before the freeze: the application does not write to NEW yet, and
    // catch-up's writes (replica mode) do not fire it.
    sides
        .control
        .client()
        .batch_execute(&state::capture_on_new(&plan.tables))
        .await
        .map_err(|e| failure(format!("reverse capture on NEW: {}", pg::describe(&e))))?;
    let undo_sql = state::remove_from_new(&plan.tables);
    let undo_capture = || sides.control.client().batch_execute(&undo_sql);
    let console = match &options.bouncer {
        Some(b) => match Console::connect(b).await {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = undo_capture().await;
                return Err(e);
            }
        },
        None => None,
    };
    let frozen_at = Instant::now();
    if let Some(c) = &console
        && let Err(e) = c.pause(Duration::from_secs(10)).await
    {
        let _ = undo_capture().await;
        return Err(e);
    }
    let locker = match super::session(sides.old, "confiture fdw-cutover (freeze)").await {
        Ok(s) => s,
        Err(e) => {
            resume(console.as_ref()).await;
            let _ = undo_capture().await;
            return Err(e);
        }
    };
    let tables: Vec<String> = olds(plan).iter().map(|t| t.old_sql.clone()).collect();
    report.lock_attempts = match freeze(&locker, &tables, options, cx).await {
        Ok(n) => n,
        Err(e) => {
            resume(console.as_ref()).await;
            let _ = undo_capture().await;
            return Err(e);
        }
    };
    let acc = &mut replayed;
    let result: Result<(), StageError> = async {
        let drained =
            replay::replay(plan, Direction::Forward, &reader, &writer, Pace::until(options.batch, 0), run, cx).await?;
        report.drained = drained.changes;
        *acc = std::mem::take(acc).merge(&drained);
        report.sequences = sequences(&reader, &writer, &column_pairs(plan, true)).await?;
        locker
            .client()
            .batch_execute(&state::refuse_on_old(&olds(plan), &sides.new.to_string()))
            .await
            .map_err(|e| failure(format!("refusing writes on OLD: {}", pg::describe(&e))))?;
        cx.emit(
            Event::new(CUTOVER)
                .subject("run", run.to_string())
                .detail("run", run.to_string())
                .detail("from", sides.old.to_string())
                .detail("to", sides.new.to_string())
                .note(format!("switching {} → {}", sides.old, sides.new), Tone::Good, false),
        )
        .await?;
        if let (Some(b), Some(c)) = (&options.bouncer, &console) {
            pgbouncer::repoint(&b.config, &b.database, sides.new)?;
            c.reload().await?;
            report.pgbouncer = true;
        }
        locker
            .client()
            .batch_execute("COMMIT")
            .await
            .map_err(|e| failure(format!("committing the switch on OLD: {}", pg::describe(&e))))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = locker.client().batch_execute("ROLLBACK").await;
        let _ = undo_capture().await;
        if let (Some(b), Some(c)) = (&options.bouncer, &console)
            && report.pgbouncer
        {
            let _ = pgbouncer::repoint(&b.config, &b.database, sides.old);
            let _ = c.reload().await;
        }
        resume(console.as_ref()).await;
        return Err(e);
    }
    if let Some(c) = &console {
        c.resume().await?;
    }
    report.freeze_ms = frozen_at.elapsed().as_millis() as u64;
    sides
        .control
        .client()
        .execute(
            &format!(
                "UPDATE {}.runs SET switched_at = now() WHERE run = $1",
                crate::catalog::model::ident(super::plan::STATE_SCHEMA)
            ),
            &[&run],
        )
        .await
        .map_err(PgError::from)?;
    Ok((report, replayed))
}

/// Back to OLD after a switch: NEW's writes replayed into OLD first.
pub async fn rollback(
    plan: &Plan,
    sides: &Sides<'_>,
    run: &str,
    options: &Options,
    cx: &StageContext,
) -> Result<(SwitchReport, ReplaySummary), StageError> {
    let mut report = SwitchReport { direction: "rollback".into(), ..SwitchReport::default() };
    let reader = super::session(sides.new, "confiture fdw-cutover (rollback read)").await?;
    let writer = super::session(sides.old, "confiture fdw-cutover (rollback write)").await?;
    let mut replayed = replay::replay(
        plan,
        Direction::Backward,
        &reader,
        &writer,
        Pace::until(options.batch, options.max_lag),
        run,
        cx,
    )
    .await?;
    let console = match &options.bouncer {
        Some(b) => Some(Console::connect(b).await?),
        None => None,
    };
    let frozen_at = Instant::now();
    if let Some(c) = &console {
        c.pause(Duration::from_secs(10)).await?;
    }
    let locker = super::session(sides.new, "confiture fdw-cutover (freeze NEW)").await?;
    let tables: Vec<String> = plan.tables.iter().map(|t| t.new_sql.clone()).collect();
    let attempts = freeze(&locker, &tables, options, cx).await;
    let acc = &mut replayed;
    let result: Result<(), StageError> = async {
        report.lock_attempts = attempts?;
        let drained =
            replay::replay(plan, Direction::Backward, &reader, &writer, Pace::until(options.batch, 0), run, cx).await?;
        report.drained = drained.changes;
        *acc = std::mem::take(acc).merge(&drained);
        report.sequences = sequences(&reader, &writer, &column_pairs(plan, false)).await?;
        writer
            .client()
            .batch_execute(&state::lift_refusal(&olds(plan)))
            .await
            .map_err(|e| failure(format!("lifting the refusal on OLD: {}", pg::describe(&e))))?;
        cx.emit(
            Event::new(CUTOVER)
                .subject("run", run.to_string())
                .detail("run", run.to_string())
                .detail("from", sides.new.to_string())
                .detail("to", sides.old.to_string())
                .detail("rollback", "true")
                .note(format!("switching back {} → {}", sides.new, sides.old), Tone::Warn, false),
        )
        .await?;
        if let (Some(b), Some(c)) = (&options.bouncer, &console) {
            pgbouncer::repoint(&b.config, &b.database, sides.old)?;
            c.reload().await?;
            report.pgbouncer = true;
        }
        locker.client().batch_execute(&state::remove_from_new(&plan.tables)).await.map_err(PgError::from)?;
        locker.client().batch_execute("COMMIT").await.map_err(PgError::from)?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = locker.client().batch_execute("ROLLBACK").await;
        resume(console.as_ref()).await;
        return Err(e);
    }
    resume(console.as_ref()).await;
    report.freeze_ms = frozen_at.elapsed().as_millis() as u64;
    Ok((report, replayed))
}

async fn resume(console: Option<&Console>) {
    if let Some(c) = console {
        let _ = c.resume().await;
    }
}
