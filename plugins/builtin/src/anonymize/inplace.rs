//! Anonymizing a database in place (a copy restored from a backup), resumably.
//!
//! 1. **Prepare** (one transaction): the progress tables are created, and the indexes and
//!    constraints that cover a masked column — unique indexes, and foreign keys on either side
//!    — are recorded there with their definitions and dropped: a permutation's output may equal
//!    another row's value that is not masked yet, and a foreign key would see a parent rewritten
//!    before its children. Dropping them also makes the rewrite cheaper, as pg_restore knows.
//! 2. **Rewrite**, table by table, in batches by key ranges: read a batch of rows after the last
//!    key done, mask it, write it back through a temporary table with `COPY` and one `UPDATE …
//!    FROM`, and record the batch's last key in the same transaction. A killed run resumes after
//!    the last committed batch: no row is masked twice, none is missed. A table with no key to
//!    walk by (or whose keys are all masked) is rewritten in one transaction through a cursor.
//!    User triggers do not fire: each batch sets `session_replication_role = replica` when the
//!    role may (superuser, or `GRANT SET ON PARAMETER`), and otherwise disables the table's
//!    enabled user triggers inside the batch's transaction and enables them again before it
//!    commits (a kill rolls both back).
//! 3. **Restore** (one transaction): the recorded indexes and constraints are created again, foreign
//!    keys validated. A completed table is recorded as done with the profile's fingerprint (rules
//!    and key), so running the same profile again changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use confiture_engine::ExitCode;
use confiture_engine::event::{Event, EventKind, Tone};
use confiture_engine::pg::Session;
use confiture_engine::stage::{StageContext, StageError};
use futures::SinkExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::plan::{ColumnPlan, Plan, TablePlan};
use super::strategy::Row;
use super::value::copy_field;
use crate::catalog::model::{ident, qname};
use crate::catalog::tables::Tables;

/// Before a table is rewritten (hooks may refuse).
pub const BEFORE_TABLE: EventKind = EventKind("before-anonymize-table");
/// After a table was rewritten, with `rows`.
pub const AFTER_TABLE: EventKind = EventKind("after-anonymize-table");

/// A table's row of the progress table: fingerprint, state, last key done, rows.
type Progress = (String, String, Option<Vec<String>>, i64);

const PROGRESS: &str = "public.confiture_anonymize_progress";
/// The catalog as it was when a run started (before it dropped anything), so a resumed run
/// plans exactly what the first one did.
const RUNS: &str = "public.confiture_anonymize_runs";
const DEFERRED: &str = "public.confiture_anonymize_deferred";

/// What a run did to one table.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TableResult {
    pub table: String,
    /// Rows rewritten by this run.
    pub rows: u64,
    /// `masked`, `resumed` (continued a killed run) or `already-done` (the same profile and key
    /// had completed it: nothing was rewritten).
    pub status: String,
    pub batches: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    pub tables: Vec<TableResult>,
    /// Indexes and constraints dropped for the rewrite and created again.
    pub rebuilt: Vec<String>,
    /// How user triggers were kept from firing.
    pub triggers: String,
}

/// A fingerprint of one table's rules and the key: a run continues or skips only work done
/// with exactly these.
fn table_fingerprint(plan: &Plan, t: &TablePlan) -> String {
    let mut h = Sha256::new();
    h.update(plan.keys.fingerprint().as_bytes());
    for c in &t.columns {
        h.update(c.column.as_bytes());
        h.update([0]);
        h.update(c.masker.strategy.as_bytes());
        h.update([0]);
        h.update(c.masker.scope.as_bytes());
        h.update([1]);
    }
    super::key::hex(&h.finalize()[..12])
}

