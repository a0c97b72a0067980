//! drop-table

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `DROP TABLE` in migrations and other SQL (not in schema files).
    ///
    /// ## Why is this bad?
    /// It deletes the table and all its rows, and breaks every client still using it. There is no
    /// undo short of a restore.
    ///
    /// ## Example
    /// ```sql
    /// DROP TABLE legacy_orders;
    /// ```
    ///
    /// ## Use instead
    /// Stop using the table first (deploy code that no longer reads or writes it), keep a backup,
    /// and say you meant it:
    /// ```sql
    /// -- confiture:ignore drop-table archived to s3://backups/legacy_orders.csv in release 42
    /// DROP TABLE legacy_orders;
    /// ```
    pub struct DropTable {
        id: "drop-table",
        category: Destructive,
        severity: Warning,
        summary: "DROP TABLE deletes data and breaks clients",
    }
}

impl Rule for DropTable {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::DropStmt(d) = s.node else { return };
        if s.kind == crate::lint::FileKind::Schema || d.remove_type != ObjectType::ObjectTable as i32 {
            return;
        }
        for o in &d.objects {
            let Some(parts) = ast::dotted(o) else { continue };
            let name = ast::dotted_rel(&parts);
            // A table this file created (or, with --database, one not there) holds nothing yet.
            let Some(t) = cx.existing_name(&name) else { continue };
            cx.report(
                s,
                -1,
                format!("DROP TABLE {} deletes the table and its rows; clients still using it break", t.shown()),
                "drop it only after no deployed code uses it, with a backup; add `-- confiture:ignore drop-table REASON` to confirm",
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
            &DropTable,
            &[
                ("DROP TABLE t;", 1),
                ("DROP TABLE IF EXISTS a, b;", 2),
                ("CREATE TABLE t (a int); DROP TABLE t;", 0),
                ("DROP VIEW v;", 0),
            ],
        );
    }
}
