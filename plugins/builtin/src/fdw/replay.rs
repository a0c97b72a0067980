//! Catch-up: the change log replayed in batches.
//!
//! A batch is the oldest `batch` entries of the log (their ids). For every table they name, the
//! keys they carry are copied to a temporary table on the side being written, the rows with those
//! keys are deleted there, and the rows OLD has *now* for those keys (mapped) are copied in — one
//! transaction on the written side. Only then are those ids deleted from the log. Replaying a
//! batch twice (a kill between the two commits) writes the same rows again: replay is
//! idempotent, and nothing is lost, because an entry leaves the log only after its key was
//! written with a state at least as new as the entry. Rows are written with
//! `session_replication_role = replica`: the application's triggers and foreign keys do not fire
//! for copied rows (the capture triggers do not either, so a replay never logs itself).
//!
//! Backwards (a rollback after the switch), NEW's reverse log is replayed into OLD: OLD's rows
//! are rebuilt from NEW's tables (a split table joined back on its key) and written with
//! `INSERT … ON CONFLICT DO UPDATE`, so OLD columns NEW does not carry keep their values.

use std::time::Instant;

use confiture_engine::ExitCode;
use confiture_engine::pg::{self, PgError, Session};
use confiture_engine::stage::{StageContext, StageError};
use serde::{Deserialize, Serialize};

use super::plan::{CAPTURE_SCHEMA, Plan, STATE_SCHEMA, TablePlan};
use super::state;
use crate::catalog::model::ident;
use crate::sync::copy::{PipeError, pipe};

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplaySummary {
    pub batches: u64,
    /// Change-log entries replayed.
    pub changes: u64,
    /// Rows written (current versions) and keys cleared on the written side.
    pub rows_written: u64,
    pub keys_cleared: u64,
    /// What was left in the log at the end: entries, and the age of the oldest in seconds.
    pub lag_rows: i64,
    pub lag_seconds: f64,
    pub duration_ms: u64,
    /// Entries per second.
    pub rate: f64,
}

impl ReplaySummary {
    fn add(&mut self, other: &ReplaySummary) {
        self.batches += other.batches;
        self.changes += other.changes;
        self.rows_written += other.rows_written;
        self.keys_cleared += other.keys_cleared;
        self.lag_rows = other.lag_rows;
        self.lag_seconds = other.lag_seconds;
        self.duration_ms += other.duration_ms;
        self.rate = if self.duration_ms > 0 { self.changes as f64 * 1000.0 / self.duration_ms as f64 } else { 0.0 };
    }

    pub fn merge(mut self, other: &ReplaySummary) -> ReplaySummary {
        self.add(other);
        self
    }
}

fn pipe_error(what: &str, e: PipeError) -> StageError {
    match e {
        PipeError::Pg(e) => StageError::new(ExitCode::Failure, format!("{what}: {e}")),
        PipeError::Stopped => StageError::cancelled(),
        PipeError::Mask(m) => StageError::new(ExitCode::Failure, format!("{what}: {m}")),
        PipeError::Count { written, sent } => {
            StageError::new(ExitCode::Failure, format!("{what}: {written} rows written of {sent} sent"))
        }
    }
}

/// How much a replay does: entries per batch, and when it stops — at most `until` entries
/// waiting (0: the log empty), or after `max_batches` batches.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub batch: i64,
    pub until: i64,
    pub max_batches: u64,
}

impl Pace {
    /// Until at most `until` entries wait.
    pub fn until(batch: i64, until: i64) -> Pace {
        Pace { batch, until, max_batches: u64::MAX }
    }
}

/// Which way a replay goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// OLD's log into NEW.
    Forward,
    /// NEW's reverse log into OLD (rollback after the switch).
    Backward,
}

impl Direction {
    fn log_schema(self) -> &'static str {
        match self {
            Direction::Forward => CAPTURE_SCHEMA,
            Direction::Backward => STATE_SCHEMA,
        }
    }
}

