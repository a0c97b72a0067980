//! prefer-text-over-varchar

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `varchar(n)` columns.
    ///
    /// ## Why is this bad?
    /// In PostgreSQL `varchar(n)` is stored exactly like `text`; the length limit only adds a check,
    /// and raising it later takes an `ACCESS EXCLUSIVE` lock. A CHECK constraint expresses the limit
    /// and can be changed with `NOT VALID`.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE users (email varchar(255));
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE users (email text CHECK (length(email) <= 255));
    /// ```
    pub struct PreferTextOverVarchar {
        id: "prefer-text-over-varchar",
        category: Types,
        severity: Info,
        summary: "varchar(n) instead of text with a CHECK",
    }
}

impl Rule for PreferTextOverVarchar {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let banned = |ty: &ast::Type| {
            (ty.name == "varchar" && !ty.typmods.is_empty()).then(|| format!("varchar({})", ty.typmods[0]))
        };
        super::report_types(
            s,
            cx,
            banned,
            "stored like text, harder to widen",
            "use text, with CHECK (length(col) <= n) if the limit matters",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &PreferTextOverVarchar,
            &[
                ("CREATE TABLE t (a varchar(10));", 1),
                ("CREATE TABLE t (a varchar, b text);", 0),
                ("ALTER TABLE t ADD COLUMN a character varying(5);", 1),
            ],
        );
    }
}
