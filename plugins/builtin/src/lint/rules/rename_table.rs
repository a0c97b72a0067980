//! rename-table

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … RENAME TO`.
    ///
    /// ## Why is this bad?
    /// Every client using the old name fails the moment the migration commits; code and schema
    /// cannot switch at the same instant.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE customers RENAME TO clients;
    /// ```
    ///
    /// ## Use instead
    /// Create the new table (or a view with the new name), move readers and writers over, and drop
    /// the old name in a later release.
    /// ```sql
    /// CREATE VIEW clients AS SELECT * FROM customers;
    /// ```
    pub struct RenameTable {
        id: "rename-table",
        category: Destructive,
        severity: Warning,
        summary: "renaming a table breaks clients using the old name",
    }
}

impl Rule for RenameTable {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::RenameStmt(r) = s.node else { return };
        if r.rename_type != ObjectType::ObjectTable as i32 {
            return;
        }
        let Some(t) = cx.existing(&r.relation) else { return };
        cx.report(
            s,
            r.relation.as_ref().map_or(-1, |r| r.location),
            format!("renaming {} to {} breaks every client still using the old name", t.shown(), r.newname),
            "add the new name alongside (a view), move clients over, and drop the old name in a later release",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RenameTable,
            &[
                ("ALTER TABLE a RENAME TO b;", 1),
                ("ALTER TABLE a RENAME COLUMN x TO y;", 0),
                ("CREATE TABLE a (x int); ALTER TABLE a RENAME TO b;", 0),
            ],
        );
    }
}
