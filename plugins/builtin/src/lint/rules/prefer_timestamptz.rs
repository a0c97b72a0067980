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
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        for (table, col) in ast::defined_columns(s.node) {
            let Some(ty) = col.type_name.as_ref().map(ast::type_of) else { continue };
            if ty.name == "timestamp" {
                cx.report(
                    s,
                    col.type_name.as_ref().map_or(col.location, |t| t.location),
                    format!(
                        "{table}.{} is timestamp without time zone: the instant it means depends on the reader",
                        ast::column_name(s.node, col)
                    ),
                    "use timestamptz",
                );
            }
        }
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
