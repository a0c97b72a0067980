//! require-primary-key

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `CREATE TABLE` without a primary key (partitions inherit theirs and are skipped).
    ///
    /// ## Why is this bad?
    /// Without a primary key, rows cannot be addressed reliably: logical replication of updates and
    /// deletes fails, ORMs and tools misbehave, and duplicates creep in.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE page_views (url text, seen_at timestamptz);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE page_views (
    ///     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ///     url text,
    ///     seen_at timestamptz
    /// );
    /// ```
    pub struct RequirePrimaryKey {
        id: "require-primary-key",
        category: Types,
        severity: Warning,
        summary: "table without a primary key",
    }
}

impl Rule for RequirePrimaryKey {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::CreateStmt(c) = s.node else { return };
        if c.partbound.is_some()
            || c.of_typename.is_some()
            || c.relation.as_ref().is_some_and(|r| r.relpersistence == "t")
        {
            return;
        }
        let (cols, cons) = ast::table_elements(c);
        let has_pk = cons.iter().any(|k| ast::is(k, ConstrType::ConstrPrimary))
            || cols.iter().any(|col| ast::column_constraints(col).any(|k| ast::is(k, ConstrType::ConstrPrimary)));
        if !has_pk {
            let table = c.relation.as_ref().map(ast::rel).unwrap_or_default();
            cx.report(
                s,
                c.relation.as_ref().map_or(-1, |r| r.location),
                format!("table {table} has no primary key"),
                "add one, e.g. id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
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
            &RequirePrimaryKey,
            &[
                ("CREATE TABLE t (a int);", 1),
                ("CREATE TABLE t (a int PRIMARY KEY);", 0),
                ("CREATE TABLE t (a int, b int, PRIMARY KEY (a, b));", 0),
                ("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);", 0),
                ("CREATE TEMP TABLE x (a int);", 0),
            ],
        );
    }
}
