//! require-if-not-exists

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Opt-in. Flags, in migrations, `CREATE TABLE`, `INDEX`, `SCHEMA`, `SEQUENCE`, `EXTENSION`,
    /// `… AS` and `ALTER TABLE … ADD COLUMN` without `IF NOT EXISTS`, and `CREATE VIEW`,
    /// `FUNCTION` and `TRIGGER` without `OR REPLACE`. (`CREATE TYPE`, `DOMAIN` and `POLICY` have
    /// neither form.)
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
        summary: "CREATE without IF NOT EXISTS or OR REPLACE in a migration (opt-in)",
    }
}

impl Rule for RequireIfNotExists {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if !s.is_migration() {
            return;
        }
        const INE: &str = "IF NOT EXISTS";
        const OR_REPLACE: &str = "OR REPLACE";
        let (what, missing, fix) = match s.node {
            NodeEnum::CreateStmt(c) if !c.if_not_exists => ("CREATE TABLE", INE, "CREATE TABLE IF NOT EXISTS"),
            NodeEnum::IndexStmt(i) if !i.if_not_exists => ("CREATE INDEX", INE, "CREATE INDEX IF NOT EXISTS"),
            NodeEnum::CreateSchemaStmt(c) if !c.if_not_exists => ("CREATE SCHEMA", INE, "CREATE SCHEMA IF NOT EXISTS"),
            NodeEnum::CreateSeqStmt(c) if !c.if_not_exists => ("CREATE SEQUENCE", INE, "CREATE SEQUENCE IF NOT EXISTS"),
            NodeEnum::CreateExtensionStmt(c) if !c.if_not_exists => {
                ("CREATE EXTENSION", INE, "CREATE EXTENSION IF NOT EXISTS")
            }
            NodeEnum::CreateTableAsStmt(c) if !c.if_not_exists => ("CREATE … AS", INE, "CREATE … IF NOT EXISTS … AS"),
            NodeEnum::ViewStmt(v) if !v.replace => ("CREATE VIEW", OR_REPLACE, "CREATE OR REPLACE VIEW"),
            NodeEnum::CreateFunctionStmt(f) if !f.replace => {
                ("CREATE FUNCTION", OR_REPLACE, "CREATE OR REPLACE FUNCTION")
            }
            NodeEnum::CreateTrigStmt(t) if !t.replace => ("CREATE TRIGGER", OR_REPLACE, "CREATE OR REPLACE TRIGGER"),
            NodeEnum::AlterTableStmt(a)
                if ast::alter_cmds(a)
                    .any(|c| ast::subtype(c) == Some(AlterTableType::AtAddColumn) && !c.missing_ok) =>
            {
                ("ADD COLUMN", INE, "ADD COLUMN IF NOT EXISTS")
            }
            _ => return,
        };
        cx.report(
            s,
            -1,
            format!("{what} without {missing} fails when the migration runs again"),
            format!("write {fix}"),
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
                ("CREATE VIEW v AS SELECT 1; CREATE OR REPLACE VIEW w AS SELECT 1;", 1),
                ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';", 1),
                ("ALTER TABLE t ADD COLUMN b int; ALTER TABLE t ADD COLUMN IF NOT EXISTS c int;", 1),
            ],
        );
    }
}
