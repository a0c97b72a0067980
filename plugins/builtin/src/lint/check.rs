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

/// Table sizes from a live database, by relation name (`public.` dropped).
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    pub tables: HashMap<String, (f64, i64)>,
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
}

impl Stmt<'_> {
    /// Whether it cannot run inside a transaction (`CREATE INDEX CONCURRENTLY`, …).
    pub fn non_transactional(&self) -> Option<&'static str> {
        match self.classification.kind {
            StatementKind::NonTransactional(w) | StatementKind::ClusterLevel(w) => Some(w),
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
#[derive(Debug, Default)]
pub struct Facts {
    /// Relations created by earlier statements of this run (new, so empty).
    pub created: HashSet<String>,
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
    /// Leading columns of indexes, primary keys and unique constraints, by table.
    pub indexed: HashMap<String, Vec<Vec<String>>>,
    /// Columns named like secrets, and the columns that have comments.
    pub secret_columns: Vec<(String, String, At)>,
    pub commented_columns: HashSet<(String, String)>,
    /// Tables with row-level security enabled, and tables with policies.
    pub rls: Vec<(String, At)>,
    pub policies: HashSet<String>,
}

/// A rule's view of the run.
pub struct Cx<'a> {
    pub facts: &'a Facts,
    sizes: Option<&'a Sizes>,
    meta: &'static Meta,
    severity: Severity,
    out: &'a mut Vec<Finding>,
    sources: &'a [SourceFile],
}

/// An existing table a lock rule is about.
pub struct Target {
    /// `orders`, or `orders (~1.2M rows, 340 MB)` with `--database`.
    pub shown: String,
    /// Known to be empty in the database: the finding is informational.
    pub empty: bool,
}

impl Cx<'_> {
    /// The table, unless it is new: created by an earlier statement of this run or, with
    /// `--database`, absent from that database. Lock rules only matter on tables with rows.
    pub fn existing(&self, r: &Option<RangeVar>) -> Option<Target> {
        self.existing_name(&ast::rel(r.as_ref()?))
    }

    pub fn existing_name(&self, name: &str) -> Option<Target> {
        // With a live database, it knows what exists (a table created by an old, applied
        // migration has rows now); without one, a table created earlier in the files is new.
        match self.sizes {
            None if self.facts.created.contains(name) => None,
            None => Some(Target { shown: name.to_string(), empty: false }),
            Some(sizes) => {
                let (rows, bytes) = *sizes.tables.get(name)?;
                let empty = rows <= 0.0 && bytes <= 8192;
                let shown = if empty {
                    format!("{name} (empty in the database)")
                } else {
                    format!("{name} (~{} rows, {} in the database)", human_count(rows), human_bytes(bytes))
                };
                Some(Target { shown, empty })
            }
        }
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

fn human_count(n: f64) -> String {
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

/// An `-- confiture:ignore RULE reason` comment.
struct Ignore {
    offset: usize,
    rules: Vec<String>,
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
            let rule = rest.split_whitespace().next().unwrap_or("");
            let rules = rule.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect();
            out.push(Ignore { offset: start, rules, used: false });
        }
    }
    out
}

struct Parsed {
    source: SourceFile,
    kind: FileKind,
    statements: Result<Vec<(sql::Statement, Option<NodeEnum>)>, sql::SyntaxError>,
}

