//! require-if-not-exists

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Opt-in. Flags `CREATE TABLE`, `CREATE INDEX`, `CREATE SCHEMA`, `CREATE SEQUENCE` and
    /// `CREATE EXTENSION` without `IF NOT EXISTS` in migrations.
    ///
    /// ## Why is this bad?
    /// A migration that stopped half way (outside a transaction) or was applied by hand fails on
    /// re-run. Teams that want every migration re-runnable turn this rule on.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE audit_log (id bigint PRIMARY KEY);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE IF NOT EXISTS audit_log (id bigint PRIMARY KEY);
    /// ```
    pub struct RequireIfNotExists {
        id: "require-if-not-exists",
        category: Transactions,
        severity: Off,
        summary: "CREATE without IF NOT EXISTS in a migration (opt-in)",
    }
}

impl Rule for RequireIfNotExists {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if !s.is_migration() {
            return;
        }
        let what = match s.node {
            NodeEnum::CreateStmt(c) if !c.if_not_exists => "CREATE TABLE",
            NodeEnum::IndexStmt(i) if !i.if_not_exists => "CREATE INDEX",
            NodeEnum::CreateSchemaStmt(c) if !c.if_not_exists => "CREATE SCHEMA",
            NodeEnum::CreateSeqStmt(c) if !c.if_not_exists => "CREATE SEQUENCE",
            NodeEnum::CreateExtensionStmt(c) if !c.if_not_exists => "CREATE EXTENSION",
            _ => return,
        };
        cx.report(
            s,
            -1,
            format!("{what} without IF NOT EXISTS fails when the migration runs again"),
            format!("write {what} IF NOT EXISTS"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RequireIfNotExists,
            &[
                ("CREATE TABLE t (a int);", 1),
                ("CREATE TABLE IF NOT EXISTS t (a int);", 0),
                ("CREATE INDEX i ON t (a); CREATE SCHEMA s;", 2),
                ("CREATE INDEX IF NOT EXISTS i ON t (a);", 0),
            ],
        );
    }
}
