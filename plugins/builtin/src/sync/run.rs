//! The order of a sync:
//! 1. refusals first, before any write: a protected target (the stage resolves it), the target
//!    being the source, another sync running into the target, an unfinished run without
//!    `--resume`;
//! 2. the snapshot: a coordinator transaction on the source (REPEATABLE READ, read only) exports
//!    it; the catalog, the ranges, the subset and the sequences are read in it;
//! 3. the plan (tables, ranges, masks), checked against the target: its schema is made, or
//!    checked (every difference listed at once);
//! 4. one target transaction prepares it: the bookkeeping tables and the run's row with its plan,
//!    then the tables (an empty target), or, for a target that has them, its foreign keys on
//!    them dropped (to be re-added), their user triggers disabled (to be re-enabled) and the
//!    tables truncated — all or nothing;
//! 5. the copy (`copy`), then the objects after the load, each step committed with its record,
//!    then the sequences, then the run marked done;
//! 6. `--verify`.
//!
//! `--resume` starts again at 5 with the saved plan, a new snapshot, and only what is not
//! recorded as done.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::pg::{self, ConnInfo, PgError, Session};
use confiture_engine::stage::{Outputs, StageContext, StageError};

use super::copy::{self, Work};
use super::plan::{self, Unit};
use super::progress::{self, RUNS, STEPS, Saved};
use super::schema::{self, Phase, PostStep};
use super::stream::Rewrite;
use super::subset::{self, Kept};
use super::{Masking, Options, SyncReport, TableReport, verify};
use crate::anonymize::plan::Plan as MaskPlan;
use crate::anonymize::profile;
use crate::anonymize::verify::FORMS;
use crate::catalog::introspect;
use crate::catalog::model::{ident, qname};
use crate::catalog::tables::{self, Tables};

fn config(message: impl Into<String>) -> StageError {
    StageError::new(ExitCode::Config, message)
}

fn failure(message: impl Into<String>) -> StageError {
    StageError::new(ExitCode::Failure, message)
}

/// Which server and database a session is on: `system_identifier/database oid` (when the role
/// may read the control file; else the postmaster's start time stands in for the server).
pub(crate) async fn identity(s: &Session) -> Result<String, PgError> {
    let server = match s.client().query_one("SELECT system_identifier::text FROM pg_control_system()", &[]).await {
        Ok(r) => r.get::<_, String>(0),
        Err(_) => s
            .client()
            .query_one("SELECT 'started ' || pg_postmaster_start_time()::text", &[])
            .await?
            .get::<_, String>(0),
    };
    let db: i64 =
        s.client().query_one("SELECT oid::int8 FROM pg_database WHERE datname = current_database()", &[]).await?.get(0);
    Ok(format!("{server}/{db}"))
}

/// How the masking is described in the run's row: a resumed run must mask exactly alike.
fn masking_signature(masks: Option<&MaskPlan>) -> String {
    match masks {
        None => "none".into(),
        Some(m) => {
            let cols: Vec<String> =
                m.masked_columns().iter().map(|c| format!("{}.{}={}", c.table, c.column, c.strategy)).collect();
            format!("{} key {} [{}]", m.profile, m.keys.fingerprint(), cols.join(", "))
        }
    }
}

fn rewrites(
    units: &[Unit],
    masks: Option<&MaskPlan>,
    tables: &Tables,
) -> Result<Vec<Option<Arc<Rewrite>>>, StageError> {
    let Some(m) = masks else { return Ok(vec![None; units.len()]) };
    units
        .iter()
        .map(|u| {
            let root = plan::root_of(tables, &u.table);
            let Some(tp) = m.table(&u.table, &root) else { return Ok(None) };
            let masked = tp.columns.iter().map(|c| (c.column.clone(), c.masker.clone())).collect();
            Rewrite::new(&u.columns, masked)
                .map(|r| Some(Arc::new(r)))
                .map_err(|e| failure(format!("{}: {e}", u.table)))
        })
        .collect()
}