/// The catalog a run of `profile` that has not finished started from, if there is one: plan
/// a resumed run from it, not from the live catalog (which lacks what the run dropped).
pub async fn saved_catalog(session: &Session, profile: &str) -> Result<Option<Tables>, StageError> {
    let c = session.client();
    let exists: bool = c.query_one(&format!("SELECT to_regclass('{RUNS}') IS NOT NULL"), &[]).await.map_err(pg)?.get(0);
    if !exists {
        return Ok(None);
    }
    let row =
        c.query_opt(&format!("SELECT catalog::text FROM {RUNS} WHERE profile = $1"), &[&profile]).await.map_err(pg)?;
    match row {
        None => Ok(None),
        Some(r) => serde_json::from_str(r.get::<_, &str>(0)).map(Some).map_err(|e| {
            StageError::new(
                ExitCode::Failure,
                format!("the saved catalog of the unfinished run in {RUNS} does not read: {e}"),
            )
        }),
    }
}

/// Run the plan against the database `session` is connected to (already checked not to be
/// protected by the caller).
pub async fn run(plan: &Plan, catalog: &Tables, session: &Session, cx: &StageContext) -> Result<RunResult, StageError> {
    let c = session.client();
    c.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {PROGRESS} (
            profile text NOT NULL, table_name text NOT NULL, fingerprint text NOT NULL,
            key_fingerprint text NOT NULL, state text NOT NULL, last_key text[], rows bigint NOT NULL DEFAULT 0,
            started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (profile, table_name));
         CREATE TABLE IF NOT EXISTS {RUNS} (
            profile text PRIMARY KEY, catalog jsonb NOT NULL, started_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS {DEFERRED} (
            profile text NOT NULL, table_name text NOT NULL, name text NOT NULL, kind text NOT NULL,
            definition text NOT NULL, PRIMARY KEY (profile, table_name, kind, name));"
    ))
    .await
    .map_err(pg)?;
    // The restore step runs definitions read from these tables: they must be ours.
    let foreign: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class c WHERE c.oid IN (to_regclass($1), to_regclass($2), to_regclass($3)) \
             AND (c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                  OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid))",
            &[&PROGRESS, &RUNS, &DEFERRED],
        )
        .await
        .map_err(pg)?
        .get(0);
    if foreign > 0 {
        return Err(StageError::new(
            ExitCode::Config,
            format!("{PROGRESS}, {RUNS} or {DEFERRED} belongs to another role or has triggers: refusing to trust it"),
        ));
    }
    // One run at a time per database: two would both walk from the same last key.
    let locked: bool =
        c.query_one("SELECT pg_try_advisory_lock(hashtext('confiture anonymize'))", &[]).await.map_err(pg)?.get(0);
    if !locked {
        return Err(StageError::new(
            ExitCode::LockContention,
            "another confiture anonymize run holds this database's anonymize lock; wait for it to finish",
        ));
    }
    let may_skip = catalog.may_skip_triggers;
    let mut result = RunResult {
        triggers: if may_skip {
            "session_replication_role = replica in each batch".into()
        } else {
            "user triggers disabled inside each batch's transaction".into()
        },
        ..RunResult::default()
    };
    // Which tables are done, running (a killed run) or new — by this profile or any other.
    let mut states: BTreeMap<String, Progress> = BTreeMap::new();
    for r in c
        .query(&format!("SELECT table_name, fingerprint, state, last_key, rows, profile FROM {PROGRESS}"), &[])
        .await
        .map_err(pg)?
    {
        let (table, profile): (String, String) = (r.get(0), r.get(5));
        if profile != plan.profile {
            if plan.tables.iter().any(|t| t.table.qualified() == table) {
                return Err(StageError::new(
                    ExitCode::Config,
                    format!(
                        "{table} was (partly) anonymized by profile `{profile}`; masking it with `{}` would mask masked \
                         values. Restore a fresh copy",
                        plan.profile
                    ),
                ));
            }
            continue;
        }
        if r.get::<_, String>(2) == "running" && !plan.tables.iter().any(|t| t.table.qualified() == table) {
            return Err(StageError::new(
                ExitCode::Config,
                format!(
                    "{table} is partly anonymized by an unfinished run of profile `{}`, whose rules no longer name it; \
                     put its rules back and run again, or restore a fresh copy",
                    plan.profile
                ),
            ));
        }
        states.insert(table, (r.get(1), r.get(2), r.get(3), r.get(4)));
    }
    for t in &plan.tables {
        let name = t.table.qualified();
        if let Some((fp, state, _, _)) = states.get(&name)
            && *fp != table_fingerprint(plan, t)
        {
            return Err(StageError::new(
                ExitCode::Config,
                format!(
                    "{name} was {} by profile `{}` with other rules or another key; masking it again would mask \
                     masked values. Restore a fresh copy (or delete its row from {PROGRESS} if you know what you are doing)",
                    if state == "done" { "anonymized" } else { "partly anonymized" },
                    plan.profile
                ),
            ));
        }
    }
    prepare(plan, catalog, session, &states).await?;
    for t in &plan.tables {
        if cx.cancel.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let name = t.table.qualified();
        let previous = states.get(&name);
        if previous.is_some_and(|(_, s, _, _)| s == "done") {
            result.tables.push(TableResult { table: name, rows: 0, status: "already-done".into(), batches: 0 });
            continue;
        }
        let resumed = previous.is_some_and(|(_, _, k, rows)| k.is_some() || *rows > 0);
        let refused = cx
            .emit(
                Event::new(BEFORE_TABLE)
                    .subject("table", name.clone())
                    .detail("table", name.clone())
                    .detail("columns", t.columns.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(","))
                    .note(format!("mask {name}"), Tone::Plain, true),
            )
            .await;
        if let Err(e) = refused {
            // Put the dropped constraints back before stopping: a refusal at the same table on
            // every rerun must not leave the database without them.
            let _ = restore(plan, session, cx).await;
            return Err(e);
        }
        let started = std::time::Instant::now();
        let (rows, batches) = rewrite(plan, t, session, cx, may_skip, previous.and_then(|p| p.2.clone())).await?;
        cx.emit(
            Event::new(AFTER_TABLE)
                .subject("table", name.clone())
                .detail("table", name.clone())
                .detail("rows", rows.to_string())
                .note(format!("masked {name}: {rows} rows ({} ms)", started.elapsed().as_millis()), Tone::Good, false),
        )
        .await?;
        result.tables.push(TableResult {
            table: name,
            rows,
            status: if resumed { "resumed" } else { "masked" }.into(),
            batches,
        });
    }
    result.rebuilt = restore(plan, session, cx).await?;
    Ok(result)
}

