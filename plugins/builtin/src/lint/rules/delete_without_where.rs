//! delete-without-where

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `DELETE` without `WHERE` in a migration.
    ///
    /// ## Why is this bad?
    /// It deletes every row of the table — usually a forgotten condition, and if not, `TRUNCATE`
    /// says it plainly.
    ///
    /// ## Example
    /// ```sql
    /// DELETE FROM sessions;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// DELETE FROM sessions WHERE expires_at < now();
    /// ```
    pub struct DeleteWithoutWhere {
        id: "delete-without-where",
        category: Destructive,
        severity: Warning,
        summary: "DELETE without WHERE in a migration",
    }
}

impl Rule for DeleteWithoutWhere {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::DeleteStmt(d) = s.node else { return };
        if !s.is_migration() || d.where_clause.is_some() {
            return;
        }
        let Some(t) = cx.existing(&d.relation) else { return };
        cx.report(
            s,
            d.relation.as_ref().map_or(-1, |r| r.location),
            format!("DELETE without WHERE deletes every row of {}", t.shown()),
            "add a WHERE clause, or use TRUNCATE if emptying the table is the point",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&DeleteWithoutWhere, &[("DELETE FROM t;", 1), ("DELETE FROM t WHERE a = 1;", 0)]);
    }
}
