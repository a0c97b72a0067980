//! reindex-without-concurrently

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `REINDEX` without `CONCURRENTLY`.
    ///
    /// ## Why is this bad?
    /// A plain `REINDEX` locks out writes to the table (and reads that would use the index) until
    /// the index is rebuilt. Since PostgreSQL 12, `REINDEX CONCURRENTLY` rebuilds without that.
    ///
    /// ## Example
    /// ```sql
    /// REINDEX INDEX orders_customer_id_idx;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:no-transaction
    /// REINDEX INDEX CONCURRENTLY orders_customer_id_idx;
    /// ```
    pub struct ReindexWithoutConcurrently {
        id: "reindex-without-concurrently",
        category: Locks,
        severity: Warning,
        summary: "REINDEX without CONCURRENTLY",
    }
}

impl Rule for ReindexWithoutConcurrently {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::ReindexStmt(r) = s.node else { return };
        let concurrently = r.params.iter().any(
            |p| matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently")),
        );
        if !concurrently {
            cx.report(
                s,
                -1,
                "REINDEX without CONCURRENTLY blocks writes to the table until the index is rebuilt",
                "use REINDEX … CONCURRENTLY, in a migration that starts with `-- confiture:no-transaction`",
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
            &ReindexWithoutConcurrently,
            &[
                ("REINDEX INDEX i;", 1),
                ("REINDEX TABLE t;", 1),
                ("REINDEX INDEX CONCURRENTLY i;", 0),
                ("REINDEX (CONCURRENTLY) TABLE t;", 0),
            ],
        );
    }
}
