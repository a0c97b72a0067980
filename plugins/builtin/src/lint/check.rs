//! The lint driver: parse, walk statements in order with what is known so far, collect findings.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use confiture_engine::diag::SourceFile;
use confiture_engine::pg_query::NodeEnum;
use confiture_engine::pg_query::protobuf::{self, AlterTableType, ConstrType, RangeVar};
use confiture_engine::sql::{self, StatementKind};
use serde::Serialize;

use super::ast;
use super::{Config, Meta, Rule, Severity};

/// What a file is; some rules only apply to migrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A migration (`db/migrations/…`): changes an existing database.
    Migration,
    /// A schema file (`db/schema/…`): builds a database from nothing.
    Schema,
    /// Anything else (a path given on the command line, stdin).
    Other,
}

impl FileKind {
    /// Guess from a path: under a `migrations` directory or named `*.up.sql`/`*.down.sql` is a
    /// migration; under `schema` is a schema file.
    pub fn of(path: &str) -> FileKind {
        let p = path.replace('\\', "/");
        if p.ends_with(".up.sql") || p.ends_with(".down.sql") || p.split('/').any(|c| c == "migrations") {
            FileKind::Migration
        } else if p.split('/').any(|c| c == "schema") {
            FileKind::Schema
        } else {
            FileKind::Other
        }
    }
}

/// A file to lint.
pub struct Input {
    /// Shown in findings (a path relative to the project, or `<stdin>`).
    pub name: String,
    pub text: String,
    pub kind: FileKind,
}

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

/// Everything a lint run found.
#[derive(Debug, Default)]
pub struct LintResult {
    pub findings: Vec<Finding>,
    /// Files that do not parse (also in `findings`, as rule `syntax-error`).
    pub syntax_errors: Vec<Finding>,
    pub sources: Vec<SourceFile>,
    pub statements: usize,
}

/// What `--database` tells the linter about a live database (names with `public.` dropped).
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// The schemas of the database's search path (`current_schemas(false)`).
    pub search_path: Vec<String>,
    /// Tables, partitioned tables and materialized views.
    pub relations: HashMap<String, Relation>,
    /// Index name → its table.
    pub index_tables: HashMap<String, String>,
    /// Table → each of its non-partial indexes: name and leading key columns.
    pub indexes: HashMap<String, Vec<(String, Vec<String>)>>,
    /// (table, column) → its type, as `format_type` writes it (`character varying(30)`).
    pub column_types: HashMap<(String, String), String>,
}

/// A relation of the live database.
#[derive(Clone, Copy, Debug, Default)]
pub struct Relation {
    /// The planner's row estimate (`reltuples`, summed over partitions); `None` if never analyzed.
    pub rows: Option<f64>,
    /// `pg_relation_size` (summed over partitions).
    pub bytes: i64,
    pub partitioned: bool,
}

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
}

/// Where a fact was learned, to point findings of `finish` at it.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub file: usize,
    pub offset: usize,
    pub len: usize,
}

/// What the statements so far have established.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Relations (and indexes) created by earlier statements of this run, with the file that
    /// created them.
    pub created: HashMap<String, usize>,
    /// Columns added by ALTER TABLE … ADD COLUMN, with the file that added them.
    pub added_columns: HashMap<(String, String), usize>,
    /// Tables created with PARTITION BY.
    pub partitioned: HashSet<String>,
    /// A table's new name (after RENAME or SET SCHEMA) → its name before.
    pub aliases: HashMap<String, String>,
    /// Per file: the schemas of `SET search_path`, in order.
    pub search_path: Option<Vec<String>>,
    /// Indexes dropped by the files (they no longer serve foreign keys).
    pub dropped_indexes: HashSet<String>,
    /// Index name → its table, for indexes created in the files.
    pub index_tables: HashMap<String, String>,
    /// (table, column) → its type, from CREATE TABLE, ADD COLUMN and ALTER COLUMN … TYPE.
    pub column_types: HashMap<(String, String), ast::Type>,
    /// Tables created without a primary key, until one is added.
    pub without_primary_key: Vec<(String, At)>,
    /// Functions created or altered with a pinned search_path; SECURITY DEFINER ones without.
    pub pinned_functions: HashSet<String>,
    pub definer_functions: Vec<(String, At)>,
    /// Per file: `SET lock_timeout` / `SET statement_timeout` seen, inside BEGIN…COMMIT.
    pub lock_timeout: bool,
    pub statement_timeout: bool,
    pub in_transaction: bool,
    /// Per file: a statement took a write-blocking lock on an existing table.
    pub locking_ddl_seen: bool,
    /// Per file: statements so far, and the first non-transactional one.
    pub statements_in_file: usize,
    pub non_transactional_in_file: Option<At>,
    pub transactional_in_file: bool,
    /// Foreign keys: table, its columns, where.
    pub foreign_keys: Vec<(String, Vec<String>, At)>,
    /// Leading columns of non-partial indexes (with their names), primary keys and unique
    /// constraints, by table.
    pub indexed: HashMap<String, Vec<(String, Vec<String>)>>,
    /// Columns named like secrets, and the columns that have comments.
    pub secret_columns: Vec<(String, String, At)>,
    pub commented_columns: HashSet<(String, String)>,
    /// Tables with row-level security enabled, and tables with policies.
    pub rls: Vec<(String, At)>,
    pub policies: HashSet<String>,
}

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
}

