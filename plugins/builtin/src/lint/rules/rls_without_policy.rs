//! rls-without-policy

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags tables on which row-level security is enabled when no `CREATE POLICY` for them appears
    /// among the files linted.
    ///
    /// ## Why is this bad?
    /// With RLS enabled and no policy, every non-owner query sees no rows and every write fails:
    /// "default deny". If that is not the intent, the application breaks; if it is, say so.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
    /// CREATE POLICY documents_owner ON documents USING (owner_id = current_setting('app.user_id')::bigint);
    /// ```
    pub struct RlsWithoutPolicy {
        id: "rls-without-policy",
        category: Security,
        severity: Warning,
        summary: "row-level security enabled but no policy",
    }
}

impl Rule for RlsWithoutPolicy {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn finish(&self, cx: &mut Cx<'_>) {
        let missing: Vec<_> = cx.facts.rls.iter().filter(|(t, _)| !cx.facts.policies.contains(t)).cloned().collect();
        for (table, at) in missing {
            cx.report_at(
                at,
                format!("row-level security is on for {table} but it has no policy: non-owners see no rows"),
                format!("add CREATE POLICY … ON {table}, or confirm default-deny with `-- confiture:ignore rls-without-policy REASON`"),
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
            &RlsWithoutPolicy,
            &[
                ("ALTER TABLE d ENABLE ROW LEVEL SECURITY;", 1),
                ("ALTER TABLE d ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON d USING (true);", 0),
                ("CREATE POLICY p ON d USING (true); ALTER TABLE d ENABLE ROW LEVEL SECURITY;", 0),
            ],
        );
    }
}
