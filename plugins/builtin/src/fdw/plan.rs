//! The plan: OLD's and NEW's tables (read by `catalog::tables`) and the mapping turned into, per
//! NEW table, the columns it gets and the SQL over OLD that computes them. Everything that would
//! lose data or fail half way is refused here, all at once, before anything is written: a NEW
//! column that is NOT NULL with no default and no source, an OLD column or table that reaches
//! nothing on NEW and is not dropped by name, an expression OLD rejects, a type that cannot be
//! cast, a table with no primary key (or a NEW key that does not come from OLD's).

use std::collections::{BTreeMap, BTreeSet};

use confiture_engine::ExitCode;
use confiture_engine::pg::{PgError, Session};
use confiture_engine::stage::StageError;
use serde::{Deserialize, Serialize};

use super::mapping::{Mapping, TableMap};
use crate::catalog::model::{ident, qname};
use crate::catalog::tables::{Table, Tables};

/// On OLD: the change log, the capture and refusal functions.
pub const CAPTURE_SCHEMA: &str = "confiture_capture";
/// On NEW: the run's state, and the change log of a cutover's reverse capture.
pub const STATE_SCHEMA: &str = "confiture_cutover";
/// On NEW: OLD's tables as foreign tables (one schema per OLD schema, this prefix).
pub const FOREIGN_PREFIX: &str = "confiture_old_";

/// Schemas that are confiture's own, on either side.
fn ours(schema: &str) -> bool {
    schema == CAPTURE_SCHEMA || schema == STATE_SCHEMA || schema.starts_with(FOREIGN_PREFIX)
}

/// How a table's rows get to NEW in the bulk copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// COPY from OLD (the mapping as SQL there) into COPY on NEW, in the run's snapshot.
    #[default]
    Copy,
    /// `INSERT … SELECT` on NEW from the foreign table.
    Fdw,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ColumnPlan {
    pub new: String,
    /// The mapping as written (an OLD column name, or SQL).
    pub from: String,
    /// What OLD computes: the column or expression, cast to NEW's type where OLD has that type.
    pub select: String,
    /// `same`, `renamed`, `computed`.
    pub how: String,
    /// The plain OLD column, for `same` and `renamed`.
    pub old_column: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TablePlan {
    pub old: String,
    pub old_sql: String,
    pub old_partitioned: bool,
    pub new: String,
    pub new_sql: String,
    pub columns: Vec<ColumnPlan>,
    /// NEW's key columns, each with the OLD column it comes from.
    pub key: Vec<(String, String)>,
    /// OLD's key (primary key or a unique index over NOT NULL columns).
    pub old_key: Vec<String>,
    /// NEW columns left to their default (or NULL).
    pub defaulted: Vec<String>,
    pub estimated_rows: u64,
    pub via: Via,
    /// OLD's key is one integer column (ranges and narrowing by key).
    pub int_key: bool,
    /// NEW has an identity column among those filled (`OVERRIDING SYSTEM VALUE`).
    pub identity: bool,
}

impl TablePlan {
    /// `FROM [ONLY] old o`.
    pub fn from_old(&self) -> String {
        format!("FROM {}{} o", if self.old_partitioned { "" } else { "ONLY " }, self.old_sql)
    }

    /// The SELECT on OLD that yields NEW's rows.
    pub fn select_on_old(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| c.select.as_str()).collect();
        format!("SELECT {} {}", cols.join(", "), self.from_old())
    }

    /// NEW's filled columns, quoted, in order.
    pub fn new_columns(&self) -> String {
        self.columns.iter().map(|c| ident(&c.new)).collect::<Vec<_>>().join(", ")
    }

    /// NEW's key columns, quoted.
    pub fn new_key(&self) -> String {
        self.key.iter().map(|(n, _)| ident(n)).collect::<Vec<_>>().join(", ")
    }

    /// The foreign table on NEW for OLD's table.
    pub fn foreign_sql(&self) -> String {
        let (schema, name) = self.old.split_once('.').unwrap_or(("public", &self.old));
        qname(&format!("{FOREIGN_PREFIX}{schema}"), name)
    }

    pub fn summary(&self) -> TableSummary {
        TableSummary {
            old: self.old.clone(),
            new: self.new.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| match c.how.as_str() {
                    "same" => c.new.clone(),
                    _ => format!("{} ← {}", c.new, c.from),
                })
                .collect(),
            key: self.key.iter().map(|(n, _)| n.clone()).collect(),
            defaulted: self.defaulted.clone(),
            estimated_rows: self.estimated_rows,
            via: self.via,
        }
    }
}