fn pg(e: tokio_postgres::Error) -> StageError {
    StageError::from(confiture_engine::pg::PgError::Query(e))
}

/// The columns a run rewrites: every rule's but `keep`'s.
fn rewritten(t: &TablePlan) -> Vec<ColumnPlan> {
    t.columns.iter().filter(|c| c.masker.strategy != "keep").cloned().collect()
}

/// Record, then drop, the indexes and constraints that cover masked columns; create the
/// progress rows. One transaction: a kill leaves either nothing or everything recorded.
async fn prepare(
    plan: &Plan,
    catalog: &Tables,
    session: &Session,
    states: &BTreeMap<String, Progress>,
) -> Result<(), StageError> {
    let c = session.client();
    // Definitions are recorded schema-qualified whatever the session's search_path.
    c.batch_execute("BEGIN; SET LOCAL search_path = pg_catalog").await.map_err(pg)?;
    let saved = serde_json::to_string(catalog).expect("the catalog serializes");
    let work = async {
        c.execute(
            &format!("INSERT INTO {RUNS} (profile, catalog) VALUES ($1, $2::text::jsonb) ON CONFLICT DO NOTHING"),
            &[&plan.profile, &saved],
        )
        .await?;
        for t in &plan.tables {
            let name = t.table.qualified();
            if !states.contains_key(&name) {
                c.execute(
                    &format!(
                        "INSERT INTO {PROGRESS} (profile, table_name, fingerprint, key_fingerprint, state) VALUES ($1, $2, $3, $4, 'running')"
                    ),
                    &[&plan.profile, &name, &table_fingerprint(plan, t), &plan.keys.fingerprint()],
                )
                .await?;
            }
            if states.get(&name).is_some_and(|s| s.1 == "done") {
                continue;
            }
            let masked: Vec<String> = rewritten(t).iter().map(|c| c.column.clone()).collect();
            if masked.is_empty() {
                continue;
            }
            // Foreign keys first (they depend on the unique indexes they reference).
            let fks = c
                .query(
                    "SELECT con.conrelid::regclass::text, n.nspname || '.' || r.relname, con.conname, pg_get_constraintdef(con.oid)
                     FROM pg_constraint con JOIN pg_class r ON r.oid = con.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                     WHERE con.contype = 'f' AND con.conparentid = 0 AND (
                        (con.conrelid = $1::text::regclass AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.conrelid
                            AND a.attnum = ANY(con.conkey) AND a.attname = ANY($2)))
                     OR (con.confrelid = $1::text::regclass AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.confrelid
                            AND a.attnum = ANY(con.confkey) AND a.attname = ANY($2))))",
                    &[&t.table.sql_name(), &masked],
                )
                .await?;
            for fk in &fks {
                let (table_sql, table_name, conname, def): (String, String, String, String) =
                    (fk.get(0), fk.get(1), fk.get(2), fk.get(3));
                let restore = format!("ALTER TABLE {table_sql} ADD CONSTRAINT {} {def}", ident(&conname));
                record(c, &plan.profile, &table_name, &conname, "foreign key", &restore).await?;
                c.batch_execute(&format!("ALTER TABLE {table_sql} DROP CONSTRAINT {}", ident(&conname))).await?;
            }
            let indexes = c
                .query(
                    // An index on a masked column: as a key column, or in an expression or
                    // predicate (pg_depend; constraint-backed indexes depend on their constraint).
                    "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid), con.conname::text, pg_get_constraintdef(con.oid)
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                          AND con.contype IN ('p', 'u', 'x')
                     WHERE i.indrelid = $1::text::regclass AND (
                        EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                                AND a.attname = ANY($2))
                     OR EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = dep.refobjsubid
                                WHERE dep.classid = 'pg_class'::regclass AND dep.objid = i.indexrelid
                                  AND dep.refobjid = i.indrelid AND a.attname = ANY($2)))
                     ORDER BY 1",
                    &[&t.table.sql_name(), &masked],
                )
                .await?;
            for ix in &indexes {
                let (index, def, conname, condef): (String, String, Option<String>, Option<String>) =
                    (ix.get(0), ix.get(1), ix.get(2), ix.get(3));
                let (kind, restore, drop) = match (conname, condef) {
                    (Some(con), Some(condef)) => (
                        "constraint",
                        format!("ALTER TABLE {} ADD CONSTRAINT {} {condef}", t.table.sql_name(), ident(&con)),
                        format!("ALTER TABLE {} DROP CONSTRAINT {}", t.table.sql_name(), ident(&con)),
                    ),
                    // A partitioned index's definition says `ON ONLY`: replayed as it is, it would
                    // be an invalid index on the parent alone.
                    _ => (
                        "index",
                        def.replacen(" ON ONLY ", " ON ", 1),
                        format!("DROP INDEX {}", qname(&t.table.schema, &index)),
                    ),
                };
                record(c, &plan.profile, &name, &index, kind, &restore).await?;
                c.batch_execute(&drop).await?;
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    };
    match work.await {
        Ok(()) => c.batch_execute("COMMIT").await.map_err(pg),
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(pg(e))
        }
    }
}

