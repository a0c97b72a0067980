//! The target's record of a sync: `confiture_sync_runs` (one row per run: where from, what was
//! planned, whether it finished) and `confiture_sync` (one row per range copied, inserted in the
//! transaction that wrote the range's rows, with their count and checksum) and
//! `confiture_sync_steps` (the statements after the load, each recorded in its own transaction).
//! After a kill, what is recorded is exactly what was written: a resumed run does the rest.

use std::collections::{BTreeMap, HashSet};

use confiture_engine::ExitCode;
use confiture_engine::pg::{PgError, Session};
use confiture_engine::stage::StageError;
use serde::{Deserialize, Serialize};

use super::plan::Unit;
use super::schema::PostStep;
use super::stream::Checksum;

pub const RUNS: &str = "public.confiture_sync_runs";
pub const RANGES: &str = "public.confiture_sync";
pub const STEPS: &str = "public.confiture_sync_steps";

pub const CREATE: &str = "
CREATE TABLE IF NOT EXISTS public.confiture_sync_runs (
    run text PRIMARY KEY,
    source_identity text NOT NULL,
    source text NOT NULL,
    masking text NOT NULL,
    plan jsonb NOT NULL,
    state text NOT NULL DEFAULT 'copying',
    resumed int NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS public.confiture_sync (
    run text NOT NULL REFERENCES public.confiture_sync_runs ON DELETE CASCADE,
    table_name text NOT NULL,
    range_no int NOT NULL,
    range text NOT NULL,
    rows int8 NOT NULL,
    bytes int8 NOT NULL,
    checksum text NOT NULL,
    duration_ms int8 NOT NULL,
    copied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run, table_name, range_no)
);
CREATE TABLE IF NOT EXISTS public.confiture_sync_steps (
    run text NOT NULL REFERENCES public.confiture_sync_runs ON DELETE CASCADE,
    step int NOT NULL,
    done_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run, step)
)";

/// What a run planned, saved with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    /// `created` or `existing`.
    pub schema: String,
    pub units: Vec<Unit>,
    pub post: Vec<PostStep>,
    /// Sequences to set after the load, `schema.name` quoted.
    pub sequences: Vec<String>,
    pub truncated: Vec<String>,
    pub statements_before_load: usize,
    /// The tables chosen (partitioned ones included), `schema.table`.
    pub chosen: Vec<String>,
    /// `subset` conditions by table.
    pub subsets: BTreeMap<String, String>,
    #[serde(default)]
    pub include_children: bool,
}

/// An unfinished run found in the target.
pub struct Unfinished {
    pub run: String,
    pub source_identity: String,
    pub masking: String,
    pub saved: Saved,
    /// `(table, range)` already copied, with their checksums.
    pub done: BTreeMap<(String, u32), (u64, u64, String)>,
    pub steps_done: HashSet<u32>,
}

async fn exists(session: &Session) -> Result<bool, PgError> {
    Ok(session.client().query_one("SELECT to_regclass('public.confiture_sync_runs') IS NOT NULL", &[]).await?.get(0))
}

/// The run that did not finish, if there is one.
pub async fn unfinished(session: &Session) -> Result<Option<Unfinished>, StageError> {
    if !exists(session).await? {
        return Ok(None);
    }
    let c = session.client();
    let Some(row) = c
        .query_opt(
            &format!(
                "SELECT run, source_identity, masking, plan::text FROM {RUNS} WHERE state <> 'done' \
                 ORDER BY started_at DESC LIMIT 1"
            ),
            &[],
        )
        .await
        .map_err(PgError::from)?
    else {
        return Ok(None);
    };
    let run: String = row.get(0);
    let plan: String = row.get(3);
    let saved: Saved = serde_json::from_str(&plan).map_err(|e| {
        StageError::new(
            ExitCode::Failure,
            format!(
                "the saved plan of sync run {run} is unreadable ({e}); it was written by another confiture version"
            ),
        )
    })?;
    let mut done = BTreeMap::new();
    for r in c
        .query(&format!("SELECT table_name, range_no, rows, bytes, checksum FROM {RANGES} WHERE run = $1"), &[&run])
        .await
        .map_err(PgError::from)?
    {
        done.insert(
            (r.get::<_, String>(0), r.get::<_, i32>(1) as u32),
            (r.get::<_, i64>(2) as u64, r.get::<_, i64>(3) as u64, r.get::<_, String>(4)),
        );
    }
    let steps_done = c
        .query(&format!("SELECT step FROM {STEPS} WHERE run = $1"), &[&run])
        .await
        .map_err(PgError::from)?
        .iter()
        .map(|r| r.get::<_, i32>(0) as u32)
        .collect();
    Ok(Some(Unfinished { run, source_identity: row.get(1), masking: row.get(2), saved, done, steps_done }))
}

/// Every range of `run` recorded, by table: the combined checksum.
pub async fn recorded(session: &Session, run: &str) -> Result<BTreeMap<String, (Checksum, u64, usize)>, PgError> {
    let mut out: BTreeMap<String, (Checksum, u64, usize)> = BTreeMap::new();
    for r in session
        .client()
        .query(&format!("SELECT table_name, rows, bytes, checksum FROM {RANGES} WHERE run = $1"), &[&run])
        .await?
    {
        let e = out.entry(r.get(0)).or_default();
        if let Some(c) = Checksum::parse(r.get::<_, i64>(1) as u64, &r.get::<_, String>(3)) {
            e.0.merge(c);
        }
        e.1 += r.get::<_, i64>(2) as u64;
        e.2 += 1;
    }
    Ok(out)
}
