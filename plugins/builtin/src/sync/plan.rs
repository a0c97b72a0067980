//! Everything a sync decides before it writes: the tables (filters, partitions), the columns
//! copied (generated columns are not), how each table is split into ranges, and what is masked.
//! The copy units are saved in the target with the run, so a resumed run copies exactly the
//! ranges the first one planned.

use std::collections::BTreeMap;

use confiture_engine::pg::Session;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::{ColumnRule, Options};
use crate::anonymize::plan::Plan as MaskPlan;
use crate::anonymize::profile::{KeySetting, Profile, Rule, TableRules};
use crate::anonymize::scan;
use crate::catalog::model::ident;
use crate::catalog::tables::{Table, Tables};

/// Tables of confiture's own bookkeeping, never copied.
pub fn is_bookkeeping(name: &str) -> bool {
    name.starts_with("confiture_sync") || name.starts_with("confiture_anonymize")
}

/// One table whose rows are copied (a plain table or a partition), with its ranges.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unit {
    /// `schema.table`.
    pub table: String,
    /// `"schema"."table"`.
    pub sql_name: String,
    /// The columns copied, in order (generated columns left out).
    pub columns: Vec<String>,
    pub estimated_rows: u64,
    pub estimated_bytes: u64,
    /// `whole`, `key "id"`, `ctid`, `subset`.
    pub split: String,
    pub ranges: Vec<Range>,
    /// The `subset` condition of its table, or `referenced`.
    pub subset: Option<String>,
    /// Masked columns (their maskers are rebuilt from the profile when a run resumes).
    pub masked: Vec<String>,
}

/// A part of a table copied in one transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Range {
    pub no: u32,
    /// A condition on the source (`"id" >= 250000 AND "id" < 500000`, a ctid range); none for
    /// the whole table.
    pub predicate: Option<String>,
    /// For people: `id 250000..500000`, `pages 0..1200`, `all`.
    pub what: String,
}

/// The tables a sync takes: every table, or those the globs choose, minus the excluded ones
/// and confiture's bookkeeping. A partition goes with its partitioned table. Returned as
/// `schema.table`, partitioned tables included.
pub fn select(tables: &Tables, options: &Options) -> Result<Vec<String>, String> {
    let set = |globs: &[String]| -> Result<Option<GlobSet>, String> {
        if globs.is_empty() {
            return Ok(None);
        }
        let mut b = GlobSetBuilder::new();
        for g in globs {
            let g = if g.contains('.') { g.clone() } else { format!("public.{g}") };
            b.add(Glob::new(&g).map_err(|e| format!("bad table pattern `{g}`: {e}"))?);
        }
        b.build().map(Some).map_err(|e| e.to_string())
    };
    let include = set(&options.tables)?;
    let exclude = set(&options.exclude)?;
    let root = |t: &Table| {
        let mut name = t.qualified();
        let mut seen = 0;
        while let Some(parent) = tables.tables.get(&name).and_then(|t| t.partition_of.clone()) {
            name = parent;
            seen += 1;
            if seen > 32 {
                break;
            }
        }
        name
    };
    let mut out = Vec::new();
    for t in tables.tables.values() {
        if is_bookkeeping(&t.name) {
            continue;
        }
        let names = [t.qualified(), root(t)];
        let chosen = include.as_ref().is_none_or(|g| names.iter().any(|n| g.is_match(n)));
        let dropped = exclude.as_ref().is_some_and(|g| names.iter().any(|n| g.is_match(n)));
        if chosen && !dropped {
            out.push(t.qualified());
        }
    }
    if out.is_empty() {
        return Err("no table to copy: the source has none, or --tables/--exclude leave none".into());
    }
    Ok(out)
}

/// The partitioned table at the top of `name`'s tree (`name` itself when it is not a partition).
pub fn root_of(tables: &Tables, name: &str) -> String {
    let mut name = name.to_string();
    for _ in 0..32 {
        match tables.tables.get(&name).and_then(|t| t.partition_of.clone()) {
            Some(p) => name = p,
            None => break,
        }
    }
    name
}

