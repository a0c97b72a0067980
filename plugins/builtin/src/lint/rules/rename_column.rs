//! rename-column

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … RENAME COLUMN`.
    ///
    /// ## Why is this bad?
    /// Queries that name the old column fail the moment the migration commits.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users RENAME COLUMN name TO full_name;
    /// ```
    ///
    /// ## Use instead
    /// Add the new column, write both, backfill, switch readers, then drop the old column later.
    /// ```sql
    /// ALTER TABLE users ADD COLUMN full_name text;
    /// ```
    pub struct RenameColumn {
        id: "rename-column",
        category: Destructive,
        severity: Warning,
        summary: "renaming a column breaks clients using the old name",
    }
}

impl Rule for RenameColumn {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::RenameStmt(r) = s.node else { return };
        if r.rename_type != ObjectType::ObjectColumn as i32 {
            return;
        }
        let Some(t) = cx.existing(&r.relation) else { return };
        cx.report(
            s,
            r.relation.as_ref().map_or(-1, |r| r.location),
            format!("renaming {} to {} breaks every query using the old name", t.column(&r.subname), r.newname),
            "add the new column, backfill and switch readers, then drop the old column in a later release",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&RenameColumn, &[("ALTER TABLE a RENAME COLUMN x TO y;", 1), ("ALTER TABLE a RENAME TO b;", 0)]);
    }
}
