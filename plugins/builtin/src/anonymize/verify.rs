//! The leak check: no original value of an anonymized column (of at least
//! [`MIN_LEN`] characters) appears anywhere in the target — as a whole value, inside text,
//! inside a jsonb document or an array — as a token of its own (not inside a longer run of
//! letters and digits, where a short number turns up by chance). Every column of every table of the target is read in its
//! text form and searched for all the originals at once (Aho–Corasick), so the cost is one pass
//! over the target. Reports say where and how many, never the values.

use std::collections::{BTreeMap, HashSet};

use aho_corasick::AhoCorasick;
use confiture_engine::pg::{PgError, Session};
use futures::StreamExt;
use serde::Serialize;

use super::plan::Plan;
use crate::catalog::model::ident;
use crate::catalog::tables::Tables;

/// Both sides in the same text forms, whatever the roles' and databases' defaults.
pub const FORMS: &str = "SET LOCAL DateStyle = ISO; SET LOCAL IntervalStyle = postgres; SET LOCAL bytea_output = hex; \
                     SET LOCAL extra_float_digits = 3; SET LOCAL TimeZone = 'UTC'";

/// Shorter values are not searched for: they occur by chance.
pub const MIN_LEN: usize = 6;

/// Where originals were found.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Leak {
    /// `table.column` of the target where original values were found.
    pub found_in: String,
    /// `table.column` of the source the values come from.
    pub from: String,
    /// Values of the target column holding one (whole or inside).
    pub values: u64,
    /// How many of those are the whole value.
    pub whole: u64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct VerifyReport {
    /// Distinct original values searched for.
    pub originals: usize,
    /// Originals left out because the masking itself can produce them (a city masked to another
    /// city from the same list): finding one proves nothing.
    pub ambiguous: usize,
    pub tables_read: usize,
    pub values_read: u64,
    pub leaks: Vec<Leak>,
}

/// Collect the originals from `source` (through the plan's rules; `keep` columns are not
/// anonymized and are left out), then search `target`.
pub async fn verify(
    plan: &Plan,
    source: &Session,
    target: &Session,
    target_tables: &Tables,
) -> Result<VerifyReport, PgError> {
    let mut needles: Vec<String> = Vec::new();
    let mut from: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut masked_outputs: HashSet<String> = HashSet::new();
    let mut ambiguous = 0;
    let src = source.client();
    src.batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {FORMS}")).await?;
    for t in &plan.tables {
        for c in &t.columns {
            if c.masker.strategy == "keep" {
                continue;
            }
            let q = format!(
                "SELECT DISTINCT {}::text FROM {} WHERE {} IS NOT NULL",
                ident(&c.column),
                t.table.sql_name(),
                ident(&c.column)
            );
            let rows = src.query(&q, &[]).await?;
            let label = format!("{}.{}", t.table.qualified(), c.column);
            let mut originals: Vec<String> = Vec::new();
            for r in &rows {
                let v: String = r.get(0);
                if c.masker.column.class == super::strategy::TypeClass::Json {
                    // Only what the rule masks: the rest of the document is meant to stay.
                    originals.extend(super::strategies::json::values_at(&v, &c.masker.paths));
                } else if c.masker.column.array {
                    let _ = super::value::map_array(&v, |e, _| {
                        originals.push(e.to_string());
                        Ok(Some(()))
                    });
                } else {
                    originals.push(v);
                }
            }
            // What the masking of these originals gives: an original equal to one of those is
            // ambiguous, not a leak.
            if c.masker.reads().is_empty() {
                for r in &rows {
                    let v: String = r.get(0);
                    if let Ok(out) = c.masker.apply_batch(&[Some(&v)])
                        && let Some(Some(m)) = out.into_iter().next()
                    {
                        if c.masker.column.class == super::strategy::TypeClass::Json {
                            masked_outputs.extend(super::strategies::json::values_at(&m, &c.masker.paths));
                        } else if c.masker.column.array {
                            let _ = super::value::map_array(&m, |e, _| {
                                masked_outputs.insert(e.to_string());
                                Ok(Some(()))
                            });
                        } else {
                            masked_outputs.insert(m);
                        }
                    }
                }
            }
            for o in originals {
                if o.chars().count() >= MIN_LEN && seen.insert(o.clone()) {
                    needles.push(o);
                    from.push(label.clone());
                }
            }
        }
    }
    let _ = src.batch_execute("COMMIT").await;
    let keep: Vec<bool> = needles.iter().map(|n| !masked_outputs.contains(n)).collect();
    ambiguous += keep.iter().filter(|k| !**k).count();
    let (needles, from): (Vec<String>, Vec<String>) =
        needles.into_iter().zip(from).zip(keep).filter(|(_, k)| *k).map(|(p, _)| p).unzip();
    let mut report =
        VerifyReport { originals: needles.len(), ambiguous, tables_read: 0, values_read: 0, leaks: Vec::new() };
    if needles.is_empty() {
        return Ok(report);
    }
    // Only fails past u32::MAX automaton states: far beyond what any column's distinct values make.
    let ac = AhoCorasick::new(&needles).expect("the search builds from plain strings");
    let mut counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let tc = target.client();
    tc.batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {FORMS}")).await?;
    for t in target_tables.tables.values() {
        if t.partition_of.is_some() || t.name.starts_with("confiture_anonymize") {
            continue;
        }
        report.tables_read += 1;
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        let list = cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        let stream = tc.copy_out(&format!("COPY (SELECT {list} FROM {}) TO STDOUT", t.sql_name())).await?;
        futures::pin_mut!(stream);
        let mut pending: Vec<u8> = Vec::new();
        let line_fn = |line: &[u8], counts: &mut BTreeMap<(String, String), (u64, u64)>, report: &mut VerifyReport| {
            for (i, field) in line.split(|b| *b == b'\t').enumerate() {
                if field == b"\\N" {
                    continue;
                }
                report.values_read += 1;
                let mut value = Vec::with_capacity(field.len());
                super::value::copy_unescape(field, &mut value);
                let mut hit: Option<(usize, bool)> = None;
                for m in ac.find_overlapping_iter(&value) {
                    // As a token of its own: a nine-digit id inside a sixteen-digit card number
                    // is chance, the same id after "ssn: " is a leak.
                    let letter = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
                    let before = m.start() == 0 || !letter(value[m.start() - 1]);
                    let after = m.end() == value.len() || !letter(value[m.end()]);
                    if !(before && after) {
                        continue;
                    }
                    let whole = m.start() == 0 && m.end() == value.len();
                    hit = Some((m.pattern().as_usize(), whole || hit.is_some_and(|h| h.1)));
                    if whole {
                        break;
                    }
                }
                if let Some((p, whole)) = hit {
                    let e = counts.entry((format!("{}.{}", t.qualified(), cols[i]), from[p].clone())).or_default();
                    e.0 += 1;
                    if whole {
                        e.1 += 1;
                    }
                }
            }
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            pending.extend_from_slice(&chunk);
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                line_fn(&line[..line.len() - 1], &mut counts, &mut report);
            }
        }
    }
    tc.batch_execute("COMMIT").await?;
    report.leaks =
        counts.into_iter().map(|((found_in, from), (values, whole))| Leak { found_in, from, values, whole }).collect();
    Ok(report)
}