/// One NEW table of the plan, for reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableSummary {
    pub old: String,
    pub new: String,
    /// `name` (same name) or `name ← source`.
    pub columns: Vec<String>,
    pub key: Vec<String>,
    pub defaulted: Vec<String>,
    pub estimated_rows: u64,
    pub via: Via,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plan {
    pub tables: Vec<TablePlan>,
    /// `table.column` and `table` dropped on purpose.
    pub dropped: Vec<String>,
    /// NEW tables no OLD table fills.
    pub unfilled: Vec<String>,
    pub notes: Vec<String>,
}

impl Plan {
    /// The OLD tables the plan reads, each once, in order.
    pub fn old_tables(&self) -> Vec<&TablePlan> {
        let mut seen = BTreeSet::new();
        self.tables.iter().filter(|t| seen.insert(t.old.clone())).collect()
    }

    /// A digest of what the plan does (a resumed run must do the same).
    pub fn digest(&self) -> String {
        super::mapping::digest(serde_json::to_string(&self.tables).unwrap_or_default().as_bytes())
    }
}

fn top_level(tables: &Tables) -> BTreeMap<&str, &Table> {
    tables
        .tables
        .iter()
        .filter(|(_, t)| t.partition_of.is_none() && !ours(&t.schema))
        .map(|(k, t)| (k.as_str(), t))
        .collect()
}