/// A rule's view of the run.
pub struct Cx<'a> {
    pub facts: &'a Facts,
    pub scope: Scope<'a>,
    meta: &'static Meta,
    severity: Severity,
    out: &'a mut Vec<Finding>,
    sources: &'a [SourceFile],
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

impl Cx<'_> {
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
            Some(l) => (l, token_len(&self.sources[stmt.file].text[l..])),
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

pub(crate) fn human_count(n: f64) -> String {
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

fn token_len(rest: &str) -> usize {
    let len = match rest.chars().next() {
        Some('"') => rest[1..].find('"').map_or(1, |i| i + 2),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len())
        }
        Some(c) => c.len_utf8(),
        None => 0,
    };
    len.max(1).min(rest.len())
}

fn first_line_len(text: &str) -> usize {
    text.lines().next().unwrap_or("").len().max(1)
}

/// An `-- confiture:ignore RULE[,RULE…] reason` comment.
struct Ignore {
    offset: usize,
    rules: Vec<String>,
    reason: bool,
    used: bool,
}

fn ignores(text: &str) -> Vec<Ignore> {
    const MARK: &str = "confiture:ignore";
    if !text.contains(MARK) {
        return Vec::new();
    }
    // Only real comments count: the scanner knows a comment from a string that mentions one.
    let Ok(scan) = confiture_engine::pg_query::scan(text) else { return Vec::new() };
    let mut out = Vec::new();
    for t in scan.tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        let Some(comment) = text.get(start..end) else { continue };
        let body = comment.trim_start_matches("--").trim_start_matches("/*").trim_end_matches("*/").trim();
        if let Some(rest) = body.strip_prefix(MARK) {
            let (rules, reason) = ignore_rules(rest);
            out.push(Ignore { offset: start, rules, reason, used: false });
        }
    }
    out
}

/// `drop-column,drop-table why` or `drop-column, drop-table why` → the rules, and whether a
/// reason follows.
fn ignore_rules(rest: &str) -> (Vec<String>, bool) {
    let mut words = rest.split_whitespace().peekable();
    let mut list = String::new();
    while let Some(w) = words.next() {
        list.push_str(w);
        let more = w.ends_with(',') || words.peek().is_some_and(|n| n.starts_with(','));
        if !more {
            break;
        }
    }
    let rules = list.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect();
    (rules, words.next().is_some())
}

struct Parsed {
    source: SourceFile,
    kind: FileKind,
    statements: Result<Vec<(sql::Statement, Option<NodeEnum>)>, sql::SyntaxError>,
}

/// Lint `inputs` in order (order matters: a table created in an earlier file is new in a later one).
///
/// The rules walk parse trees recursively, and SQL may nest a few hundred levels deep (as deep
/// as libpg_query accepts): they run on a stack of their own, large and committed only as used,
/// whatever thread calls this.
pub fn lint(inputs: Vec<Input>, config: &Config, live: Option<&Live>) -> LintResult {
    confiture_engine::sql::stack::run(|| lint_here(inputs, config, live))
}

