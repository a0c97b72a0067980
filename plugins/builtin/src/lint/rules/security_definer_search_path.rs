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

impl Rule for SecurityDefinerSearchPath {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    // At the end: `ALTER FUNCTION … SET search_path` may come after the CREATE.
    fn finish(&self, cx: &mut Cx<'_>) {
        let unpinned: Vec<_> = cx
            .facts
            .definer_functions
            .iter()
            .filter(|(f, _)| !cx.facts.pinned_functions.contains(f))
            .cloned()
            .collect();
        for (name, at) in unpinned {
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
