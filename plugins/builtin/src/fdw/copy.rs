//! `copy`: NEW's tables filled from OLD at one snapshot. Large tables go through the sync
//! engine's COPY streams (`COPY (SELECT <mapping> FROM old) TO STDOUT` into `COPY new FROM
//! STDIN`), split into key ranges copied by `jobs` workers that all import the coordinator's
//! exported snapshot; small tables go through the foreign tables (`INSERT … SELECT` on NEW).
//! Each range is one NEW transaction that also marks its row in `confiture_cutover.ranges`
//! done, so a killed copy resumes with the ranges left. NEW's secondary indexes are dropped
//! before the load and built after it; NEW's foreign keys and triggers do not fire during the
//! load (`session_replication_role = replica`): verify checks the result instead.
//!
//! A resumed copy reads the ranges left in a new snapshot. Nothing is lost by that: the change
//! capture was installed before the first snapshot, so every row changed since is in the log
//! and catch-up replays it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confiture_engine::ExitCode;
use confiture_engine::pg::{self, ConnInfo, PgError, Session};
use confiture_engine::stage::{StageContext, StageError};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, STATE_SCHEMA, TablePlan, Via};
use crate::catalog::model::ident;
use crate::sync::copy::{PipeError, pipe, source_session, target_session};
use crate::sync::stream::Checksum;

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CopySummary {
    pub tables: Vec<CopiedTable>,
    pub rows: u64,
    pub duration_ms: u64,
    /// Secondary indexes of NEW dropped before the load and built after it.
    pub indexes_rebuilt: usize,
    /// Ranges copied by an earlier, interrupted invocation.
    pub ranges_resumed: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CopiedTable {
    pub table: String,
    pub rows: u64,
    pub ranges: usize,
    pub via: Via,
}

fn failure(m: impl Into<String>) -> StageError {
    StageError::new(ExitCode::Failure, m)
}

fn state(table: &str) -> String {
    format!("{}.{table}", ident(STATE_SCHEMA))
}

/// One range as recorded.
#[derive(Clone, Debug)]
struct Range {
    table: usize,
    no: i32,
    lo: Option<i64>,
    hi: Option<i64>,
}

/// Plan the ranges (a fresh copy): each table's key span split by `range_rows`, the ends open.
async fn plan_ranges(
    coordinator: &Session,
    new: &Session,
    run: &str,
    plan: &Plan,
    range_rows: u64,
) -> Result<(), StageError> {
    let c = new.client();
    for t in &plan.tables {
        let parts =
            if t.via == Via::Copy && t.int_key { t.estimated_rows.div_ceil(range_rows.max(1)).max(1) } else { 1 };
        let mut bounds: Vec<(Option<i64>, Option<i64>)> = vec![(None, None)];
        if parts > 1 {
            let k = format!("o.{}::int8", ident(&t.old_key[0]));
            let r = coordinator
                .client()
                .query_one(&format!("SELECT min({k}), max({k}) {}", t.from_old()), &[])
                .await
                .map_err(PgError::from)?;
            if let (Some(lo), Some(hi)) = (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)) {
                let step = ((hi - lo) / parts as i64).max(1);
                let mut cuts: Vec<i64> = (1..parts as i64).map(|i| lo + i * step).filter(|c| *c <= hi).collect();
                cuts.dedup();
                bounds.clear();
                let mut prev = None;
                for cut in cuts {
                    bounds.push((prev, Some(cut)));
                    prev = Some(cut);
                }
                bounds.push((prev, None));
            }
        }
        for (no, (lo, hi)) in bounds.iter().enumerate() {
            c.execute(
                &format!(
                    "INSERT INTO {} (run, new_table, range_no, lo, hi) VALUES ($1, $2, $3, $4, $5)",
                    state("ranges")
                ),
                &[&run, &t.new, &(no as i32), lo, hi],
            )
            .await
            .map_err(PgError::from)?;
        }
    }
    Ok(())
}

