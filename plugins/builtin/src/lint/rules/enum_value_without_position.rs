//! enum-value-without-position

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TYPE … ADD VALUE` without `BEFORE` or `AFTER`.
    ///
    /// ## Why is this bad?
    /// Enum values sort in declaration order, and a new value goes last: `ORDER BY status` and
    /// comparisons like `status < 'shipped'` change meaning unless you place it deliberately.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TYPE order_status ADD VALUE 'refunded';
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'delivered';
    /// ```
    pub struct EnumValueWithoutPosition {
        id: "enum-value-without-position",
        category: Destructive,
        severity: Info,
        summary: "enum value added without BEFORE/AFTER",
    }
}

impl Rule for EnumValueWithoutPosition {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterEnumStmt(e) = s.node else { return };
        if e.new_val.is_empty() || !e.old_val.is_empty() || !e.new_val_neighbor.is_empty() {
            return;
        }
        let ty = ast::names(&e.type_name).join(".");
        cx.report(
            s,
            -1,
            format!(
                "'{}' goes last in {ty}: ordering and comparisons on the enum put it after every other value",
                e.new_val
            ),
            "place it with BEFORE or AFTER an existing value",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &EnumValueWithoutPosition,
            &[
                ("ALTER TYPE s ADD VALUE 'x';", 1),
                ("ALTER TYPE s ADD VALUE 'x' AFTER 'y';", 0),
                ("ALTER TYPE s ADD VALUE IF NOT EXISTS 'x' BEFORE 'y';", 0),
                ("ALTER TYPE s RENAME VALUE 'a' TO 'b';", 0),
            ],
        );
    }
}