/// Sequences owned by (or used in the defaults of) the given tables: `schema.name` quoted.
async fn sequences(src: &Session, oids: &[i64]) -> Result<Vec<String>, PgError> {
    let rows = src
        .client()
        .query(
            "SELECT DISTINCT sn.nspname, s.relname FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
               AND d.refobjid::int8 = ANY($1) AND d.deptype IN ('a', 'i')
             UNION
             SELECT sn.nspname, s.relname FROM pg_attrdef ad
             JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
             JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
             WHERE ad.adrelid::int8 = ANY($1)
             ORDER BY 1, 2",
            &[&oids],
        )
        .await?;
    Ok(rows.iter().map(|r| qname(&r.get::<_, String>(0), &r.get::<_, String>(1))).collect())
}

/// What an existing target needs around the load: (statements in the prepare transaction,
/// steps after the load).
async fn existing_target(
    dst: &Session,
    target: &Tables,
    chosen: &[String],
) -> Result<(Vec<String>, Vec<PostStep>, Vec<String>), StageError> {
    let chosen_set: HashSet<&String> = chosen.iter().collect();
    // A table the sync does not copy that references one it empties: TRUNCATE would need CASCADE.
    let mut blocked = Vec::new();
    for t in target.tables.values() {
        if chosen_set.contains(&t.qualified()) || plan::is_bookkeeping(&t.name) {
            continue;
        }
        for fk in &t.foreign_keys {
            if chosen_set.contains(&fk.references) {
                blocked.push(format!(
                    "{} references {} (foreign key {}): emptying {} would need TRUNCATE … CASCADE into a table this \
                     sync does not copy",
                    t.qualified(),
                    fk.references,
                    fk.name,
                    fk.references
                ));
            }
        }
    }
    if !blocked.is_empty() {
        return Err(config(format!(
            "the target cannot be emptied safely; add these tables to the sync or leave the referenced ones out:\n  {}",
            blocked.join("\n  ")
        )));
    }
    let oids: Vec<i64> = chosen.iter().filter_map(|n| target.tables.get(n)).map(|t| i64::from(t.oid)).collect();
    let c = dst.client();
    let fks = c
        .query(
            "SELECT n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid)
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE con.contype = 'f' AND con.conparentid = 0 AND con.conrelid::int8 = ANY($1)
             ORDER BY 1, 2, 3",
            &[&oids],
        )
        .await
        .map_err(PgError::from)?;
    let triggers = c
        .query(
            "SELECT n.nspname, c.relname, t.tgname, t.tgenabled::text
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND t.tgrelid::int8 = ANY($1)
             ORDER BY c.relispartition, 1, 2, 3",
            &[&oids],
        )
        .await
        .map_err(PgError::from)?;
    let mut before = Vec::new();
    let mut after = Vec::new();
    for r in &fks {
        let (s, t, name, def): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let table = qname(&s, &t);
        before.push(format!("ALTER TABLE {table} DROP CONSTRAINT {}", ident(&name)));
        let def = def.trim_end_matches(" NOT VALID").to_string();
        let partitioned = target.tables.get(&format!("{s}.{t}")).is_some_and(|t| t.kind == 'p');
        let add = format!("ALTER TABLE {table} ADD CONSTRAINT {} {def}", ident(&name));
        after.extend(schema::foreign_key_steps(&table, &name, &def, partitioned, vec![add]));
    }
    for r in &triggers {
        let (s, t, name, mode): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let table = qname(&s, &t);
        before.push(format!("ALTER TABLE {table} DISABLE TRIGGER {}", ident(&name)));
        let enable = match mode.as_str() {
            "A" => "ENABLE ALWAYS",
            "R" => "ENABLE REPLICA",
            _ => "ENABLE",
        };
        after.push(PostStep::new(
            Phase::Rest,
            &table,
            format!("trigger {} on {table} enabled again", ident(&name)),
            vec![format!("ALTER TABLE {table} {enable} TRIGGER {}", ident(&name))],
        ));
    }
    let truncated: Vec<String> = chosen.to_vec();
    let names: Vec<String> =
        chosen.iter().filter_map(|n| target.tables.get(n)).map(crate::catalog::tables::Table::sql_name).collect();
    before.push(format!("TRUNCATE TABLE {}", names.join(", ")));
    Ok((before, after, truncated))
}

