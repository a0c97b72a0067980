//! The phases in order. Each is resumable: what it did is recorded on NEW
//! (`confiture_cutover.runs.done`), and a phase already done is skipped, so the same command run
//! again after a kill goes on where it stopped.

use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::event::{Event, Tone};
use confiture_engine::pg::{self, ConnInfo, PgError, Session};
use confiture_engine::project::DirSpec;
use confiture_engine::stage::{Outputs, StageContext, StageError};

use super::cutover::{self, Sides};
use super::mapping::Mapping;
use super::plan::{self, CAPTURE_SCHEMA, Plan, STATE_SCHEMA};
use super::replay::{self, Direction, Pace};
use super::{AFTER_PHASE, CutoverReport, Options, Phase, PhaseReport, copy, setup, state, verify};
use crate::catalog::model::ident;
use crate::catalog::tables;

fn config(m: impl Into<String>) -> StageError {
    StageError::new(ExitCode::Config, m)
}

/// Where a cutover reads and writes.
pub struct Ends {
    pub old: ConnInfo,
    pub new: ConnInfo,
}

/// Whether NEW has any table of its own yet.
async fn has_tables(new: &Session) -> Result<bool, PgError> {
    Ok(new
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
               AND n.nspname <> $1 AND n.nspname NOT LIKE 'confiture\\_old\\_%')",
            &[&STATE_SCHEMA],
        )
        .await?
        .get(0))
}

async fn build_new(ends: &Ends, options: &Options, cx: &StageContext) -> Result<usize, StageError> {
    let files = crate::build::collect::collect(&cx.project, &[DirSpec::new(&options.schema_dir)], &[])?;
    if files.is_empty() {
        return Err(config(format!(
            "NEW has no tables and {} has no SQL files to build it from: build NEW first, or set `schema`",
            options.schema_dir.display()
        )));
    }
    let hash = crate::build::schema_hash(&files);
    let dbname = ends.new.dbname().unwrap_or_default().to_string();
    let built = crate::build::build_into(
        cx,
        &ends.new,
        &dbname,
        &files,
        &hash,
        crate::build::Options { drop_existing: false, cache: false },
    )
    .await?;
    Ok(built.statements)
}

fn done(report: &mut CutoverReport, phase: Phase, started: Instant, result: &str, summary: String) {
    report.phases.push(PhaseReport {
        phase: phase.as_str().into(),
        result: result.into(),
        duration_ms: started.elapsed().as_millis() as u64,
        summary,
    });
}

async fn announce(cx: &StageContext, phase: Phase, line: &str) -> Result<(), StageError> {
    cx.emit(Event::new(AFTER_PHASE).subject("phase", phase.as_str()).detail("phase", phase.as_str()).note(
        format!("{}: {line}", phase.as_str()),
        Tone::Good,
        false,
    ))
    .await
}

fn outputs_of(report: &CutoverReport) -> Outputs {
    let mut o = Outputs::default();
    o.extend_from(report);
    o
}

