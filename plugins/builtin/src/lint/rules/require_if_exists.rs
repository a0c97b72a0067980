//! require-if-exists

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Opt-in. Flags `DROP …`, `ALTER TABLE … DROP COLUMN` and `DROP CONSTRAINT` without
    /// `IF EXISTS` in migrations.
    ///
    /// ## Why is this bad?
    /// A migration that stopped half way or ran by hand fails on re-run. Teams that want every
    /// migration (and every `.down.sql`) re-runnable turn this rule on.
    ///
    /// ## Example
    /// ```sql
    /// DROP INDEX orders_legacy_idx;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// DROP INDEX IF EXISTS orders_legacy_idx;
    /// ```
    pub struct RequireIfExists {
        id: "require-if-exists",
        category: Transactions,
        severity: Off,
        summary: "DROP without IF EXISTS in a migration (opt-in)",
    }
}

impl Rule for RequireIfExists {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        if !s.is_migration() {
            return;
        }
        let what = match s.node {
            NodeEnum::DropStmt(d) if !d.missing_ok => "DROP",
            NodeEnum::AlterTableStmt(a) => {
                let drop = ast::alter_cmds(a).find(|c| {
                    matches!(ast::subtype(c), Some(AlterTableType::AtDropColumn | AlterTableType::AtDropConstraint))
                        && !c.missing_ok
                });
                match drop.and_then(ast::subtype) {
                    Some(AlterTableType::AtDropColumn) => "DROP COLUMN",
                    Some(_) => "DROP CONSTRAINT",
                    None => return,
                }
            }
            _ => return,
        };
        cx.report(
            s,
            -1,
            format!("{what} without IF EXISTS fails when the migration runs again"),
            format!("write {what} IF EXISTS"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RequireIfExists,
            &[
                ("DROP TABLE t;", 1),
                ("DROP TABLE IF EXISTS t;", 0),
                ("DROP INDEX CONCURRENTLY i;", 1),
                ("ALTER TABLE t DROP COLUMN a;", 1),
                ("ALTER TABLE t DROP COLUMN IF EXISTS a, DROP CONSTRAINT IF EXISTS c;", 0),
                ("ALTER TABLE t DROP CONSTRAINT c;", 1),
            ],
        );
    }
}
