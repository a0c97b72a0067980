//! drop-column

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … DROP COLUMN` in migrations and other SQL.
    ///
    /// ## Why is this bad?
    /// The column's data is gone, and clients that still select or insert it fail (including
    /// `INSERT … VALUES` without a column list).
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users DROP COLUMN nickname;
    /// ```
    ///
    /// ## Use instead
    /// Deploy code that no longer uses the column, then drop it in a later release:
    /// ```sql
    /// -- confiture:ignore drop-column unused since release 41
    /// ALTER TABLE users DROP COLUMN nickname;
    /// ```
    pub struct DropColumn {
        id: "drop-column",
        category: Destructive,
        severity: Warning,
        summary: "DROP COLUMN deletes data and breaks clients",
    }
}

impl Rule for DropColumn {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        if s.kind == crate::lint::FileKind::Schema {
            return;
        }
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtDropColumn) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            // A column this file added — or, in a down migration, its up added — holds nothing
            // anyone relies on yet; removing it is the point.
            if cx.scope.added_here(&t.name, &cmd.name) {
                continue;
            }
            cx.report(
                s,
                a.relation.as_ref().map_or(-1, |r| r.location),
                format!("DROP COLUMN {} deletes its data; clients still using it break", t.column(&cmd.name)),
                "drop it in a release after the code stops using it; add `-- confiture:ignore drop-column REASON` to confirm",
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
            &DropColumn,
            &[
                ("ALTER TABLE t DROP COLUMN a;", 1),
                ("ALTER TABLE t DROP COLUMN a, DROP COLUMN b;", 2),
                ("CREATE TABLE t (a int); ALTER TABLE t DROP COLUMN a;", 0),
            ],
        );
    }
}
