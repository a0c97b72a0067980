//! primary-key-without-index

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ADD PRIMARY KEY (…)` on an existing table (rather than `PRIMARY KEY USING INDEX` of an
    /// index built concurrently).
    ///
    /// ## Why is this bad?
    /// The primary key builds its unique index (and checks NOT NULL) while holding an `ACCESS
    /// EXCLUSIVE` lock: no reads or writes until it is done.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE events ADD PRIMARY KEY (id);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);
    /// ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;
    /// ```
    pub struct PrimaryKeyWithoutIndex {
        id: "primary-key-without-index",
        category: Locks,
        severity: Warning,
        summary: "primary key added to an existing table without USING INDEX",
    }
}

impl Rule for PrimaryKeyWithoutIndex {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            let Some(c) = ast::cmd_constraint(cmd) else { continue };
            if ast::subtype(cmd) != Some(AlterTableType::AtAddConstraint)
                || !ast::is(c, ConstrType::ConstrPrimary)
                || !c.indexname.is_empty()
            {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                c.location,
                &t,
                format!("adding a primary key builds its index on {} under an ACCESS EXCLUSIVE lock", t.shown()),
                "build a unique index CONCURRENTLY, then ADD CONSTRAINT … PRIMARY KEY USING INDEX",
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
            &PrimaryKeyWithoutIndex,
            &[
                ("ALTER TABLE t ADD PRIMARY KEY (id);", 1),
                ("ALTER TABLE t ADD CONSTRAINT p PRIMARY KEY USING INDEX i;", 0),
                ("CREATE TABLE t (id int); ALTER TABLE t ADD PRIMARY KEY (id);", 0),
            ],
        );
    }
}
