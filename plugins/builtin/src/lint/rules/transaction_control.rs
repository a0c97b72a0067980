//! transaction-control

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `BEGIN`, `COMMIT`, `ROLLBACK` and `SAVEPOINT` in migrations.
    ///
    /// ## Why is this bad?
    /// confiture runs each migration in its own transaction together with its tracking row; a
    /// `COMMIT` inside would commit half a migration and leave it unrecorded. `confiture migrate`
    /// refuses such files.
    ///
    /// ## Example
    /// ```sql
    /// BEGIN;
    /// ALTER TABLE users ADD COLUMN bio text;
    /// COMMIT;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE users ADD COLUMN bio text;
    /// ```
    pub struct TransactionControl {
        id: "transaction-control",
        category: Transactions,
        severity: Error,
        summary: "BEGIN/COMMIT inside a migration",
    }
}

impl Rule for TransactionControl {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if s.is_migration() && matches!(s.node, NodeEnum::TransactionStmt(_)) {
            cx.report(
                s,
                -1,
                "transaction control inside a migration: confiture already runs each migration in its own transaction",
                "remove it; for statements that cannot run in a transaction, start the file with `-- confiture:no-transaction`",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&TransactionControl, &[("BEGIN; SELECT 1; COMMIT;", 2), ("SAVEPOINT a;", 1), ("SELECT 1;", 0)]);
    }
}