async fn record(
    c: &tokio_postgres::Client,
    profile: &str,
    table: &str,
    name: &str,
    kind: &str,
    definition: &str,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        &format!(
            "INSERT INTO {DEFERRED} (profile, table_name, name, kind, definition) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING"
        ),
        &[&profile, &table, &name, &kind, &definition],
    )
    .await
    .map(|_| ())
}

/// Create again what `prepare` dropped (indexes and constraints before foreign keys), in one
/// transaction, once every table is done.
async fn restore(plan: &Plan, session: &Session, cx: &StageContext) -> Result<Vec<String>, StageError> {
    let c = session.client();
    let rows = c
        .query(
            &format!(
                "SELECT table_name, name, kind, definition FROM {DEFERRED} WHERE profile = $1 \
                 ORDER BY kind = 'foreign key', table_name, name"
            ),
            &[&plan.profile],
        )
        .await
        .map_err(pg)?;
    if rows.is_empty() {
        c.execute(&format!("DELETE FROM {RUNS} WHERE profile = $1"), &[&plan.profile]).await.map_err(pg)?;
        for t in &plan.tables {
            c.batch_execute(&format!("ANALYZE {}", t.table.sql_name())).await.map_err(pg)?;
        }
        return Ok(Vec::new());
    }
    cx.progress(&format!("rebuilding {} indexes and constraints", rows.len()));
    c.batch_execute("BEGIN").await.map_err(pg)?;
    let mut rebuilt = Vec::new();
    for r in &rows {
        let (table, name, kind, def): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        if let Err(e) = c.batch_execute(&def).await {
            let _ = c.batch_execute("ROLLBACK").await;
            let why = confiture_engine::pg::PgError::Query(e).to_string();
            return Err(StageError::new(
                ExitCode::Failure,
                format!(
                    "the masked data breaks {kind} {name} on {table}: {why}. Every row is masked; the definitions \
                     stay recorded in {DEFERRED} and the next run retries them"
                ),
            ));
        }
        rebuilt.push(format!("{kind} {name} on {table}"));
    }
    // The statistics still hold original values (most common values, histograms).
    for t in &plan.tables {
        c.batch_execute(&format!("ANALYZE {}", t.table.sql_name())).await.map_err(pg)?;
    }
    c.execute(&format!("DELETE FROM {DEFERRED} WHERE profile = $1"), &[&plan.profile]).await.map_err(pg)?;
    c.execute(&format!("DELETE FROM {RUNS} WHERE profile = $1"), &[&plan.profile]).await.map_err(pg)?;
    c.batch_execute("COMMIT").await.map_err(pg)?;
    Ok(rebuilt)
}

