//! require-statement-timeout

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// In a migration, flags the first statement that takes a write-blocking lock on an existing
    /// table when no `SET statement_timeout` came before it in the file.
    ///
    /// ## Why is this bad?
    /// A statement that runs longer than expected (a rewrite of a table bigger than you thought)
    /// keeps its locks for as long as it runs. A `statement_timeout` bounds the damage.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// SET statement_timeout = '5min';
    /// ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);
    /// ```
    /// (`confiture migrate up --statement-timeout 5m` sets it for every migration.)
    pub struct RequireStatementTimeout {
        id: "require-statement-timeout",
        category: Locks,
        severity: Info,
        summary: "DDL on an existing table without a statement_timeout",
    }
}

impl Rule for RequireStatementTimeout {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if !s.is_migration()
            || cx.facts.statement_timeout
            || cx.facts.locking_ddl_seen
            || cx.scope.runner_timeouts.statement_timeout
        {
            return;
        }
        let Some((lock, t)) = cx.scope.blocking_lock(s) else { return };
        cx.report_lock(
            s,
            -1,
            &t,
            format!("this holds {} on {} for as long as it runs, with no statement_timeout", lock.mode, t.shown()),
            "start the migration with SET statement_timeout = '5min', or set it for every migration: `migrate { statement-timeout \"5m\" }` in confiture.kdl",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RequireStatementTimeout,
            &[
                ("ALTER TABLE t ADD COLUMN a int;", 1),
                ("SET statement_timeout = '1min'; ALTER TABLE t ADD COLUMN a int;", 0),
                ("CREATE TABLE t (a int); CREATE INDEX i ON t (a);", 0),
            ],
        );
    }
}
