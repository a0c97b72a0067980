//! truncate-cascade

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `TRUNCATE … CASCADE`.
    ///
    /// ## Why is this bad?
    /// `CASCADE` also empties every table with a foreign key to the truncated ones, recursively:
    /// the statement deletes far more than it names.
    ///
    /// ## Example
    /// ```sql
    /// TRUNCATE customers CASCADE;
    /// ```
    ///
    /// ## Use instead
    /// Name every table you mean to empty.
    /// ```sql
    /// TRUNCATE order_items, orders, customers;
    /// ```
    pub struct TruncateCascade {
        id: "truncate-cascade",
        category: Destructive,
        severity: Error,
        summary: "TRUNCATE … CASCADE empties tables it does not name",
    }
}

impl Rule for TruncateCascade {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::TruncateStmt(t) = s.node else { return };
        if t.behavior == confiture_engine::pg_query::protobuf::DropBehavior::DropCascade as i32 {
            cx.report(
                s,
                -1,
                "TRUNCATE … CASCADE also empties every table that references these, recursively",
                "list every table to empty explicitly and drop CASCADE",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&TruncateCascade, &[("TRUNCATE t CASCADE;", 1), ("TRUNCATE t;", 0)]);
    }
}