/// Run the phases `options.phases` asks for.
pub async fn run(ends: &Ends, options: &Options, cx: &StageContext) -> Result<CutoverReport, StageError> {
    let started = Instant::now();
    let mut report = CutoverReport {
        from: ends.old.to_string(),
        to: ends.new.to_string(),
        dry_run: options.dry_run,
        ..CutoverReport::default()
    };
    let old = super::session(&ends.old, "confiture fdw-cutover (control OLD)").await?;
    let new = super::session(&ends.new, "confiture fdw-cutover (control NEW)").await?;
    let (old_id, new_id) = futures::try_join!(crate::sync::run::identity(&old), crate::sync::run::identity(&new))?;
    if old_id == new_id {
        return Err(config(format!(
            "refusing to migrate a database into itself: {} and {} are the same database",
            report.from, report.to
        ))
        .with_field("refused", "same-database"));
    }
    let locked: bool = new
        .client()
        .query_one("SELECT pg_try_advisory_lock(hashtext('confiture fdw-cutover'))", &[])
        .await
        .map_err(PgError::from)?
        .get(0);
    if !locked {
        return Err(StageError::new(ExitCode::LockContention, "another fdw-cutover into this database is running"));
    }
    let active = state::active(&new).await?;
    if let Some(a) = &active
        && a.old_identity != old_id
    {
        return Err(config(format!(
            "NEW holds cutover run {} from another database ({}), not from {} ({old_id})",
            a.run, a.old, report.from
        )));
    }
    report.run = active.as_ref().map(|a| a.run.clone()).unwrap_or_default();
    report.state = active.as_ref().map_or_else(|| "none".into(), state::Run::stands);

    // NEW's schema.
    if !has_tables(&new).await? {
        if options.dry_run {
            return Err(config(format!(
                "NEW has no tables yet: a run builds them from {} first; build NEW (`confiture build`) to see the whole plan",
                options.schema_dir.display()
            )));
        }
        let n = build_new(ends, options, cx).await?;
        report.notes.push(format!("NEW was empty: built from {} ({n} statements)", options.schema_dir.display()));
    }

    // 1. plan.
    let t0 = Instant::now();
    let mapping = match &options.mapping {
        Some(p) => Mapping::load(&cx.project.resolve(p))
            .map_err(|d| crate::problems(d, "the mapping", "nothing was written"))?,
        None => Mapping::default(),
    };
    let (old_tables, new_tables) = futures::try_join!(tables::read(&old), tables::read(&new))?;
    if !new_tables.may_skip_triggers {
        return Err(config(
            "fdw-cutover writes NEW's rows with session_replication_role = replica (the application's triggers and \
             foreign keys do not fire for copied rows; verify checks them): connect to NEW as a superuser, or GRANT \
             SET ON PARAMETER session_replication_role to this role",
        ));
    }
    let plan = plan::plan(&old_tables, &new_tables, &mapping, &old, options.small_rows).await?;
    report.tables = plan.tables.iter().map(plan::TablePlan::summary).collect();
    report.dropped = plan.dropped.clone();
    report.unfilled = plan.unfilled.clone();
    report.notes.extend(plan.notes.iter().cloned());
    let digest = plan.digest();
    if let Some(a) = &active
        && a.plan_digest != digest
        && !options.phases.iter().all(|p| matches!(p, Phase::Rollback | Phase::Cleanup | Phase::Status))
    {
        return Err(config(format!(
            "cutover run {} was planned differently (the mapping or a schema changed since): finish it with the \
             same mapping, or `rollback` it",
            a.run
        )));
    }
    done(
        &mut report,
        Phase::Plan,
        t0,
        if options.dry_run { "planned" } else { "done" },
        format!("{} tables", plan.tables.len()),
    );
    if options.dry_run {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let mut run = active;
    for phase in options.phases.iter().copied().filter(|p| *p != Phase::Plan) {
        if cx.cancel.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let t0 = Instant::now();
        let has = |p: Phase| run.as_ref().is_some_and(|r| r.has(p));
        let need = |p: Phase, why: &str| -> Result<(), StageError> {
            if has(p) { Ok(()) } else { Err(config(format!("{} needs {} first: {why}", phase.as_str(), p.as_str()))) }
        };
        match phase {
            Phase::Plan => {}
            Phase::Setup => {
                if has(Phase::Setup) {
                    done(&mut report, phase, t0, "skipped", "already done".into());
                    continue;
                }
                new.client().batch_execute(&state::state_tables()).await.map_err(PgError::from)?;
                let id = match &run {
                    Some(r) => r.run.clone(),
                    None => {
                        let id: String = new
                            .client()
                            .query_one("SELECT 'cutover-' || to_char(clock_timestamp(), 'YYYYMMDD-HH24MISS-US')", &[])
                            .await
                            .map_err(PgError::from)?
                            .get(0);
                        new.client()
                            .execute(
                                &format!(
                                    "INSERT INTO {}.runs (run, old_identity, old, plan_digest) VALUES ($1, $2, $3, $4)",
                                    ident(STATE_SCHEMA)
                                ),
                                &[&id, &old_id, &report.from, &digest],
                            )
                            .await
                            .map_err(PgError::from)?;
                        id
                    }
                };
                let n = setup::setup(&new, &ends.old, &plan).await?;
                state::mark(&new, &id, phase).await?;
                report.run = id;
                run = state::active(&new).await?;
                let line = format!("postgres_fdw server {} on NEW, {n} foreign tables", setup::SERVER);
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
            }
            Phase::Capture => {
                need(Phase::Setup, "the run starts there")?;
                if has(Phase::Capture) {
                    done(&mut report, phase, t0, "skipped", "already done".into());
                    continue;
                }
                let sql = state::capture_on_old(&plan.old_tables());
                state::lock_retrying(&old, &sql, options, "could not install change capture on OLD", cx).await?;
                old.client().batch_execute("COMMIT").await.map_err(PgError::from)?;
                let r = run.as_ref().expect("a run").run.clone();
                state::mark(&new, &r, phase).await?;
                run = state::active(&new).await?;
                let line = format!(
                    "change log {CAPTURE_SCHEMA}.changes and triggers on {} OLD tables",
                    plan.old_tables().len()
                );
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
            }
            Phase::Copy => {
                need(Phase::Capture, "nothing committed after the copy's snapshot may be missed")?;
                if has(Phase::Copy) {
                    done(&mut report, phase, t0, "skipped", "already done".into());
                    continue;
                }
                let r = run.as_ref().expect("a run").run.clone();
                let s = copy::copy(&ends.old, &ends.new, &new, &r, &plan, options, cx).await?;
                state::mark(&new, &r, phase).await?;
                run = state::active(&new).await?;
                let line =
                    format!("{} rows into {} tables in {:.1}s", s.rows, s.tables.len(), s.duration_ms as f64 / 1000.0);
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
                report.copy = Some(s);
            }
            Phase::CatchUp => {
                need(Phase::Copy, "catch-up replays what changed since the copy")?;
                let r = run.as_ref().expect("a run").run.clone();
                let reader = super::session(&ends.old, "confiture fdw-cutover (catch-up read)").await?;
                let writer = super::session(&ends.new, "confiture fdw-cutover (catch-up write)").await?;
                let s = replay::replay(
                    &plan,
                    Direction::Forward,
                    &reader,
                    &writer,
                    Pace::until(options.batch, options.max_lag),
                    &r,
                    cx,
                )
                .await?;
                state::mark(&new, &r, phase).await?;
                let line = format!(
                    "{} changes in {} batches ({:.0}/s); lag {} rows, {:.1}s",
                    s.changes, s.batches, s.rate, s.lag_rows, s.lag_seconds
                );
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
                report.catch_up = Some(report.catch_up.take().unwrap_or_default().merge(&s));
            }
            Phase::Verify => {
                need(Phase::Copy, "verify compares the copy with OLD")?;
                let r = run.as_ref().expect("a run").run.clone();
                let switched = run.as_ref().is_some_and(|r| r.switched_at.is_some());
                let checks = verify_all(&plan, ends, &r, options, switched, cx).await?;
                let bad: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| c.table.clone()).collect();
                report.verify = Some(checks);
                if !bad.is_empty() {
                    done(&mut report, phase, t0, "failed", format!("{} tables differ", bad.len()));
                    report.duration_ms = started.elapsed().as_millis() as u64;
                    return Err(StageError::new(
                        ExitCode::Drift,
                        format!("verify: {} differ between OLD and NEW: {}", bad.len(), bad.join(", ")),
                    )
                    .with_outputs(outputs_of(&report)));
                }
                state::mark(&new, &r, phase).await?;
                let line = format!("{} tables: counts and checksums match", plan.tables.len());
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
            }
            Phase::Cutover => {
                need(Phase::Copy, "the switch needs NEW filled")?;
                let r = run.as_ref().expect("a run").run.clone();
                let first = plan.old_tables();
                let switched = run.as_ref().is_some_and(|x| x.switched_at.is_some())
                    || match first.first() {
                        Some(t) => state::refused_on_old(&old, t).await?,
                        None => false,
                    };
                if switched {
                    // A switch that committed on OLD before it was recorded (a kill in between).
                    new.client()
                        .execute(
                            &format!(
                                "UPDATE {}.runs SET switched_at = coalesce(switched_at, now()) WHERE run = $1",
                                ident(STATE_SCHEMA)
                            ),
                            &[&r],
                        )
                        .await
                        .map_err(PgError::from)?;
                    state::mark(&new, &r, phase).await?;
                    run = state::active(&new).await?;
                    done(&mut report, phase, t0, "skipped", "already switched".into());
                    continue;
                }
                let sides = Sides { old: &ends.old, new: &ends.new, control: &new };
                let (sw, replayed) = cutover::cutover(&plan, &sides, &r, options, cx).await?;
                state::mark(&new, &r, phase).await?;
                run = state::active(&new).await?;
                let line = format!(
                    "switched to NEW; writes frozen {} ms ({} lock attempt{}, {} changes drained, {} sequences){}",
                    sw.freeze_ms,
                    sw.lock_attempts,
                    if sw.lock_attempts == 1 { "" } else { "s" },
                    sw.drained,
                    sw.sequences,
                    if sw.pgbouncer { ", PgBouncer repointed" } else { "" }
                );
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
                report.catch_up = Some(report.catch_up.take().unwrap_or_default().merge(&replayed));
                report.cutover = Some(sw);
            }
            Phase::Rollback => {
                let Some(rr) = run.clone() else {
                    return Err(config("rollback: NEW has no cutover run to roll back"));
                };
                let switched = rr.switched_at.is_some()
                    || match plan.old_tables().first() {
                        Some(t) => state::refused_on_old(&old, t).await?,
                        None => false,
                    };
                let mut line = String::new();
                if switched {
                    let sides = Sides { old: &ends.old, new: &ends.new, control: &new };
                    let (sw, replayed) = cutover::rollback(&plan, &sides, &rr.run, options, cx).await?;
                    line = format!(
                        "switched back to OLD; {} writes made on NEW replayed into OLD; writes frozen {} ms; ",
                        replayed.changes, sw.freeze_ms
                    );
                    report.catch_up = Some(replayed);
                    report.cutover = Some(sw);
                }
                teardown(&old, &new, &plan).await?;
                state::finish(&new, &rr.run, "rolled-back").await?;
                run = None;
                line.push_str("change capture and the foreign server removed; OLD is as before");
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
            }
            Phase::Cleanup => {
                let Some(rr) = run.clone() else {
                    return Err(config("cleanup: NEW has no cutover run"));
                };
                if rr.switched_at.is_none() {
                    return Err(config(format!(
                        "cleanup: run {} has not switched to NEW; `rollback` removes what setup and capture made",
                        rr.run
                    )));
                }
                teardown(&old, &new, &plan).await?;
                new.client().batch_execute(&state::remove_from_new(&plan.tables)).await.map_err(PgError::from)?;
                state::finish(&new, &rr.run, "cleaned-up").await?;
                run = None;
                let line = "triggers, change logs, the refusal on OLD, the foreign server, user mapping and foreign schemas removed".to_string();
                announce(cx, phase, &line).await?;
                done(&mut report, phase, t0, "done", line);
            }
            Phase::Status => {
                let line = status(&old, &new, run.as_ref(), &plan).await?;
                done(&mut report, phase, t0, "done", line);
            }
        }
        report.state = run.as_ref().map_or_else(|| "finished".into(), state::Run::stands);
    }
    report.state = run
        .as_ref()
        .map_or_else(|| if report.run.is_empty() { "none".into() } else { "finished".into() }, state::Run::stands);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Remove capture and the refusal from OLD, the foreign server from NEW.
async fn teardown(old: &Session, new: &Session, plan: &Plan) -> Result<(), StageError> {
    old.client()
        .batch_execute(&format!("BEGIN; {} COMMIT", state::remove_from_old(&plan.old_tables())))
        .await
        .map_err(|e| {
            StageError::new(ExitCode::Failure, format!("removing change capture from OLD: {}", pg::describe(&e)))
        })?;
    new.client().batch_execute(&setup::teardown(plan)).await.map_err(|e| {
        StageError::new(ExitCode::Failure, format!("removing the foreign server from NEW: {}", pg::describe(&e)))
    })?;
    Ok(())
}

async fn status(old: &Session, new: &Session, run: Option<&state::Run>, plan: &Plan) -> Result<String, StageError> {
    let Some(r) = run else {
        return Ok(format!("no cutover run in progress; the plan has {} tables", plan.tables.len()));
    };
    let (lag, behind) = state::lag(old, CAPTURE_SCHEMA).await?;
    let ranges = new
        .client()
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE done), count(*) FROM {}.ranges WHERE run = $1",
                ident(STATE_SCHEMA)
            ),
            &[&r.run],
        )
        .await
        .map_err(PgError::from)?;
    let (rev, _) = state::lag(new, STATE_SCHEMA).await?;
    Ok(format!(
        "run {}: done {}; copy ranges {}/{}; {} changes replayed; lag {lag} changes ({behind:.1}s){}",
        r.run,
        if r.done.is_empty() { "nothing".into() } else { r.done.join(", ") },
        ranges.get::<_, i64>(0),
        ranges.get::<_, i64>(1),
        r.replayed,
        match &r.switched_at {
            Some(at) => format!("; switched to NEW at {at}, {rev} writes on NEW since (rollback replays them)"),
            None => String::new(),
        }
    ))
}

