//! refresh-materialized-view-without-concurrently

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` on an existing view.
    ///
    /// ## Why is this bad?
    /// A plain refresh holds an `ACCESS EXCLUSIVE` lock on the view: every query reading it waits
    /// until the refresh is done. `CONCURRENTLY` (which needs a unique index on the view) lets reads
    /// continue.
    ///
    /// ## Example
    /// ```sql
    /// REFRESH MATERIALIZED VIEW sales_by_day;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY sales_by_day;
    /// ```
    pub struct RefreshMatviewWithoutConcurrently {
        id: "refresh-materialized-view-without-concurrently",
        category: Locks,
        severity: Info,
        summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks readers",
    }
}

impl Rule for RefreshMatviewWithoutConcurrently {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::RefreshMatViewStmt(r) = s.node else { return };
        if r.concurrent {
            return;
        }
        let Some(t) = cx.existing(&r.relation) else { return };
        cx.report_lock(
            s,
            r.relation.as_ref().map_or(-1, |r| r.location),
            &t,
            format!("REFRESH MATERIALIZED VIEW takes an ACCESS EXCLUSIVE lock on {}: readers wait", t.shown()),
            "use REFRESH MATERIALIZED VIEW CONCURRENTLY (the view needs a unique index)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &RefreshMatviewWithoutConcurrently,
            &[("REFRESH MATERIALIZED VIEW m;", 1), ("REFRESH MATERIALIZED VIEW CONCURRENTLY m;", 0)],
        );
    }
}
