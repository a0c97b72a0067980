//! What decides how a statement is judged: whether the table it touches exists already (and
//! how big it is, with `--database`) or is new in these files, what an index belongs to, what the
//! runner sets. A [`Scope`] reads the [`Facts`] learned so far and the [`Live`] database.

use confiture_engine::pg_query::NodeEnum;
use confiture_engine::pg_query::protobuf;

use super::ast;
use super::facts::Facts;
use super::live::Live;
use super::parse::FileKind;
use super::stmt::Stmt;

/// Where the statement being checked is, and what is known: decides whether a table is new.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub facts: &'a Facts,
    pub live: Option<&'a Live>,
    /// The runner sets lock_timeout / statement_timeout (`migrate { … }` in confiture.kdl).
    pub runner_timeouts: RunnerTimeouts,
    pub file: usize,
    pub kind: FileKind,
    /// For a `.down.sql`, its `.up.sql` (linted just before it): what the up created, the down
    /// may remove — that is its job.
    pub up: Option<usize>,
}

/// Timeouts the migration runner sets for every migration (from confiture.kdl).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunnerTimeouts {
    pub lock_timeout: bool,
    pub statement_timeout: bool,
}

impl Scope<'_> {
    /// The table (or materialized view), unless it is new or the file builds from nothing.
    ///
    /// New: created earlier in the same file (or, for a down migration, by its up), or — with
    /// `--database` — absent from that database (a pending migration creates it). Without a
    /// database, a table created by an earlier file counts as existing: an earlier migration may
    /// have been applied long ago, and the table has rows by now. Schema files build a database
    /// from nothing: nothing in them is existing.
    pub fn existing_name(&self, name: &str) -> Option<Target> {
        if self.kind == FileKind::Schema {
            return None;
        }
        // Renamed or moved earlier in the files: it is the table it was.
        let original = self.facts.aliases.get(name).map_or(name, String::as_str);
        if self.created_here(name) || self.created_here(original) {
            return None;
        }
        let partitioned = self.facts.partitioned.contains(name) || self.facts.partitioned.contains(original);
        let Some(live) = self.live else {
            return Some(Target { name: name.to_string(), size: None, empty: false, partitioned });
        };
        let r = self.candidates(original).iter().find_map(|k| live.relations.get(k))?;
        let empty = r.rows.is_none_or(|n| n <= 0.0) && r.bytes <= 8192;
        let size = match r.rows {
            _ if empty => "empty in the database".to_string(),
            Some(rows) => format!("~{} rows, {} in the database", human_count(rows), human_bytes(r.bytes)),
            None => format!("never analyzed, {} in the database", human_bytes(r.bytes)),
        };
        Some(Target { name: name.to_string(), size: Some(size), empty, partitioned: r.partitioned || partitioned })
    }

    /// Whether the database (with `--database`) or an earlier file already has the table: a
    /// `CREATE TABLE IF NOT EXISTS` of it creates nothing.
    pub fn known_to_exist(&self, name: &str) -> bool {
        self.facts.created.get(name).is_some_and(|f| !self.is_this_change(*f))
            || self.live.is_some_and(|live| self.candidates(name).iter().any(|k| live.relations.contains_key(k)))
    }

    /// Whether the files (any of them) or the database have the table.
    pub fn is_known_table(&self, name: &str) -> bool {
        let original = self.facts.aliases.get(name).map_or(name, String::as_str);
        self.facts.created.contains_key(name)
            || self.facts.created.contains_key(original)
            || self.live.is_some_and(|live| self.candidates(original).iter().any(|k| live.relations.contains_key(k)))
    }

    /// Whether a table is partitioned, as far as the files and the database tell.
    pub fn partitioned(&self, name: &str) -> bool {
        let original = self.facts.aliases.get(name).map_or(name, String::as_str);
        self.facts.partitioned.contains(name)
            || self.facts.partitioned.contains(original)
            || self.live.is_some_and(|live| {
                self.candidates(original).iter().any(|k| live.relations.get(k).is_some_and(|r| r.partitioned))
            })
    }

    fn created_here(&self, name: &str) -> bool {
        self.facts.created.get(name).is_some_and(|f| self.is_this_change(*f))
    }

    /// Whether a file is the one being checked, or (for a down migration) its up migration.
    fn is_this_change(&self, file: usize) -> bool {
        file == self.file || Some(file) == self.up
    }

    /// The catalog names an unqualified name may mean: through the file's `SET search_path`, else
    /// the database's search path (`public.` dropped, as everywhere).
    fn candidates(&self, name: &str) -> Vec<String> {
        if name.contains('.') {
            return vec![name.to_string()];
        }
        let path = self.facts.search_path.as_deref().or(self.live.map(|l| l.search_path.as_slice()));
        let mut out: Vec<String> = path
            .unwrap_or_default()
            .iter()
            .map(|s| if s == "public" { name.to_string() } else { format!("{s}.{name}") })
            .collect();
        if out.is_empty() {
            out.push(name.to_string());
        }
        out
    }

    /// Whether this file (or, for a down migration, its up) added the column.
    pub fn added_here(&self, table: &str, column: &str) -> bool {
        self.facts.added_columns.get(&(table.to_string(), column.to_string())).is_some_and(|f| self.is_this_change(*f))
    }

    /// What a lock on an index is a lock on: its table, when known (from the files or the
    /// database), else the index itself (shown as "its table"). `None` when that table is new,
    /// or the index is unknown to the database (a pending migration creates it).
    pub fn existing_index(&self, index: &str) -> Option<(Target, bool)> {
        if self.kind == FileKind::Schema {
            return None;
        }
        match self.index_table(index) {
            Some(table) => Some((self.existing_name(&table)?, true)),
            None if self.live.is_some() || self.created_here(index) => None,
            None => Some((Target { name: index.to_string(), size: None, empty: false, partitioned: false }, false)),
        }
    }

    /// The table an index belongs to, from the files or the live database.
    pub fn index_table(&self, index: &str) -> Option<String> {
        if let Some(t) = self.facts.index_tables.get(index) {
            return Some(t.clone());
        }
        let live = self.live?;
        self.candidates(index).iter().find_map(|k| live.index_tables.get(k)).cloned()
    }

    /// The first lock `stmt` takes that blocks writes on an existing table, with the table (an
    /// index's lock is on its table).
    pub fn blocking_lock<'s>(&self, stmt: &'s Stmt<'_>) -> Option<(&'s confiture_engine::sql::locks::Lock, Target)> {
        stmt.classification.locks.iter().filter(|l| l.mode.blocks_writes()).find_map(|l| {
            let name = l.relation.strip_prefix("public.").unwrap_or(&l.relation);
            let t = match self.index_table(name) {
                Some(table) => self.existing_name(&table)?,
                None => self.existing_name(name)?,
            };
            Some((l, t))
        })
    }

    /// REINDEX of a partitioned table or of an index on one (PostgreSQL refuses it in a transaction).
    pub fn reindexes_partitioned(&self, node: &NodeEnum) -> bool {
        use protobuf::ReindexObjectType as K;
        let NodeEnum::ReindexStmt(r) = node else { return false };
        let Some(name) = r.relation.as_ref().map(ast::rel) else { return false };
        match K::try_from(r.kind).ok() {
            Some(K::ReindexObjectTable) => self.partitioned(&name),
            Some(K::ReindexObjectIndex) => self.index_table(&name).is_some_and(|t| self.partitioned(&t)),
            _ => false,
        }
    }
}

