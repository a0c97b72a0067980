//! adding-not-null-column-without-default

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN … NOT NULL` without a `DEFAULT` on an existing table.
    ///
    /// ## Why is this bad?
    /// Existing rows would get NULL in a NOT NULL column, so the statement fails as soon as the
    /// table has a row: it works on an empty development database and breaks in production.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ADD COLUMN status text NOT NULL;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active';
    /// ```
    pub struct AddingNotNullColumn {
        id: "adding-not-null-column-without-default",
        category: Locks,
        severity: Error,
        summary: "NOT NULL column without a default added to an existing table",
    }
}

impl Rule for AddingNotNullColumn {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for col in ast::added_columns(a) {
            let has = |t| ast::column_constraints(col).any(|c| ast::is(c, t));
            let not_null = col.is_not_null || has(ConstrType::ConstrNotnull) || has(ConstrType::ConstrPrimary);
            let filled = has(ConstrType::ConstrDefault)
                || has(ConstrType::ConstrIdentity)
                || has(ConstrType::ConstrGenerated)
                || col.type_name.as_ref().is_some_and(|t| ast::type_of(t).name.ends_with("serial"));
            if !not_null || filled {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                col.location,
                &t,
                format!("column {} is NOT NULL without a default: adding it fails if {} has any row", col.colname, t.shown()),
                "give it a DEFAULT (a constant default is instant since PostgreSQL 11), or add it nullable and backfill",
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
            &AddingNotNullColumn,
            &[
                ("ALTER TABLE t ADD COLUMN c int NOT NULL;", 1),
                ("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;", 0),
                ("ALTER TABLE t ADD COLUMN c int;", 0),
                ("ALTER TABLE t ADD COLUMN c bigint GENERATED ALWAYS AS IDENTITY NOT NULL;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN c int NOT NULL;", 0),
            ],
        );
    }
}
