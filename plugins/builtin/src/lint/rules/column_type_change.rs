//! column-type-change

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN … TYPE` on an existing table, unless the change is known not to
    /// rewrite it: widening a `varchar(n)` or making it unbounded, `varchar` ↔ `text`, more
    /// precision for a `numeric` with the same scale or for a time type, `cidr` → `inet`. The
    /// column's current type comes from the files linted (an earlier migration's CREATE TABLE) or,
    /// with `--database`, from the database; when neither knows it, the finding says it may rewrite.
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
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        let Some(table) = a.relation.as_ref().map(ast::rel) else { return };
        for cmd in ast::alter_cmds(a) {
            if ast::subtype(cmd) != Some(AlterTableType::AtAlterColumnType) {
                continue;
            }
            let Some(col) = ast::cmd_column(cmd) else { continue };
            let Some(new) = col.type_name.as_ref().map(|t| ast::canon(&ast::type_of(t))) else { continue };
            // The column's type now: from the files (CREATE TABLE, ADD COLUMN, an earlier
            // ALTER … TYPE), else from the database.
            let key = (table.clone(), cmd.name.clone());
            let old = cx
                .facts
                .column_types
                .get(&key)
                .map(ast::canon)
                .or_else(|| cx.scope.live.and_then(|l| l.column_types.get(&key)).map(|t| ast::canon_formatted(t)));
            // USING computes new values: always a rewrite.
            let using = col.raw_default.is_some();
            if !using && old.as_ref().is_some_and(|old| !ast::rewrites(old, &new)) {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            let message = match &old {
                Some(old) => format!(
                    "changing {} from {} to {} rewrites the table under an ACCESS EXCLUSIVE lock",
                    t.column(&cmd.name),
                    ast::display(old),
                    ast::display(&new)
                ),
                None => format!(
                    "changing {} to {} rewrites the table under an ACCESS EXCLUSIVE lock, unless it only widens a varchar or numeric",
                    t.column(&cmd.name),
                    ast::display(&new)
                ),
            };
            cx.report_lock(
                s,
                col.type_name.as_ref().map_or(-1, |t| t.location),
                &t,
                message,
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
                // The old type is unknown: it may rewrite.
                ("ALTER TABLE t ALTER COLUMN a TYPE bigint;", 1),
                ("ALTER TABLE t ALTER COLUMN a TYPE text;", 1),
                ("ALTER TABLE t ALTER COLUMN a TYPE varchar(10);", 1),
                // A table created in the same file is new.
                ("CREATE TABLE t (a int); ALTER TABLE t ALTER COLUMN a TYPE bigint;", 0),
            ],
        );
    }

    /// An earlier migration created the table: its column types are known.
    #[test]
    fn knows_the_old_type_from_earlier_files() {
        let create = "CREATE TABLE t (id bigint PRIMARY KEY, v varchar(10), n numeric(10,2), i int, s varchar(30));";
        let run = |alter: &str| {
            let inputs = vec![
                crate::lint::Input {
                    name: "db/migrations/001_t.up.sql".into(),
                    text: create.into(),
                    kind: crate::lint::FileKind::Migration,
                },
                crate::lint::Input {
                    name: "db/migrations/002_alter.up.sql".into(),
                    text: alter.into(),
                    kind: crate::lint::FileKind::Migration,
                },
            ];
            let r = crate::lint::lint(inputs, &crate::lint::Config::default(), None);
            r.findings.into_iter().filter(|f| f.rule == "column-type-change").map(|f| f.message).collect::<Vec<_>>()
        };
        assert!(run("ALTER TABLE t ALTER COLUMN v TYPE varchar(30);").is_empty());
        assert!(run("ALTER TABLE t ALTER COLUMN v TYPE text;").is_empty());
        assert!(run("ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2);").is_empty());
        let got = run("ALTER TABLE t ALTER COLUMN i TYPE text;");
        assert!(got[0].contains("t.i from integer to text rewrites"), "{got:?}");
        let got = run("ALTER TABLE t ALTER COLUMN s TYPE varchar(20);");
        assert!(got[0].contains("from varchar(30) to varchar(20)"), "{got:?}");
        assert_eq!(run("ALTER TABLE t ALTER COLUMN v TYPE varchar(30) USING upper(v);").len(), 1);
    }
}
