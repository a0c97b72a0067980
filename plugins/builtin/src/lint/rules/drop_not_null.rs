//! drop-not-null

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN … DROP NOT NULL` on an existing table.
    ///
    /// ## Why is this bad?
    /// Clients and reports that rely on the column always having a value start seeing NULLs: a
    /// breaking change for readers that is easy to miss in review.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;
    /// ```
    ///
    /// ## Use instead
    /// Make sure every reader handles NULL first, then say so:
    /// ```sql
    /// -- confiture:ignore drop-not-null guest checkout; readers updated in release 40
    /// ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;
    /// ```
    pub struct DropNotNull {
        id: "drop-not-null",
        category: Destructive,
        severity: Info,
        summary: "DROP NOT NULL changes what readers can see",
    }
}

impl Rule for DropNotNull {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtDropNotNull) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report(
                s,
                a.relation.as_ref().map_or(-1, |r| r.location),
                format!("{} may now be NULL: readers that assume a value break", t.column(&cmd.name)),
                "update every reader to handle NULL first; confirm with `-- confiture:ignore drop-not-null REASON`",
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
            &DropNotNull,
            &[("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;", 1), ("ALTER TABLE t ALTER COLUMN a SET NOT NULL;", 0)],
        );
    }
}
