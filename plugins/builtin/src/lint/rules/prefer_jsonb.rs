//! prefer-jsonb

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `json` columns.
    ///
    /// ## Why is this bad?
    /// `json` stores the text as written and re-parses it on every access; it cannot be indexed
    /// with GIN and has no equality operator. `jsonb` is parsed once and indexable.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE events (payload json);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE events (payload jsonb);
    /// ```
    pub struct PreferJsonb {
        id: "prefer-jsonb",
        category: Types,
        severity: Warning,
        summary: "json instead of jsonb",
    }
}

impl Rule for PreferJsonb {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let banned = |ty: &ast::Type| (ty.name == "json").then(|| "json".to_string());
        super::report_types(s, cx, banned, "re-parsed on every access and not indexable", "use jsonb");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&PreferJsonb, &[("CREATE TABLE t (a json);", 1), ("CREATE TABLE t (a jsonb);", 0)]);
    }
}
