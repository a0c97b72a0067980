//! require-concurrent-index-creation

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `CREATE INDEX` without `CONCURRENTLY` on a table that already exists.
    ///
    /// ## Why is this bad?
    /// A plain `CREATE INDEX` holds a `SHARE` lock on the table for the whole build: every
    /// `INSERT`, `UPDATE` and `DELETE` waits until the index is built, which on a large table takes
    /// minutes. `CONCURRENTLY` builds it while writes continue.
    ///
    /// ## Example
    /// ```sql
    /// CREATE INDEX orders_customer_id_idx ON orders (customer_id);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:no-transaction
    /// CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);
    /// ```
    pub struct RequireConcurrentIndexCreation {
        id: "require-concurrent-index-creation",
        category: Locks,
        severity: Warning,
        summary: "CREATE INDEX without CONCURRENTLY on an existing table",
    }
}

impl Rule for RequireConcurrentIndexCreation {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::IndexStmt(i) = s.node else { return };
        // CREATE INDEX … ON ONLY a partitioned table builds nothing: it is how one indexes a
        // partitioned table without locking it (then CONCURRENTLY per partition, and ATTACH).
        // (On a plain table, ON ONLY builds a whole index: only skip it when the table is, or may
        // be, partitioned.)
        let only = i.relation.as_ref().filter(|r| !r.inh).map(ast::rel);
        if i.concurrent || only.is_some_and(|t| cx.scope.partitioned(&t) || !cx.scope.is_known_table(&t)) {
            return;
        }
        let Some(t) = cx.existing(&i.relation) else { return };
        let loc = i.relation.as_ref().map_or(-1, |r| r.location);
        let help = if t.partitioned {
            format!(
                "a partitioned table cannot be indexed CONCURRENTLY: CREATE INDEX … ON ONLY {}, then CREATE INDEX CONCURRENTLY on each partition and ALTER INDEX … ATTACH PARTITION each one",
                t.name
            )
        } else {
            "use CREATE INDEX CONCURRENTLY, in a migration that starts with `-- confiture:no-transaction`".to_string()
        };
        cx.report_lock(
            s,
            loc,
            &t,
            format!("CREATE INDEX takes a SHARE lock on {}: writes wait until the index is built", t.shown()),
            help,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RequireConcurrentIndexCreation,
            &[
                ("CREATE INDEX i ON t (a);", 1),
                ("CREATE UNIQUE INDEX i ON s.t (a);", 1),
                ("CREATE INDEX CONCURRENTLY i ON t (a);", 0),
                ("CREATE TABLE t (a int); CREATE INDEX i ON t (a);", 0),
                ("CREATE TABLE public.t (a int); CREATE INDEX i ON t (a);", 0),
            ],
        );
        let f = findings(&RequireConcurrentIndexCreation, "CREATE INDEX i ON orders (a);");
        assert!(f[0].message.contains("SHARE lock on orders"), "{}", f[0].message);
        assert_eq!((f[0].line, f[0].column), (1, 19), "points at the table");
    }
}