/// The row a template sees: masked values for masked columns, read values for the others.
pub struct RowView<'a> {
    pub names: &'a [String],
    pub values: &'a [Option<String>],
}

impl Row for RowView<'_> {
    fn get(&self, column: &str) -> Option<Option<&str>> {
        self.names.iter().position(|n| n == column).map(|i| self.values[i].as_deref())
    }
}

/// Mask a batch: `rows` hold the key columns, then the masked columns, then the columns
/// templates read. Returns the COPY text of key + masked columns.
fn mask_batch(
    columns: &[ColumnPlan],
    names: &[String],
    keys: usize,
    rows: &mut [Vec<Option<String>>],
) -> Result<Vec<u8>, String> {
    for (ci, c) in columns.iter().enumerate() {
        let at = keys + ci;
        if c.masker.reads().is_empty() {
            let inputs: Vec<Option<&str>> = rows.iter().map(|r| r[at].as_deref()).collect();
            let out = c.masker.apply_batch(&inputs).map_err(|e| format!("{}: {e}", c.column))?;
            for (r, v) in rows.iter_mut().zip(out) {
                r[at] = v;
            }
        } else {
            let mut buf = String::new();
            for r in rows.iter_mut() {
                let masked = {
                    let row = RowView { names, values: r };
                    c.masker.apply(r[at].as_deref(), &row, &mut buf).map_err(|e| format!("{}: {e}", c.column))?
                };
                r[at] = masked.map(|()| buf.clone());
            }
        }
    }
    let mut copy = Vec::with_capacity(rows.len() * 64);
    for r in rows.iter() {
        for (i, v) in r[..keys + columns.len()].iter().enumerate() {
            if i > 0 {
                copy.push(b'\t');
            }
            copy_field(v.as_deref(), &mut copy);
        }
        copy.push(b'\n');
    }
    Ok(copy)
}

