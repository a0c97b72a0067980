//! security-definer-search-path

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `SECURITY DEFINER` functions and procedures without `SET search_path`.
    ///
    /// ## Why is this bad?
    /// A security definer function runs with its owner's privileges but the caller's `search_path`:
    /// a caller who can create objects in a schema on that path can make it call their function or
    /// read their table instead of yours — privilege escalation.
    ///
    /// ## Example
    /// ```sql
    /// CREATE FUNCTION purge_user(id bigint) RETURNS void
    ///     LANGUAGE sql SECURITY DEFINER
    ///     AS $$ DELETE FROM users WHERE users.id = purge_user.id $$;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE FUNCTION purge_user(id bigint) RETURNS void
    ///     LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
    ///     AS $$ DELETE FROM public.users WHERE users.id = purge_user.id $$;
    /// ```
    pub struct SecurityDefinerSearchPath {
        id: "security-definer-search-path",
        category: Security,
        severity: Error,
        summary: "SECURITY DEFINER function without a pinned search_path",
    }
}

/// Functions created or altered with a pinned search_path; SECURITY DEFINER ones without (and
/// where).
#[derive(Clone, Default)]
struct Seen {
    pinned: std::collections::HashSet<String>,
    definers: Vec<(String, At)>,
}

impl Rule for SecurityDefinerSearchPath {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let (name, options) = match s.node {
            NodeEnum::CreateFunctionStmt(f) => (ast::names(&f.funcname).join("."), &f.options),
            NodeEnum::AlterFunctionStmt(f) => match &f.func {
                Some(func) => (ast::names(&func.objname).join("."), &f.actions),
                None => return,
            },
            _ => return,
        };
        let seen = cx.state::<Seen>();
        if ast::pins_search_path(options) {
            seen.pinned.insert(name);
        } else if ast::security_definer(options) {
            seen.definers.push((name, s.at()));
        }
    }

    // At the end: `ALTER FUNCTION … SET search_path` may come after the CREATE.
    fn finish(&self, cx: &mut Cx<'_>) {
        let seen = std::mem::take(cx.state::<Seen>());
        for (name, at) in seen.definers.into_iter().filter(|(f, _)| !seen.pinned.contains(f)) {
            cx.report_at(
                at,
                format!("SECURITY DEFINER {name} runs with its owner's rights but the caller's search_path"),
                "add SET search_path = pg_catalog, public (or an empty one with schema-qualified names)",
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
            &SecurityDefinerSearchPath,
            &[
                ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';", 1),
                (
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS 'SELECT 1';",
                    0,
                ),
                ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY INVOKER AS 'SELECT 1';", 0),
                ("CREATE PROCEDURE p() LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';", 1),
                ("ALTER FUNCTION k() SECURITY DEFINER;", 1),
                ("ALTER FUNCTION k() SECURITY DEFINER SET search_path = pg_catalog;", 0),
                (
                    "CREATE FUNCTION k() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';\nALTER FUNCTION k() SET search_path = pg_catalog;",
                    0,
                ),
                (
                    "CREATE FUNCTION k() RETURNS int LANGUAGE sql SET search_path = pg_catalog AS 'SELECT 1';\nALTER FUNCTION k() SECURITY DEFINER;",
                    0,
                ),
            ],
        );
    }
}