/// Column defaults of the target's tables, for the compatibility check.
async fn defaults(dst: &Session) -> Result<BTreeMap<String, BTreeSet<String>>, PgError> {
    let rows = dst
        .client()
        .query(
            "SELECT n.nspname || '.' || c.relname, a.attname FROM pg_attrdef d
             JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
             JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace",
            &[],
        )
        .await?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().insert(r.get(1));
    }
    Ok(out)
}

/// Run the statements after the load that are not done yet, phase by phase (see [`Phase`]):
/// builds with `jobs` sessions taking the biggest table's first, validations with `jobs`
/// sessions one table's after the other, the rest in order on one session.
async fn after_load(
    steps: &[PostStep],
    done: &HashSet<u32>,
    run: &str,
    target: &ConnInfo,
    jobs: usize,
    cx: &StageContext,
) -> Result<usize, StageError> {
    let mut count = 0;
    for phase in Phase::ALL {
        let mut groups: Vec<Vec<PostStep>> = Vec::new();
        let todo = steps.iter().filter(|s| s.phase == phase && !done.contains(&s.no)).cloned();
        match phase {
            Phase::Build => groups.extend(todo.map(|s| vec![s])),
            Phase::Validate => {
                let mut by_table: BTreeMap<String, Vec<PostStep>> = BTreeMap::new();
                for s in todo {
                    by_table.entry(s.table.clone()).or_default().push(s);
                }
                groups.extend(by_table.into_values());
            }
            Phase::Attach | Phase::Rest => groups.push(todo.collect()),
        }
        groups.retain(|g| !g.is_empty());
        if groups.is_empty() {
            continue;
        }
        // The longest first, so that no session is left with a big table at the end.
        groups.sort_by_key(|g| std::cmp::Reverse(g.iter().map(|s| s.weight).sum::<i64>()));
        let n: usize = groups.iter().map(Vec::len).sum();
        count += n;
        cx.progress(&format!(
            "{} {n} after the load",
            match phase {
                Phase::Build => "indexes built:",
                Phase::Attach => "keys and foreign keys added:",
                Phase::Validate => "foreign keys validated:",
                Phase::Rest => "the rest:",
            }
        ));
        let workers = jobs.max(1).min(groups.len());
        let queue: Arc<Mutex<VecDeque<Vec<PostStep>>>> = Arc::new(Mutex::new(groups.into()));
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (queue, target, run, cancel) = (queue.clone(), target.clone(), run.to_string(), cx.cancel.clone());
            handles.push(tokio::spawn(async move {
                let s = copy::target_session(&target).await?;
                loop {
                    let next = queue.lock().expect("queue").pop_front();
                    let Some(group) = next else { break };
                    for step in group {
                        if cancel.is_cancelled() {
                            return Err(StageError::cancelled());
                        }
                        run_step(&s, &run, &step).await?;
                    }
                }
                Ok::<(), StageError>(())
            }));
        }
        let mut first: Option<StageError> = None;
        for h in handles {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first = first.or(Some(e)),
                Err(e) => first = first.or(Some(failure(format!("a worker panicked: {e}")))),
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
    }
    Ok(count)
}

/// One step in its own transaction with its record; retried when it deadlocks with another
/// (two foreign keys between the same tables, added at once).
async fn run_step(s: &Session, run: &str, step: &PostStep) -> Result<(), StageError> {
    let c = s.client();
    for attempt in 0.. {
        let result = async {
            c.batch_execute("BEGIN").await?;
            for stmt in &step.statements {
                c.batch_execute(stmt).await?;
            }
            c.execute(&format!("INSERT INTO {STEPS} (run, step) VALUES ($1, $2)"), &[&run, &(step.no as i32)]).await?;
            c.batch_execute("COMMIT").await
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                let deadlock = e.code() == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED);
                if deadlock && attempt < 5 {
                    continue;
                }
                return Err(failure(format!("after the load, {}: {}", step.what, pg::describe(&e)))
                    .with_field("statement", step.statements.join(";\n")));
            }
        }
    }
    unreachable!("the loop returns")
}

