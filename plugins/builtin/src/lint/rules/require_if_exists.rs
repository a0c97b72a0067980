//! require-if-exists

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Opt-in. Flags `DROP …` without `IF EXISTS` in migrations.
    ///
    /// ## Why is this bad?
    /// A migration that stopped half way or ran by hand fails on re-run. Teams that want every
    /// migration (and every `.down.sql`) re-runnable turn this rule on.
    ///
    /// ## Example
    /// ```sql
    /// DROP INDEX orders_legacy_idx;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// DROP INDEX IF EXISTS orders_legacy_idx;
    /// ```
    pub struct RequireIfExists {
        id: "require-if-exists",
        category: Transactions,
        severity: Off,
        summary: "DROP without IF EXISTS in a migration (opt-in)",
    }
}

impl Rule for RequireIfExists {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::DropStmt(d) = s.node else { return };
        if s.is_migration() && !d.missing_ok {
            cx.report(s, -1, "DROP without IF EXISTS fails when the migration runs again", "write DROP … IF EXISTS");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RequireIfExists,
            &[("DROP TABLE t;", 1), ("DROP TABLE IF EXISTS t;", 0), ("DROP INDEX CONCURRENTLY i;", 1)],
        );
    }
}