/// An existing table a lock rule is about.
pub struct Target {
    pub name: String,
    /// `~1.2M rows, 340 MB in the database`, with `--database`.
    pub size: Option<String>,
    /// Known to be empty in the database: the finding is informational.
    pub empty: bool,
    /// A partitioned table (CONCURRENTLY is not possible on it directly).
    pub partitioned: bool,
}

impl Target {
    /// `orders`, or `orders (~1.2M rows, 340 MB in the database)`.
    pub fn shown(&self) -> String {
        match &self.size {
            Some(s) => format!("{} ({s})", self.name),
            None => self.name.clone(),
        }
    }

    /// `orders.email`, or `orders.email (~1.2M rows, 340 MB in the database)`.
    pub fn column(&self, column: &str) -> String {
        match &self.size {
            Some(s) => format!("{}.{column} ({s})", self.name),
            None => format!("{}.{column}", self.name),
        }
    }
}

/// `1.2M`, `340k`: a row count for people.
pub fn human_count(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}G", n / 1e9),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

fn human_bytes(b: i64) -> String {
    let b = b as f64;
    match b {
        b if b >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GB", b / 1024.0 / 1024.0 / 1024.0),
        b if b >= 1024.0 * 1024.0 => format!("{:.0} MB", b / 1024.0 / 1024.0),
        b => format!("{:.0} kB", b / 1024.0),
    }
}
