//! domain-with-constraints

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `CREATE DOMAIN` with a `CHECK` constraint.
    ///
    /// ## Why is this bad?
    /// Changing a domain's constraint later checks every column of every table that uses the domain,
    /// and domain constraints cannot be added `NOT VALID` per table. A CHECK on each column can be
    /// changed one table at a time without long locks.
    ///
    /// ## Example
    /// ```sql
    /// CREATE DOMAIN email AS text CHECK (VALUE ~ '@');
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE users (email text CHECK (email ~ '@'));
    /// ```
    pub struct DomainWithConstraints {
        id: "domain-with-constraints",
        category: Types,
        severity: Info,
        summary: "domain with a CHECK constraint",
    }
}

impl Rule for DomainWithConstraints {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::CreateDomainStmt(d) = s.node else { return };
        let checks = d
            .constraints
            .iter()
            .any(|n| matches!(n.node.as_ref(), Some(NodeEnum::Constraint(k)) if ast::is(k, ConstrType::ConstrCheck)));
        if checks {
            cx.report(
                s,
                -1,
                format!(
                    "domain {} has a CHECK: changing it later checks every column using it at once",
                    ast::names(&d.domainname).join(".")
                ),
                "put the CHECK on the columns instead, where it can change per table with NOT VALID",
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
            &DomainWithConstraints,
            &[("CREATE DOMAIN d AS text CHECK (VALUE <> '');", 1), ("CREATE DOMAIN d AS text NOT NULL;", 0)],
        );
    }
}
