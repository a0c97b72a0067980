//! `sync`: copy a database's rows into another one over COPY (docs/sync.md).
//!
//! - [`run`]: the order of the work — refusals, plan, target preparation, copy, the objects
//!   made after the load, sequences, verification;
//! - [`plan`]: which tables, which columns, which ranges, which masks — everything decided before
//!   anything is written, and printed by `--dry-run`;
//! - [`schema`]: the target's schema — made by the diff engine in two parts (tables before the
//!   load; indexes, constraints and triggers after it), or checked when it is already there;
//! - [`subset`]: the rows kept by `subset` conditions and everything they reference;
//! - [`copy`]: the workers, each with the exported snapshot on the source and one transaction per
//!   range on the target, the range's progress row committed with its rows;
//! - [`stream`]: what happens to the bytes on the way (masking, checksums);
//! - [`progress`]: the `confiture_sync` tables in the target that make a killed run resumable;
//! - [`verify`]: reading the target back and comparing checksums.

pub mod copy;
pub mod plan;
pub mod progress;
pub mod run;
pub mod schema;
pub mod stream;
pub mod subset;
pub mod verify;

use serde::{Deserialize, Serialize};

use crate::anonymize::plan::MaskedColumn;

/// What to mask on the way.
#[derive(Clone, Debug, Default)]
pub enum Masking {
    #[default]
    None,
    /// A profile: a name in confiture.kdl, or a file.
    Profile(String),
    /// `table.column[=strategy]` from the command line; without a strategy, one is picked from
    /// the column's name and type.
    Columns(Vec<ColumnRule>),
}

#[derive(Clone, Debug)]
pub struct ColumnRule {
    pub table: String,
    pub column: String,
    pub strategy: Option<String>,
}

impl ColumnRule {
    /// `table.column`, `schema.table.column`, each optionally `=strategy`.
    pub fn parse(text: &str) -> Result<ColumnRule, String> {
        let (path, strategy) = match text.split_once('=') {
            Some((p, s)) if !s.trim().is_empty() => (p.trim(), Some(s.trim().to_string())),
            Some(_) => return Err(format!("`{text}`: say a strategy after `=`, or leave `=` out")),
            None => (text.trim(), None),
        };
        let parts: Vec<&str> = path.split('.').collect();
        let (table, column) = match parts.as_slice() {
            [t, c] => (format!("public.{t}"), c.to_string()),
            [s, t, c] => (format!("{s}.{t}"), c.to_string()),
            _ => {
                return Err(format!(
                    "`{text}`: write `table.column` or `schema.table.column` (optionally `=strategy`)"
                ));
            }
        };
        if column.is_empty() || table.ends_with('.') {
            return Err(format!("`{text}`: write `table.column`"));
        }
        Ok(ColumnRule { table, column, strategy })
    }
}

/// `subset { table "public.orders" where="…" }`.
#[derive(Clone, Debug, Default)]
pub struct Subset {
    /// `(schema.table, condition)`.
    pub tables: Vec<(String, String)>,
    /// Also keep the rows that reference kept rows (foreign keys followed downwards).
    pub include_children: bool,
}

/// How a sync runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub masking: Masking,
    /// Globs over `schema.table` (a partition is chosen with its partitioned table); none: all.
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    pub subset: Subset,
    pub jobs: usize,
    /// Rows per range of a large table.
    pub range_rows: u64,
    pub resume: bool,
    pub verify: bool,
    pub dry_run: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            masking: Masking::None,
            tables: Vec::new(),
            exclude: Vec::new(),
            subset: Subset::default(),
            jobs: default_jobs(),
            range_rows: 250_000,
            resume: false,
            verify: false,
            dry_run: false,
        }
    }
}

/// The machine's cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// What a sync did (or, with `--dry-run`, would do): the stage's outputs
/// (`schemas/stages/sync.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "outputs of a sync stage")]
pub struct SyncReport {
    /// The run's id (in the target's `confiture_sync_runs`).
    pub run: String,
    /// The source as `host:port/dbname` (no password).
    pub source: String,
    pub target: String,
    /// `created`: the target had none of the tables and got the source's schema; `existing`: it
    /// had them, and they were emptied.
    pub schema: String,
    /// `snapshot`: every row comes from one snapshot of the source (an uninterrupted run);
    /// `per-range`: a resumed run, each range consistent with the snapshot it was copied in.
    pub consistency: String,
    pub resumed: bool,
    pub dry_run: bool,
    /// The profile's name, with `--anonymize PROFILE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Identifies the masking key (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    pub masked_columns: Vec<MaskedColumn>,
    /// In load order.
    pub tables: Vec<TableReport>,
    /// What the target gets before the load (`CREATE TABLE …`) and after it (indexes,
    /// constraints, triggers), as counts of statements.
    pub statements_before_load: usize,
    pub statements_after_load: usize,
    /// Tables created on the target (an empty target).
    pub created: Vec<String>,
    /// Tables emptied on the target (existing schema).
    pub truncated: Vec<String>,
    /// Sequences (identity columns included) set to the source's values.
    pub sequences: usize,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    /// Things said along the way (a strategy picked for `--anonymize table.column`, …).
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Vec<verify::TableCheck>>,
}

/// One table's copy.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableReport {
    /// `schema.table`.
    pub table: String,
    /// From the planner's statistics (`reltuples`, `pg_table_size`).
    pub estimated_rows: u64,
    pub estimated_bytes: u64,
    /// Rows and bytes (COPY text) written.
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub ranges: usize,
    /// How the table is split: `whole`, `key "id"`, `ctid`, `subset`.
    pub split: String,
    /// Order-independent checksum of the rows written (32 hex digits; see docs/sync.md).
    pub checksum: String,
    pub masked_columns: Vec<String>,
    /// The `subset` condition, or `referenced` for a table kept through foreign keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::ColumnRule;

    #[test]
    fn column_rules_parse() {
        let r = ColumnRule::parse("users.email").unwrap();
        assert_eq!((r.table.as_str(), r.column.as_str(), r.strategy), ("public.users", "email", None));
        let r = ColumnRule::parse("app.users.phone=phone").unwrap();
        assert_eq!((r.table.as_str(), r.column.as_str(), r.strategy.as_deref()), ("app.users", "phone", Some("phone")));
        assert!(ColumnRule::parse("email").is_err());
        assert!(ColumnRule::parse("users.email=").is_err());
        assert!(ColumnRule::parse("a.b.c.d").is_err());
    }
}
