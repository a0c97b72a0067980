//! constraint-missing-not-valid

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … ADD CONSTRAINT … CHECK (…)` without `NOT VALID` on an existing table.
    ///
    /// ## Why is this bad?
    /// Adding a validated CHECK constraint scans the whole table under an `ACCESS EXCLUSIVE`
    /// lock: nothing can read or write the table until every row is checked.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID;
    /// -- later (takes only SHARE UPDATE EXCLUSIVE; reads and writes continue):
    /// ALTER TABLE orders VALIDATE CONSTRAINT total_positive;
    /// ```
    pub struct ConstraintMissingNotValid {
        id: "constraint-missing-not-valid",
        category: Locks,
        severity: Warning,
        summary: "CHECK constraint added to an existing table without NOT VALID",
    }
}

impl Rule for ConstraintMissingNotValid {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtAddConstraint) {
                continue;
            }
            let Some(c) = ast::cmd_constraint(cmd) else { continue };
            if !ast::is(c, ConstrType::ConstrCheck) || c.skip_validation {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                c.location,
                &t,
                format!("adding a validated CHECK constraint scans {} under an ACCESS EXCLUSIVE lock", t.shown()),
                "add it NOT VALID, then run ALTER TABLE … VALIDATE CONSTRAINT in a later step",
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
            &ConstraintMissingNotValid,
            &[
                ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);", 1),
                ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;", 0),
                ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);", 0),
            ],
        );
    }
}
