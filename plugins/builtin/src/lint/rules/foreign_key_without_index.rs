//! foreign-key-without-index

use std::collections::{HashMap, HashSet};

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags foreign keys whose columns are not the leading columns (in any order) of an index,
    /// primary key or unique constraint of the referencing table. It judges tables whose indexes
    /// it knows: those created in the files linted, and with `--database` those in the database
    /// (their existing indexes count).
    ///
    /// ## Why is this bad?
    /// Deleting or updating a referenced row makes PostgreSQL look up referencing rows; without an
    /// index that is a sequential scan of the referencing table, per row, under lock. Joins on the
    /// key are slow too.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers);
    /// CREATE INDEX orders_customer_id_idx ON orders (customer_id);
    /// ```
    pub struct ForeignKeyWithoutIndex {
        id: "foreign-key-without-index",
        category: Types,
        severity: Warning,
        summary: "foreign key columns without an index",
    }
}

/// What the files establish about keys and indexes.
#[derive(Clone, Default)]
struct Seen {
    /// Foreign keys: table, its columns, where.
    foreign_keys: Vec<(String, Vec<String>, At)>,
    /// Leading columns of non-partial indexes (with their names), primary keys and unique
    /// constraints, by table.
    indexed: HashMap<String, Vec<(String, Vec<String>)>>,
    /// Indexes dropped by the files (they no longer serve foreign keys).
    dropped: HashSet<String>,
}

impl Rule for ForeignKeyWithoutIndex {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let seen = cx.state::<Seen>();
        for (table, column, k) in ast::added_constraints(s.node) {
            // A constraint on a column names no key columns: it is about that column.
            let or_column = |cols: Vec<String>| match (cols.is_empty(), column) {
                (true, Some(c)) => vec![c.to_string()],
                _ => cols,
            };
            if ast::is(k, ConstrType::ConstrPrimary) || ast::is(k, ConstrType::ConstrUnique) {
                seen.indexed.entry(table).or_default().push((k.conname.clone(), or_column(ast::key_names(&k.keys))));
            } else if ast::is(k, ConstrType::ConstrForeign) {
                seen.foreign_keys.push((table, or_column(ast::key_names(&k.fk_attrs)), s.at()));
            }
        }
        match s.node {
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectIndex as i32 => {
                for o in &d.objects {
                    let Some(parts) = ast::dotted(o) else { continue };
                    let bare = parts.last().cloned().unwrap_or_default();
                    for list in seen.indexed.values_mut() {
                        list.retain(|(n, _)| *n != bare);
                    }
                    seen.dropped.insert(ast::dotted_rel(&parts));
                }
            }
            NodeEnum::IndexStmt(i) => {
                let Some(r) = &i.relation else { return };
                // A partial index serves only the queries its predicate matches; `WHERE col IS
                // NOT NULL` on its own columns still serves lookups by value.
                let columns = ast::index_columns(i);
                if i.where_clause.as_deref().is_none_or(|p| ast::only_excludes_nulls(p, &columns)) {
                    seen.indexed.entry(ast::rel(r)).or_default().push((i.idxname.clone(), columns));
                }
            }
            _ => {}
        }
    }

    fn finish(&self, cx: &mut Cx<'_>) {
        let live = cx.scope.live;
        let seen = std::mem::take(cx.state::<Seen>());
        let mut missing = Vec::new();
        for (table, cols, at) in &seen.foreign_keys {
            if cols.is_empty() {
                continue;
            }
            // Only tables whose indexes are all known: created in the files, or in the database.
            let in_files = cx.facts.created.contains_key(table);
            let in_database = live.is_some_and(|l| l.relations.contains_key(table));
            if !in_files && !in_database {
                continue;
            }
            // An index serves the key when its leading columns are the key's, in any order —
            // unless the files drop it.
            let serves = |(name, idx): &(String, Vec<String>)| {
                idx.len() >= cols.len()
                    && cols.iter().all(|c| idx[..cols.len()].contains(c))
                    && !seen.dropped.contains(name)
            };
            let covered = seen.indexed.get(table).is_some_and(|ix| ix.iter().any(serves))
                || live.and_then(|l| l.indexes.get(table)).is_some_and(|ix| ix.iter().any(serves));
            if !covered {
                missing.push((table.clone(), cols.join(", "), *at));
            }
        }
        for (table, cols, at) in missing {
            cx.report_at(
                at,
                format!("foreign key {table} ({cols}) has no index: deleting a referenced row scans {table}"),
                format!("CREATE INDEX ON {table} ({cols}), CONCURRENTLY if the table exists"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &ForeignKeyWithoutIndex,
            &[
                ("CREATE TABLE o (id bigint PRIMARY KEY, c bigint REFERENCES c);", 1),
                ("CREATE TABLE o (id bigint PRIMARY KEY, c bigint REFERENCES c); CREATE INDEX ON o (c);", 0),
                ("CREATE TABLE o (c bigint REFERENCES c, d int, PRIMARY KEY (c, d));", 0),
                ("CREATE TABLE o (a int, b int, FOREIGN KEY (a, b) REFERENCES x); CREATE INDEX ON o (b, a);", 0),
                ("CREATE TABLE o (a int, b int, FOREIGN KEY (a, b) REFERENCES x); CREATE INDEX ON o (b, c, a);", 1),
                ("CREATE TABLE o (c bigint REFERENCES c); CREATE INDEX ON o (c) WHERE c > 0;", 1),
                ("CREATE TABLE o (c bigint REFERENCES c); CREATE INDEX ON o (c) WHERE c IS NOT NULL;", 0),
                ("CREATE TABLE o (c bigint REFERENCES c, a date); CREATE INDEX ON o (c) WHERE a IS NOT NULL;", 1),
                ("CREATE TABLE o (c bigint REFERENCES c); CREATE INDEX o_c ON o (c); DROP INDEX o_c;", 1),
                // A table not created in the files: its indexes are unknown without --database.
                ("ALTER TABLE o ADD FOREIGN KEY (c) REFERENCES c NOT VALID;", 0),
                (
                    "CREATE TABLE o (id bigint PRIMARY KEY, c bigint);\nALTER TABLE o ADD FOREIGN KEY (c) REFERENCES c NOT VALID; CREATE INDEX CONCURRENTLY ON o (c, d);",
                    0,
                ),
            ],
        );
    }
}
