//! drop-schema

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `DROP SCHEMA`.
    ///
    /// ## Why is this bad?
    /// With `CASCADE` it deletes every table, view and function in the schema; without it, it fails
    /// as soon as the schema holds anything. Either way it is rarely what a migration should do.
    ///
    /// ## Example
    /// ```sql
    /// DROP SCHEMA reporting CASCADE;
    /// ```
    ///
    /// ## Use instead
    /// Drop the objects you mean to drop, one by one, so the migration says what it deletes.
    /// ```sql
    /// DROP VIEW reporting.daily_sales;
    /// ```
    pub struct DropSchema {
        id: "drop-schema",
        category: Destructive,
        severity: Warning,
        summary: "DROP SCHEMA deletes everything in it",
    }
}

impl Rule for DropSchema {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::DropStmt(d) = s.node else { return };
        if s.kind == crate::lint::FileKind::Schema || d.remove_type != ObjectType::ObjectSchema as i32 {
            return;
        }
        let cascade = d.behavior == confiture_engine::pg_query::protobuf::DropBehavior::DropCascade as i32;
        for o in &d.objects {
            let name = ast::dotted(o).map(|p| p.join(".")).unwrap_or_default();
            cx.report(
                s,
                -1,
                format!("DROP SCHEMA {name}{} deletes everything in the schema", if cascade { " CASCADE" } else { "" }),
                "drop the objects you mean to drop one by one, so the migration says what it deletes",
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
            &DropSchema,
            &[("DROP SCHEMA s CASCADE;", 1), ("DROP SCHEMA IF EXISTS a, b;", 2), ("DROP TABLE t;", 0)],
        );
    }
}
