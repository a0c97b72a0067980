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

/// Tables created without a primary key, until one is added.
#[derive(Clone, Default)]
struct Keyless(Vec<(String, At)>);

impl Rule for RequirePrimaryKey {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let keyless = cx.state::<Keyless>();
        match s.node {
            NodeEnum::CreateStmt(c) => {
                let Some(r) = &c.relation else { return };
                let has_pk = ast::added_constraints(s.node).into_iter().any(|(_, _, k)| primary(k));
                // Partitions, typed tables and temporary tables are exempt.
                let exempt = c.partbound.is_some() || c.of_typename.is_some() || r.relpersistence == "t";
                let table = ast::rel(r);
                if has_pk {
                    // The same name created again with a key (after a DROP, or in a schema file
                    // after the migrations): it has one now.
                    keyless.0.retain(|(t, _)| *t != table);
                } else if !exempt {
                    let offset = usize::try_from(r.location).unwrap_or(s.offset);
                    keyless.0.push((table, At { offset, len: 1, ..s.at() }));
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                let Some(table) = a.relation.as_ref().map(ast::rel) else { return };
                let adds_pk = ast::added_constraints(s.node).into_iter().any(|(_, _, k)| primary(k));
                if adds_pk {
                    keyless.0.retain(|(t, _)| *t != table);
                }
            }
            _ => {}
        }
    }

    // At the end: pg_dump writes CREATE TABLE, then ALTER TABLE ONLY … ADD CONSTRAINT … PRIMARY KEY.
    fn finish(&self, cx: &mut Cx<'_>) {
        for (table, at) in std::mem::take(&mut cx.state::<Keyless>().0) {
            cx.report_at(
                at,
                format!("table {table} has no primary key"),
                "add one, e.g. id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            );
        }
    }
}

fn primary(k: &confiture_engine::pg_query::protobuf::Constraint) -> bool {
    ast::is(k, ConstrType::ConstrPrimary)
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
                // Dropped and created again, with a key.
                ("CREATE TABLE t (a text);\nDROP TABLE t;\nCREATE TABLE t (id bigint PRIMARY KEY, a text);", 0),
                ("ALTER TABLE t ADD COLUMN id bigint PRIMARY KEY;", 0),
            ],
        );
    }
}
