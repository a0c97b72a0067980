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

    // At the end: pg_dump writes CREATE TABLE, then ALTER TABLE ONLY … ADD CONSTRAINT … PRIMARY KEY.
    fn finish(&self, cx: &mut Cx<'_>) {
        for (table, at) in cx.facts.without_primary_key.clone() {
            cx.report_at(
                at,
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
                // pg_dump adds the key after the table.
                (
                    "CREATE TABLE public.t (id bigint NOT NULL);\nALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);",
                    0,
                ),
                ("CREATE TABLE t (id bigint NOT NULL);\nALTER TABLE t ADD CONSTRAINT t_id_key UNIQUE (id);", 1),
            ],
        );
    }
}