/// Replay until at most `until` entries wait (0: until the log is empty), or `max_batches`
/// batches are done. `read` is a session on
/// the side the log is on, `write` on the other side.
pub async fn replay(
    plan: &Plan,
    direction: Direction,
    read: &Session,
    write: &Session,
    pace: Pace,
    run: &str,
    cx: &StageContext,
) -> Result<ReplaySummary, StageError> {
    let Pace { batch, until, max_batches } = pace;
    let started = Instant::now();
    let mut s = ReplaySummary::default();
    let log = format!("{}.changes", ident(direction.log_schema()));
    let mut best = i64::MAX;
    let mut stalled = 0;
    loop {
        if cx.cancel.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let (waiting, behind) = state::lag(read, direction.log_schema()).await?;
        s.lag_rows = waiting;
        s.lag_seconds = behind;
        if waiting <= until || waiting == 0 || s.batches >= max_batches {
            break;
        }
        // Writes faster than the replay: say so rather than loop for ever.
        if waiting < best {
            best = waiting;
            stalled = 0;
        } else {
            stalled += 1;
            if stalled >= 50 {
                return Err(StageError::new(
                    ExitCode::Failure,
                    format!(
                        "catch-up does not converge: {waiting} changes wait after {} batches ({:.0} changes/s replayed); \
                         the writes outpace the replay: raise `batch`, or retry when the load is lower",
                        s.batches,
                        s.changes as f64 / started.elapsed().as_secs_f64().max(0.001)
                    ),
                ));
            }
        }
        let ids: Vec<i64> = read
            .client()
            .query(&format!("SELECT id FROM {log} ORDER BY id LIMIT $1"), &[&batch])
            .await
            .map_err(PgError::from)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if ids.is_empty() {
            break;
        }
        let ids_text = format!("{{{}}}", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        let (written, cleared) = match direction {
            Direction::Forward => forward_batch(plan, read, write, &log, (&ids_text, ids.len() as i64), run).await?,
            Direction::Backward => backward_batch(plan, read, write, &log, &ids_text).await?,
        };
        read.client()
            .execute(&format!("DELETE FROM {log} WHERE id = ANY ($1)"), &[&ids])
            .await
            .map_err(PgError::from)?;
        s.batches += 1;
        s.changes += ids.len() as u64;
        s.rows_written += written;
        s.keys_cleared += cleared;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        cx.progress(&format!(
            "catch-up: {} changes replayed ({:.0}/s), {} waiting, {behind:.1}s behind",
            s.changes,
            s.changes as f64 / secs,
            (waiting - ids.len() as i64).max(0)
        ));
    }
    s.duration_ms = started.elapsed().as_millis() as u64;
    s.rate = if s.duration_ms > 0 { s.changes as f64 * 1000.0 / s.duration_ms as f64 } else { 0.0 };
    Ok(s)
}

/// The keys of `table` among the batch's entries, typed as `rowtype`'s columns: `SELECT … FROM
/// log c, jsonb_populate_record(NULL::rowtype, c.key) r WHERE …`. The id array is a sub-select, so
/// that it is parsed once, not once per row of the log.
fn keys_of(log: &str, rowtype: &str, setting: &str, columns: &[String]) -> String {
    format!(
        "SELECT DISTINCT {} FROM {log} c, jsonb_populate_record(NULL::{rowtype}, c.key) r \
         WHERE c.id = ANY ((SELECT current_setting('confiture.ids')::int8[])::int8[]) AND c.tbl = current_setting('{setting}')",
        columns.iter().map(|c| format!("r.{}", ident(c))).collect::<Vec<_>>().join(", ")
    )
}

fn tuple(alias: &str, cols: &[String]) -> String {
    format!("({})", cols.iter().map(|c| format!("{alias}.{}", ident(c))).collect::<Vec<_>>().join(", "))
}

/// A batch's two transactions: the written side commits first (the log's entries are removed
/// only after that), then the reading side; on failure both roll back.
async fn end_batch(
    r: &tokio_postgres::Client,
    w: &tokio_postgres::Client,
    result: Result<(), StageError>,
) -> Result<(), StageError> {
    if let Err(e) = result {
        let _ = w.batch_execute("ROLLBACK").await;
        let _ = r.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    w.batch_execute("COMMIT")
        .await
        .map_err(|e| StageError::new(ExitCode::Failure, format!("replaying a batch: {}", pg::describe(&e))))?;
    r.batch_execute("COMMIT").await.map_err(PgError::from)?;
    Ok(())
}

async fn forward_batch(
    plan: &Plan,
    old: &Session,
    new: &Session,
    log: &str,
    (ids, count): (&str, i64),
    run: &str,
) -> Result<(u64, u64), StageError> {
    let r = old.client();
    r.batch_execute("BEGIN READ ONLY").await.map_err(PgError::from)?;
    r.execute("SELECT set_config('confiture.ids', $1, true)", &[&ids]).await.map_err(PgError::from)?;
    let w = new.client();
    w.batch_execute("BEGIN; SET LOCAL session_replication_role = replica").await.map_err(PgError::from)?;
    let mut written = 0;
    let mut cleared = 0;
    let result: Result<(), StageError> = async {
        for (i, t) in plan.tables.iter().enumerate() {
            let setting = format!("confiture.tbl{i}");
            r.execute("SELECT set_config($1, $2, true)", &[&setting, &t.old]).await.map_err(PgError::from)?;
            let old_key: Vec<String> = t.key.iter().map(|(_, o)| o.clone()).collect();
            let new_key: Vec<String> = t.key.iter().map(|(n, _)| n.clone()).collect();
            let keys = keys_of(log, &t.old_sql, &setting, &old_key);
            let tmp = format!("confiture_keys_{i}");
            w.batch_execute(&format!(
                "CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA",
                new_key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", "),
                t.new_sql
            ))
            .await
            .map_err(PgError::from)?;
            let (ks, _) =
                pipe(r, &format!("COPY ({keys}) TO STDOUT"), w, &format!("COPY {tmp} FROM STDIN"), None, |_, _| true)
                    .await
                    .map_err(|e| pipe_error(&format!("catch-up keys of {}", t.new), e))?;
            if ks.rows == 0 {
                w.batch_execute(&format!("DROP TABLE {tmp}")).await.map_err(PgError::from)?;
                continue;
            }
            let n = w
                .execute(
                    &format!(
                        "DELETE FROM {} t USING {tmp} k WHERE {} = {}",
                        t.new_sql,
                        tuple("t", &new_key),
                        tuple("k", &new_key)
                    ),
                    &[],
                )
                .await
                .map_err(PgError::from)?;
            cleared += n;
            let read = format!("COPY ({} WHERE {} IN ({keys})) TO STDOUT", t.select_on_old(), tuple("o", &old_key));
            let (rows, _) =
                pipe(r, &read, w, &format!("COPY {} ({}) FROM STDIN", t.new_sql, t.new_columns()), None, |_, _| true)
                    .await
                    .map_err(|e| pipe_error(&format!("catch-up rows of {}", t.new), e))?;
            written += rows.rows;
            w.batch_execute(&format!("DROP TABLE {tmp}")).await.map_err(PgError::from)?;
        }
        w.execute(
            &format!(
                "UPDATE {}.runs SET replayed = replayed + $2, updated_at = now() WHERE run = $1",
                ident(STATE_SCHEMA)
            ),
            &[&run, &count],
        )
        .await
        .map_err(PgError::from)?;
        Ok(())
    }
    .await;
    end_batch(r, w, result).await?;
    Ok((written, cleared))
}

/// OLD's rows rebuilt from NEW: for an OLD table, its first NEW table with the others joined on
/// the key; `(select list over NEW, OLD's columns in that order)`.
fn rebuild<'p>(plan: &'p Plan, old: &str) -> Option<(String, Vec<String>, Vec<String>, &'p TablePlan)> {
    // The base is the NEW table of OLD's name, else the one carrying most of OLD's columns: a row
    // exists on OLD when it exists there; the other parts are joined to it.
    let mut parts: Vec<&TablePlan> = plan.tables.iter().filter(|t| t.old == old).collect();
    parts.sort_by_key(|t| {
        (t.new != t.old, std::cmp::Reverse(t.columns.iter().filter(|c| c.old_column.is_some()).count()))
    });
    let base = *parts.first()?;
    let old_key: Vec<String> = base.key.iter().map(|(_, o)| o.clone()).collect();
    let mut cols: Vec<String> = Vec::new();
    let mut exprs: Vec<String> = Vec::new();
    let mut from = format!("{} b0", base.new_sql);
    for (i, t) in parts.iter().enumerate() {
        let alias = format!("b{i}");
        if i > 0 {
            let on: Vec<String> = t
                .key
                .iter()
                .map(|(n, o)| {
                    let bk = base.key.iter().find(|(_, bo)| bo == o).map(|(bn, _)| bn.clone()).unwrap_or_default();
                    format!("{alias}.{} = b0.{}", ident(n), ident(&bk))
                })
                .collect();
            from.push_str(&format!(" LEFT JOIN {} {alias} ON {}", t.new_sql, on.join(" AND ")));
        }
        for c in &t.columns {
            if let Some(oc) = &c.old_column
                && !cols.contains(oc)
            {
                cols.push(oc.clone());
                exprs.push(format!("{alias}.{}", ident(&c.new)));
            }
        }
    }
    Some((format!("SELECT {} FROM {from}", exprs.join(", ")), cols, old_key, base))
}