fn lint_here(inputs: Vec<Input>, config: &Config, live: Option<&Live>) -> LintResult {
    let mut sources: Vec<SourceFile> = Vec::with_capacity(inputs.len());
    let rules: Vec<(&'static dyn Rule, Severity)> = super::rules::RULES
        .iter()
        .map(|r| (*r, config.severity_of(r.meta())))
        .filter(|(_, s)| *s != Severity::Off)
        .collect();
    let mut facts = Facts::default();
    let mut findings = Vec::new();
    let mut syntax_errors = Vec::new();
    let mut statements = 0;
    let mut kinds = Vec::with_capacity(inputs.len());
    let mut ups: Vec<Option<usize>> = Vec::with_capacity(inputs.len());
    // Per file: the ignore comments, and for each statement its byte range and the ignores
    // that apply to it (above it, or after it on its last line).
    let mut file_ignores: Vec<Vec<Ignore>> = Vec::with_capacity(inputs.len());
    let mut scopes: Vec<Vec<(usize, usize, Vec<usize>)>> = Vec::with_capacity(inputs.len());
    for_each_parsed(inputs, |fi, p| {
        // A down migration right after its up.
        let up = p.source.name.strip_suffix(".down.sql").and_then(|stem| {
            let prev = sources.last()?;
            (prev.name.strip_suffix(".up.sql") == Some(stem)).then(|| fi - 1)
        });
        ups.push(up);
        sources.push(p.source.clone());
        kinds.push(p.kind);
        facts.lock_timeout = false;
        facts.statement_timeout = false;
        facts.in_transaction = false;
        facts.locking_ddl_seen = false;
        facts.statements_in_file = 0;
        facts.non_transactional_in_file = None;
        facts.transactional_in_file = false;
        facts.search_path = None;
        file_ignores.push(ignores(&p.source.text));
        // A down migration is the way back, not a step forward: what it does must not shape
        // how later files are judged.
        let before_down = p.source.name.ends_with(".down.sql").then(|| facts.clone());
        scopes.push(Vec::new());
        let stmts = match &p.statements {
            Ok(s) => s,
            Err(e) => {
                let offset = e.offset.unwrap_or(0);
                let (line, column) = p.source.line_col(offset);
                let mut message = e.message.clone();
                if let Some(h) = e.help(&p.source.text) {
                    message.push_str(&format!(" ({h})"));
                }
                syntax_errors.push(Finding {
                    rule: "syntax-error".into(),
                    severity: Severity::Error,
                    message,
                    help: "fix the SQL so PostgreSQL's parser accepts it; nothing else in this file was checked".into(),
                    file: p.source.name.clone(),
                    line,
                    column,
                    end_line: line,
                    end_column: column + 1,
                    span: (offset, 1),
                    source: fi,
                });
                // Its ignores were not given a chance: do not call them unused.
                for i in &mut file_ignores[fi] {
                    i.used = true;
                }
                return;
            }
        };
        let text = &p.source.text;
        let mut prev_end = 0;
        for (st, node) in stmts {
            statements += 1;
            let Some(node) = node else { continue };
            let scope = Scope {
                facts: &facts,
                live,
                runner_timeouts: config.runner_timeouts,
                file: fi,
                kind: p.kind,
                up: ups[fi],
            };
            let stmt = Stmt {
                node,
                kind: p.kind,
                offset: st.offset,
                len: st.len,
                file: fi,
                text: st.text(text),
                classification: st,
                reindexes_partitioned: reindexes_partitioned(node, &scope),
            };
            for (rule, severity) in &rules {
                let mut cx = Cx {
                    facts: &facts,
                    scope,
                    meta: rule.meta(),
                    severity: *severity,
                    out: &mut findings,
                    sources: &sources,
                };
                rule.check(&stmt, &mut cx);
            }
            // Ignore comments between the previous statement and this one's first token belong
            // to this one — except one that ends the previous statement's last line (after it,
            // with this statement on a later line) — and so do those inside it.
            let start = st.offset + leading_comments_len(stmt.text);
            let end = st.offset + st.len;
            let mut above = Vec::new();
            for (k, i) in file_ignores[fi].iter().enumerate().filter(|(_, i)| i.offset >= prev_end && i.offset < end) {
                let trailing = prev_end > 0
                    && i.offset < start
                    && !text[prev_end..i.offset].contains('\n')
                    && text[i.offset..start].contains('\n');
                match scopes[fi].last_mut() {
                    Some(prev) if trailing => prev.2.push(k),
                    _ => above.push(k),
                }
            }
            scopes[fi].push((st.offset, st.offset + st.len, above));
            prev_end = st.offset + st.len;
            let locks = scope.blocking_lock(&stmt).is_some();
            let exists_already = st.creates.as_ref().is_some_and(|c| {
                ast::creates_if_not_exists(node) && scope.known_to_exist(c.strip_prefix("public.").unwrap_or(c))
            });
            learn(&mut facts, &stmt, fi, locks, exists_already);
        }
        if let Some(before) = before_down {
            facts = before;
        }
        // A trailing ignore after the file's last statement.
        if let Some(last) = scopes[fi].last_mut() {
            for (k, i) in file_ignores[fi].iter().enumerate().filter(|(_, i)| i.offset >= prev_end) {
                if !text[prev_end..i.offset].contains('\n') {
                    last.2.push(k);
                }
            }
        }
    });
    let scope_of = |file: usize| Scope {
        facts: &facts,
        live,
        runner_timeouts: config.runner_timeouts,
        file,
        kind: kinds.get(file).copied().unwrap_or(FileKind::Other),
        up: ups.get(file).copied().flatten(),
    };
    let mut finished = Vec::new();
    for (rule, severity) in &rules {
        let mut cx = Cx {
            facts: &facts,
            scope: scope_of(usize::MAX),
            meta: rule.meta(),
            severity: *severity,
            out: &mut finished,
            sources: &sources,
        };
        rule.finish(&mut cx);
    }
    findings.append(&mut finished);
    // Suppress what ignore comments name, per statement (findings of `finish` included).
    findings.retain(|f| {
        let Some((_, _, applies)) =
            scopes[f.source].iter().find(|(s, e, _)| f.span.0 >= *s && f.span.0 < (*e).max(*s + 1))
        else {
            return true;
        };
        match applies.iter().find(|&&k| file_ignores[f.source][k].rules.iter().any(|r| *r == f.rule || r == "all")) {
            Some(&k) => {
                file_ignores[f.source][k].used = true;
                false
            }
            None => true,
        }
    });
    // Ignore comments that suppressed nothing, or say no why.
    let unused = (&super::rules::UNUSED_IGNORE_META, config.severity_of(super::rules::UNUSED_IGNORE_META));
    let reasonless =
        (&super::rules::IGNORE_WITHOUT_REASON_META, config.severity_of(super::rules::IGNORE_WITHOUT_REASON_META));
    for (fi, list) in file_ignores.iter().enumerate() {
        for i in list {
            let at = At { file: fi, offset: i.offset, len: first_line_len(&sources[fi].text[i.offset..]) };
            let known = |r: &String| r == "all" || super::rules::find(r).is_some();
            let all_known = !i.rules.is_empty() && i.rules.iter().all(known);
            // A rule turned off finds nothing to suppress; that is not the comment's fault.
            let names_off_rule = i
                .rules
                .iter()
                .any(|r| super::rules::find(r).is_some_and(|rule| config.severity_of(rule.meta()) == Severity::Off));
            if unused.1 != Severity::Off && !i.used && !(all_known && names_off_rule) {
                let mut cx = Cx {
                    facts: &facts,
                    scope: scope_of(fi),
                    meta: unused.0,
                    severity: unused.1,
                    out: &mut findings,
                    sources: &sources,
                };
                if all_known {
                    cx.report_at(
                        at,
                        "this ignore comment suppresses nothing",
                        "remove it, or move it right above the statement it is about",
                    );
                } else {
                    let bad: Vec<&str> = i.rules.iter().filter(|r| !known(r)).map(String::as_str).collect();
                    cx.report_at(
                        at,
                        if bad.is_empty() {
                            "this ignore comment names no rule".to_string()
                        } else {
                            format!("unknown rule in ignore comment: `{}`", bad.join(","))
                        },
                        "write `-- confiture:ignore RULE reason` with a rule id from `confiture lint --list-rules`",
                    );
                }
            }
            if reasonless.1 != Severity::Off && all_known && !i.reason {
                let mut cx = Cx {
                    facts: &facts,
                    scope: scope_of(fi),
                    meta: reasonless.0,
                    severity: reasonless.1,
                    out: &mut findings,
                    sources: &sources,
                };
                cx.report_at(
                    at,
                    format!("this ignore of {} does not say why", i.rules.join(",")),
                    "add the reason after the rule: `-- confiture:ignore RULE the table has 40 rows`",
                );
            }
        }
    }
    findings.extend(syntax_errors.iter().cloned());
    findings.sort_by(|a, b| (a.source, a.span.0, &a.rule).cmp(&(b.source, b.span.0, &b.rule)));
    LintResult { findings, syntax_errors, sources, statements }
}

fn leading_comments_len(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i + 1..]);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            return text.len() - trimmed.len();
        }
    }
}

