//! `verify`: for every NEW table, the row count and the order-independent checksum (the sync
//! engine's) of its mapped columns, read on both sides in the same text forms: on OLD through the
//! mapping's SELECT, on NEW from the table.
//!
//! A table whose checksums differ is compared part by part (integer keys: key ranges of about
//! 50,000 rows; other keys: the whole table), and a part that differs row by row: each row's key
//! and hash on both sides. While the application writes, a row can differ only because its
//! change waits in the change log: the log is read after both sides, and keys it holds are
//! counted as in flight, not as differences. What remains is reported as key ranges (exit 7).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use confiture_engine::pg::{PgError, Session};
use confiture_engine::stage::StageError;

use super::copy::key_condition;
use super::plan::{CAPTURE_SCHEMA, TablePlan};
use crate::catalog::model::ident;
use crate::sync::stream::Checksum;

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableCheck {
    /// The NEW table.
    pub table: String,
    pub old_rows: u64,
    pub new_rows: u64,
    pub ok: bool,
    /// Rows that differed only by a change still waiting in the change log.
    pub in_flight: u64,
    /// Key ranges that differ (`id 2345..2346: 1 row differs (2345)`), at most 20.
    pub differences: Vec<String>,
}

/// Rows per part of an integer-keyed table compared row by row.
const PART_ROWS: u64 = 50_000;

async fn sum(s: &Session, select: &str) -> Result<Checksum, PgError> {
    let stream = s.client().copy_out(&format!("COPY ({select}) TO STDOUT")).await?;
    futures::pin_mut!(stream);
    let mut c = Checksum::default();
    while let Some(row) = stream.next().await {
        c.add(&row?);
    }
    Ok(c)
}

/// Each row's key fields (text) and the hash of the whole row.
async fn rows(s: &Session, select: &str, key_fields: usize) -> Result<BTreeMap<Vec<u8>, u128>, PgError> {
    let stream = s.client().copy_out(&format!("COPY ({select}) TO STDOUT")).await?;
    futures::pin_mut!(stream);
    let mut out = BTreeMap::new();
    while let Some(row) = stream.next().await {
        let row = row?;
        let row = row.strip_suffix(b"\n").unwrap_or(&row);
        let mut tabs = 0;
        let cut = row
            .iter()
            .position(|b| {
                if *b == b'\t' {
                    tabs += 1;
                }
                tabs == key_fields
            })
            .unwrap_or(row.len());
        let mut c = Checksum::default();
        c.add(&row[cut..]);
        out.insert(row[..cut].to_vec(), c.sum);
    }
    Ok(out)
}

fn old_select(t: &TablePlan, lo: Option<i64>, hi: Option<i64>, with_key: bool) -> String {
    let mut cols: Vec<String> = Vec::new();
    if with_key {
        cols.extend(t.key.iter().map(|(_, o)| format!("o.{}", ident(o))));
    }
    cols.extend(t.columns.iter().map(|c| c.select.clone()));
    let mut s = format!("SELECT {} {}", cols.join(", "), t.from_old());
    if let Some(c) = key_condition(lo, hi, "o", &t.old_key[0]) {
        s.push_str(&format!(" WHERE {c}"));
    }
    s
}

fn new_select(t: &TablePlan, lo: Option<i64>, hi: Option<i64>, with_key: bool) -> String {
    let mut cols: Vec<String> = Vec::new();
    if with_key {
        cols.extend(t.key.iter().map(|(n, _)| format!("n.{}", ident(n))));
    }
    cols.extend(t.columns.iter().map(|c| format!("n.{}", ident(&c.new))));
    let mut s = format!("SELECT {} FROM {} n", cols.join(", "), t.new_sql);
    if let Some(c) = key_condition(lo, hi, "n", &t.key[0].0) {
        s.push_str(&format!(" WHERE {c}"));
    }
    s
}

/// The keys of `t` waiting in OLD's change log, in the text form of the row reads.
async fn pending(old: &Session, t: &TablePlan) -> Result<BTreeSet<Vec<u8>>, PgError> {
    let exists: bool = old
        .client()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{CAPTURE_SCHEMA}.changes")])
        .await?
        .get(0);
    if !exists {
        return Ok(BTreeSet::new());
    }
    let c = old.client();
    c.batch_execute("BEGIN READ ONLY").await?;
    c.execute("SELECT set_config('confiture.tbl', $1, true)", &[&t.old]).await?;
    let cols: Vec<String> = t.key.iter().map(|(_, o)| format!("r.{}", ident(o))).collect();
    let sql = format!(
        "SELECT DISTINCT {} FROM {}.changes c, jsonb_populate_record(NULL::{}, c.key) r WHERE c.tbl = current_setting('confiture.tbl')",
        cols.join(", "),
        ident(CAPTURE_SCHEMA),
        t.old_sql
    );
    let keys = rows(old, &sql, t.key.len()).await;
    c.batch_execute("COMMIT").await?;
    Ok(keys?.into_keys().collect())
}

