//! unused-ignore

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Reports `-- confiture:ignore RULE reason` comments that suppress nothing, or name a rule that
    /// does not exist.
    ///
    /// ## Why is this bad?
    /// A stale ignore hides the next real finding on that statement, and a misspelt rule id
    /// suppresses nothing while looking like it does.
    ///
    /// ## Example
    /// ```sql
    /// -- confiture:ignore drop-tabel legacy data archived
    /// DROP TABLE legacy;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// -- confiture:ignore drop-table legacy data archived
    /// DROP TABLE legacy;
    /// ```
    pub struct UnusedIgnore {
        id: "unused-ignore",
        category: Meta,
        severity: Warning,
        summary: "ignore comment that suppresses nothing",
    }
}

/// The rule's metadata, for the driver (which reports these findings itself).
pub static META: &Meta = &UnusedIgnore::META;

impl Rule for UnusedIgnore {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::rules::find;

    #[test]
    fn suppression_and_unused_ignores() {
        let drop = find("drop-table").unwrap();
        // An ignore right above the statement suppresses its finding.
        assert!(findings(drop, "-- confiture:ignore drop-table archived\nDROP TABLE t;").is_empty());
        assert_eq!(findings(drop, "DROP TABLE t;").len(), 1);
        // One for another rule does not.
        assert_eq!(findings(drop, "-- confiture:ignore drop-column nope\nDROP TABLE t;").len(), 1);
        // An ignore inside a string is not a comment.
        assert_eq!(findings(drop, "SELECT '-- confiture:ignore drop-table';\nDROP TABLE t;").len(), 1);
        // Unused and unknown ignores are reported.
        let mut config = crate::lint::Config::default();
        config.severity.insert("drop-table".into(), crate::lint::Severity::Warning);
        let input = |sql: &str| crate::lint::Input {
            name: "m.up.sql".into(),
            text: sql.into(),
            kind: crate::lint::FileKind::Migration,
        };
        let r = crate::lint::lint(
            vec![input("-- confiture:ignore drop-table x\nSELECT 1;\n-- confiture:ignore no-such-rule x\nSELECT 2;")],
            &config,
            None,
        );
        let unused: Vec<&str> =
            r.findings.iter().filter(|f| f.rule == "unused-ignore").map(|f| f.message.as_str()).collect();
        assert_eq!(unused.len(), 2, "{unused:?}");
        assert!(unused[1].contains("no-such-rule"), "{unused:?}");
    }

    fn lint_one(sql: &str, config: &crate::lint::Config) -> Vec<(String, usize)> {
        let input =
            crate::lint::Input { name: "m.up.sql".into(), text: sql.into(), kind: crate::lint::FileKind::Migration };
        let r = crate::lint::lint(vec![input], config, None);
        r.findings
            .into_iter()
            .filter(|f| f.rule.contains("ignore") || f.rule.starts_with("drop"))
            .map(|f| (f.rule, f.line))
            .collect()
    }

    #[test]
    fn ignore_comment_forms() {
        let config = crate::lint::Config::default();
        // Rules separated by a comma and a space.
        let sql =
            "-- confiture:ignore drop-column, drop-table replaced by v2\nALTER TABLE t DROP COLUMN a;\nDROP TABLE u;";
        assert_eq!(lint_one(sql, &config), [("drop-table".to_string(), 3)]);
        // A trailing comment silences the statement on its line, not the next one.
        let sql = "DROP TABLE t; -- confiture:ignore drop-table archived\nDROP TABLE u;";
        assert_eq!(lint_one(sql, &config), [("drop-table".to_string(), 2)]);
        // A file that does not parse: its ignores are not called unused.
        let sql = "-- confiture:ignore drop-table archived\nDROP TABLE t;\nSELEC 1;";
        assert!(lint_one(sql, &config).is_empty());
        // One before a statement on the same line belongs to that statement.
        let sql = "SELECT 1; /* confiture:ignore drop-table archived */ DROP TABLE b;";
        assert!(lint_one(sql, &config).is_empty());
        // One inside a statement, above the clause it is about.
        let sql = "ALTER TABLE t\n    ADD COLUMN a int,\n    -- confiture:ignore drop-column replaced by a\n    DROP COLUMN b;";
        assert!(lint_one(sql, &config).is_empty());
        // An ignore of a rule that is turned off is not unused.
        let mut off = crate::lint::Config::default();
        off.severity.insert("drop-table".into(), crate::lint::Severity::Off);
        assert!(lint_one("-- confiture:ignore drop-table archived\nDROP TABLE t;", &off).is_empty());
    }
}
