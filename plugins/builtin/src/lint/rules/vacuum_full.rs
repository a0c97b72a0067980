//! vacuum-full

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `VACUUM FULL`.
    ///
    /// ## Why is this bad?
    /// `VACUUM FULL` rewrites the table into a new file while holding an `ACCESS EXCLUSIVE` lock,
    /// and needs disk for a full second copy. Plain `VACUUM` (and autovacuum) reclaims space for
    /// reuse without blocking.
    ///
    /// ## Example
    /// ```sql
    /// VACUUM FULL events;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// VACUUM (ANALYZE) events;
    /// -- to give space back to the OS without long locks, use pg_repack
    /// ```
    pub struct VacuumFull {
        id: "vacuum-full",
        category: Locks,
        severity: Warning,
        summary: "VACUUM FULL locks and rewrites the table",
    }
}

impl Rule for VacuumFull {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::VacuumStmt(v) = s.node else { return };
        let full = v
            .options
            .iter()
            .any(|o| matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("full")));
        if v.is_vacuumcmd && full {
            cx.report(
                s,
                -1,
                "VACUUM FULL rewrites each table under an ACCESS EXCLUSIVE lock",
                "use plain VACUUM, or pg_repack to shrink a table without long locks",
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
            &VacuumFull,
            &[("VACUUM FULL t;", 1), ("VACUUM (FULL, ANALYZE) t;", 1), ("VACUUM t;", 0), ("ANALYZE t;", 0)],
        );
    }
}