/// Compare one table.
pub async fn check(t: &TablePlan, old: &Session, new: &Session) -> Result<TableCheck, StageError> {
    let (a, b) = (old_select(t, None, None, false), new_select(t, None, None, false));
    let (x, y) = futures::try_join!(sum(old, &a), sum(new, &b))?;
    let mut check =
        TableCheck { table: t.new.clone(), old_rows: x.rows, new_rows: y.rows, ok: x == y, ..TableCheck::default() };
    if check.ok {
        return Ok(check);
    }
    // The parts to compare row by row.
    let mut parts: Vec<(Option<i64>, Option<i64>)> = vec![(None, None)];
    if t.int_key && x.rows.max(y.rows) > PART_ROWS {
        let k = ident(&t.old_key[0]);
        let r = old
            .client()
            .query_one(&format!("SELECT min(o.{k})::int8, max(o.{k})::int8 {}", t.from_old()), &[])
            .await
            .map_err(PgError::from)?;
        if let (Some(lo), Some(hi)) = (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)) {
            let n = x.rows.max(y.rows).div_ceil(PART_ROWS) as i64;
            let step = ((hi - lo) / n).max(1);
            parts.clear();
            let mut prev = None;
            let mut cut = lo + step;
            while cut <= hi {
                parts.push((prev, Some(cut)));
                prev = Some(cut);
                cut += step;
            }
            parts.push((prev, None));
        }
    }
    let mut differing: Vec<Vec<u8>> = Vec::new();
    for (lo, hi) in parts {
        if parts_equal(t, old, new, lo, hi).await? {
            continue;
        }
        let (na, oa) = (new_select(t, lo, hi, true), old_select(t, lo, hi, true));
        // NEW first, then OLD, then the log: a row that changed on OLD after NEW was read has
        // its change in the log by the time the log is read.
        let on_new = rows(new, &na, t.key.len()).await?;
        let on_old = rows(old, &oa, t.key.len()).await?;
        let waiting = pending(old, t).await?;
        let keys: BTreeSet<&Vec<u8>> = on_new.keys().chain(on_old.keys()).collect();
        for k in keys {
            if on_new.get(k) != on_old.get(k) {
                if waiting.contains(k) {
                    check.in_flight += 1;
                } else {
                    differing.push(k.clone());
                }
            }
        }
    }
    check.ok = differing.is_empty();
    check.differences = ranges(t, &differing);
    Ok(check)
}

async fn parts_equal(
    t: &TablePlan,
    old: &Session,
    new: &Session,
    lo: Option<i64>,
    hi: Option<i64>,
) -> Result<bool, PgError> {
    if lo.is_none() && hi.is_none() {
        return Ok(false);
    }
    let (a, b) = (old_select(t, lo, hi, false), new_select(t, lo, hi, false));
    let (x, y) = futures::try_join!(sum(old, &a), sum(new, &b))?;
    Ok(x == y)
}

/// Differing keys as ranges for people: integer keys grouped into runs, others listed.
fn ranges(t: &TablePlan, keys: &[Vec<u8>]) -> Vec<String> {
    let name = t.key.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let text: Vec<String> = keys.iter().map(|k| String::from_utf8_lossy(k).replace('\t', ", ")).collect();
    let ints: Option<Vec<i64>> = if t.int_key { text.iter().map(|k| k.parse().ok()).collect() } else { None };
    let mut out = Vec::new();
    match ints {
        Some(mut ints) => {
            ints.sort_unstable();
            let mut i = 0;
            while i < ints.len() && out.len() < 20 {
                let start = ints[i];
                let mut j = i;
                while j + 1 < ints.len() && ints[j + 1] - ints[j] <= 100 && ints[j + 1] - start < 1000 {
                    j += 1;
                }
                let n = j - i + 1;
                let sample: Vec<String> = ints[i..=j].iter().take(5).map(i64::to_string).collect();
                out.push(format!(
                    "{name} {start}..{}: {n} row{} differ{} ({}{})",
                    ints[j] + 1,
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" },
                    sample.join(", "),
                    if n > 5 { ", …" } else { "" }
                ));
                i = j + 1;
            }
        }
        None => {
            for k in text.iter().take(20) {
                out.push(format!("{name} ({k}) differs"));
            }
        }
    }
    out
}
