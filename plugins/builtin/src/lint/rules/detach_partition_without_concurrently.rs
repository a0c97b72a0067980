//! detach-partition-without-concurrently

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … DETACH PARTITION` without `CONCURRENTLY`.
    ///
    /// ## Why is this bad?
    /// A plain detach takes an `ACCESS EXCLUSIVE` lock on the partitioned table: every query on it
    /// waits. Since PostgreSQL 14, `DETACH PARTITION … CONCURRENTLY` needs only `SHARE UPDATE
    /// EXCLUSIVE`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE events DETACH PARTITION events_2020;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:no-transaction
    /// ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;
    /// ```
    pub struct DetachPartitionWithoutConcurrently {
        id: "detach-partition-without-concurrently",
        category: Locks,
        severity: Warning,
        summary: "DETACH PARTITION without CONCURRENTLY",
    }
}

impl Rule for DetachPartitionWithoutConcurrently {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtDetachPartition) {
                continue;
            }
            let concurrent = matches!(cmd.def.as_ref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent);
            if concurrent {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                a.relation.as_ref().map_or(-1, |r| r.location),
                &t,
                format!("DETACH PARTITION takes an ACCESS EXCLUSIVE lock on {}: every query on it waits", t.shown()),
                "use DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+), outside a transaction",
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
            &DetachPartitionWithoutConcurrently,
            &[
                ("ALTER TABLE p DETACH PARTITION p1;", 1),
                ("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;", 0),
                ("ALTER TABLE p ADD COLUMN a int;", 0),
            ],
        );
    }
}
