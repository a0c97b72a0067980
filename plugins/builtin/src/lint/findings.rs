//! Findings and the context a rule reports them through ([`Cx`]): where a finding points
//! (a parser location, else the statement's first line), its severity, and the rule's own state.

use std::any::Any;

use confiture_engine::diag::SourceFile;
use confiture_engine::pg_query::protobuf::RangeVar;
use serde::Serialize;

use super::ast;
use super::facts::Facts;
use super::scope::{Scope, Target};
use super::stmt::{At, Stmt, first_line_len};
use super::{Meta, Severity};

/// One finding.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// The rule's id.
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// One actionable sentence.
    pub help: String,
    pub file: String,
    /// 1-based, in characters.
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// Byte range in the file.
    #[serde(skip, default)]
    #[schemars(skip)]
    pub span: (usize, usize),
    /// Index of the file in [`LintResult::sources`].
    #[serde(skip, default)]
    #[schemars(skip)]
    pub source: usize,
}

/// A rule's view of the run.
pub struct Cx<'a> {
    pub facts: &'a Facts,
    pub scope: Scope<'a>,
    pub(super) meta: &'static Meta,
    pub(super) severity: Severity,
    pub(super) out: &'a mut Vec<Finding>,
    pub(super) sources: &'a [SourceFile],
    pub(super) state: &'a mut Option<Box<dyn RuleState>>,
}

/// What one rule keeps from statement to statement for its `finish` (tables it saw, places to
/// point at): any `Default + Clone` type, made on first use by [`Cx::state`]. Saved and put back
/// around a down migration, like the facts.
pub trait RuleState: Any + Send {
    fn clone_state(&self) -> Box<dyn RuleState>;
    fn as_any(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Clone> RuleState for T {
    fn clone_state(&self) -> Box<dyn RuleState> {
        Box::new(self.clone())
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// A copy of every rule's state.
pub fn clone_states(states: &[Option<Box<dyn RuleState>>]) -> Vec<Option<Box<dyn RuleState>>> {
    states.iter().map(|s| s.as_deref().map(RuleState::clone_state)).collect()
}

impl Cx<'_> {
    /// This rule's own state for the run (a `T` of its choosing; the same `T` every time).
    pub fn state<T: Default + Clone + Send + 'static>(&mut self) -> &mut T {
        let slot = self.state.get_or_insert_with(|| Box::new(T::default()));
        (**slot).as_any().downcast_mut::<T>().expect("a rule keeps one type of state")
    }

    /// The table, unless it is new (see [`Scope::existing_name`]).
    pub fn existing(&self, r: &Option<RangeVar>) -> Option<Target> {
        self.scope.existing_name(&ast::rel(r.as_ref()?))
    }

    pub fn existing_name(&self, name: &str) -> Option<Target> {
        self.scope.existing_name(name)
    }

    /// Report a finding on `stmt`, at byte `location` of the file if the parser gave one.
    pub fn report(&mut self, stmt: &Stmt<'_>, location: i32, message: impl Into<String>, help: impl Into<String>) {
        let at = usize::try_from(location).ok().filter(|l| *l >= stmt.offset && *l < stmt.offset + stmt.len);
        let (offset, len) = match at {
            Some(l) => {
                let rest = &self.sources[stmt.file].text[l..];
                (l, confiture_engine::sql::token_len(rest).max(1).min(rest.len()))
            }
            None => (stmt.offset, first_line_len(stmt.text)),
        };
        self.push(At { file: stmt.file, offset, len }, self.severity, message.into(), help.into());
    }

    /// Report a lock finding on `target` (informational when the table is empty).
    pub fn report_lock(
        &mut self,
        stmt: &Stmt<'_>,
        location: i32,
        target: &Target,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let severity = if target.empty { Severity::Info } else { self.severity };
        let saved = std::mem::replace(&mut self.severity, severity);
        self.report(stmt, location, message, help);
        self.severity = saved;
    }

    /// Report a finding at a remembered place (for `finish`).
    pub fn report_at(&mut self, at: At, message: impl Into<String>, help: impl Into<String>) {
        self.push(at, self.severity, message.into(), help.into());
    }

    fn push(&mut self, at: At, severity: Severity, message: String, help: String) {
        let source = &self.sources[at.file];
        let (line, column) = source.line_col(at.offset);
        let (end_line, end_column) = source.line_col(at.offset + at.len);
        self.out.push(Finding {
            rule: self.meta.id.to_string(),
            severity,
            message,
            help,
            file: source.name.clone(),
            line,
            column,
            end_line,
            end_column,
            span: (at.offset, at.len),
            source: at.file,
        });
    }
}
