//! update-without-where

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `UPDATE` without `WHERE` in a migration.
    ///
    /// ## Why is this bad?
    /// It rewrites every row of the table in one transaction: long row locks, table bloat and a
    /// burst of WAL; and it is often a forgotten condition.
    ///
    /// ## Example
    /// ```sql
    /// UPDATE users SET newsletter = false;
    /// ```
    ///
    /// ## Use instead
    /// Update in batches with a condition, or say it is meant:
    /// ```sql
    /// UPDATE users SET newsletter = false WHERE id BETWEEN 1 AND 10000;
    /// ```
    pub struct UpdateWithoutWhere {
        id: "update-without-where",
        category: Destructive,
        severity: Warning,
        summary: "UPDATE without WHERE in a migration",
    }
}

impl Rule for UpdateWithoutWhere {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::UpdateStmt(u) = s.node else { return };
        if !s.is_migration() || u.where_clause.is_some() {
            return;
        }
        let Some(t) = cx.existing(&u.relation) else { return };
        cx.report(
            s,
            u.relation.as_ref().map_or(-1, |r| r.location),
            format!("UPDATE without WHERE rewrites every row of {} in one transaction", t.shown()),
            "add a WHERE clause, and update large tables in batches",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &UpdateWithoutWhere,
            &[
                ("UPDATE t SET a = 1;", 1),
                ("UPDATE t SET a = 1 WHERE id = 2;", 0),
                ("CREATE TABLE t (a int); UPDATE t SET a = 1;", 0),
            ],
        );
    }
}
