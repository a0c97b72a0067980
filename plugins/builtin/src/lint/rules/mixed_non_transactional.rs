//! mixed-non-transactional

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags a migration that mixes a statement that cannot run in a transaction (`CREATE INDEX
    /// CONCURRENTLY`, `VACUUM`, …) with other statements.
    ///
    /// ## Why is this bad?
    /// Such a migration runs statement by statement, so it is not atomic: if a later statement
    /// fails, the earlier ones stay applied and the migration is not recorded, and re-running it
    /// fails on what already exists.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
    /// CREATE INDEX CONCURRENTLY orders_shipped_at_idx ON orders (shipped_at);
    /// ```
    ///
    /// ## Use instead
    /// Two migrations: the `ALTER TABLE` in one, the index (alone, with
    /// `-- confiture:no-transaction`) in the next.
    /// ```sql
    /// -- confiture:no-transaction
    /// CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_shipped_at_idx ON orders (shipped_at);
    /// ```
    pub struct MixedNonTransactional {
        id: "mixed-non-transactional",
        category: Transactions,
        severity: Warning,
        summary: "non-transactional statement mixed with others in one migration",
    }
}

impl Rule for MixedNonTransactional {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if !s.is_migration() || matches!(s.node, NodeEnum::VariableSetStmt(_) | NodeEnum::TransactionStmt(_)) {
            return;
        }
        let first_clash = match s.non_transactional() {
            // The first non-transactional statement after transactional ones …
            Some(_) => cx.facts.transactional_in_file && cx.facts.non_transactional_in_file.is_none(),
            // … or the first transactional one after a non-transactional one.
            None => cx.facts.non_transactional_in_file.is_some() && !cx.facts.transactional_in_file,
        };
        if first_clash {
            cx.report(
                s,
                -1,
                "this migration mixes statements that cannot run in a transaction with others, so it is not atomic",
                "split it: statements that cannot run in a transaction go alone in their own migration",
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
            &MixedNonTransactional,
            &[
                ("ALTER TABLE t ADD COLUMN a int; CREATE INDEX CONCURRENTLY i ON t (a);", 1),
                (
                    "CREATE INDEX CONCURRENTLY i ON t (a); ALTER TABLE t ADD COLUMN a int; ALTER TABLE t ADD COLUMN b int;",
                    1,
                ),
                ("SET lock_timeout = '1s'; CREATE INDEX CONCURRENTLY i ON t (a);", 0),
                ("CREATE INDEX CONCURRENTLY i ON t (a); CREATE INDEX CONCURRENTLY j ON t (b);", 0),
            ],
        );
    }
}