/// Parse `inputs` on worker threads and hand each file to `f` in order, on this thread, as soon
/// as it and every file before it are parsed. At most `WINDOW` files are parsed ahead of `f`, so
/// parse trees (ten times the size of the text) are freed as linting goes instead of all being
/// held at once; memory is reused rather than faulted in fresh from the kernel.
fn for_each_parsed(inputs: Vec<Input>, mut f: impl FnMut(usize, Parsed)) {
    const WINDOW: usize = 64;
    let n = inputs.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.max(1));
    let next = AtomicUsize::new(0);
    let done = Mutex::new(0usize);
    let advanced = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, Parsed)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (inputs, next, done, advanced) = (&inputs, &next, &done, &advanced);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    drop(
                        advanced
                            .wait_while(done.lock().expect("the lint thread does not panic holding it"), |d| {
                                i >= *d + WINDOW
                            })
                            .expect("the lint thread does not panic holding it"),
                    );
                    let mut text = input.text.clone();
                    if text.starts_with('\u{feff}') {
                        text.drain(..3);
                    }
                    let statements = sql::parse(&text);
                    let parsed = Parsed {
                        source: SourceFile::new(input.name.clone(), Arc::<str>::from(text)),
                        kind: input.kind,
                        statements,
                    };
                    if tx.send((i, parsed)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // If `f` panics, let the parse threads run out (their sends then fail) so the scope can
        // join them instead of waiting forever.
        struct Release<'a>(&'a Mutex<usize>, &'a Condvar);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Ok(mut d) = self.0.lock() {
                    *d = usize::MAX / 2;
                }
                self.1.notify_all();
            }
        }
        let _release = Release(&done, &advanced);
        let rx = rx;
        let mut ahead: HashMap<usize, Parsed> = HashMap::new();
        for i in 0..n {
            let parsed = loop {
                if let Some(p) = ahead.remove(&i) {
                    break p;
                }
                let (k, p) = rx.recv().expect("a parse thread panicked");
                ahead.insert(k, p);
            };
            f(i, parsed);
            *done.lock().expect("no parse thread panics holding it") = i + 1;
            advanced.notify_all();
        }
    });
}

