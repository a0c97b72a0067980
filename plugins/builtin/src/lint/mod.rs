//! Lint: SQL read with PostgreSQL's own parser, checked by rules, one file per rule in
//! `rules/`. The driver ([`check`]) parses files (in parallel), walks their statements in order
//! keeping what it learned (tables created so far, settings, transactions) and hands each statement
//! to every enabled rule; rules that need the whole set (an FK column without an index, RLS without
//! a policy) look at the collected facts at the end.

pub mod ast;
pub mod check;
pub mod facts;
pub mod files;
pub mod findings;
pub mod ignores;
pub mod live;
pub mod parse;
pub mod report;
pub mod rules;
pub mod scope;
pub mod stmt;

use std::collections::BTreeMap;

use serde::Serialize;

pub use check::{LintResult, lint};
pub use findings::{Cx, Finding};
pub use live::{Live, Relation};
pub use parse::{FileKind, Input};
pub use scope::RunnerTimeouts;
pub use stmt::Stmt;

/// How serious a finding is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Off,
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "off" => Severity::Off,
            "info" => Severity::Info,
            "warning" | "warn" => Severity::Warning,
            "error" => Severity::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Off => "off",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Locks taken and table rewrites on tables that already exist.
    Locks,
    /// Changes that lose data or break clients.
    Destructive,
    /// Types and modelling.
    Types,
    /// Transactions and re-runnability.
    Transactions,
    Security,
    /// About the lint run itself (ignore comments, files that do not parse).
    Meta,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Locks => "locks",
            Category::Destructive => "destructive",
            Category::Types => "types",
            Category::Transactions => "transactions",
            Category::Security => "security",
            Category::Meta => "meta",
        }
    }
}

/// A rule's identity and documentation.
#[derive(Debug)]
pub struct Meta {
    /// Stable, kebab-case.
    pub id: &'static str,
    pub category: Category,
    /// The severity unless configured (`Off`: opt-in).
    pub severity: Severity,
    /// One line.
    pub summary: &'static str,
    /// Markdown with the headings What it does / Why is this bad? / Example / Use instead.
    pub doc: &'static str,
}

impl Meta {
    /// The documentation with the doc-comment indentation removed.
    pub fn markdown(&self) -> String {
        crate::doc_markdown(self.doc)
    }
}

/// A rule's identity: written by [`declare_rule!`] from the rule's declaration.
pub trait Described {
    fn meta(&self) -> &'static Meta;
}

/// A lint rule. `check` sees each statement in order; `finish` runs once at the end. What a rule
/// needs to remember between them is its own state ([`Cx::state`]).
pub trait Rule: Described + Sync + Send {
    fn check(&self, _stmt: &Stmt<'_>, _cx: &mut Cx<'_>) {}
    fn finish(&self, _cx: &mut Cx<'_>) {}
}

/// Declares a rule: its doc comment becomes its documentation (`confiture lint --explain`,
/// docs/rules/RULE.md).
#[macro_export]
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            id: $id:literal,
            category: $cat:ident,
            severity: $sev:ident,
            summary: $summary:literal $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl $name {
            pub const META: $crate::lint::Meta = $crate::lint::Meta {
                id: $id,
                category: $crate::lint::Category::$cat,
                severity: $crate::lint::Severity::$sev,
                summary: $summary,
                doc: concat!($($doc, "\n"),*),
            };
        }

        impl $crate::lint::Described for $name {
            fn meta(&self) -> &'static $crate::lint::Meta {
                &Self::META
            }
        }
    };
}

/// Rule severities and paths, from confiture.kdl and the stage (the stage wins).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Per-rule severity overrides.
    pub severity: BTreeMap<String, Severity>,
    /// Fail on warnings too.
    pub deny_warnings: bool,
    /// Timeouts the migration runner sets (`migrate { lock-timeout …; statement-timeout … }` in
    /// confiture.kdl): the timeout rules are satisfied by them.
    pub runner_timeouts: RunnerTimeouts,
}

impl Config {
    /// The effective severity of a rule.
    pub fn severity_of(&self, meta: &Meta) -> Severity {
        self.severity.get(meta.id).copied().unwrap_or(meta.severity)
    }
}

/// Test helpers for rules.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// Lint `sql` as a migration with only `rule` enabled (at warning if it is opt-in).
    pub fn findings(rule: &dyn Rule, sql: &str) -> Vec<Finding> {
        let mut config = Config::default();
        for r in rules::RULES {
            config.severity.insert(r.meta().id.into(), Severity::Off);
        }
        config.severity.insert(rule.meta().id.into(), Severity::Warning);
        let input = Input { name: "db/migrations/001_test.up.sql".into(), text: sql.into(), kind: FileKind::Migration };
        let result = lint(vec![input], &config, None);
        assert!(result.syntax_errors.is_empty(), "{sql}: does not parse: {:?}", result.syntax_errors);
        result.findings.into_iter().filter(|f| f.rule == rule.meta().id).collect()
    }

    /// Each case: SQL and how many findings the rule reports on it.
    pub fn check_rule(rule: &dyn Rule, cases: &[(&str, usize)]) {
        for (sql, want) in cases {
            let got = findings(rule, sql);
            assert_eq!(got.len(), *want, "{}: `{sql}` gave {got:#?}", rule.meta().id);
            for f in &got {
                assert!(!f.message.is_empty() && !f.message.ends_with('.'), "{}: message style: {}", f.rule, f.message);
                assert!(!f.help.is_empty(), "{}: every finding has a help line", f.rule);
            }
        }
    }
}
