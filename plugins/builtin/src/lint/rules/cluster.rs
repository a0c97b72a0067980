//! cluster

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `CLUSTER`.
    ///
    /// ## Why is this bad?
    /// `CLUSTER` rewrites the table in index order while holding an `ACCESS EXCLUSIVE` lock: no reads
    /// or writes until it finishes.
    ///
    /// ## Example
    /// ```sql
    /// CLUSTER events USING events_created_at_idx;
    /// ```
    ///
    /// ## Use instead
    /// Use `pg_repack --order-by`, which reorders online, or accept the order you have.
    /// ```sql
    /// -- pg_repack --table events --order-by created_at
    /// ```
    pub struct Cluster {
        id: "cluster",
        category: Locks,
        severity: Warning,
        summary: "CLUSTER locks and rewrites the table",
    }
}

impl Rule for Cluster {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::ClusterStmt(c) = s.node else { return };
        if s.kind == crate::lint::FileKind::Schema {
            return;
        }
        match &c.relation {
            Some(_) => {
                // A table this file created is empty: nothing to rewrite.
                let Some(t) = cx.existing(&c.relation) else { return };
                cx.report_lock(
                    s,
                    c.relation.as_ref().map_or(-1, |r| r.location),
                    &t,
                    format!("CLUSTER rewrites {} under an ACCESS EXCLUSIVE lock", t.shown()),
                    "use pg_repack --order-by to reorder a table online",
                );
            }
            None => cx.report(
                s,
                -1,
                "CLUSTER rewrites every clustered table under an ACCESS EXCLUSIVE lock",
                "use pg_repack --order-by to reorder a table online",
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
            &Cluster,
            &[
                ("CLUSTER t USING i;", 1),
                ("CLUSTER;", 1),
                ("VACUUM t;", 0),
                ("CREATE TABLE t (a int); CREATE INDEX i ON t (a); CLUSTER t USING i;", 0),
            ],
        );
    }
}
