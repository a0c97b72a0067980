//! A statement being checked, and places in the files that findings point at.

use confiture_engine::pg_query::NodeEnum;
use confiture_engine::sql::{self, StatementKind};

use super::parse::FileKind;

/// A statement being checked.
pub struct Stmt<'a> {
    pub node: &'a NodeEnum,
    pub kind: FileKind,
    /// Byte offset of the statement in its file.
    pub offset: usize,
    pub len: usize,
    pub(crate) file: usize,
    pub(crate) text: &'a str,
    pub(crate) classification: &'a sql::Statement,
    /// REINDEX of a partitioned table or index: PostgreSQL refuses it inside a transaction.
    pub(crate) reindexes_partitioned: bool,
}

impl Stmt<'_> {
    /// Whether it cannot run inside a transaction (`CREATE INDEX CONCURRENTLY`, …).
    pub fn non_transactional(&self) -> Option<&'static str> {
        match self.classification.kind {
            StatementKind::NonTransactional(w) | StatementKind::ClusterLevel(w) => Some(w),
            _ if self.reindexes_partitioned => Some("REINDEX of a partitioned table"),
            _ => None,
        }
    }

    pub fn is_migration(&self) -> bool {
        self.kind == FileKind::Migration
    }

    /// The statement's text.
    pub fn text(&self) -> &str {
        self.text
    }

    /// Where it is, to point a finding of `finish` at it later: its first line.
    pub fn at(&self) -> At {
        At { file: self.file, offset: self.offset, len: first_line_len(self.text) }
    }
}

/// Where a fact was learned, to point findings of `finish` at it.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub file: usize,
    pub offset: usize,
    pub len: usize,
}

/// The length of a text's first line (at least 1): what a finding on a statement underlines.
pub fn first_line_len(text: &str) -> usize {
    text.lines().next().unwrap_or("").len().max(1)
}
