//! ignore-without-reason

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Reports `-- confiture:ignore RULE` comments that give no reason after the rule.
    ///
    /// ## Why is this bad?
    /// An ignore is a decision someone made about a risk; without the why, the next reader cannot
    /// tell whether it still holds (the table was tiny then; is it now?).
    ///
    /// ## Example
    /// ```sql
    /// -- confiture:ignore require-concurrent-index-creation
    /// CREATE INDEX countries_name_idx ON countries (name);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:ignore require-concurrent-index-creation countries has 250 rows
    /// CREATE INDEX countries_name_idx ON countries (name);
    /// ```
    pub struct IgnoreWithoutReason {
        id: "ignore-without-reason",
        category: Meta,
        severity: Warning,
        summary: "ignore comment that does not say why",
    }
}

/// The rule's metadata, for the driver (which reports these findings itself).
pub static META: &Meta = &IgnoreWithoutReason::META;

impl Rule for IgnoreWithoutReason {}

#[cfg(test)]
mod tests {
    use crate::lint::{Config, FileKind, Input, lint};

    fn rules_of(sql: &str) -> Vec<String> {
        let input = Input { name: "m.up.sql".into(), text: sql.into(), kind: FileKind::Migration };
        let findings = lint(vec![input], &Config::default(), None).findings;
        findings.into_iter().map(|f| f.rule).filter(|r| r.contains("ignore") || r == "drop-table").collect()
    }

    #[test]
    fn cases() {
        assert_eq!(rules_of("-- confiture:ignore drop-table\nDROP TABLE t;"), ["ignore-without-reason"]);
        assert!(rules_of("-- confiture:ignore drop-table archived in 2025\nDROP TABLE t;").is_empty());
        assert!(rules_of("/* confiture:ignore drop-table archived */ DROP TABLE t;").is_empty());
    }
}
