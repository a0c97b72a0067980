//! column-type-change

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN … TYPE` on an existing table, unless the new type is `text` or an
    /// unbounded `varchar`, which are binary-compatible widenings from the usual string types.
    ///
    /// ## Why is this bad?
    /// Most type changes rewrite the table and rebuild its indexes under an `ACCESS EXCLUSIVE`
    /// lock: no reads or writes for the duration.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);
    /// ```
    ///
    /// ## Use instead
    /// Add a new column, backfill it in batches, switch readers and writers to it, then drop the
    /// old column in a later release.
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN total_v2 numeric(12, 2);
    /// ```
    pub struct ColumnTypeChange {
        id: "column-type-change",
        category: Locks,
        severity: Warning,
        summary: "column type change that may rewrite an existing table",
    }
}

impl Rule for ColumnTypeChange {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtAlterColumnType) {
                continue;
            }
            let Some(col) = ast::cmd_column(cmd) else { continue };
            let Some(ty) = col.type_name.as_ref().map(ast::type_of) else { continue };
            if ty.name == "text" || (ty.name == "varchar" && ty.typmods.is_empty()) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                col.type_name.as_ref().map_or(-1, |t| t.location),
                &t,
                format!(
                    "changing {}.{} to {} can rewrite the table under an ACCESS EXCLUSIVE lock",
                    t.shown, cmd.name, ty.name
                ),
                "add a new column, backfill it in batches, switch to it, and drop the old one later",
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
            &ColumnTypeChange,
            &[
                ("ALTER TABLE t ALTER COLUMN a TYPE bigint;", 1),
                ("ALTER TABLE t ALTER COLUMN a TYPE text;", 0),
                ("ALTER TABLE t ALTER COLUMN a TYPE varchar;", 0),
                ("ALTER TABLE t ALTER COLUMN a TYPE varchar(10);", 1),
                ("CREATE TABLE t (a int); ALTER TABLE t ALTER COLUMN a TYPE bigint;", 0),
            ],
        );
    }
}