/// The profile `--anonymize table.column[=strategy]` stands for: the strategy given, or one
/// picked from the column's name and type (said in `notes`). The key comes from
/// `CONFITURE_ANON_KEY` when it is set (deterministic), else it is random for the run.
pub fn command_line_profile(rules: &[ColumnRule], tables: &Tables, notes: &mut Vec<String>) -> Result<Profile, String> {
    let mut by_table: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in rules {
        let Some(t) = tables.tables.get(&r.table) else {
            problems.push(format!("--anonymize {}.{}: the source has no table {}", r.table, r.column, r.table));
            continue;
        };
        let Some(c) = t.column(&r.column) else {
            problems.push(format!("--anonymize {}.{}: {} has no column `{}`", r.table, r.column, r.table, r.column));
            continue;
        };
        let strategy = match &r.strategy {
            Some(s) => s.clone(),
            None => {
                let picked = scan::judge(t, c, &[])
                    .map(|f| f.strategy)
                    .unwrap_or_else(|| if c.category == "S" { "redact".to_string() } else { String::new() });
                if picked.is_empty() {
                    problems.push(format!(
                        "--anonymize {}.{}: no strategy fits a column of type {} by its name; say one, e.g. `{}.{}=hash`",
                        r.table, r.column, c.data_type, r.table, r.column
                    ));
                    continue;
                }
                notes.push(format!(
                    "{}.{}: strategy `{picked}` (from the column's name and type; `{}.{}=STRATEGY` to choose)",
                    r.table, r.column, r.table, r.column
                ));
                picked
            }
        };
        by_table.entry(r.table.clone()).or_default().push(Rule {
            column: r.column.clone(),
            span: (0..0).into(),
            strategy,
            strategy_span: (0..0).into(),
            params: Vec::new(),
            paths: Vec::new(),
            plugin_params: Vec::new(),
            allow_collisions: false,
            key_per_column: None,
        });
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let key = match std::env::var("CONFITURE_ANON_KEY") {
        Ok(k) if !k.is_empty() => KeySetting::Env("CONFITURE_ANON_KEY".into(), (0..0).into()),
        _ => {
            notes.push(
                "CONFITURE_ANON_KEY is not set: the masking key is random for this run (masked values differ \
                 from run to run; set it for deterministic masking)"
                    .into(),
            );
            KeySetting::Random
        }
    };
    Ok(Profile {
        name: "command line".into(),
        source: None,
        key,
        key_per_column: false,
        batch_rows: 10_000,
        tables: by_table.into_iter().map(|(name, columns)| TableRules { name, span: (0..0).into(), columns }).collect(),
        warnings: Vec::new(),
    })
}

/// The copy units of the chosen tables, largest first (the order workers take them), each split
/// into ranges of about `range_rows` rows: by its integer key when it has one (a key range stays
/// exact when a resumed run reads a newer snapshot), else by ctid pages.
pub async fn units(
    session: &Session,
    tables: &Tables,
    chosen: &[String],
    masks: Option<&MaskPlan>,
    subsets: &BTreeMap<String, String>,
    range_rows: u64,
) -> Result<Vec<Unit>, confiture_engine::pg::PgError> {
    let mut out = Vec::new();
    for name in chosen {
        let Some(t) = tables.tables.get(name) else { continue };
        if t.kind != 'r' {
            continue;
        }
        let root = root_of(tables, name);
        let columns: Vec<String> = t.columns.iter().filter(|c| !c.generated).map(|c| c.name.clone()).collect();
        let masked: Vec<String> = masks
            .and_then(|m| m.table(name, &root))
            .map(|tp| tp.columns.iter().map(|c| c.column.clone()).collect())
            .unwrap_or_default();
        let rows = t.estimated_rows.max(0) as u64;
        let subset = subsets.get(&root).cloned();
        let mut unit = Unit {
            table: name.clone(),
            sql_name: t.sql_name(),
            columns,
            estimated_rows: rows,
            estimated_bytes: t.bytes.max(0) as u64,
            split: "whole".into(),
            ranges: vec![Range { no: 0, predicate: None, what: "all".into() }],
            subset: subset.clone(),
            masked,
        };
        if subset.is_some() {
            unit.split = "subset".into();
        } else if range_rows > 0 && rows > range_rows + range_rows / 2 {
            let n = rows.div_ceil(range_rows).min(10_000);
            let key = t.walking_key(&[]).filter(|k| {
                k.len() == 1
                    && t.column(&k[0]).is_some_and(|c| matches!(c.type_name.as_str(), "int2" | "int4" | "int8"))
            });
            if let Some(key) = key {
                let k = ident(&key[0]);
                let row = session
                    .client()
                    .query_one(&format!("SELECT min({k})::int8, max({k})::int8 FROM ONLY {}", t.sql_name()), &[])
                    .await?;
                if let (Some(lo), Some(hi)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
                    unit.split = format!("key {k}");
                    unit.ranges = key_ranges(&k, lo, hi, n);
                }
            } else if t.pages > 1 {
                unit.split = "ctid".into();
                unit.ranges = ctid_ranges(t.pages, n);
            }
        }
        out.push(unit);
    }
    out.sort_by(|a, b| b.estimated_bytes.cmp(&a.estimated_bytes).then(a.table.cmp(&b.table)));
    Ok(out)
}

/// `n` ranges over `lo..=hi`; the first and last are open so rows outside (a newer snapshot,
/// after a resume) still belong to exactly one.
fn key_ranges(k: &str, lo: i64, hi: i64, n: u64) -> Vec<Range> {
    let span = (i128::from(hi) - i128::from(lo) + 1).max(1);
    let n = (n as i128).min(span).max(1);
    let bound = |i: i128| (i128::from(lo) + span * i / n) as i64;
    (0..n)
        .map(|i| {
            let (a, b) = (bound(i), bound(i + 1));
            let (predicate, what) = match (i == 0, i == n - 1) {
                (true, true) => (None, "all".to_string()),
                (true, false) => (Some(format!("{k} < {b}")), format!("{k} < {b}")),
                (false, true) => (Some(format!("{k} >= {a}")), format!("{k} >= {a}")),
                (false, false) => (Some(format!("{k} >= {a} AND {k} < {b}")), format!("{k} {a}..{b}")),
            };
            Range { no: i as u32, predicate, what }
        })
        .collect()
}

/// `n` ranges of heap pages (TID range scans); the last is open-ended.
fn ctid_ranges(pages: i64, n: u64) -> Vec<Range> {
    let n = (n as i64).min(pages).max(1);
    let per = (pages + n - 1) / n;
    (0..n)
        .map(|i| {
            let (a, b) = (i * per, (i + 1) * per);
            let last = i == n - 1;
            let predicate = match (i == 0, last) {
                (true, true) => None,
                (true, false) => Some(format!("ctid < '({b},0)'::tid")),
                (false, true) => Some(format!("ctid >= '({a},0)'::tid")),
                (false, false) => Some(format!("ctid >= '({a},0)'::tid AND ctid < '({b},0)'::tid")),
            };
            let what = if last { format!("pages {a}..") } else { format!("pages {a}..{b}") };
            Range { no: i as u32, predicate, what }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_cover_everything_once() {
        let r = key_ranges("\"id\"", 1, 1000, 4);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].predicate.as_deref(), Some("\"id\" < 251"));
        assert_eq!(r[1].predicate.as_deref(), Some("\"id\" >= 251 AND \"id\" < 501"));
        assert_eq!(r[3].predicate.as_deref(), Some("\"id\" >= 751"));
        // Fewer keys than ranges.
        assert_eq!(key_ranges("k", 5, 6, 10).len(), 2);
        assert_eq!(key_ranges("k", 5, 5, 10)[0].predicate, None);
        // Extreme bounds do not overflow.
        assert_eq!(key_ranges("k", i64::MIN, i64::MAX, 3).len(), 3);
    }

    #[test]
    fn ctid_ranges_cover_every_page() {
        let r = ctid_ranges(10, 3);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].predicate.as_deref(), Some("ctid < '(4,0)'::tid"));
        assert_eq!(r[2].predicate.as_deref(), Some("ctid >= '(8,0)'::tid"));
        assert_eq!(ctid_ranges(1, 5).len(), 1);
    }
}
