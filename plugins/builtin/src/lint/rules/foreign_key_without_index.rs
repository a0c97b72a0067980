//! foreign-key-without-index

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags foreign keys whose columns are not the leading columns of any index (or primary key
    /// or unique constraint) on the referencing table, among the files linted.
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
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn finish(&self, cx: &mut Cx<'_>) {
        let mut missing = Vec::new();
        for (table, cols, at) in &cx.facts.foreign_keys {
            if cols.is_empty() {
                continue;
            }
            let covered =
                cx.facts.indexed.get(table).is_some_and(|indexes| indexes.iter().any(|idx| idx.starts_with(cols)));
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
                ("CREATE TABLE o (a int, b int, FOREIGN KEY (a, b) REFERENCES x); CREATE INDEX ON o (b, a);", 1),
                ("ALTER TABLE o ADD FOREIGN KEY (c) REFERENCES c NOT VALID; CREATE INDEX CONCURRENTLY ON o (c, d);", 0),
            ],
        );
    }
}
