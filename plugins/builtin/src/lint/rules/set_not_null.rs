//! set-not-null

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … ALTER COLUMN … SET NOT NULL` on an existing table.
    ///
    /// ## Why is this bad?
    /// PostgreSQL checks every row for NULLs while holding an `ACCESS EXCLUSIVE` lock: no reads or
    /// writes until the scan ends. Since PostgreSQL 12 a valid `CHECK (col IS NOT NULL)` constraint
    /// lets it skip the scan.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ALTER COLUMN email SET NOT NULL;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
    /// ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
    /// ALTER TABLE users ALTER COLUMN email SET NOT NULL;   -- no scan: the constraint proves it
    /// ALTER TABLE users DROP CONSTRAINT users_email_not_null;
    /// ```
    pub struct SetNotNull {
        id: "set-not-null",
        category: Locks,
        severity: Warning,
        summary: "SET NOT NULL on a column of an existing table",
    }
}

impl Rule for SetNotNull {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtSetNotNull) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                a.relation.as_ref().map_or(-1, |r| r.location),
                &t,
                format!("SET NOT NULL on {} scans the table under an ACCESS EXCLUSIVE lock", t.column(&cmd.name)),
                "first add CHECK (col IS NOT NULL) NOT VALID and VALIDATE it; SET NOT NULL then skips the scan",
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
            &SetNotNull,
            &[
                ("ALTER TABLE t ALTER COLUMN a SET NOT NULL;", 1),
                ("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ALTER COLUMN a SET NOT NULL;", 0),
            ],
        );
    }
}
