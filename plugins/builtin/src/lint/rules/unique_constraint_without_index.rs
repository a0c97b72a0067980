//! unique-constraint-without-index

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ADD CONSTRAINT … UNIQUE (…)` on an existing table (rather than `UNIQUE USING INDEX`
    /// of an index built concurrently).
    ///
    /// ## Why is this bad?
    /// The constraint builds its unique index while holding an `ACCESS EXCLUSIVE` lock: no reads
    /// or writes until the index is built.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
    /// ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
    /// ```
    pub struct UniqueConstraintWithoutIndex {
        id: "unique-constraint-without-index",
        category: Locks,
        severity: Warning,
        summary: "UNIQUE constraint added to an existing table without USING INDEX",
    }
}

impl Rule for UniqueConstraintWithoutIndex {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            let Some(c) = ast::cmd_constraint(cmd) else { continue };
            if ast::subtype(cmd) != Some(AlterTableType::AtAddConstraint)
                || !ast::is(c, ConstrType::ConstrUnique)
                || !c.indexname.is_empty()
            {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                c.location,
                &t,
                format!("adding a UNIQUE constraint builds its index on {} under an ACCESS EXCLUSIVE lock", t.shown()),
                "build the index with CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX",
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
            &UniqueConstraintWithoutIndex,
            &[
                ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);", 1),
                ("ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u_idx;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);", 0),
            ],
        );
    }
}
