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
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        use confiture_engine::pg_query::protobuf::ReindexObjectType as K;
        let NodeEnum::ReindexStmt(r) = s.node else { return };
        let concurrently = r.params.iter().any(
            |p| matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently")),
        );
        if concurrently || s.kind == crate::lint::FileKind::Schema {
            return;
        }
        let help = "use REINDEX … CONCURRENTLY, in a migration that starts with `-- confiture:no-transaction`";
        let location = r.relation.as_ref().map_or(-1, |r| r.location);
        match K::try_from(r.kind).ok() {
            Some(K::ReindexObjectTable) => {
                let Some(t) = cx.existing(&r.relation) else { return };
                cx.report_lock(
                    s,
                    location,
                    &t,
                    format!(
                        "REINDEX without CONCURRENTLY blocks writes to {} until its indexes are rebuilt",
                        t.shown()
                    ),
                    help,
                );
            }
            Some(K::ReindexObjectIndex) => {
                let Some(index) = r.relation.as_ref().map(ast::rel) else { return };
                // New if the index (or its table) is.
                let Some((t, known)) = cx.scope.existing_index(&index) else { return };
                let on = if known { t.shown() } else { "its table".to_string() };
                cx.report_lock(
                    s,
                    location,
                    &t,
                    format!("REINDEX INDEX {index} without CONCURRENTLY blocks writes to {on} until it is rebuilt"),
                    help,
                );
            }
            _ => cx.report(
                s,
                -1,
                "REINDEX without CONCURRENTLY blocks writes to each table until its indexes are rebuilt",
                help,
            ),
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
                ("REINDEX SCHEMA app;", 1),
                ("CREATE TABLE t (a int); CREATE INDEX i ON t (a); REINDEX INDEX i; REINDEX TABLE t;", 0),
            ],
        );
    }
}
