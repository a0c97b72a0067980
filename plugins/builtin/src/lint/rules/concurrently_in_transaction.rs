//! concurrently-in-transaction

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags statements that cannot run in a transaction block (`CREATE INDEX CONCURRENTLY`,
    /// `VACUUM`, …) written after a `BEGIN` in the same file.
    ///
    /// ## Why is this bad?
    /// PostgreSQL refuses them inside a transaction block: the migration fails when it reaches
    /// the statement, after doing part of its work.
    ///
    /// ## Example
    /// ```sql
    /// BEGIN;
    /// CREATE INDEX CONCURRENTLY orders_placed_at_idx ON orders (placed_at);
    /// COMMIT;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:no-transaction
    /// CREATE INDEX CONCURRENTLY orders_placed_at_idx ON orders (placed_at);
    /// ```
    pub struct ConcurrentlyInTransaction {
        id: "concurrently-in-transaction",
        category: Locks,
        severity: Error,
        summary: "a statement that cannot run in a transaction, inside BEGIN…COMMIT",
    }
}

impl Rule for ConcurrentlyInTransaction {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if let Some(what) = s.non_transactional()
            && cx.facts.in_transaction
        {
            cx.report(
                s,
                -1,
                format!("{what} cannot run inside a transaction block, and this one is after BEGIN"),
                "move it to its own migration starting with `-- confiture:no-transaction`, outside BEGIN…COMMIT",
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
            &ConcurrentlyInTransaction,
            &[
                ("BEGIN; CREATE INDEX CONCURRENTLY i ON t (a); COMMIT;", 1),
                ("CREATE INDEX CONCURRENTLY i ON t (a);", 0),
                ("BEGIN; COMMIT; VACUUM t;", 0),
                ("BEGIN; VACUUM t;", 1),
                ("BEGIN; ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY; COMMIT;", 1),
            ],
        );
    }
}
