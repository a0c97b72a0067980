//! `subset`: the rows a sync keeps when some tables are given conditions.
//!
//! - A table with a condition keeps the rows that match it.
//! - A table is *restricted* when it has a condition or a foreign key to a restricted table
//!   (an order's items go with the orders kept); other tables are copied whole, so every
//!   reference into them holds.
//! - Upwards: the rows a kept row references in a restricted table are kept too, through cycles
//!   and self-references, until nothing changes.
//! - Downwards: a restricted table without a condition of its own keeps the rows that reference
//!   kept rows; with `include-children #true`, a table with a condition keeps those too.
//!
//! Rows are identified by `(tableoid, ctid)`, which one snapshot keeps stable; every query runs
//! in the sync's exported snapshot, and the workers copy the kept rows of each table by ctid in
//! the same snapshot. The kept row ids are held in memory (about 24 bytes a row).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use confiture_engine::ExitCode;
use confiture_engine::pg::{self, PgError, Session};
use confiture_engine::stage::StageError;

use super::Subset;
use super::plan::root_of;
use crate::catalog::model::ident;
use crate::catalog::tables::{ForeignKey, Tables};

type RowId = (i64, String);

/// The outcome: for each copied table (a partition, or a plain table) the ctids to copy, and
/// for each restricted table why.
#[derive(Default)]
pub struct Kept {
    /// `schema.table` of a copied table → its kept ctids.
    pub ctids: BTreeMap<String, Vec<String>>,
    /// Restricted tables (`schema.table`, partitioned ones by their own name) → their condition,
    /// or `referenced`.
    pub restricted: BTreeMap<String, String>,
}

impl Kept {
    /// The ctids as a PostgreSQL array literal, for `set_config` (a bind parameter).
    pub fn array(ctids: &[String]) -> String {
        let mut s = String::with_capacity(ctids.len() * 12 + 2);
        s.push('{');
        for (i, c) in ctids.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('"');
            s.push_str(c);
            s.push('"');
        }
        s.push('}');
        s
    }
}

/// Which chosen tables are restricted, and why.
pub fn restricted(tables: &Tables, chosen: &[String], subset: &Subset) -> BTreeMap<String, String> {
    let roots: BTreeSet<String> = chosen.iter().map(|n| root_of(tables, n)).collect();
    let mut out: BTreeMap<String, String> = subset.tables.iter().cloned().collect();
    loop {
        let mut grew = false;
        for r in &roots {
            if out.contains_key(r) {
                continue;
            }
            if let Some(t) = tables.tables.get(r)
                && t.foreign_keys.iter().any(|fk| out.contains_key(&fk.references) && roots.contains(&fk.references))
            {
                out.insert(r.clone(), "referenced".into());
                grew = true;
            }
        }
        if !grew {
            return out;
        }
    }
}

