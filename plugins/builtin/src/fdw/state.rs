//! What a cutover leaves in the two databases, and how it is read back.
//!
//! On NEW, schema `confiture_cutover`: `runs` (one row per run: OLD's identity, the plan's
//! digest, the phases done, the switch time), `ranges` (the bulk copy's ranges, each marked done
//! in the transaction that wrote its rows), `changes` (the reverse change log, filled after the
//! switch so that a rollback can carry NEW's writes back).
//!
//! On OLD, schema `confiture_capture`: `changes` (the change log: table, operation, key,
//! transaction id, time), the row trigger function `capture()`, and `refuse()`, the statement
//! trigger that rejects writes to a migrated table after the switch.

use confiture_engine::ExitCode;
use confiture_engine::pg::{PgError, Session, quote_literal};
use confiture_engine::stage::StageError;

use super::Phase;
use super::plan::{CAPTURE_SCHEMA, STATE_SCHEMA, TablePlan};
use crate::catalog::model::ident;

/// The change log and the functions, in `schema` (OLD's capture or NEW's reverse capture).
fn capture_objects(schema: &str) -> String {
    let s = ident(schema);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.changes (
    id bigserial PRIMARY KEY,
    tbl text NOT NULL,
    op \"char\" NOT NULL,
    key jsonb NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION {s}.capture() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$
DECLARE
    r jsonb;
    k jsonb := '{{}}';
    ok jsonb := '{{}}';
    c text;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        r := to_jsonb(NEW);
        FOREACH c IN ARRAY TG_ARGV[1:] LOOP k := k || jsonb_build_object(c, r -> c); END LOOP;
        INSERT INTO {s}.changes (tbl, op, key) VALUES (TG_ARGV[0], substr(TG_OP, 1, 1)::\"char\", k);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        r := to_jsonb(OLD);
        FOREACH c IN ARRAY TG_ARGV[1:] LOOP ok := ok || jsonb_build_object(c, r -> c); END LOOP;
        IF TG_OP = 'DELETE' OR ok IS DISTINCT FROM k THEN
            INSERT INTO {s}.changes (tbl, op, key) VALUES (TG_ARGV[0], 'D', ok);
        END IF;
    END IF;
    RETURN NULL;
END $f$;
CREATE OR REPLACE FUNCTION {s}.no_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'confiture: TRUNCATE of % is refused while it is being migrated (fdw-cutover)', TG_ARGV[0]
        USING ERRCODE = 'object_in_use';
END $f$;
CREATE OR REPLACE FUNCTION {s}.refuse() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'confiture: % was migrated to %; writes to it here are refused', TG_ARGV[0], TG_ARGV[1]
        USING ERRCODE = 'read_only_sql_transaction',
              HINT = 'write to the new database; `confiture migrate schema-to-schema rollback` switches back';
END $f$;"
    )
}

/// The capture triggers of one table, in `schema`'s functions: `args` are the table's name as
/// recorded and its key columns.
fn capture_triggers(schema: &str, table_sql: &str, name: &str, key: &[String]) -> String {
    let s = ident(schema);
    let mut args = vec![quote_literal(name)];
    args.extend(key.iter().map(|k| quote_literal(k)));
    format!(
        "DROP TRIGGER IF EXISTS confiture_capture ON {table_sql};
CREATE TRIGGER confiture_capture AFTER INSERT OR UPDATE OR DELETE ON {table_sql}
    FOR EACH ROW EXECUTE FUNCTION {s}.capture({});
DROP TRIGGER IF EXISTS confiture_capture_truncate ON {table_sql};
CREATE TRIGGER confiture_capture_truncate BEFORE TRUNCATE ON {table_sql}
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.no_truncate({});",
        args.join(", "),
        quote_literal(name)
    )
}

fn drop_triggers(table_sql: &str) -> String {
    format!(
        "DROP TRIGGER IF EXISTS confiture_capture ON {table_sql};
DROP TRIGGER IF EXISTS confiture_capture_truncate ON {table_sql};
DROP TRIGGER IF EXISTS confiture_refuse ON {table_sql};"
    )
}

/// OLD's change capture: the log and a trigger on every mapped table.
pub fn capture_on_old(tables: &[&TablePlan]) -> String {
    let mut sql = capture_objects(CAPTURE_SCHEMA);
    for t in tables {
        sql.push('\n');
        sql.push_str(&capture_triggers(CAPTURE_SCHEMA, &t.old_sql, &t.old, &t.old_key));
    }
    sql
}

/// NEW's reverse capture, installed at the switch (every NEW table, keyed by NEW's key).
pub fn capture_on_new(tables: &[TablePlan]) -> String {
    let mut sql = capture_objects(STATE_SCHEMA);
    for t in tables {
        let key: Vec<String> = t.key.iter().map(|(n, _)| n.clone()).collect();
        sql.push('\n');
        sql.push_str(&capture_triggers(STATE_SCHEMA, &t.new_sql, &t.new, &key));
    }
    sql
}

/// The refusal on OLD's migrated tables after the switch.
pub fn refuse_on_old(tables: &[&TablePlan], new_desc: &str) -> String {
    tables
        .iter()
        .map(|t| {
            format!(
                "DROP TRIGGER IF EXISTS confiture_refuse ON {0};
CREATE TRIGGER confiture_refuse BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {0}
    FOR EACH STATEMENT EXECUTE FUNCTION {1}.refuse({2}, {3});",
                t.old_sql,
                ident(CAPTURE_SCHEMA),
                quote_literal(&t.old),
                quote_literal(new_desc)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything capture and the refusal put on OLD, removed.
pub fn remove_from_old(tables: &[&TablePlan]) -> String {
    let mut sql: Vec<String> = tables.iter().map(|t| drop_triggers(&t.old_sql)).collect();
    sql.push(format!("DROP SCHEMA IF EXISTS {} CASCADE;", ident(CAPTURE_SCHEMA)));
    sql.join("\n")
}

/// Only the refusal, removed (a rollback hands OLD back).
pub fn lift_refusal(tables: &[&TablePlan]) -> String {
    tables
        .iter()
        .map(|t| format!("DROP TRIGGER IF EXISTS confiture_refuse ON {};", t.old_sql))
        .collect::<Vec<_>>()
        .join("\n")
}

/// NEW's reverse capture, removed.
pub fn remove_from_new(tables: &[TablePlan]) -> String {
    let mut sql: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "DROP TRIGGER IF EXISTS confiture_capture ON {0}; DROP TRIGGER IF EXISTS confiture_capture_truncate ON {0};",
                t.new_sql
            )
        })
        .collect();
    sql.push(format!("DROP TABLE IF EXISTS {}.changes;", ident(STATE_SCHEMA)));
    for f in ["capture()", "no_truncate()", "refuse()"] {
        sql.push(format!("DROP FUNCTION IF EXISTS {}.{f};", ident(STATE_SCHEMA)));
    }
    sql.join("\n")
}

pub fn state_tables() -> String {
    let s = ident(STATE_SCHEMA);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.runs (
    run text PRIMARY KEY,
    old_identity text NOT NULL,
    old text NOT NULL,
    plan_digest text NOT NULL,
    done text[] NOT NULL DEFAULT '{{}}',
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    switched_at timestamptz,
    finished text,
    replayed bigint NOT NULL DEFAULT 0,
    indexes text[] NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS {s}.ranges (
    run text NOT NULL REFERENCES {s}.runs ON DELETE CASCADE,
    new_table text NOT NULL,
    range_no int NOT NULL,
    lo bigint,
    hi bigint,
    done boolean NOT NULL DEFAULT false,
    rows bigint,
    checksum text,
    duration_ms bigint,
    PRIMARY KEY (run, new_table, range_no)
);"
    )
}

/// The run in progress on NEW.
#[derive(Clone, Debug)]
pub struct Run {
    pub run: String,
    pub old_identity: String,
    pub old: String,
    pub plan_digest: String,
    pub done: Vec<String>,
    pub switched_at: Option<String>,
    pub replayed: i64,
    pub indexes: Vec<String>,
}

impl Run {
    pub fn has(&self, phase: Phase) -> bool {
        self.done.iter().any(|d| d == phase.as_str())
    }

    /// The last phase done, for people.
    pub fn stands(&self) -> String {
        self.done.last().cloned().unwrap_or_else(|| "none".into())
    }
}

/// The unfinished run on NEW, if there is one.
pub async fn active(new: &Session) -> Result<Option<Run>, PgError> {
    let exists: bool =
        new.client().query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{STATE_SCHEMA}.runs")]).await?.get(0);
    if !exists {
        return Ok(None);
    }
    let row = new
        .client()
        .query_opt(
            &format!(
                "SELECT run, old_identity, old, plan_digest, done, switched_at::text, replayed, indexes \
                 FROM {}.runs WHERE finished IS NULL ORDER BY started_at DESC LIMIT 1",
                ident(STATE_SCHEMA)
            ),
            &[],
        )
        .await?;
    Ok(row.map(|r| Run {
        run: r.get(0),
        old_identity: r.get(1),
        old: r.get(2),
        plan_digest: r.get(3),
        done: r.get(4),
        switched_at: r.get(5),
        replayed: r.get(6),
        indexes: r.get(7),
    }))
}

/// Record a phase as done.
pub async fn mark(new: &Session, run: &str, phase: Phase) -> Result<(), PgError> {
    new.client()
        .execute(
            &format!(
                "UPDATE {}.runs SET done = CASE WHEN $2 = ANY (done) THEN done ELSE done || $2 END, updated_at = now() \
                 WHERE run = $1",
                ident(STATE_SCHEMA)
            ),
            &[&run, &phase.as_str()],
        )
        .await?;
    Ok(())
}

/// End a run (`cleaned-up`, `rolled-back`).
pub async fn finish(new: &Session, run: &str, how: &str) -> Result<(), PgError> {
    new.client()
        .execute(
            &format!("UPDATE {}.runs SET finished = $2, updated_at = now() WHERE run = $1", ident(STATE_SCHEMA)),
            &[&run, &how],
        )
        .await?;
    Ok(())
}

/// Whether OLD already refuses writes (a switch that committed on OLD).
pub async fn refused_on_old(old: &Session, table: &TablePlan) -> Result<bool, PgError> {
    Ok(old
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::text::regclass AND tgname = 'confiture_refuse')",
            &[&table.old_sql],
        )
        .await?
        .get(0))
}