/// Rewrite one table. Returns (rows, batches).
async fn rewrite(
    plan: &Plan,
    t: &TablePlan,
    session: &Session,
    cx: &StageContext,
    may_skip: bool,
    resume_after: Option<Vec<String>>,
) -> Result<(u64, u64), StageError> {
    let c = session.client();
    let name = t.table.qualified();
    let cols = rewritten(t);
    if cols.is_empty() {
        // Only `keep` rules: nothing to rewrite.
        c.execute(
            &format!("UPDATE {PROGRESS} SET state = 'done', updated_at = now() WHERE profile = $1 AND table_name = $2"),
            &[&plan.profile, &name],
        )
        .await
        .map_err(pg)?;
        return Ok((0, 0));
    }
    let masked: Vec<&str> = cols.iter().map(|c| c.column.as_str()).collect();
    let key = t.table.walking_key(&masked);
    let mut reads: Vec<String> = Vec::new();
    for col in &cols {
        for r in col.masker.reads() {
            if !masked.contains(&r.as_str()) && !reads.contains(&r) && !key.as_ref().is_some_and(|k| k.contains(&r)) {
                reads.push(r);
            }
        }
    }
    // Without a key: the row's physical address, with its partition (a ctid is only unique
    // within one).
    let key_cols: Vec<String> = key.clone().unwrap_or_else(|| vec!["tableoid".to_string(), "ctid".to_string()]);
    let system = |n: &str| n == "ctid" || n == "tableoid";
    // Column names in the order rows hold them.
    let mut names: Vec<String> = key_cols.clone();
    names.extend(cols.iter().map(|c| c.column.clone()));
    names.extend(reads.iter().cloned());
    let only = if t.table.kind == 'p' { "" } else { "ONLY " };
    let table_sql = t.table.sql_name();
    // Qualified, so ORDER BY sorts by the columns and not by their text (output names).
    let select_list = names
        .iter()
        .map(|n| if system(n) { format!("src.{n}::text") } else { format!("src.{}::text", ident(n)) })
        .collect::<Vec<_>>()
        .join(", ");
    let batch_cols = &names[..key_cols.len() + cols.len()];
    let temp = "pg_temp.confiture_anonymize_batch";
    // The temporary table cannot have columns named like system columns.
    let temp_name = |n: &String| if system(n) { format!("confiture_{n}") } else { ident(n) };
    let temp_cols = batch_cols.iter().map(temp_name).collect::<Vec<_>>().join(", ");
    let set = cols.iter().map(|c| format!("{0} = b.{0}", ident(&c.column))).collect::<Vec<_>>().join(", ");
    let join = key_cols
        .iter()
        .map(|k| if system(k) { format!("t.{k} = b.confiture_{k}") } else { format!("t.{0} = b.{0}", ident(k)) })
        .collect::<Vec<_>>()
        .join(" AND ");
    let triggers = trigger_switch(session, &t.table.sql_name(), may_skip).await?;
    let session_setup = format!(
        "SET LOCAL DateStyle = ISO; SET LOCAL IntervalStyle = postgres; SET LOCAL bytea_output = hex; \
         SET LOCAL extra_float_digits = 3; {}",
        triggers.0
    );
    let create_temp = format!(
        "DROP TABLE IF EXISTS {temp}; CREATE TEMP TABLE confiture_anonymize_batch ON COMMIT DELETE ROWS AS \
         SELECT {} FROM {only}{table_sql} WITH NO DATA",
        batch_cols
            .iter()
            .map(|n| if system(n) { format!("{n} AS confiture_{n}") } else { ident(n) })
            .collect::<Vec<_>>()
            .join(", ")
    );
    c.batch_execute(&create_temp).await.map_err(pg)?;
    let update = format!("UPDATE {only}{table_sql} t SET {set} FROM {temp} b WHERE {join}");
    let copy_in = format!("COPY {temp} ({temp_cols}) FROM STDIN");
    let mut total = 0u64;
    let mut batches = 0u64;
    let estimate = t.table.estimated_rows.max(1) as u64;
    let columns = Arc::new(cols.clone());
    let names = Arc::new(names);
    let Some(key) = key else {
        // No key to walk by: one transaction, rows read through a cursor.
        c.batch_execute("BEGIN").await.map_err(pg)?;
        let work = async {
            c.batch_execute(&session_setup).await?;
            c.batch_execute(&format!(
                "DECLARE confiture_rows NO SCROLL CURSOR FOR SELECT {select_list} FROM {only}{table_sql} src"
            ))
            .await?;
            loop {
                let rows = c.query(&format!("FETCH {} FROM confiture_rows", plan.batch_rows), &[]).await?;
                if rows.is_empty() {
                    break;
                }
                let n = rows.len() as u64;
                write_batch(c, &rows, &columns, &names, 2, &copy_in, &update).await?;
                // One transaction: ON COMMIT DELETE ROWS does not empty it between batches.
                c.batch_execute(&format!("TRUNCATE {temp}")).await?;
                total += n;
                batches += 1;
                cx.progress(&format!("{name}: {total} of ~{estimate} rows"));
            }
            c.batch_execute("CLOSE confiture_rows").await?;
            c.batch_execute(&triggers.1).await?;
            c.execute(
                &format!("UPDATE {PROGRESS} SET state = 'done', rows = $3, updated_at = now() WHERE profile = $1 AND table_name = $2"),
                &[&plan.profile, &name, &(total as i64)],
            )
            .await?;
            Ok::<(), BatchError>(())
        };
        return match work.await {
            Ok(()) => {
                c.batch_execute("COMMIT").await.map_err(pg)?;
                Ok((total, batches))
            }
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                Err(e.into_stage(&name))
            }
        };
    };
    let n_keys = key.len();
    let key_types: Vec<String> =
        key.iter().map(|k| t.table.column(k).map_or_else(|| "text".to_string(), |c| c.data_type.clone())).collect();
    let after = (1..=n_keys).map(|i| format!("${i}::text::{}", key_types[i - 1])).collect::<Vec<_>>().join(", ");
    let key_list = key.iter().map(|k| format!("src.{}", ident(k))).collect::<Vec<_>>().join(", ");
    let first =
        format!("SELECT {select_list} FROM {only}{table_sql} src ORDER BY {key_list} LIMIT {}", plan.batch_rows);
    let next = format!(
        "SELECT {select_list} FROM {only}{table_sql} src WHERE ({key_list}) > ({after}) ORDER BY {key_list} LIMIT {}",
        plan.batch_rows
    );
    let mut last: Option<Vec<String>> = resume_after;
    loop {
        if cx.cancel.is_cancelled() {
            return Err(StageError::cancelled());
        }
        c.batch_execute("BEGIN").await.map_err(pg)?;
        let work = async {
            c.batch_execute(&session_setup).await?;
            let rows = match &last {
                None => c.query(first.as_str(), &[]).await?,
                Some(k) => {
                    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        k.iter().map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                    c.query(next.as_str(), &params).await?
                }
            };
            if rows.is_empty() {
                c.batch_execute(&triggers.1).await?;
                c.execute(
                    &format!("UPDATE {PROGRESS} SET state = 'done', updated_at = now() WHERE profile = $1 AND table_name = $2"),
                    &[&plan.profile, &name],
                )
                .await?;
                return Ok(None);
            }
            let last_row = rows.last().expect("not empty");
            let new_last: Vec<String> =
                (0..n_keys).map(|i| last_row.get::<_, Option<String>>(i).unwrap_or_default()).collect();
            let n = rows.len();
            write_batch(c, &rows, &columns, &names, n_keys, &copy_in, &update).await?;
            c.batch_execute(&triggers.1).await?;
            c.execute(
                &format!(
                    "UPDATE {PROGRESS} SET last_key = $3, rows = rows + $4, updated_at = now() WHERE profile = $1 AND table_name = $2"
                ),
                &[&plan.profile, &name, &new_last, &(n as i64)],
            )
            .await?;
            Ok::<Option<(Vec<String>, usize)>, BatchError>(Some((new_last, n)))
        };
        match work.await {
            Ok(Some((k, n))) => {
                c.batch_execute("COMMIT").await.map_err(pg)?;
                last = Some(k);
                total += n as u64;
                batches += 1;
                cx.progress(&format!("{name}: {total} of ~{estimate} rows"));
            }
            Ok(None) => {
                c.batch_execute("COMMIT").await.map_err(pg)?;
                return Ok((total, batches));
            }
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                return Err(e.into_stage(&name));
            }
        }
    }
}