/// Compute the kept rows, in the snapshot `session` is in.
pub async fn compute(
    session: &Session,
    tables: &Tables,
    chosen: &[String],
    subset: &Subset,
) -> Result<Kept, StageError> {
    let restricted = restricted(tables, chosen, subset);
    let from = |name: &str| {
        let t = &tables.tables[name];
        if t.kind == 'p' { t.sql_name() } else { format!("ONLY {}", t.sql_name()) }
    };
    // Foreign keys between restricted tables: (child, fk).
    let edges: Vec<(String, ForeignKey)> = restricted
        .keys()
        .filter_map(|c| tables.tables.get(c).map(|t| (c, t)))
        .flat_map(|(c, t)| {
            t.foreign_keys
                .iter()
                .filter(|fk| restricted.contains_key(&fk.references))
                .map(move |fk| (c.clone(), fk.clone()))
        })
        .collect();
    let own: HashMap<&str, &str> = subset.tables.iter().map(|(t, c)| (t.as_str(), c.as_str())).collect();
    let mut kept: HashMap<String, HashSet<RowId>> = HashMap::new();
    let mut delta: BTreeMap<String, Vec<RowId>> = BTreeMap::new();
    for (table, cond) in &subset.tables {
        if !restricted.contains_key(table) {
            continue;
        }
        let rows = session
            .client()
            .query(&format!("SELECT t.tableoid::int8, t.ctid::text FROM {} t WHERE ({cond})", from(table)), &[])
            .await
            .map_err(|e| {
                StageError::new(
                    ExitCode::Config,
                    format!(
                        "subset: the condition on {table} fails in the source: {}; nothing was copied",
                        pg::describe(&e)
                    ),
                )
                .with_field("condition", cond.clone())
            })?;
        let set = kept.entry(table.clone()).or_default();
        let d = delta.entry(table.clone()).or_default();
        for r in rows {
            let id: RowId = (r.get(0), r.get(1));
            if set.insert(id.clone()) {
                d.push(id);
            }
        }
    }
    while let Some(table) = delta.keys().next().cloned() {
        let d = delta.remove(&table).unwrap_or_default();
        for chunk in d.chunks(20_000) {
            let oids: Vec<i64> = chunk.iter().map(|r| r.0).collect();
            let ctids: Vec<String> = chunk.iter().map(|r| r.1.clone()).collect();
            for (child, fk) in &edges {
                // Upwards: what the kept rows of `table` reference.
                let up = child == &table;
                // Downwards: the rows referencing kept rows of `table`.
                let down = fk.references == table && (!own.contains_key(child.as_str()) || subset.include_children);
                let directions = [
                    (up, child.as_str(), "c", fk.references.as_str(), "p"),
                    (down, fk.references.as_str(), "p", child.as_str(), "c"),
                ];
                for (go, from_t, known, to_t, wanted) in directions {
                    if !go {
                        continue;
                    }
                    let pairs: Vec<String> = fk
                        .columns
                        .iter()
                        .zip(&fk.referenced_columns)
                        .map(|(c, p)| format!("c.{} = p.{}", ident(c), ident(p)))
                        .collect();
                    let sql = format!(
                        "SELECT DISTINCT {wanted}.tableoid::int8, {wanted}.ctid::text \
                         FROM unnest($1::int8[], $2::text[]) AS k(o, t) \
                         JOIN {} {known} ON {known}.tableoid = k.o::oid AND {known}.ctid = k.t::tid \
                         JOIN {} {wanted} ON {}",
                        from(from_t),
                        from(to_t),
                        pairs.join(" AND ")
                    );
                    let rows = session.client().query(&sql, &[&oids, &ctids]).await.map_err(PgError::from)?;
                    let set = kept.entry(to_t.to_string()).or_default();
                    for r in rows {
                        let id: RowId = (r.get(0), r.get(1));
                        if set.insert(id.clone()) {
                            delta.entry(to_t.to_string()).or_default().push(id);
                        }
                    }
                }
            }
        }
    }
    // By copied table: partitions by their oid.
    let by_oid: HashMap<i64, String> = tables.tables.values().map(|t| (i64::from(t.oid), t.qualified())).collect();
    let mut out = Kept { restricted: restricted.clone(), ..Kept::default() };
    for name in chosen {
        if tables.tables.get(name).is_some_and(|t| t.kind == 'r') && restricted.contains_key(&root_of(tables, name)) {
            out.ctids.insert(name.clone(), Vec::new());
        }
    }
    for (_, set) in kept {
        for (oid, ctid) in set {
            if let Some(name) = by_oid.get(&oid)
                && let Some(v) = out.ctids.get_mut(name)
            {
                v.push(ctid);
            }
        }
    }
    for v in out.ctids.values_mut() {
        v.sort();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ctid_arrays_are_quoted() {
        assert_eq!(super::Kept::array(&["(0,1)".into(), "(3,12)".into()]), "{\"(0,1)\",\"(3,12)\"}");
        assert_eq!(super::Kept::array(&[]), "{}");
    }
}
