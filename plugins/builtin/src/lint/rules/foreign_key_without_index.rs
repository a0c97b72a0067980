//! foreign-key-without-index

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

impl Rule for ForeignKeyWithoutIndex {
    fn finish(&self, cx: &mut Cx<'_>) {
        let live = cx.scope.live;
        let mut missing = Vec::new();
        for (table, cols, at) in &cx.facts.foreign_keys {
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
                    && !cx.facts.dropped_indexes.contains(name)
            };
            let covered = cx.facts.indexed.get(table).is_some_and(|ix| ix.iter().any(serves))
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