/// Update the facts with what `stmt` establishes.
fn reindexes_partitioned(node: &NodeEnum, scope: &Scope<'_>) -> bool {
    use protobuf::ReindexObjectType as K;
    let NodeEnum::ReindexStmt(r) = node else { return false };
    let Some(name) = r.relation.as_ref().map(ast::rel) else { return false };
    match K::try_from(r.kind).ok() {
        Some(K::ReindexObjectTable) => scope.partitioned(&name),
        Some(K::ReindexObjectIndex) => scope.index_table(&name).is_some_and(|t| scope.partitioned(&t)),
        _ => false,
    }
}

/// Remember what `stmt` established, for the statements after it. `locks`: it took a
/// write-blocking lock on an existing table.
fn learn(facts: &mut Facts, stmt: &Stmt<'_>, file: usize, locks: bool, exists_already: bool) {
    let at = At { file, offset: stmt.offset, len: first_line_len(stmt.text) };
    facts.statements_in_file += 1;
    if stmt.non_transactional().is_some() {
        facts.non_transactional_in_file.get_or_insert(at);
    } else if !matches!(stmt.node, NodeEnum::VariableSetStmt(_) | NodeEnum::TransactionStmt(_)) {
        facts.transactional_in_file = true;
    }
    if locks {
        facts.locking_ddl_seen = true;
    }
    // `CREATE TABLE IF NOT EXISTS` of a table that exists creates nothing.
    if let Some(c) = &stmt.classification.creates
        && !exists_already
    {
        facts.created.insert(c.strip_prefix("public.").unwrap_or(c).to_string(), file);
    }
    match stmt.node {
        NodeEnum::VariableSetStmt(v) => match v.name.as_str() {
            "lock_timeout" => facts.lock_timeout = true,
            "statement_timeout" => facts.statement_timeout = true,
            "search_path" => facts.search_path = Some(ast::setting_values(&v.args)),
            _ => {}
        },
        NodeEnum::TransactionStmt(t) => {
            use protobuf::TransactionStmtKind as K;
            match K::try_from(t.kind).ok() {
                Some(K::TransStmtBegin | K::TransStmtStart) => facts.in_transaction = true,
                Some(K::TransStmtCommit | K::TransStmtRollback | K::TransStmtPrepare) => facts.in_transaction = false,
                _ => {}
            }
        }
        NodeEnum::CreateStmt(s) => {
            let Some(table) = s.relation.as_ref().map(ast::rel) else { return };
            if s.partspec.is_some() {
                facts.partitioned.insert(table.clone());
            }
            let (cols, cons) = ast::table_elements(s);
            let mut has_pk = false;
            for c in &cols {
                learn_column(facts, &table, c, at);
                for k in ast::column_constraints(c) {
                    has_pk |= ast::is(k, ConstrType::ConstrPrimary);
                    remember_constraint(facts, &table, Some(&c.colname), k, at);
                }
            }
            for k in cons {
                has_pk |= ast::is(k, ConstrType::ConstrPrimary);
                remember_constraint(facts, &table, None, k, at);
            }
            let exempt = s.partbound.is_some()
                || s.of_typename.is_some()
                || s.relation.as_ref().is_some_and(|r| r.relpersistence == "t");
            if !has_pk && !exempt {
                let offset = s.relation.as_ref().and_then(|r| usize::try_from(r.location).ok()).unwrap_or(stmt.offset);
                facts.without_primary_key.push((table, At { file, offset, len: 1 }));
            }
        }
        NodeEnum::AlterTableStmt(s) => {
            let Some(table) = s.relation.as_ref().map(ast::rel) else { return };
            for cmd in ast::alter_cmds(s) {
                match ast::subtype(cmd) {
                    Some(AlterTableType::AtAddColumn) => {
                        if let Some(c) = ast::cmd_column(cmd) {
                            facts.added_columns.insert((table.clone(), c.colname.clone()), file);
                            learn_column(facts, &table, c, at);
                            for k in ast::column_constraints(c) {
                                remember_constraint(facts, &table, Some(&c.colname), k, at);
                            }
                        }
                    }
                    Some(AlterTableType::AtAlterColumnType) => {
                        if let Some(t) = ast::cmd_column(cmd).and_then(|c| c.type_name.as_ref()) {
                            facts.column_types.insert((table.clone(), cmd.name.clone()), ast::type_of(t));
                        }
                    }
                    Some(AlterTableType::AtAddConstraint) => {
                        if let Some(k) = ast::cmd_constraint(cmd) {
                            remember_constraint(facts, &table, None, k, at);
                        }
                    }
                    Some(AlterTableType::AtEnableRowSecurity | AlterTableType::AtForceRowSecurity) => {
                        facts.rls.push((table.clone(), at));
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::RenameStmt(r) if r.rename_type == protobuf::ObjectType::ObjectTable as i32 => {
            if let Some(old) = r.relation.as_ref().map(ast::rel) {
                let schema = old.rsplit_once('.').map(|(s, _)| format!("{s}.")).unwrap_or_default();
                learn_move(facts, &old, format!("{schema}{}", r.newname));
            }
        }
        NodeEnum::AlterObjectSchemaStmt(a) if a.object_type == protobuf::ObjectType::ObjectTable as i32 => {
            if let Some(old) = a.relation.as_ref().map(ast::rel) {
                let name = old.rsplit_once('.').map_or(old.as_str(), |(_, n)| n);
                let new = if a.newschema == "public" { name.to_string() } else { format!("{}.{name}", a.newschema) };
                learn_move(facts, &old, new);
            }
        }
        NodeEnum::DropStmt(d) if d.remove_type == protobuf::ObjectType::ObjectIndex as i32 => {
            for o in &d.objects {
                let Some(parts) = ast::dotted(o) else { continue };
                let index = ast::dotted_rel(&parts);
                let bare = parts.last().cloned().unwrap_or_default();
                for list in facts.indexed.values_mut() {
                    list.retain(|(n, _)| *n != bare);
                }
                facts.dropped_indexes.insert(index);
            }
        }
        NodeEnum::IndexStmt(i) => {
            if let Some(r) = &i.relation {
                let table = ast::rel(r);
                if !i.idxname.is_empty() {
                    let schema = table.rsplit_once('.').map(|(s, _)| format!("{s}.")).unwrap_or_default();
                    let index = format!("{schema}{}", i.idxname);
                    facts.created.insert(index.clone(), file);
                    facts.index_tables.insert(index, table.clone());
                }
                // A partial index serves only the queries its predicate matches; `WHERE col IS
                // NOT NULL` on its own columns still serves lookups by value.
                let columns = ast::index_columns(i);
                if i.where_clause.as_deref().is_none_or(|p| ast::only_excludes_nulls(p, &columns)) {
                    facts.indexed.entry(table).or_default().push((i.idxname.clone(), columns));
                }
            }
        }
        NodeEnum::CreateFunctionStmt(f) => {
            let name = ast::names(&f.funcname).join(".");
            if ast::pins_search_path(&f.options) {
                facts.pinned_functions.insert(name);
            } else if ast::security_definer(&f.options) {
                facts.definer_functions.push((name, at));
            }
        }
        NodeEnum::AlterFunctionStmt(f) => {
            let Some(func) = &f.func else { return };
            let name = ast::names(&func.objname).join(".");
            if ast::pins_search_path(&f.actions) {
                facts.pinned_functions.insert(name);
            } else if ast::security_definer(&f.actions) {
                facts.definer_functions.push((name, at));
            }
        }
        NodeEnum::CommentStmt(c) if c.objtype == protobuf::ObjectType::ObjectColumn as i32 => {
            if let Some(parts) = c.object.as_deref().and_then(ast::dotted)
                && parts.len() >= 2
            {
                let column = parts[parts.len() - 1].clone();
                let table = ast::dotted_rel(&parts[..parts.len() - 1]);
                facts.commented_columns.insert((table, column));
            }
        }
        NodeEnum::CreatePolicyStmt(p) => {
            if let Some(r) = &p.table {
                facts.policies.insert(ast::rel(r));
            }
        }
        _ => {}
    }
}

/// A table renamed or moved to another schema: the same table under a new name (new if it was).
fn learn_move(facts: &mut Facts, old: &str, new: String) {
    if let Some(f) = facts.created.get(old).copied() {
        facts.created.insert(new.clone(), f);
    }
    if facts.partitioned.contains(old) {
        facts.partitioned.insert(new.clone());
    }
    let original = facts.aliases.get(old).cloned().unwrap_or_else(|| old.to_string());
    facts.aliases.insert(new, original);
}

fn learn_column(facts: &mut Facts, table: &str, c: &protobuf::ColumnDef, at: At) {
    if let Some(t) = &c.type_name {
        facts.column_types.insert((table.to_string(), c.colname.clone()), ast::type_of(t));
    }
    if super::rules::secret_column::looks_secret(&c.colname) {
        let offset = usize::try_from(c.location).unwrap_or(at.offset);
        let at = At { offset, len: c.colname.len().max(1), ..at };
        facts.secret_columns.push((table.to_string(), c.colname.clone(), at));
    }
}

fn remember_constraint(facts: &mut Facts, table: &str, column: Option<&str>, k: &protobuf::Constraint, at: At) {
    let keys = || -> Vec<String> {
        let keys = ast::key_names(&k.keys);
        if keys.is_empty() { column.map(|c| vec![c.to_string()]).unwrap_or_default() } else { keys }
    };
    if ast::is(k, ConstrType::ConstrPrimary) {
        facts.without_primary_key.retain(|(t, _)| t != table);
    }
    if ast::is(k, ConstrType::ConstrPrimary) || ast::is(k, ConstrType::ConstrUnique) {
        facts.indexed.entry(table.to_string()).or_default().push((k.conname.clone(), keys()));
    } else if ast::is(k, ConstrType::ConstrForeign) {
        let cols = ast::key_names(&k.fk_attrs);
        let cols = if cols.is_empty() { column.map(|c| vec![c.to_string()]).unwrap_or_default() } else { cols };
        facts.foreign_keys.push((table.to_string(), cols, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_paths() {
        assert_eq!(FileKind::of("db/migrations/001_a.sql"), FileKind::Migration);
        assert_eq!(FileKind::of("x/002_b.up.sql"), FileKind::Migration);
        assert_eq!(FileKind::of("db/schema/10_tables/users.sql"), FileKind::Schema);
        assert_eq!(FileKind::of("scratch.sql"), FileKind::Other);
    }

    /// Files are parsed ahead on threads but linted in order: each migration widens a column
    /// the one before it created, which the linter knows is not a rewrite only if the earlier
    /// file was linted first. Many more files than the parse-ahead window.
    #[test]
    fn lints_in_order_past_the_parse_window() {
        let n = 500;
        let inputs: Vec<Input> = (0..n)
            .map(|i| Input {
                name: format!("db/migrations/{i:04}_t.sql"),
                text: format!(
                    "{alter}CREATE TABLE t{i} (a bigint PRIMARY KEY, v varchar(10));\n{pad}",
                    alter = if i == 0 {
                        String::new()
                    } else {
                        format!("ALTER TABLE t{} ALTER COLUMN v TYPE varchar(20);\n", i - 1)
                    },
                    pad = "-- padding\n".repeat(i % 7 * 50)
                ),
                kind: FileKind::Migration,
            })
            .collect();
        let result = lint(inputs, &Config::default(), None);
        assert_eq!(result.sources.len(), n);
        assert!(result.sources.iter().enumerate().all(|(i, s)| s.name == format!("db/migrations/{i:04}_t.sql")));
        assert_eq!(result.statements, 2 * n - 1);
        let rewrites = result.findings.iter().filter(|f| f.rule == "column-type-change").count();
        assert_eq!(rewrites, 0, "{:?}", result.findings.iter().take(3).collect::<Vec<_>>());

        // Without the earlier file, the old type is unknown and the change may rewrite.
        let alone = vec![Input {
            name: "db/migrations/0002_t.sql".into(),
            text: "ALTER TABLE t1 ALTER COLUMN v TYPE varchar(20);".into(),
            kind: FileKind::Migration,
        }];
        let result = lint(alone, &Config::default(), None);
        assert!(result.findings.iter().any(|f| f.rule == "column-type-change"));
    }

    /// Without a database, a table created by an earlier migration counts as existing (it may
    /// have been applied long ago); one created in the same file is new; a down migration may
    /// remove what its up created.
    #[test]
    fn what_counts_as_new() {
        let file = |name: &str, text: &str| Input { name: name.into(), text: text.into(), kind: FileKind::of(name) };
        let inputs = vec![
            file("db/migrations/001_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY, a int);"),
            file("db/migrations/001_t.down.sql", "DROP TABLE t;"),
            file(
                "db/migrations/002_a.up.sql",
                "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nCREATE INDEX t_a ON t (a);\nALTER TABLE t ADD COLUMN b int;\nCREATE TABLE u (id bigint PRIMARY KEY);\nCREATE INDEX u_id ON u (id);",
            ),
            file("db/migrations/002_a.down.sql", "SET lock_timeout = '1s';\nALTER TABLE t DROP COLUMN b;"),
            file("db/schema/t.sql", "CREATE TABLE t (id bigint PRIMARY KEY, a int);"),
            file("db/schema/t_a.sql", "CREATE INDEX t_a ON t (a);"),
        ];
        let result = lint(inputs, &Config::default(), None);
        let got: Vec<(String, &str)> = result
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| (format!("{}:{}", f.file.rsplit('/').next().unwrap(), f.line), f.rule.as_str()))
            .collect();
        assert_eq!(
            got,
            [("002_a.up.sql:2".to_string(), "require-concurrent-index-creation")],
            "{:#?}",
            result.findings
        );
    }

    /// Facts learned from a down migration do not carry into later files; a dropped index no
    /// longer serves a foreign key; a moved or renamed new table stays new; ON ONLY on a known
    /// plain table builds a whole index; dropping an index locks its table even if the index
    /// is new.
    #[test]
    fn downs_drops_moves_and_only() {
        let file = |name: &str, text: &str| Input { name: name.into(), text: text.into(), kind: FileKind::of(name) };
        let timeouts = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n";
        let inputs = vec![
            file(
                "db/migrations/001.up.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(100), org_id bigint);\nCREATE INDEX users_org ON users (org_id);",
            ),
            file(
                "db/migrations/002.up.sql",
                &format!("{timeouts}ALTER TABLE users ALTER COLUMN name TYPE varchar(200);\nDROP INDEX users_org;"),
            ),
            file(
                "db/migrations/002.down.sql",
                &format!(
                    "{timeouts}ALTER TABLE users ALTER COLUMN name TYPE varchar(100);\nCREATE INDEX users_org ON users (org_id);"
                ),
            ),
            file(
                "db/migrations/003.up.sql",
                &format!(
                    "{timeouts}ALTER TABLE users ALTER COLUMN name TYPE varchar(150);\nALTER TABLE users ADD FOREIGN KEY (org_id) REFERENCES orgs (id) NOT VALID;"
                ),
            ),
            file(
                "db/migrations/004.up.sql",
                &format!(
                    "{timeouts}CREATE TABLE w (a int);\nALTER TABLE w SET SCHEMA s;\nCREATE INDEX ON s.w (a);\nALTER TABLE s.w RENAME TO w2;\nCREATE INDEX ON s.w2 (a);\nCREATE INDEX users_name ON ONLY users (name);"
                ),
            ),
            file(
                "db/migrations/005.up.sql",
                &format!("{timeouts}CREATE INDEX users_x ON users (name);\nDROP INDEX users_x;"),
            ),
        ];
        let result = lint(inputs, &Config::default(), None);
        let got: Vec<(String, &str)> = result
            .findings
            .iter()
            .filter(|f| {
                f.severity != Severity::Info
                    && !f.rule.starts_with("require-primary")
                    && f.rule != "prefer-text-over-varchar"
            })
            .map(|f| (format!("{}:{}", f.file.rsplit('/').next().unwrap(), f.line), f.rule.as_str()))
            .collect();
        let want = [
            ("002.up.sql:3", "require-concurrent-index-deletion"),
            ("002.down.sql:2", "column-type-change"),
            ("002.down.sql:3", "require-concurrent-index-creation"),
            ("003.up.sql:2", "column-type-change"),
            ("003.up.sql:3", "foreign-key-without-index"),
            ("004.up.sql:7", "require-concurrent-index-creation"),
            ("005.up.sql:2", "require-concurrent-index-creation"),
            ("005.up.sql:3", "require-concurrent-index-deletion"),
        ];
        let want: Vec<(String, &str)> = want.iter().map(|(a, b)| (a.to_string(), *b)).collect();
        assert_eq!(got, want);
        let narrowing =
            result.findings.iter().find(|f| f.file.ends_with("003.up.sql") && f.rule == "column-type-change").unwrap();
        assert!(narrowing.message.contains("from varchar(200) to varchar(150)"), "{}", narrowing.message);
    }

    #[test]
    fn leading_comments() {
        assert_eq!(leading_comments_len("-- a\n/* b */ CREATE"), "-- a\n/* b */ ".len());
        assert_eq!(leading_comments_len("CREATE"), 0);
    }
}
