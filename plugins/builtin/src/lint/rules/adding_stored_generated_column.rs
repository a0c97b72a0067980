//! adding-stored-generated-column

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN … GENERATED ALWAYS AS (…) STORED` on an existing table.
    ///
    /// ## Why is this bad?
    /// The value must be computed and stored for every existing row: the table is rewritten
    /// under an `ACCESS EXCLUSIVE` lock.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN total_cents bigint GENERATED ALWAYS AS (total * 100) STORED;
    /// ```
    ///
    /// ## Use instead
    /// Add a plain column with a trigger that fills it for new rows, backfill existing rows in
    /// batches, or compute the value in a view.
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN total_cents bigint;
    /// ```
    pub struct AddingStoredGeneratedColumn {
        id: "adding-stored-generated-column",
        category: Locks,
        severity: Warning,
        summary: "stored generated column added to an existing table",
    }
}

impl Rule for AddingStoredGeneratedColumn {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for col in ast::added_columns(a) {
            if !ast::column_constraints(col).any(|c| ast::is(c, ConstrType::ConstrGenerated)) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                col.location,
                &t,
                format!(
                    "adding stored generated column {} rewrites {} under an ACCESS EXCLUSIVE lock",
                    col.colname,
                    t.shown()
                ),
                "add a plain column, fill new rows with a trigger and backfill existing rows in batches",
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
            &AddingStoredGeneratedColumn,
            &[
                ("ALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) STORED;", 1),
                ("ALTER TABLE t ADD COLUMN b int;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) STORED;", 0),
            ],
        );
    }
}
