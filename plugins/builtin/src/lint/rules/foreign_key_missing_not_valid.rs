//! foreign-key-missing-not-valid

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE … ADD FOREIGN KEY` without `NOT VALID` on an existing table.
    ///
    /// ## Why is this bad?
    /// Adding a validated foreign key checks every row while holding `SHARE ROW EXCLUSIVE` locks
    /// on both tables: writes to either wait for the whole scan.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
    /// ```
    pub struct ForeignKeyMissingNotValid {
        id: "foreign-key-missing-not-valid",
        category: Locks,
        severity: Warning,
        summary: "foreign key added to an existing table without NOT VALID",
    }
}

impl Rule for ForeignKeyMissingNotValid {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtAddConstraint) {
                continue;
            }
            let Some(c) = ast::cmd_constraint(cmd) else { continue };
            if !ast::is(c, ConstrType::ConstrForeign) || c.skip_validation {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            let referenced = c.pktable.as_ref().map(ast::rel).unwrap_or_default();
            cx.report_lock(
                s,
                c.location,
                &t,
                format!(
                    "adding a validated foreign key scans {} while holding SHARE ROW EXCLUSIVE locks on it and on {referenced}: writes to both wait",
                    t.shown()
                ),
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
            &ForeignKeyMissingNotValid,
            &[
                ("ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES c (id);", 1),
                ("ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES c (id) NOT VALID;", 0),
                ("ALTER TABLE o ADD FOREIGN KEY (c) REFERENCES c;", 1),
                ("CREATE TABLE o (c int); ALTER TABLE o ADD FOREIGN KEY (c) REFERENCES c;", 0),
            ],
        );
    }
}