async fn backward_batch(
    plan: &Plan,
    new: &Session,
    old: &Session,
    log: &str,
    ids: &str,
) -> Result<(u64, u64), StageError> {
    let r = new.client();
    r.batch_execute("BEGIN READ ONLY").await.map_err(PgError::from)?;
    r.execute("SELECT set_config('confiture.ids', $1, true)", &[&ids]).await.map_err(PgError::from)?;
    let w = old.client();
    w.batch_execute("BEGIN; SET LOCAL session_replication_role = replica").await.map_err(PgError::from)?;
    let mut written = 0;
    let mut cleared = 0;
    let result: Result<(), StageError> = async {
        for (oi, base) in plan.old_tables().into_iter().enumerate() {
            let Some((select, cols, old_key, base)) = rebuild(plan, &base.old) else { continue };
            // The OLD keys any of its NEW tables logged.
            let mut key_queries = Vec::new();
            for (i, t) in plan.tables.iter().enumerate().filter(|(_, t)| t.old == base.old) {
                let setting = format!("confiture.tbl{i}");
                r.execute("SELECT set_config($1, $2, true)", &[&setting, &t.new]).await.map_err(PgError::from)?;
                let mut new_cols = Vec::new();
                for ok in &old_key {
                    let (n, _) = t.key.iter().find(|(_, o)| o == ok).expect("keys map");
                    new_cols.push(n.clone());
                }
                key_queries.push(keys_of(log, &t.new_sql, &setting, &new_cols));
            }
            let keys = key_queries.join(" UNION ");
            let kt = format!("confiture_keys_{oi}");
            let rt = format!("confiture_rows_{oi}");
            let key_list = old_key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
            let col_list = cols.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
            w.batch_execute(&format!(
                "CREATE TEMP TABLE {kt} ON COMMIT DROP AS SELECT {key_list} FROM {0} WITH NO DATA;
                 CREATE TEMP TABLE {rt} ON COMMIT DROP AS SELECT {col_list} FROM {0} WITH NO DATA",
                base.old_sql
            ))
            .await
            .map_err(PgError::from)?;
            let (ks, _) = pipe(r, &format!("COPY ({keys}) TO STDOUT"), w, &format!("COPY {kt} FROM STDIN"), None, |_, _| true)
                .await
                .map_err(|e| pipe_error(&format!("rollback keys of {}", base.old), e))?;
            if ks.rows > 0 {
                w.batch_execute(&format!("ANALYZE {kt}")).await.map_err(PgError::from)?;
                let b0_key: Vec<String> = old_key
                    .iter()
                    .map(|ok| base.key.iter().find(|(_, o)| o == ok).map(|(n, _)| n.clone()).unwrap_or_default())
                    .collect();
                let read = format!(
                    "COPY ({select} WHERE {} IN ({keys})) TO STDOUT",
                    tuple("b0", &b0_key)
                );
                let (rows, _) = pipe(r, &read, w, &format!("COPY {rt} FROM STDIN"), None, |_, _| true)
                    .await
                    .map_err(|e| pipe_error(&format!("rollback rows of {}", base.old), e))?;
                written += rows.rows;
                cleared += w
                    .execute(
                        &format!(
                            "DELETE FROM {} t USING {kt} k WHERE {} = {} AND NOT EXISTS (SELECT 1 FROM {rt} x WHERE {} = {})",
                            base.old_sql,
                            tuple("t", &old_key),
                            tuple("k", &old_key),
                            tuple("x", &old_key),
                            tuple("k", &old_key)
                        ),
                        &[],
                    )
                    .await
                    .map_err(PgError::from)?;
                let updates: Vec<String> =
                    cols.iter().filter(|c| !old_key.contains(c)).map(|c| format!("{0} = EXCLUDED.{0}", ident(c))).collect();
                let conflict = if updates.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
                w.batch_execute(&format!(
                    "INSERT INTO {} ({col_list}) OVERRIDING SYSTEM VALUE SELECT {col_list} FROM {rt} ON CONFLICT ({key_list}) {conflict}",
                    base.old_sql
                ))
                .await
                .map_err(|e| StageError::new(ExitCode::Failure, format!("rollback into {}: {}", base.old, pg::describe(&e))))?;
            }
            w.batch_execute(&format!("DROP TABLE {kt}; DROP TABLE {rt}")).await.map_err(PgError::from)?;
        }
        Ok(())
    }
    .await;
    end_batch(r, w, result).await?;
    Ok((written, cleared))
}
