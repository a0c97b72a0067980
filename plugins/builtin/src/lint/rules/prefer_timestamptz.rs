//! prefer-timestamptz

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `timestamp` (without time zone) columns.
    ///
    /// ## Why is this bad?
    /// A `timestamp` has no time zone: the same value means different instants to clients in
    /// different zones, and daylight-saving changes make times ambiguous. `timestamptz` stores an
    /// instant and converts on display.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE events (happened_at timestamp);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE events (happened_at timestamptz);
    /// ```
    pub struct PreferTimestamptz {
        id: "prefer-timestamptz",
        category: Types,
        severity: Warning,
        summary: "timestamp without time zone",
    }
}

impl Rule for PreferTimestamptz {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let banned = |ty: &ast::Type| (ty.name == "timestamp").then(|| "timestamp without time zone".to_string());
        super::report_types(s, cx, banned, "the instant it means depends on the reader", "use timestamptz");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &PreferTimestamptz,
            &[
                ("CREATE TABLE t (a timestamp);", 1),
                ("CREATE TABLE t (a timestamp(3) without time zone);", 1),
                ("CREATE TABLE t (a timestamptz);", 0),
            ],
        );
    }
}
