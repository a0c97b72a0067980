//! require-lock-timeout

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// In a migration, flags the first statement that takes a write-blocking lock on an existing
    /// table when no `SET lock_timeout` came before it in the file.
    ///
    /// ## Why is this bad?
    /// A DDL statement waiting for its lock (behind a long transaction) makes every later query on
    /// the table queue behind it: the table is effectively down until the wait ends. A
    /// `lock_timeout` turns the wait into a quick failure you can retry.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN note text;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// SET lock_timeout = '5s';
    /// ALTER TABLE orders ADD COLUMN note text;
    /// ```
    /// (`confiture migrate up --lock-timeout 5s` sets it for every migration.)
    pub struct RequireLockTimeout {
        id: "require-lock-timeout",
        category: Locks,
        severity: Warning,
        summary: "DDL on an existing table without a lock_timeout",
    }
}

impl Rule for RequireLockTimeout {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if !s.is_migration()
            || cx.facts.lock_timeout
            || cx.facts.locking_ddl_seen
            || cx.scope.runner_timeouts.lock_timeout
        {
            return;
        }
        let Some((lock, t)) = cx.scope.blocking_lock(s) else { return };
        cx.report_lock(
            s,
            -1,
            &t,
            format!("this takes {} on {} with no lock_timeout: while it waits, every query on the table queues behind it", lock.mode, t.shown()),
            "start the migration with SET lock_timeout = '5s', or set it for every migration: `migrate { lock-timeout \"5s\" }` in confiture.kdl",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RequireLockTimeout,
            &[
                ("ALTER TABLE t ADD COLUMN a int;", 1),
                ("ALTER TABLE t ADD COLUMN a int; ALTER TABLE t ADD COLUMN b int;", 1),
                ("SET lock_timeout = '5s'; ALTER TABLE t ADD COLUMN a int;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN b int;", 0),
                ("INSERT INTO t VALUES (1);", 0),
            ],
        );
        let f = findings(&RequireLockTimeout, "CREATE INDEX i ON t (a);");
        assert!(f[0].message.contains("takes SHARE on t"), "{}", f[0].message);
    }
}