/// Set the target's sequences to the values the source has in `src`'s snapshot.
async fn set_sequences(src: &Session, dst: &Session, names: &[String]) -> Result<(), StageError> {
    for name in names {
        let r = src
            .client()
            .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
            .await
            .map_err(PgError::from)?;
        let (value, called): (i64, bool) = (r.get(0), r.get(1));
        dst.client()
            .execute("SELECT setval($1::text::regclass, $2, $3)", &[name, &value, &called])
            .await
            .map_err(|e| failure(format!("setting sequence {name} on the target: {}", pg::describe(&e))))?;
    }
    Ok(())
}

/// Where a sync reads and writes.
pub struct Ends {
    pub source: ConnInfo,
    pub target: ConnInfo,
}

/// Run a sync (or, with `dry_run`, plan it).
pub async fn run(ends: &Ends, options: &Options, cx: &StageContext) -> Result<SyncReport, StageError> {
    let started = Instant::now();
    let mut report = SyncReport {
        source: ends.source.to_string(),
        target: ends.target.to_string(),
        dry_run: options.dry_run,
        consistency: "snapshot".into(),
        ..SyncReport::default()
    };
    // 1. The two ends.
    let src = pg::connect(&ends.source, "confiture sync (coordinator)").await?;
    let dst = pg::connect(&ends.target, "confiture sync (control)").await?;
    let (src_id, dst_id) = futures::try_join!(identity(&src), identity(&dst))?;
    if src_id == dst_id {
        return Err(config(format!(
            "refusing to sync a database into itself: {} and {} are the same database (system identifier and \
             database oid {src_id})",
            report.source, report.target
        ))
        .with_field("refused", "same-database"));
    }
    let locked: bool = dst
        .client()
        .query_one("SELECT pg_try_advisory_lock(hashtext('confiture sync'))", &[])
        .await
        .map_err(PgError::from)?
        .get(0);
    if !locked {
        return Err(StageError::new(ExitCode::LockContention, "another sync into this database is running"));
    }
    let unfinished = progress::unfinished(&dst).await?;
    match (&unfinished, options.resume) {
        (None, true) => return Err(config("--resume: the target has no unfinished sync to resume")),
        (Some(u), false) if !options.dry_run => {
            return Err(config(format!(
                "the target holds sync run {} that did not finish ({} ranges copied): finish it with --resume",
                u.run,
                u.done.len()
            )));
        }
        (Some(u), true) if u.source_identity != src_id => {
            return Err(config(format!(
                "--resume: run {} copied from another database ({}), not from this source ({src_id})",
                u.run, u.source_identity
            )));
        }
        _ => {}
    }
    // 2. The snapshot.
    let c = src.client();
    c.batch_execute(&format!(
        "SET default_transaction_read_only = on; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {FORMS}"
    ))
    .await
    .map_err(PgError::from)?;
    let snapshot: String = c.query_one("SELECT pg_export_snapshot()", &[]).await.map_err(PgError::from)?.get(0);
    let src_tables = tables::read_in_snapshot(&src).await?;

    // Masks, from the profile or the command line.
    let profile = match &options.masking {
        Masking::None => None,
        Masking::Profile(name) => {
            Some(profile::load(&cx.project, name).map_err(|d| profile::problems(d, "nothing was copied"))?)
        }
        Masking::Columns(rules) => {
            Some(plan::command_line_profile(rules, &src_tables, &mut report.notes).map_err(config)?)
        }
    };
    let masks = match &profile {
        Some(p) => {
            for w in &p.warnings {
                report.notes.push(w.message.clone());
            }
            let m = crate::anonymize::plan::plan(p, &src_tables, &cx.project.root, !options.dry_run)
                .map_err(|d| profile::problems(d, "nothing was copied"))?;
            for n in m.notes.iter() {
                report.notes.push(n.message.clone());
            }
            report.profile = Some(m.profile.clone());
            report.key_fingerprint = Some(m.keys.fingerprint());
            report.masked_columns = m.masked_columns();
            Some(m)
        }
        None => None,
    };
    let signature = masking_signature(masks.as_ref());

    // 3. The plan, new or saved.
    let (run_id, saved, before, done_before, steps_done) = match unfinished.filter(|_| options.resume) {
        Some(u) => {
            if u.masking != signature {
                return Err(config(format!(
                    "--resume: run {} masked with {}, this one would mask with {signature}: resume with the same \
                     profile and key",
                    u.run, u.masking
                )));
            }
            report.resumed = true;
            report.consistency = "per-range".into();
            (u.run, u.saved, Vec::new(), u.done, u.steps_done)
        }
        None => {
            let (saved, before) = new_plan(&src, &dst, &src_tables, masks.as_ref(), options, &mut report).await?;
            let millis =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            let run = format!("{millis:x}-{:04x}", std::process::id() & 0xffff);
            (run, saved, before, BTreeMap::new(), HashSet::new())
        }
    };
    report.run.clone_from(&run_id);
    report.schema.clone_from(&saved.schema);
    report.truncated.clone_from(&saved.truncated);
    if saved.schema == "created" {
        report.created.clone_from(&saved.chosen);
    }
    report.statements_before_load = saved.statements_before_load;
    report.statements_after_load = saved.post.iter().map(|s| s.statements.len()).sum();
    report.sequences = saved.sequences.len();
    // The ranges to copy, and the rows a subset keeps: computed in the snapshot before the
    // target is touched, so that a subset condition in error leaves it as it was.
    let todo: Vec<(usize, usize)> = saved
        .units
        .iter()
        .enumerate()
        .flat_map(|(i, u)| u.ranges.iter().enumerate().map(move |(r, range)| (i, r, range.no)))
        .filter(|(i, _, no)| !done_before.contains_key(&(saved.units[*i].table.clone(), *no)))
        .map(|(i, r, _)| (i, r))
        .collect();
    let kept = if saved.subsets.is_empty() || todo.is_empty() {
        Kept::default()
    } else {
        let s = super::Subset {
            tables: saved.subsets.iter().map(|(t, c)| (t.clone(), c.clone())).collect(),
            include_children: saved.include_children,
        };
        subset::compute(&src, &src_tables, &saved.chosen, &s).await?
    };
    // 4. Prepare the target (a new run), all or nothing.
    if !report.resumed {
        let d = dst.client();
        let prepared = async {
            d.batch_execute("BEGIN").await?;
            d.batch_execute(progress::CREATE).await?;
            let plan_json = serde_json::to_string(&saved).unwrap_or_default();
            d.execute(
                &format!("INSERT INTO {RUNS} (run, source_identity, source, masking, plan) VALUES ($1, $2, $3, $4, $5::text::jsonb)"),
                &[&run_id, &src_id, &report.source, &signature, &plan_json],
            )
            .await?;
            for stmt in &before {
                d.batch_execute(stmt).await?;
            }
            d.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = prepared {
            let _ = d.batch_execute("ROLLBACK").await;
            return Err(failure(format!("preparing the target (nothing was changed): {}", pg::describe(&e))));
        }
    } else {
        dst.client()
            .execute(&format!("UPDATE {RUNS} SET resumed = resumed + 1 WHERE run = $1"), &[&run_id])
            .await
            .map_err(PgError::from)?;
    }

    // 5. The copy.
    if options.dry_run {
        report.tables = saved.units.iter().map(|u| table_report(u, None)).collect();
        let _ = c.batch_execute("COMMIT").await;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let kept_arrays: Vec<Option<Arc<String>>> =
        saved.units.iter().map(|u| kept.ctids.get(&u.table).map(|v| Arc::new(Kept::array(v)))).collect();
    let work = Arc::new(Work::new(
        run_id.clone(),
        snapshot.clone(),
        saved.units.clone(),
        rewrites(&saved.units, masks.as_ref(), &src_tables)?,
        kept_arrays,
        todo,
    ));
    for ((t, _), (rows, bytes, _)) in &done_before {
        if let Some(i) = saved.units.iter().position(|u| &u.table == t) {
            work.rows[i].fetch_add(*rows, std::sync::atomic::Ordering::Relaxed);
            work.bytes[i].fetch_add(*bytes, std::sync::atomic::Ordering::Relaxed);
        }
    }
    copy::copy_all(work.clone(), &ends.source, &ends.target, options.jobs, cx).await?;

    // Objects after the load, sequences, done.
    after_load(&saved.post, &steps_done, &run_id, &ends.target, options.jobs, cx).await?;
    set_sequences(&src, &dst, &saved.sequences).await?;
    dst.client()
        .execute(&format!("UPDATE {RUNS} SET state = 'done', finished_at = now() WHERE run = $1"), &[&run_id])
        .await
        .map_err(PgError::from)?;
    let recorded = progress::recorded(&dst, &run_id).await?;
    report.tables = saved.units.iter().map(|u| table_report(u, recorded.get(&u.table))).collect();
    report.rows = report.tables.iter().map(|t| t.rows).sum();
    report.bytes = report.tables.iter().map(|t| t.bytes).sum();
    let timings = durations(&dst, &run_id).await?;
    for t in &mut report.tables {
        t.duration_ms = timings.get(&t.table).copied().unwrap_or_default();
    }

    // 6. Verify.
    if options.verify {
        let snapshot_session = if report.resumed { None } else { Some(&src) };
        let checks = verify::verify(&saved.units, &recorded, &dst, snapshot_session).await?;
        let bad: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| c.table.clone()).collect();
        report.verify = Some(checks);
        if !bad.is_empty() {
            let _ = c.batch_execute("COMMIT").await;
            report.duration_ms = started.elapsed().as_millis() as u64;
            let mut outputs = Outputs::default();
            outputs.extend_from(&report);
            return Err(StageError::new(
                ExitCode::Drift,
                format!("--verify: what the target holds differs from what was copied in {}", bad.join(", ")),
            )
            .with_outputs(outputs));
        }
    }
    let _ = c.batch_execute("COMMIT").await;
    let _ = dst.client().execute("SELECT pg_advisory_unlock(hashtext('confiture sync'))", &[]).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Plan a new run: the tables, the target's schema (made or checked), the ranges, the
/// sequences. Returns the plan and the statements that prepare the target.
async fn new_plan(
    src: &Session,
    dst: &Session,
    src_tables: &Tables,
    masks: Option<&MaskPlan>,
    options: &Options,
    report: &mut SyncReport,
) -> Result<(Saved, Vec<String>), StageError> {
    let chosen = plan::select(src_tables, options).map_err(config)?;
    let chosen_set: HashSet<String> = chosen.iter().cloned().collect();
    let mut subset = options.subset.clone();
    for (t, _) in &mut subset.tables {
        if !t.contains('.') {
            *t = format!("public.{t}");
        }
        if !chosen_set.contains(t) {
            return Err(config(format!("subset: {t} is not a table this sync copies")));
        }
    }
    let target_tables = tables::read(dst).await?;
    let present: Vec<&String> = chosen.iter().filter(|n| target_tables.tables.contains_key(*n)).collect();
    let (schema, before, mut post, truncated) = if present.is_empty() {
        let mut outside = Vec::new();
        for n in &chosen {
            for fk in src_tables.tables.get(n).map(|t| t.foreign_keys.as_slice()).unwrap_or_default() {
                if !chosen_set.contains(&fk.references) {
                    outside.push(format!("{n} references {} (foreign key {})", fk.references, fk.name));
                }
            }
        }
        if !outside.is_empty() {
            return Err(config(format!(
                "these foreign keys point to tables the sync leaves out, so the target could not have them; copy                  those tables too, or leave the referencing ones out:\n  {}",
                outside.join("\n  ")
            )));
        }
        let reader = pg::connect(src.info(), "confiture sync (schema)").await?;
        reader.client().batch_execute("SET default_transaction_read_only = on").await.map_err(PgError::from)?;
        let mut model = introspect(&reader).await?;
        schema::limit(&mut model, &chosen_set);
        let target_model = introspect(dst).await?;
        let roles: HashSet<String> = dst
            .client()
            .query("SELECT rolname::text FROM pg_roles", &[])
            .await
            .map_err(PgError::from)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let split = schema::split(&model, &target_model, &roles).map_err(failure)?;
        if split.skipped_grants > 0 {
            report
                .notes
                .push(format!("{} grants left out: their roles do not exist on the target", split.skipped_grants));
        }
        ("created", split.before, split.after, Vec::new())
    } else if present.len() == chosen.len() {
        let diffs = schema::differences(src_tables, &target_tables, &chosen, &defaults(dst).await?);
        if !diffs.is_empty() {
            return Err(config(format!(
                "the target's tables do not fit the source's rows ({} difference{}; nothing was written):\n  {}",
                diffs.len(),
                if diffs.len() == 1 { "" } else { "s" },
                diffs.join("\n  ")
            ))
            .with_field("refused", "schema-mismatch"));
        }
        let (before, post, truncated) = existing_target(dst, &target_tables, &chosen).await?;
        ("existing", before, post, truncated)
    } else {
        let missing: Vec<&String> = chosen.iter().filter(|n| !target_tables.tables.contains_key(*n)).collect();
        return Err(config(format!(
            "the target has {} of the {} tables to copy; missing: {}. Build its schema first (confiture build), or              sync into an empty database",
            present.len(),
            chosen.len(),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))
        .with_field("refused", "schema-mismatch"));
    };
    for (i, s) in post.iter_mut().enumerate() {
        s.no = i as u32;
    }
    schema::weigh(&mut post, src_tables);
    let restricted =
        if subset.tables.is_empty() { BTreeMap::new() } else { subset::restricted(src_tables, &chosen, &subset) };
    let units = plan::units(src, src_tables, &chosen, masks, &restricted, options.range_rows).await?;
    let oids: Vec<i64> = chosen.iter().filter_map(|n| src_tables.tables.get(n)).map(|t| i64::from(t.oid)).collect();
    let sequences = sequences(src, &oids).await?;
    let saved = Saved {
        schema: schema.into(),
        units,
        post,
        sequences,
        truncated,
        statements_before_load: before.len(),
        chosen,
        subsets: subset.tables.into_iter().collect(),
        include_children: subset.include_children,
    };
    Ok((saved, before))
}

async fn durations(dst: &Session, run: &str) -> Result<BTreeMap<String, u64>, PgError> {
    let rows = dst
        .client()
        .query(
            &format!(
                "SELECT table_name, (extract(epoch FROM max(copied_at) - min(copied_at)) * 1000)::int8 + \
                 (array_agg(duration_ms ORDER BY copied_at))[1] FROM {} WHERE run = $1 GROUP BY 1",
                progress::RANGES
            ),
            &[&run],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)).collect())
}

fn table_report(u: &Unit, recorded: Option<&(super::stream::Checksum, u64, usize)>) -> TableReport {
    TableReport {
        table: u.table.clone(),
        estimated_rows: u.estimated_rows,
        estimated_bytes: u.estimated_bytes,
        rows: recorded.map_or(0, |r| r.0.rows),
        bytes: recorded.map_or(0, |r| r.1),
        duration_ms: 0,
        ranges: u.ranges.len(),
        split: u.split.clone(),
        checksum: recorded.map(|r| r.0.hex()).unwrap_or_default(),
        masked_columns: u.masked.clone(),
        subset: u.subset.clone(),
    }
}
