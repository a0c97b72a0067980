//! require-concurrent-index-deletion

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `DROP INDEX` without `CONCURRENTLY`.
    ///
    /// ## Why is this bad?
    /// A plain `DROP INDEX` takes an `ACCESS EXCLUSIVE` lock on the index's table: reads and writes
    /// wait, and so does everything queued behind them.
    ///
    /// ## Example
    /// ```sql
    /// DROP INDEX orders_customer_id_idx;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:no-transaction
    /// DROP INDEX CONCURRENTLY IF EXISTS orders_customer_id_idx;
    /// ```
    pub struct RequireConcurrentIndexDeletion {
        id: "require-concurrent-index-deletion",
        category: Locks,
        severity: Warning,
        summary: "DROP INDEX without CONCURRENTLY",
    }
}

impl Rule for RequireConcurrentIndexDeletion {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::DropStmt(d) = s.node else { return };
        if d.remove_type != ObjectType::ObjectIndex as i32 || d.concurrent {
            return;
        }
        for o in &d.objects {
            let Some(parts) = ast::dotted(o) else { continue };
            let name = ast::dotted_rel(&parts);
            // The lock is on the index's table; new if the index or its table is.
            let Some((t, known)) = cx.scope.existing_index(&name) else { continue };
            let on = if known { t.shown() } else { "its table".to_string() };
            cx.report_lock(
                s,
                -1,
                &t,
                format!("DROP INDEX {name} takes an ACCESS EXCLUSIVE lock on {on}: reads and writes wait"),
                "use DROP INDEX CONCURRENTLY, in a migration that starts with `-- confiture:no-transaction`",
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
            &RequireConcurrentIndexDeletion,
            &[
                ("DROP INDEX i;", 1),
                ("DROP INDEX i, j;", 2),
                ("DROP INDEX CONCURRENTLY i;", 0),
                ("DROP TABLE t;", 0),
                ("CREATE INDEX i ON t (a); DROP INDEX i;", 1),
                // The lock is on the table: new if the table is.
                ("CREATE TABLE t (a int); CREATE INDEX i ON t (a); DROP INDEX i;", 0),
            ],
        );
    }
}