/// Lint `inputs` in order (order matters: a table created in an earlier file is new in a later one).
pub fn lint(inputs: Vec<Input>, config: &Config, sizes: Option<&Sizes>) -> LintResult {
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
    // Per file: the ignore comments, and for each statement its byte range and the ignores above it.
    let mut file_ignores: Vec<Vec<Ignore>> = Vec::with_capacity(inputs.len());
    let mut scopes: Vec<Vec<(usize, usize, Vec<usize>)>> = Vec::with_capacity(inputs.len());
    for_each_parsed(inputs, |fi, p| {
        sources.push(p.source.clone());
        facts.lock_timeout = false;
        facts.statement_timeout = false;
        facts.in_transaction = false;
        facts.locking_ddl_seen = false;
        facts.statements_in_file = 0;
        facts.non_transactional_in_file = None;
        facts.transactional_in_file = false;
        file_ignores.push(ignores(&p.source.text));
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
                return;
            }
        };
        let mut prev_end = 0;
        for (st, node) in stmts {
            statements += 1;
            let Some(node) = node else { continue };
            let stmt = Stmt {
                node,
                kind: p.kind,
                offset: st.offset,
                len: st.len,
                file: fi,
                text: st.text(&p.source.text),
                classification: st,
            };
            for (rule, severity) in &rules {
                let mut cx = Cx {
                    facts: &facts,
                    sizes,
                    meta: rule.meta(),
                    severity: *severity,
                    out: &mut findings,
                    sources: &sources,
                };
                rule.check(&stmt, &mut cx);
            }
            // Ignore comments between the previous statement and this one's first token.
            let start = st.offset + leading_comments_len(stmt.text);
            let above: Vec<usize> = file_ignores[fi]
                .iter()
                .enumerate()
                .filter(|(_, i)| i.offset >= prev_end && i.offset < start)
                .map(|(k, _)| k)
                .collect();
            scopes[fi].push((st.offset, st.offset + st.len, above));
            prev_end = st.offset + st.len;
            learn(&mut facts, &stmt, fi);
        }
    });
    for (rule, severity) in &rules {
        let mut cx =
            Cx { facts: &facts, sizes, meta: rule.meta(), severity: *severity, out: &mut findings, sources: &sources };
        rule.finish(&mut cx);
    }
    // Suppress what ignore comments name, per statement (findings of `finish` included).
    findings.retain(|f| {
        let Some((_, _, above)) =
            scopes[f.source].iter().find(|(s, e, _)| f.span.0 >= *s && f.span.0 < (*e).max(*s + 1))
        else {
            return true;
        };
        match above.iter().find(|&&k| file_ignores[f.source][k].rules.iter().any(|r| *r == f.rule || r == "all")) {
            Some(&k) => {
                file_ignores[f.source][k].used = true;
                false
            }
            None => true,
        }
    });
    // Ignore comments that suppressed nothing.
    let meta = &super::rules::UNUSED_IGNORE_META;
    let severity = config.severity_of(meta);
    if severity != Severity::Off {
        for (fi, list) in file_ignores.iter().enumerate() {
            for i in list.iter().filter(|i| !i.used) {
                let known =
                    !i.rules.is_empty() && i.rules.iter().all(|r| r == "all" || super::rules::find(r).is_some());
                let mut cx = Cx { facts: &facts, sizes, meta, severity, out: &mut findings, sources: &sources };
                let at = At { file: fi, offset: i.offset, len: first_line_len(&sources[fi].text[i.offset..]) };
                if known {
                    cx.report_at(
                        at,
                        "this ignore comment suppresses nothing",
                        "remove it, or move it right above the statement it is about",
                    );
                } else {
                    cx.report_at(
                        at,
                        format!("unknown rule in ignore comment: `{}`", i.rules.join(",")),
                        "write `-- confiture:ignore RULE reason` with a rule id from `confiture lint --list-rules`",
                    );
                }
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
fn learn(facts: &mut Facts, stmt: &Stmt<'_>, file: usize) {
    let at = At { file, offset: stmt.offset, len: first_line_len(stmt.text) };
    facts.statements_in_file += 1;
    if stmt.non_transactional().is_some() {
        facts.non_transactional_in_file.get_or_insert(at);
    } else if !matches!(stmt.node, NodeEnum::VariableSetStmt(_) | NodeEnum::TransactionStmt(_)) {
        facts.transactional_in_file = true;
    }
    if blocking_lock(facts, stmt).is_some() {
        facts.locking_ddl_seen = true;
    }
    if let Some(c) = &stmt.classification.creates {
        facts.created.insert(c.strip_prefix("public.").unwrap_or(c).to_string());
    }
    if let NodeEnum::IndexStmt(i) = stmt.node
        && !i.idxname.is_empty()
    {
        facts.created.insert(i.idxname.clone());
    }
    match stmt.node {
        NodeEnum::VariableSetStmt(v) => match v.name.as_str() {
            "lock_timeout" => facts.lock_timeout = true,
            "statement_timeout" => facts.statement_timeout = true,
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
            let (cols, cons) = ast::table_elements(s);
            for c in &cols {
                if super::rules::secret_column::looks_secret(&c.colname) {
                    facts.secret_columns.push((table.clone(), c.colname.clone(), at));
                }
                for k in ast::column_constraints(c) {
                    remember_constraint(facts, &table, Some(&c.colname), k, at);
                }
            }
            for k in cons {
                remember_constraint(facts, &table, None, k, at);
            }
        }
        NodeEnum::AlterTableStmt(s) => {
            let Some(table) = s.relation.as_ref().map(ast::rel) else { return };
            for cmd in ast::alter_cmds(s) {
                match ast::subtype(cmd) {
                    Some(AlterTableType::AtAddColumn) => {
                        if let Some(c) = ast::cmd_column(cmd) {
                            if super::rules::secret_column::looks_secret(&c.colname) {
                                facts.secret_columns.push((table.clone(), c.colname.clone(), at));
                            }
                            for k in ast::column_constraints(c) {
                                remember_constraint(facts, &table, Some(&c.colname), k, at);
                            }
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
        NodeEnum::IndexStmt(i) => {
            if let Some(r) = &i.relation {
                facts.indexed.entry(ast::rel(r)).or_default().push(ast::index_columns(i));
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

/// The first existing relation `stmt` locks in a mode that blocks writes, if any.
pub fn blocking_lock<'a>(facts: &Facts, stmt: &'a Stmt<'_>) -> Option<&'a confiture_engine::sql::locks::Lock> {
    stmt.classification.locks.iter().find(|l| {
        l.mode.blocks_writes() && !facts.created.contains(l.relation.strip_prefix("public.").unwrap_or(&l.relation))
    })
}

fn remember_constraint(facts: &mut Facts, table: &str, column: Option<&str>, k: &protobuf::Constraint, at: At) {
    let keys = || -> Vec<String> {
        let keys = ast::key_names(&k.keys);
        if keys.is_empty() { column.map(|c| vec![c.to_string()]).unwrap_or_default() } else { keys }
    };
    if ast::is(k, ConstrType::ConstrPrimary) || ast::is(k, ConstrType::ConstrUnique) {
        facts.indexed.entry(table.to_string()).or_default().push(keys());
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

    /// Files are parsed ahead on threads but linted in order: each migration indexes the table
    /// the one before it created, which is new (no lock finding) only if the earlier file was
    /// linted first. Many more files than the parse-ahead window.
    #[test]
    fn lints_in_order_past_the_parse_window() {
        let n = 500;
        let inputs: Vec<Input> = (0..n)
            .map(|i| Input {
                name: format!("db/migrations/{i:04}_t.sql"),
                text: if i == 0 {
                    "CREATE TABLE t0 (a bigint PRIMARY KEY);".into()
                } else {
                    format!(
                        "CREATE INDEX t{prev}_a ON t{prev} (a);\nCREATE TABLE t{i} (a bigint PRIMARY KEY);\n{pad}",
                        prev = i - 1,
                        pad = "-- padding\n".repeat(i % 7 * 50)
                    )
                },
                kind: FileKind::Migration,
            })
            .collect();
        let result = lint(inputs, &Config::default(), None);
        assert_eq!(result.sources.len(), n);
        assert!(result.sources.iter().enumerate().all(|(i, s)| s.name == format!("db/migrations/{i:04}_t.sql")));
        assert_eq!(result.statements, 2 * n - 1);
        let locks: Vec<&Finding> =
            result.findings.iter().filter(|f| f.rule == "require-concurrent-index-creation").collect();
        assert!(locks.is_empty(), "{locks:?}");

        // And the rule does fire on a table that is not new.
        let late =
            vec![Input { name: "m.sql".into(), text: "CREATE INDEX ON old (a);".into(), kind: FileKind::Migration }];
        let result = lint(late, &Config::default(), None);
        assert!(result.findings.iter().any(|f| f.rule == "require-concurrent-index-creation"));
    }

    #[test]
    fn leading_comments() {
        assert_eq!(leading_comments_len("-- a\n/* b */ CREATE"), "-- a\n/* b */ ".len());
        assert_eq!(leading_comments_len("CREATE"), 0);
    }
}
