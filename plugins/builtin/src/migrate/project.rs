//! What confiture.kdl's `migrate { … }` block sets for every migrate stage and command, read by
//! the stages that need to know where migrations live (diff's `migrations:` source, lint) too.

use std::path::PathBuf;
use std::time::Duration;

use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::Entry;
use confiture_engine::project::Project;

use super::tracking;
use crate::catalog::model::qname;

/// What confiture.kdl's `migrate { … }` block sets for every migrate stage and command.
#[derive(Debug, Default)]
pub struct Defaults {
    pub dir: Option<PathBuf>,
    pub table: Option<tracking::Table>,
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
}

impl Defaults {
    /// Decode the block (its problems go to `d`, located in confiture.kdl).
    pub fn decode(project: &Project, d: &mut Diagnostics) -> Self {
        let Some(node) = project.stage_defaults("migrate") else { return Self::default() };
        let mut pd = Diagnostics::default();
        let mut f = Fields::new(node, "`migrate` in confiture.kdl");
        let defaults = Defaults {
            dir: f.setting_text("migrations", &mut pd).map(|t| PathBuf::from(t.display())),
            table: f.setting("tracking-table", &mut pd).and_then(|e| tracking_table(e, &mut pd)),
            lock_timeout: f.setting("lock-timeout", &mut pd).and_then(|e| decode::pg_timeout(e, &mut pd)),
            statement_timeout: f.setting("statement-timeout", &mut pd).and_then(|e| decode::pg_timeout(e, &mut pd)),
        };
        f.finish(&mut pd);
        if let Some(source) = &project.source {
            pd = pd.finish(source);
        }
        d.extend(pd);
        defaults
    }
}

/// The tracking table (confiture.kdl's `migrate { tracking-table "…" }`, else
/// public.confiture_migrations) as the diff model names it: confiture's bookkeeping, not schema.
pub fn tracking_table_name(project: &Project) -> String {
    let table = Defaults::decode(project, &mut Diagnostics::default())
        .table
        .unwrap_or_else(|| tracking::Table::parse("confiture_migrations").expect("a valid default"));
    qname(&table.schema, &table.name)
}

/// The migrations directory confiture.kdl's `migrate { migrations "…" }` names, if any.
pub fn migrations_dir(project: &Project) -> Option<PathBuf> {
    Defaults::decode(project, &mut Diagnostics::default()).dir
}

/// A `tracking-table` setting: `table` or `schema.table`.
pub fn tracking_table(e: &Entry, d: &mut Diagnostics) -> Option<tracking::Table> {
    let t = decode::static_text(e, d)?;
    let parsed = tracking::Table::parse(&t);
    if parsed.is_none() {
        d.push(
            Diagnostic::error("pipeline::wrong-type", e.span, format!("`{t}` is not a table name"))
                .with_label("expected table or schema.table")
                .with_help("e.g. \"confiture_migrations\" or \"ops.migrations\""),
        );
    }
    parsed
}
