//! prefer-identity

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `serial`, `bigserial` and `smallserial` columns.
    ///
    /// ## Why is this bad?
    /// `serial` is a shorthand for a sequence with a default: its permissions, ownership and
    /// `pg_dump` behaviour are separate from the column's, and anyone can insert their own values.
    /// Identity columns are the SQL standard, owned by the column and stricter.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE events (id bigserial PRIMARY KEY);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
    /// ```
    pub struct PreferIdentity {
        id: "prefer-identity",
        category: Types,
        severity: Warning,
        summary: "serial column instead of an identity column",
    }
}

impl Rule for PreferIdentity {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        for (table, col) in ast::defined_columns(s.node) {
            let Some(ty) = col.type_name.as_ref().map(ast::type_of) else { continue };
            if matches!(ty.name.as_str(), "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8") {
                cx.report(
                    s,
                    col.type_name.as_ref().map_or(col.location, |t| t.location),
                    format!(
                        "{table}.{} is {}, a sequence default rather than an identity column",
                        ast::column_name(s.node, col),
                        ty.name
                    ),
                    "use bigint GENERATED ALWAYS AS IDENTITY",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &PreferIdentity,
            &[
                ("CREATE TABLE t (id bigserial);", 1),
                ("CREATE TABLE t (id serial, n smallserial);", 2),
                ("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY);", 0),
            ],
        );
    }
}
