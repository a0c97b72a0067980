//! volatile-default-on-new-column

use super::prelude::*;

/// Functions whose value differs per row: a default calling one is evaluated for every row.
const VOLATILE: &[&str] = &[
    "random",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "nextval",
    "txid_current",
    "statement_timestamp",
];

declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN … DEFAULT` with a volatile expression (`random()`, `clock_timestamp()`,
    /// `gen_random_uuid()`, `nextval(…)`, …) on an existing table.
    ///
    /// ## Why is this bad?
    /// Since PostgreSQL 11 a constant (or stable, like `now()`) default is stored once and the
    /// column is added instantly. A volatile default must be computed per row, so the whole table is
    /// rewritten under an `ACCESS EXCLUSIVE` lock.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE users ADD COLUMN token uuid;
    /// ALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();  -- new rows only
    /// -- backfill existing rows in batches
    /// ```
    pub struct VolatileDefault {
        id: "volatile-default-on-new-column",
        category: Locks,
        severity: Warning,
        summary: "new column with a volatile default rewrites an existing table",
    }
}

impl Rule for VolatileDefault {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for col in ast::added_columns(a) {
            let volatile = ast::column_constraints(col)
                .filter(|c| ast::is(c, ConstrType::ConstrDefault))
                .filter_map(|c| c.raw_expr.as_deref())
                .flat_map(ast::functions_called)
                .find(|f| VOLATILE.contains(&f.as_str()));
            let Some(f) = volatile else { continue };
            let Some(t) = cx.existing(&a.relation) else { return };
            cx.report_lock(
                s,
                col.location,
                &t,
                format!(
                    "the default {f}() is volatile: adding column {} rewrites {} under an ACCESS EXCLUSIVE lock",
                    col.colname,
                    t.shown()
                ),
                "add the column without a default, SET DEFAULT for new rows, and backfill existing rows in batches",
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
            &VolatileDefault,
            &[
                ("ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();", 1),
                ("ALTER TABLE t ADD COLUMN r float DEFAULT random() * 10;", 1),
                ("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();", 0),
                ("ALTER TABLE t ADD COLUMN c int DEFAULT 0;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();", 0),
            ],
        );
    }
}
