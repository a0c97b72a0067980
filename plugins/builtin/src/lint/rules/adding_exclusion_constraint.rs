//! adding-exclusion-constraint

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … ADD CONSTRAINT … EXCLUDE` on an existing table.
    ///
    /// ## Why is this bad?
    /// An exclusion constraint builds its index and checks every row under an `ACCESS EXCLUSIVE`
    /// lock: no reads or writes until it is done. Unlike CHECK, foreign key and unique
    /// constraints, there is no online way to add one — no `NOT VALID`, no `USING INDEX`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
    /// ```
    ///
    /// ## Use instead
    /// Declare it when the table is created, or add it in a maintenance window with a
    /// `lock_timeout`, knowing how long the index build takes on a copy of the data.
    /// ```sql
    /// CREATE TABLE bookings (
    ///     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ///     room int NOT NULL,
    ///     during tstzrange NOT NULL,
    ///     EXCLUDE USING gist (room WITH =, during WITH &&)
    /// );
    /// ```
    pub struct AddingExclusionConstraint {
        id: "adding-exclusion-constraint",
        category: Locks,
        severity: Warning,
        summary: "EXCLUDE constraint added to an existing table",
    }
}

impl Rule for AddingExclusionConstraint {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            let Some(c) = ast::cmd_constraint(cmd) else { continue };
            if ast::subtype(cmd) != Some(AlterTableType::AtAddConstraint) || !ast::is(c, ConstrType::ConstrExclusion) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                c.location,
                &t,
                format!(
                    "adding an EXCLUDE constraint builds its index and checks every row of {} under an ACCESS EXCLUSIVE lock",
                    t.shown()
                ),
                "there is no online way to add one: declare it with the table, or add it in a maintenance window with a lock_timeout",
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
            &AddingExclusionConstraint,
            &[
                ("ALTER TABLE b ADD CONSTRAINT x EXCLUDE USING gist (room WITH =, during WITH &&);", 1),
                ("CREATE TABLE b (room int, during tstzrange, EXCLUDE USING gist (room WITH =, during WITH &&));", 0),
                (
                    "CREATE TABLE b (room int, during tstzrange); ALTER TABLE b ADD EXCLUDE USING gist (during WITH &&);",
                    0,
                ),
                ("ALTER TABLE b ADD CONSTRAINT u UNIQUE (room);", 0),
            ],
        );
    }
}
