//! `verify`: for every NEW table, the row count and the order-independent checksum (the sync
//! engine's) of its mapped columns, read on both sides in the same text forms: on OLD through the
//! mapping's SELECT, on NEW from the table. A table that differs is narrowed down by key range
//! (integer keys: the span cut in 16, the differing parts cut again, down to ranges of at most
//! 1,000 keys). While the application writes, a difference can be a change not yet replayed: a
//! differing range is checked again after a catch-up, and only what still differs is reported.

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use confiture_engine::pg::{PgError, Session};
use confiture_engine::stage::StageError;

use super::copy::key_condition;
use super::plan::TablePlan;
use crate::catalog::model::ident;
use crate::sync::stream::Checksum;

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableCheck {
    /// The NEW table.
    pub table: String,
    pub old_rows: u64,
    pub new_rows: u64,
    pub ok: bool,
    /// Key ranges that differ (`id 1000..2000: OLD 1000 rows, NEW 999`), at most 20.
    pub differences: Vec<String>,
}

async fn sum(s: &Session, select: &str) -> Result<Checksum, PgError> {
    let stream = s.client().copy_out(&format!("COPY ({select}) TO STDOUT")).await?;
    futures::pin_mut!(stream);
    let mut c = Checksum::default();
    while let Some(row) = stream.next().await {
        c.add(&row?);
    }
    Ok(c)
}

fn old_select(t: &TablePlan, lo: Option<i64>, hi: Option<i64>) -> String {
    let mut s = t.select_on_old();
    if let Some(c) = key_condition(t, lo, hi, "o", &t.old_key[0]) {
        s.push_str(&format!(" WHERE {c}"));
    }
    s
}

fn new_select(t: &TablePlan, lo: Option<i64>, hi: Option<i64>) -> String {
    let mut s = format!("SELECT {} FROM {} n", t.new_columns(), t.new_sql);
    if let Some(c) = key_condition(t, lo, hi, "n", &t.key[0].0) {
        s.push_str(&format!(" WHERE {c}"));
    }
    s
}

async fn pair(t: &TablePlan, old: &Session, new: &Session, lo: Option<i64>, hi: Option<i64>) -> Result<(Checksum, Checksum), PgError> {
    let (a, b) = (old_select(t, lo, hi), new_select(t, lo, hi));
    futures::try_join!(sum(old, &a), sum(new, &b))
}

/// A range that differs: `(lo, hi, old rows, new rows)`.
pub type Diff = (Option<i64>, Option<i64>, u64, u64);

/// Compare one table; the ranges that differ (whole table: `(None, None, …)`).
pub async fn compare(t: &TablePlan, old: &Session, new: &Session) -> Result<(u64, u64, Vec<Diff>), StageError> {
    let (a, b) = pair(t, old, new, None, None).await?;
    if a == b {
        return Ok((a.rows, b.rows, Vec::new()));
    }
    if !t.int_key {
        return Ok((a.rows, b.rows, vec![(None, None, a.rows, b.rows)]));
    }
    let k = ident(&t.old_key[0]);
    let r = old
        .client()
        .query_one(&format!("SELECT min(o.{k})::int8, max(o.{k})::int8 {}", t.from_old()), &[])
        .await
        .map_err(PgError::from)?;
    let nk = ident(&t.key[0].0);
    let rn = new
        .client()
        .query_one(&format!("SELECT min({nk})::int8, max({nk})::int8 FROM {}", t.new_sql), &[])
        .await
        .map_err(PgError::from)?;
    let lows = [r.get::<_, Option<i64>>(0), rn.get::<_, Option<i64>>(0)];
    let highs = [r.get::<_, Option<i64>>(1), rn.get::<_, Option<i64>>(1)];
    let (Some(lo), Some(hi)) = (lows.iter().flatten().min().copied(), highs.iter().flatten().max().copied()) else {
        return Ok((a.rows, b.rows, vec![(None, None, a.rows, b.rows)]));
    };
    let mut todo = vec![(lo, hi + 1)];
    let mut found = Vec::new();
    while let Some((lo, hi)) = todo.pop() {
        if found.len() >= 20 {
            break;
        }
        let (x, y) = pair(t, old, new, Some(lo), Some(hi)).await?;
        if x == y {
            continue;
        }
        if hi - lo <= 1000 {
            found.push((Some(lo), Some(hi), x.rows, y.rows));
            continue;
        }
        let step = ((hi - lo) / 16).max(1);
        let mut cut = lo;
        while cut < hi {
            let next = (cut + step).min(hi);
            todo.push((cut, next));
            cut = next;
        }
    }
    found.sort();
    Ok((a.rows, b.rows, found))
}

/// Check the ranges found again (after a catch-up): those that still differ.
pub async fn recheck(t: &TablePlan, old: &Session, new: &Session, diffs: &[Diff]) -> Result<Vec<Diff>, StageError> {
    let mut out = Vec::new();
    for (lo, hi, _, _) in diffs {
        let (x, y) = pair(t, old, new, *lo, *hi).await?;
        if x != y {
            out.push((*lo, *hi, x.rows, y.rows));
        }
    }
    Ok(out)
}

pub fn describe(t: &TablePlan, d: &Diff) -> String {
    match (d.0, d.1) {
        (Some(lo), Some(hi)) => format!("{} {lo}..{hi}: OLD {} rows, NEW {}", t.key[0].0, d.2, d.3),
        _ => format!("whole table: OLD {} rows, NEW {}", d.2, d.3),
    }
}