/// What a batch can fail with: the database, or a strategy.
enum BatchError {
    Db(tokio_postgres::Error),
    Mask(String),
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(e: tokio_postgres::Error) -> Self {
        BatchError::Db(e)
    }
}

impl BatchError {
    fn into_stage(self, table: &str) -> StageError {
        match self {
            BatchError::Db(e) => {
                let err = pg(e);
                StageError { message: format!("{table}: {}", err.message), ..err }
            }
            BatchError::Mask(m) => {
                StageError::new(ExitCode::Failure, format!("{table}: {m}; nothing of this batch was written"))
            }
        }
    }
}

/// Mask `rows` (on a blocking thread: WASM plugins must not run on the async runtime) and
/// write them back.
async fn write_batch(
    c: &tokio_postgres::Client,
    rows: &[tokio_postgres::Row],
    columns: &Arc<Vec<ColumnPlan>>,
    names: &Arc<Vec<String>>,
    keys: usize,
    copy_in: &str,
    update: &str,
) -> Result<(), BatchError> {
    let mut values: Vec<Vec<Option<String>>> =
        rows.iter().map(|r| (0..names.len()).map(|i| r.get::<_, Option<String>>(i)).collect()).collect();
    let (columns, names) = (columns.clone(), names.clone());
    let copy = tokio::task::spawn_blocking(move || mask_batch(&columns, &names, keys, &mut values))
        .await
        .map_err(|e| BatchError::Mask(format!("the masking thread stopped: {e}")))?
        .map_err(BatchError::Mask)?;
    let sink = c.copy_in::<_, Bytes>(copy_in).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(copy)).await?;
    sink.close().await?;
    c.execute(update, &[]).await?;
    Ok(())
}

