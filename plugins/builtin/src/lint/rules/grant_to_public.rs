//! grant-to-public

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `GRANT … TO PUBLIC`.
    ///
    /// ## Why is this bad?
    /// `PUBLIC` is every role in the cluster, including ones created later for other applications:
    /// the grant is far wider than it reads.
    ///
    /// ## Example
    /// ```sql
    /// GRANT SELECT ON customers TO PUBLIC;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// GRANT SELECT ON customers TO reporting;
    /// ```
    pub struct GrantToPublic {
        id: "grant-to-public",
        category: Security,
        severity: Warning,
        summary: "GRANT to PUBLIC",
    }
}

impl Rule for GrantToPublic {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        // GRANT, and ALTER DEFAULT PRIVILEGES … GRANT (which grants on every future object).
        let g = match s.node {
            NodeEnum::GrantStmt(g) => g,
            NodeEnum::AlterDefaultPrivilegesStmt(a) => match &a.action {
                Some(g) => g,
                None => return,
            },
            _ => return,
        };
        let public = confiture_engine::pg_query::protobuf::RoleSpecType::RolespecPublic as i32;
        let to_public = g.grantees.iter().find_map(|n| match n.node.as_ref() {
            Some(NodeEnum::RoleSpec(r)) if r.roletype == public => Some(r.location),
            _ => None,
        });
        if let (true, Some(loc)) = (g.is_grant, to_public) {
            cx.report(
                s,
                loc,
                "GRANT … TO PUBLIC gives the privilege to every role in the cluster",
                "grant to a named role instead",
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
            &GrantToPublic,
            &[
                ("GRANT SELECT ON t TO PUBLIC;", 1),
                ("GRANT SELECT ON t TO app;", 0),
                ("REVOKE ALL ON t FROM PUBLIC;", 0),
                ("GRANT USAGE ON SCHEMA s TO app, PUBLIC;", 1),
                ("ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC;", 1),
                ("ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO reader;", 0),
            ],
        );
    }
}