/// Waiting changes in a change log: `(rows, seconds behind)`.
pub async fn lag(session: &Session, schema: &str) -> Result<(i64, f64), PgError> {
    let exists: bool =
        session.client().query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{schema}.changes")]).await?.get(0);
    if !exists {
        return Ok((0, 0.0));
    }
    let r = session
        .client()
        .query_one(
            &format!(
                "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(at))::float8, 0) FROM {}.changes",
                ident(schema)
            ),
            &[],
        )
        .await?;
    Ok((r.get(0), r.get(1)))
}

/// Open a transaction on `s` and run `sql` in it, each attempt under `lock_timeout`, retried
/// with backoff while it waits on a lock (writers hold the tables only briefly). On success the
/// transaction is left open for the caller to finish; returns the attempts it took.
pub async fn lock_retrying(
    s: &Session,
    sql: &str,
    options: &super::Options,
    what: &str,
    cx: &confiture_engine::stage::StageContext,
) -> Result<u32, StageError> {
    let mut wait = std::time::Duration::from_millis(25);
    for attempt in 1..=options.lock_attempts.max(1) {
        let full = format!("BEGIN; SET LOCAL lock_timeout = '{}ms'; {sql}", options.lock_timeout.as_millis());
        match s.client().batch_execute(&full).await {
            Ok(()) => return Ok(attempt),
            Err(e) => {
                let _ = s.client().batch_execute("ROLLBACK").await;
                if e.code().is_none_or(|c| c.code() != "55P03") {
                    return Err(StageError::new(
                        ExitCode::Failure,
                        format!("{what}: {}", confiture_engine::pg::describe(&e)),
                    ));
                }
                cx.progress(&format!("{what}: waiting for writers to let go of the tables (attempt {attempt})"));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
        }
    }
    Err(StageError::new(
        ExitCode::LockContention,
        format!(
            "{what}: the tables stayed locked by other sessions through {} attempts of {:?}; nothing was changed",
            options.lock_attempts, options.lock_timeout
        ),
    ))
}
