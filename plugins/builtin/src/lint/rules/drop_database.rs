//! drop-database

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `DROP DATABASE`.
    ///
    /// ## Why is this bad?
    /// It deletes a whole database. It cannot run in a transaction, and a migration of one database
    /// should not remove another.
    ///
    /// ## Example
    /// ```sql
    /// DROP DATABASE analytics;
    /// ```
    ///
    /// ## Use instead
    /// Do it by hand, outside migrations, after a backup.
    /// ```sql
    /// -- psql -c 'DROP DATABASE analytics' (after pg_dump)
    /// ```
    pub struct DropDatabase {
        id: "drop-database",
        category: Destructive,
        severity: Error,
        summary: "DROP DATABASE in SQL that is run automatically",
    }
}

impl Rule for DropDatabase {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::DropdbStmt(d) = s.node else { return };
        cx.report(
            s,
            -1,
            format!("DROP DATABASE {} deletes a whole database", d.dbname),
            "drop databases by hand, after a backup, not in migrations",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&DropDatabase, &[("DROP DATABASE x;", 1), ("DROP TABLE x;", 0)]);
    }
}