/// SQL that keeps user triggers from firing in a batch, and SQL that undoes it before commit
/// (each trigger put back in the mode it had: `ENABLE`, `ENABLE ALWAYS`, `ENABLE REPLICA`).
/// With `session_replication_role = replica`, ordinary triggers stay quiet but `ALWAYS` and
/// `REPLICA` ones would fire: those are switched off too. Triggers of the table's partitions
/// are included.
async fn trigger_switch(session: &Session, table_sql: &str, may_skip: bool) -> Result<(String, String), StageError> {
    let rows = session
        .client()
        .query(
            "SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled::text FROM pg_trigger t
             WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND (t.tgrelid = $1::text::regclass
                OR t.tgrelid IN (SELECT relid FROM pg_partition_tree($1::text::regclass)))
             ORDER BY 1, 2",
            &[&table_sql],
        )
        .await
        .map_err(pg)?;
    let (mut off, mut on) = (String::new(), String::new());
    if may_skip {
        off.push_str("SET LOCAL session_replication_role = replica;");
    }
    for r in &rows {
        let (table, name, mode): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        if may_skip && mode == "O" {
            continue;
        }
        let enable = match mode.as_str() {
            "A" => "ENABLE ALWAYS",
            "R" => "ENABLE REPLICA",
            _ => "ENABLE",
        };
        off.push_str(&format!("ALTER TABLE {table} DISABLE TRIGGER {};", ident(&name)));
        on.push_str(&format!("ALTER TABLE {table} {enable} TRIGGER {};", ident(&name)));
    }
    Ok((off, on))
}
