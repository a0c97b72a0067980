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
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::VacuumStmt(v) = s.node else { return };
        let full = v
            .options
            .iter()
            .any(|o| matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("full")));
        if !v.is_vacuumcmd || !full || s.kind == crate::lint::FileKind::Schema {
            return;
        }
        let help = "use plain VACUUM, or pg_repack to shrink a table without long locks";
        if v.rels.is_empty() {
            cx.report(s, -1, "VACUUM FULL rewrites every table of the database under ACCESS EXCLUSIVE locks", help);
        }
        for rel in &v.rels {
            let Some(NodeEnum::VacuumRelation(r)) = rel.node.as_ref() else { continue };
            let Some(t) = cx.existing(&r.relation) else { continue };
            cx.report_lock(
                s,
                r.relation.as_ref().map_or(-1, |r| r.location),
                &t,
                format!("VACUUM FULL rewrites {} under an ACCESS EXCLUSIVE lock", t.shown()),
                help,
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
            &[
                ("VACUUM FULL t;", 1),
                ("VACUUM (FULL, ANALYZE) t, u;", 2),
                ("VACUUM FULL;", 1),
                ("VACUUM t;", 0),
                ("ANALYZE t;", 0),
                ("CREATE TABLE t (a int); VACUUM FULL t;", 0),
            ],
        );
    }
}
