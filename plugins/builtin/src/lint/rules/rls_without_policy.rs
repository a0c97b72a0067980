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

/// Tables with row-level security turned on (and where), and tables with a policy.
#[derive(Clone, Default)]
struct Seen {
    rls: Vec<(String, At)>,
    policies: std::collections::HashSet<String>,
}

impl Rule for RlsWithoutPolicy {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        match s.node {
            NodeEnum::AlterTableStmt(a) => {
                let Some(table) = a.relation.as_ref().map(ast::rel) else { return };
                for cmd in ast::alter_cmds(a) {
                    if matches!(
                        ast::subtype(cmd),
                        Some(AlterTableType::AtEnableRowSecurity | AlterTableType::AtForceRowSecurity)
                    ) {
                        cx.state::<Seen>().rls.push((table.clone(), s.at()));
                    }
                }
            }
            NodeEnum::CreatePolicyStmt(p) => {
                if let Some(r) = &p.table {
                    cx.state::<Seen>().policies.insert(ast::rel(r));
                }
            }
            _ => {}
        }
    }

    fn finish(&self, cx: &mut Cx<'_>) {
        let seen = std::mem::take(cx.state::<Seen>());
        for (table, at) in seen.rls.into_iter().filter(|(t, _)| !seen.policies.contains(t)) {
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