/// The words of an expression that could be column names.
fn words(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in expr.chars() {
        if ch == '"' {
            if quoted {
                out.insert(std::mem::take(&mut cur));
            }
            quoted = !quoted;
        } else if quoted || ch.is_alphanumeric() || ch == '_' {
            cur.push(if quoted { ch } else { ch.to_ascii_lowercase() });
        } else if !cur.is_empty() {
            out.insert(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.insert(cur);
    }
    out
}

const INTEGERS: [&str; 3] = ["int2", "int4", "int8"];

/// Plan the migration; `old` is a session on OLD (expressions and casts are checked there).
pub async fn plan(
    old_tables: &Tables,
    new_tables: &Tables,
    mapping: &Mapping,
    old: &Session,
    small_rows: u64,
) -> Result<Plan, StageError> {
    let olds = top_level(old_tables);
    let news = top_level(new_tables);
    let mut problems: Vec<String> = Vec::new();
    let mut plan = Plan::default();

    // Which OLD table fills which NEW table.
    let mut maps: Vec<TableMap> = Vec::new();
    for m in &mapping.tables {
        if !olds.contains_key(m.old.as_str()) {
            problems.push(format!("the mapping names OLD table {}, which OLD does not have", m.old));
            continue;
        }
        if !news.contains_key(m.new.as_str()) {
            problems.push(format!("the mapping fills NEW table {}, which NEW does not have", m.new));
            continue;
        }
        if maps.iter().any(|x| x.new == m.new) {
            problems
                .push(format!("NEW table {} is filled twice in the mapping (merged tables are not supported)", m.new));
            continue;
        }
        maps.push(m.clone());
    }
    for name in news.keys() {
        if maps.iter().any(|m| m.new == *name) {
            continue;
        }
        if olds.contains_key(name) && !mapping.drop_tables.iter().any(|d| d == name) {
            maps.push(TableMap { old: name.to_string(), new: name.to_string(), ..TableMap::default() });
        } else {
            plan.unfilled.push(name.to_string());
        }
    }
    for d in &mapping.drop_tables {
        if !olds.contains_key(d.as_str()) {
            problems.push(format!("the mapping drops OLD table {d}, which OLD does not have"));
        } else if maps.iter().any(|m| m.old == *d) {
            problems.push(format!("OLD table {d} is both dropped and mapped"));
        } else {
            plan.dropped.push(d.clone());
        }
    }
    for name in olds.keys() {
        if !maps.iter().any(|m| m.old == *name) && !mapping.drop_tables.iter().any(|d| d == name) {
            problems.push(format!(
                "OLD table {name} has no table on NEW: map it (`table \"{name}\" to=\"…\"`) or drop it (`drop-table \"{name}\"`)"
            ));
        }
    }

    // Columns, keys, checks on OLD.
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut dropped_cols: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &maps {
        let (Some(ot), Some(nt)) = (olds.get(m.old.as_str()), news.get(m.new.as_str())) else { continue };
        let used = used.entry(m.old.clone()).or_default();
        let dropped = dropped_cols.entry(m.old.clone()).or_default();
        for d in &m.drop {
            if ot.column(d).is_none() {
                problems.push(format!("the mapping drops {}.{d}, which OLD does not have", m.old));
            }
            dropped.insert(d.clone());
        }
        for (n, _) in &m.columns {
            match nt.column(n) {
                None => problems.push(format!("the mapping fills {}.{n}, which NEW does not have", m.new)),
                Some(c) if c.generated => {
                    problems.push(format!("the mapping fills {}.{n}, a generated column (NEW computes it)", m.new))
                }
                Some(_) => {}
            }
        }
        let mut columns = Vec::new();
        let mut defaulted = Vec::new();
        let mut identity = false;
        for nc in nt.columns.iter().filter(|c| !c.generated) {
            let explicit = m.columns.iter().find(|(n, _)| *n == nc.name).map(|(_, f)| f.clone());
            let from = match explicit {
                Some(f) => f,
                None if !m.only_mapped && ot.column(&nc.name).is_some() && !dropped.contains(&nc.name) => {
                    nc.name.clone()
                }
                None => {
                    if nc.not_null && !nc.has_default && !nc.identity {
                        problems.push(format!(
                            "NEW column {}.{} is NOT NULL with no default, and nothing on OLD fills it: map it \
                             (`column \"{}\" from=\"…\"`) or give it a default",
                            m.new, nc.name, nc.name
                        ));
                    } else {
                        defaulted.push(nc.name.clone());
                    }
                    continue;
                }
            };
            identity |= nc.identity;
            let plain = ot.column(&from).filter(|c| !c.generated || from == nc.name);
            let (how, expr, old_column, old_type) = match plain {
                Some(oc) => {
                    used.insert(oc.name.clone());
                    let how = if oc.name == nc.name { "same" } else { "renamed" };
                    (how, format!("o.{}", ident(&oc.name)), Some(oc.name.clone()), Some(oc.data_type.clone()))
                }
                None => {
                    for w in words(&from) {
                        if ot.column(&w).is_some() {
                            used.insert(w);
                        }
                    }
                    ("computed", format!("({from})"), None, None)
                }
            };
            // The expression as OLD sees it; cast to NEW's type when OLD knows that type and
            // the types differ, so both sides print the same text.
            let probe = format!("SELECT {expr} {} LIMIT 0", from_old(ot));
            let stmt = match old.client().prepare(&probe).await {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!(
                        "{}.{} ← `{from}`: OLD rejects it: {}",
                        m.new,
                        nc.name,
                        confiture_engine::pg::describe(&e)
                    ));
                    continue;
                }
            };
            let got = stmt.columns().first().map(|c| c.type_().name().to_string()).unwrap_or_default();
            let same_type = old_type.as_deref() == Some(nc.data_type.as_str()) || got == nc.type_name && !nc.array;
            let known: Option<String> = old
                .client()
                .query_one("SELECT to_regtype($1)::text", &[&nc.data_type])
                .await
                .map_err(PgError::from)?
                .get(0);
            let select = if same_type {
                expr.clone()
            } else if known.is_some() {
                let cast = format!("CAST({expr} AS {})", nc.data_type);
                if let Err(e) = old.client().prepare(&format!("SELECT {cast} {} LIMIT 0", from_old(ot))).await {
                    problems.push(format!(
                        "{}.{} ← `{from}`: {got} cannot be cast to {}: {}",
                        m.new,
                        nc.name,
                        nc.data_type,
                        confiture_engine::pg::describe(&e)
                    ));
                    continue;
                }
                cast
            } else {
                plan.notes.push(format!(
                    "{}.{}: OLD has no type {}; its values are read as text and NEW parses them",
                    m.new, nc.name, nc.data_type
                ));
                expr.clone()
            };
            columns.push(ColumnPlan { new: nc.name.clone(), from, select, how: how.into(), old_column });
        }
        let old_key = ot.walking_key(&[]);
        if old_key.is_none() {
            problems.push(format!("OLD table {} has no primary key (or unique index over NOT NULL columns)", m.old));
        }
        let new_pk = nt.primary_key.clone();
        if new_pk.is_none() {
            problems.push(format!("NEW table {} has no primary key", m.new));
        }
        let (Some(old_key), Some(new_pk)) = (old_key, new_pk) else { continue };
        let mut key = Vec::new();
        for k in &new_pk {
            match columns.iter().find(|c| c.new == *k).and_then(|c| c.old_column.clone()) {
                Some(oc) => key.push((k.clone(), oc)),
                None => problems.push(format!(
                    "NEW table {}'s key column {k} must come straight from an OLD column of {}'s key ({})",
                    m.new,
                    m.old,
                    old_key.join(", ")
                )),
            }
        }
        let from_key: BTreeSet<&String> = key.iter().map(|(_, o)| o).collect();
        if key.len() == new_pk.len() && from_key != old_key.iter().collect() {
            problems.push(format!(
                "NEW table {}'s key ({}) must come from OLD table {}'s key ({})",
                m.new,
                new_pk.join(", "),
                m.old,
                old_key.join(", ")
            ));
        }
        let int_key =
            old_key.len() == 1 && ot.column(&old_key[0]).is_some_and(|c| INTEGERS.contains(&c.type_name.as_str()));
        let estimated_rows = old_tables
            .tables
            .values()
            .filter(|t| t.qualified() == m.old || t.partition_of.as_deref() == Some(m.old.as_str()))
            .map(|t| t.estimated_rows.max(0) as u64)
            .sum::<u64>();
        plan.tables.push(TablePlan {
            old: m.old.clone(),
            old_sql: ot.sql_name(),
            old_partitioned: ot.kind == 'p',
            new: m.new.clone(),
            new_sql: nt.sql_name(),
            columns,
            key,
            old_key,
            defaulted,
            estimated_rows,
            via: if estimated_rows < small_rows && ot.bytes < 16 << 20 { Via::Fdw } else { Via::Copy },
            int_key,
            identity,
        });
    }
    for (table, cols) in &used {
        let Some(ot) = olds.get(table.as_str()) else { continue };
        let dropped = dropped_cols.get(table).cloned().unwrap_or_default();
        for c in ot.columns.iter().filter(|c| !c.generated) {
            if dropped.contains(&c.name) {
                plan.dropped.push(format!("{table}.{}", c.name));
            } else if !cols.contains(&c.name) {
                problems.push(format!(
                    "OLD column {table}.{} reaches no NEW column: map it (`column \"…\" from=\"{}\"`) or drop it \
                     (`drop \"{}\"` in `table \"{table}\"`)",
                    c.name, c.name, c.name
                ));
            }
        }
    }
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        return Err(StageError::new(
            ExitCode::Config,
            format!(
                "the migration cannot be planned ({} problems); nothing was written:\n{}",
                problems.len(),
                list.join("\n")
            ),
        )
        .with_field("refused", "plan"));
    }
    plan.tables.sort_by(|a, b| a.new.cmp(&b.new));
    Ok(plan)
}

fn from_old(t: &Table) -> String {
    format!("FROM {}{} o", if t.kind == 'p' { "" } else { "ONLY " }, t.sql_name())
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_of_expressions() {
        let w = super::words("first_name || ' ' || \"Last Name\" || upper(nick)");
        assert!(w.contains("first_name") && w.contains("Last Name") && w.contains("nick") && w.contains("upper"));
    }
}