/// Verify every table (after a catch-up, so that little is in flight), `jobs` tables at a time,
/// each worker with a session on each side.
async fn verify_all(
    plan: &Plan,
    ends: &Ends,
    run: &str,
    options: &Options,
    switched: bool,
    cx: &StageContext,
) -> Result<Vec<verify::TableCheck>, StageError> {
    if !switched {
        let old = super::session(&ends.old, "confiture fdw-cutover (catch-up read)").await?;
        let new = super::session(&ends.new, "confiture fdw-cutover (catch-up write)").await?;
        replay::replay(plan, Direction::Forward, &old, &new, Pace::until(options.batch, options.max_lag), run, cx)
            .await?;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || async {
        let old = super::session(&ends.old, "confiture fdw-cutover (verify OLD)").await?;
        let new = super::session(&ends.new, "confiture fdw-cutover (verify NEW)").await?;
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Some(t) = plan.tables.get(i) else { break };
            cx.progress(&format!("verify: {}", t.new));
            out.push((i, verify::check(t, &old, &new).await?));
        }
        Ok::<_, StageError>(out)
    };
    let workers = options.jobs.clamp(1, plan.tables.len().max(1));
    let results = futures::future::try_join_all((0..workers).map(|_| worker())).await?;
    let mut checks: Vec<(usize, verify::TableCheck)> = results.into_iter().flatten().collect();
    checks.sort_by_key(|(i, _)| *i);
    Ok(checks.into_iter().map(|(_, c)| c).collect())
}
