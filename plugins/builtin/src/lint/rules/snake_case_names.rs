//! snake-case-names

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags table and column names that are not lower-case snake_case — which in PostgreSQL means
    /// quoted identifiers like `"UserAccount"` or `"first name"`.
    ///
    /// ## Why is this bad?
    /// Unquoted names are folded to lower case, so a quoted mixed-case name must be quoted in every
    /// query forever, by every tool and person; forgetting once gives "relation does not exist".
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE "UserAccount" ("firstName" text);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE user_account (first_name text);
    /// ```
    pub struct SnakeCaseNames {
        id: "snake-case-names",
        category: Types,
        severity: Warning,
        summary: "table or column name that is not snake_case",
    }
}

fn snake(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Rule for SnakeCaseNames {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let mut names: Vec<(&str, &str, i32)> = Vec::new();
        match s.node {
            NodeEnum::CreateStmt(c) => {
                if let Some(r) = &c.relation {
                    names.push(("table", &r.relname, r.location));
                }
                for col in ast::table_elements(c).0 {
                    names.push(("column", &col.colname, col.location));
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                for col in ast::added_columns(a) {
                    names.push(("column", &col.colname, col.location));
                }
            }
            NodeEnum::RenameStmt(r) => names.push(("name", &r.newname, -1)),
            _ => {}
        }
        for (what, name, loc) in names.into_iter().filter(|(_, n, _)| !n.is_empty() && !snake(n)) {
            cx.report(
                s,
                loc,
                format!("{what} name \"{name}\" is not snake_case: it must be quoted in every query"),
                "use lower-case letters, digits and underscores",
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
            &SnakeCaseNames,
            &[
                ("CREATE TABLE \"UserAccount\" (\"firstName\" text, ok int);", 2),
                ("CREATE TABLE UserAccount (FirstName text);", 0),
                ("ALTER TABLE t ADD COLUMN \"bad name\" int;", 1),
                ("ALTER TABLE t RENAME COLUMN a TO \"B\";", 1),
            ],
        );
    }
}