/// NEW's indexes that back no constraint, on the tables to fill: `(name, definition)`.
async fn secondary_indexes(new: &Session, plan: &Plan) -> Result<Vec<(String, String)>, PgError> {
    let names: Vec<String> = plan.tables.iter().map(|t| t.new_sql.clone()).collect();
    let rows = new
        .client()
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
             WHERE i.indrelid = ANY (SELECT x::regclass FROM unnest($1::text[]) x)
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
               AND ic.relkind = 'i'
             ORDER BY 1",
            &[&names],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Run the bulk copy (or finish an interrupted one).
pub async fn copy(
    old: &ConnInfo,
    new_info: &ConnInfo,
    new: &Session,
    run: &str,
    plan: &Plan,
    options: &super::Options,
    cx: &StageContext,
) -> Result<CopySummary, StageError> {
    let (jobs, range_rows) = (options.jobs, options.range_rows);
    let started = Instant::now();
    let mut summary = CopySummary::default();
    // The coordinator's snapshot: every worker reads it.
    let coordinator = pg::connect(old, "confiture fdw-cutover (snapshot)").await?;
    coordinator
        .client()
        .batch_execute(&format!(
            "SET default_transaction_read_only = on; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {}",
            crate::anonymize::verify::FORMS
        ))
        .await
        .map_err(PgError::from)?;
    let snapshot: String =
        coordinator.client().query_one("SELECT pg_export_snapshot()", &[]).await.map_err(PgError::from)?.get(0);

    let planned: i64 = new
        .client()
        .query_one(&format!("SELECT count(*) FROM {} WHERE run = $1", state("ranges")), &[&run])
        .await
        .map_err(PgError::from)?
        .get(0);
    if planned == 0 {
        for t in &plan.tables {
            let any: bool = new
                .client()
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.new_sql), &[])
                .await
                .map_err(PgError::from)?
                .get(0);
            if any {
                return Err(StageError::new(
                    ExitCode::Config,
                    format!(
                        "NEW table {} already has rows: the copy fills empty tables (empty it, or rebuild NEW from \
                         db/schema); nothing was copied",
                        t.new
                    ),
                ));
            }
        }
        let indexes = secondary_indexes(new, plan).await?;
        let defs: Vec<String> = indexes.iter().map(|(_, d)| d.clone()).collect();
        let c = new.client();
        c.batch_execute("BEGIN").await.map_err(PgError::from)?;
        c.execute(&format!("UPDATE {} SET indexes = $2 WHERE run = $1", state("runs")), &[&run, &defs])
            .await
            .map_err(PgError::from)?;
        for (name, _) in &indexes {
            c.batch_execute(&format!("DROP INDEX {name}")).await.map_err(PgError::from)?;
        }
        plan_ranges(&coordinator, new, run, plan, range_rows).await?;
        c.batch_execute("COMMIT").await.map_err(PgError::from)?;
    }
    let rows = new
        .client()
        .query(
            &format!("SELECT new_table, range_no, lo, hi, done, coalesce(rows, 0) FROM {} WHERE run = $1 ORDER BY new_table, range_no", state("ranges")),
            &[&run],
        )
        .await
        .map_err(PgError::from)?;
    let mut todo = VecDeque::new();
    let mut per_table: Vec<(u64, usize)> = vec![(0, 0); plan.tables.len()];
    for r in &rows {
        let name: String = r.get(0);
        let Some(ti) = plan.tables.iter().position(|t| t.new == name) else { continue };
        per_table[ti].1 += 1;
        if r.get::<_, bool>(4) {
            summary.ranges_resumed += 1;
            per_table[ti].0 += r.get::<_, i64>(5) as u64;
        } else {
            todo.push_back(Range { table: ti, no: r.get(1), lo: r.get(2), hi: r.get(3) });
        }
    }
    // The largest tables first.
    let mut todo: Vec<Range> = todo.into();
    todo.sort_by_key(|r| std::cmp::Reverse(plan.tables[r.table].estimated_rows));
    let queue = Arc::new(Mutex::new(VecDeque::from(todo)));
    let copied = Arc::new(AtomicU64::new(0));
    let stop = cx.cancel.child_token();
    let plan = Arc::new(plan.clone());
    let mut handles = Vec::new();
    for _ in 0..jobs.max(1) {
        let (queue, copied, stop, plan) = (queue.clone(), copied.clone(), stop.clone(), plan.clone());
        let (old, new_info, snapshot, run) = (old.clone(), new_info.clone(), snapshot.clone(), run.to_string());
        handles.push(tokio::spawn(async move {
            let result = worker(&queue, &copied, &stop, &plan, &old, &new_info, &snapshot, &run).await;
            if result.is_err() {
                stop.cancel();
            }
            result
        }));
    }
    let ticker = {
        let (copied, stop, cx) = (copied.clone(), stop.clone(), cx.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let n = copied.load(Ordering::Relaxed);
                cx.progress(&format!("copy: {n} rows ({:.0} rows/s)", n as f64 / t0.elapsed().as_secs_f64()));
            }
        })
    };
    let mut first_error: Option<StageError> = None;
    for h in handles {
        match h.await {
            Ok(Ok(done)) => {
                for (ti, n) in done {
                    per_table[ti].0 += n;
                }
            }
            Ok(Err(e)) => {
                if first_error.as_ref().is_none_or(StageError::is_cancelled) {
                    first_error = Some(e);
                }
            }
            Err(e) => first_error = Some(failure(format!("a copy worker panicked: {e}"))),
        }
    }
    stop.cancel();
    let _ = ticker.await;
    let _ = coordinator.client().batch_execute("COMMIT").await;
    if let Some(e) = first_error {
        return Err(if cx.cancel.is_cancelled() { StageError::cancelled() } else { e });
    }
    // The indexes, after the load.
    let defs: Vec<String> = new
        .client()
        .query_one(&format!("SELECT indexes FROM {} WHERE run = $1", state("runs")), &[&run])
        .await
        .map_err(PgError::from)?
        .get(0);
    for def in &defs {
        let def = def.replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1).replacen(
            "CREATE UNIQUE INDEX ",
            "CREATE UNIQUE INDEX IF NOT EXISTS ",
            1,
        );
        cx.progress(&format!("copy: {def}"));
        new.client().batch_execute(&def).await.map_err(|e| failure(format!("{def}: {}", pg::describe(&e))))?;
    }
    summary.indexes_rebuilt = defs.len();
    for (ti, t) in plan.tables.iter().enumerate() {
        summary.rows += per_table[ti].0;
        summary.tables.push(CopiedTable {
            table: t.new.clone(),
            rows: per_table[ti].0,
            ranges: per_table[ti].1,
            via: t.via,
        });
    }
    new.client()
        .batch_execute(&format!(
            "ANALYZE {}",
            plan.tables.iter().map(|t| t.new_sql.clone()).collect::<Vec<_>>().join(", ")
        ))
        .await
        .map_err(PgError::from)?;
    summary.duration_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    queue: &Mutex<VecDeque<Range>>,
    copied: &AtomicU64,
    stop: &tokio_util::sync::CancellationToken,
    plan: &Plan,
    old: &ConnInfo,
    new_info: &ConnInfo,
    snapshot: &str,
    run: &str,
) -> Result<Vec<(usize, u64)>, StageError> {
    let src = source_session(old, snapshot).await?;
    let dst = target_session(new_info).await?;
    let mut done = Vec::new();
    loop {
        let Some(r) = queue.lock().expect("queue").pop_front() else { break };
        if stop.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let t = &plan.tables[r.table];
        let result = copy_range(t, &r, &src, &dst, copied, stop, run).await;
        match result {
            Ok(n) => done.push((r.table, n)),
            Err(e) => {
                let _ = dst.client().batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    let _ = src.client().batch_execute("COMMIT").await;
    Ok(done)
}

/// `o.key >= lo AND o.key < hi` for a range (open ends).
pub fn key_condition(lo: Option<i64>, hi: Option<i64>, alias: &str, column: &str) -> Option<String> {
    let k = format!("{alias}.{}", ident(column));
    let mut c = Vec::new();
    if let Some(lo) = lo {
        c.push(format!("{k} >= {lo}"));
    }
    if let Some(hi) = hi {
        c.push(format!("{k} < {hi}"));
    }
    if c.is_empty() { None } else { Some(c.join(" AND ")) }
}

async fn copy_range(
    t: &TablePlan,
    r: &Range,
    src: &Session,
    dst: &Session,
    copied: &AtomicU64,
    stop: &tokio_util::sync::CancellationToken,
    run: &str,
) -> Result<u64, StageError> {
    let started = Instant::now();
    let c = dst.client();
    c.batch_execute("BEGIN; SET LOCAL session_replication_role = replica").await.map_err(PgError::from)?;
    let overriding = if t.identity { " OVERRIDING SYSTEM VALUE" } else { "" };
    let (rows, sum) = match t.via {
        Via::Fdw => {
            let sql = format!(
                "INSERT INTO {} ({}){overriding} SELECT {} FROM {} o",
                t.new_sql,
                t.new_columns(),
                t.columns.iter().map(|c| c.select.as_str()).collect::<Vec<_>>().join(", "),
                t.foreign_sql()
            );
            let n = c.execute(&sql, &[]).await.map_err(|e| failure(format!("{}: {}", t.new, pg::describe(&e))))?;
            copied.fetch_add(n, Ordering::Relaxed);
            (n, None)
        }
        Via::Copy => {
            let mut read = t.select_on_old();
            if let Some(cond) = key_condition(r.lo, r.hi, "o", &t.old_key[0]) {
                read.push_str(&format!(" WHERE {cond}"));
            }
            let read = format!("COPY ({read}) TO STDOUT");
            let write = format!("COPY {} ({}) FROM STDIN", t.new_sql, t.new_columns());
            let (sum, _bytes): (Checksum, u64) = pipe(src.client(), &read, c, &write, None, |rows, _| {
                copied.fetch_add(rows, Ordering::Relaxed);
                !stop.is_cancelled()
            })
            .await
            .map_err(|e| match e {
                PipeError::Pg(e) => failure(format!("copying {}: {e}", t.new)),
                PipeError::Stopped => StageError::cancelled(),
                PipeError::Mask(e) => failure(e),
                PipeError::Count { written, sent } => {
                    failure(format!("{}: NEW took {written} rows of the {sent} sent", t.new))
                }
            })?;
            (sum.rows, Some(sum.hex()))
        }
    };
    c.execute(
        &format!(
            "UPDATE {} SET done = true, rows = $4, checksum = $5, duration_ms = $6 \
             WHERE run = $1 AND new_table = $2 AND range_no = $3",
            state("ranges")
        ),
        &[&run, &t.new, &r.no, &(rows as i64), &sum, &(started.elapsed().as_millis() as i64)],
    )
    .await
    .map_err(PgError::from)?;
    c.batch_execute("COMMIT").await.map_err(PgError::from)?;
    Ok(rows)
}
