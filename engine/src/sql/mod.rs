//! SQL text → statements, with PostgreSQL's own parser (libpg_query through `pg_query`).
//!
//! Each statement keeps its byte offset in the text it came from, so errors (ours and the
//! server's) map back to file, line and column. Statements are classified by what they need from
//! a transaction: most run inside one; some cannot (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …); a
//! few act on the whole cluster (`CREATE DATABASE`); and transaction control (`BEGIN`, `COMMIT`)
//! belongs to the runner, not to a file.

use std::ffi::{CStr, CString, c_char, c_int};

pub mod locks;
pub mod stack;

use pg_query::NodeEnum;

/// One statement of a SQL text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Byte offset of the statement's first character in the text.
    pub offset: usize,
    /// Byte length (without the terminating `;`).
    pub len: usize,
    pub kind: StatementKind,
    /// The table locks it takes on existing relations (see [`locks`]).
    pub locks: Vec<locks::Lock>,
    /// `ALTER TYPE … ADD VALUE`: transactional since PostgreSQL 12, not before.
    pub adds_enum_value: bool,
    /// The relation it creates (`CREATE TABLE`, `CREATE TABLE … AS`, `CREATE VIEW`, …), if any.
    pub creates: Option<String>,
    /// A concurrent index build (`CREATE INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`): one that
    /// fails part way leaves an INVALID index behind.
    pub index_build: Option<IndexBuild>,
}

/// What a concurrent index build works on, as written (names may be unqualified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexBuild {
    /// `CREATE INDEX CONCURRENTLY [IF NOT EXISTS] [name] ON table`.
    Create { table: RelName, name: Option<String>, if_not_exists: bool },
    /// `REINDEX INDEX CONCURRENTLY index`.
    ReindexIndex { index: RelName },
    /// `REINDEX TABLE CONCURRENTLY table`.
    ReindexTable { table: RelName },
}

/// A relation name from a parse tree: `schema.name` or `name`, each part unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelName {
    pub schema: Option<String>,
    pub name: String,
}

impl RelName {
    fn of(r: &pg_query::protobuf::RangeVar) -> RelName {
        RelName { schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()), name: r.relname.clone() }
    }

    /// Quoted for SQL (and for `to_regclass`), resolving through `search_path` when unqualified.
    pub fn sql(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        match &self.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.name)),
            None => quote(&self.name),
        }
    }
}

impl Statement {
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.offset..self.offset + self.len]
    }
}

/// What a statement needs from a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// Runs inside a transaction block.
    Transactional,
    /// Cannot run inside a transaction block; names the construct, e.g. `CREATE INDEX CONCURRENTLY`.
    NonTransactional(&'static str),
    /// Acts on the cluster rather than the database (`CREATE DATABASE`, `ALTER SYSTEM`, …).
    ClusterLevel(&'static str),
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, …
    TransactionControl,
}

/// A text that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    /// Byte offset of the error, when the parser knows it.
    pub offset: Option<usize>,
}

impl SyntaxError {
    /// A help line for common causes.
    pub fn help(&self, sql: &str) -> Option<String> {
        let offset = self.offset?;
        let line_start = sql[..offset].rfind('\n').map_or(0, |i| i + 1);
        if sql[line_start..].trim_start().starts_with('\\') {
            return Some(
                "psql meta-commands (\\i, \\set, \\copy, \\connect …) are not SQL; confiture sends files to the \
                 server as they are"
                    .into(),
            );
        }
        None
    }
}

/// Split and classify the statements of `sql`.
pub fn split(sql: &str) -> Result<Vec<Statement>, SyntaxError> {
    // The trees are dropped (a recursive walk too) on the large stack as well.
    stack::run(|| Ok(parse_here(sql)?.into_iter().map(|(s, _)| s).collect()))
}

/// Like [`split`], keeping each statement's parse tree (for linting).
///
/// Parsing, decoding and classifying run on a stack of their own ([`stack::run`]).
pub fn parse(sql: &str) -> Result<Vec<(Statement, Option<NodeEnum>)>, SyntaxError> {
    stack::run(|| parse_here(sql))
}

fn parse_here(sql: &str) -> Result<Vec<(Statement, Option<NodeEnum>)>, SyntaxError> {
    let parsed = parse_protobuf(sql)?;
    let mut out = Vec::with_capacity(parsed.stmts.len());
    for raw in parsed.stmts {
        let start = usize::try_from(raw.stmt_location).unwrap_or(0).min(sql.len());
        let end = match usize::try_from(raw.stmt_len).unwrap_or(0) {
            0 => sql.len(),
            len => (start + len).min(sql.len()),
        };
        let text = &sql[start..end];
        let lead = text.len() - text.trim_start().len();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let node = raw.stmt.and_then(|n| n.node);
        let statement = Statement {
            offset: start + lead,
            len: trimmed.len(),
            kind: node.as_ref().map_or(StatementKind::Transactional, classify),
            locks: node.as_ref().map(locks::locks).unwrap_or_default(),
            adds_enum_value: matches!(node, Some(NodeEnum::AlterEnumStmt(_))),
            creates: node.as_ref().and_then(created_relation),
            index_build: node.as_ref().and_then(index_build),
        };
        out.push((statement, node));
    }
    Ok(out)
}

fn index_build(node: &NodeEnum) -> Option<IndexBuild> {
    match node {
        NodeEnum::IndexStmt(s) if s.concurrent => Some(IndexBuild::Create {
            table: RelName::of(s.relation.as_ref()?),
            name: (!s.idxname.is_empty()).then(|| s.idxname.clone()),
            if_not_exists: s.if_not_exists,
        }),
        NodeEnum::ReindexStmt(s) if classify(node) == StatementKind::NonTransactional("REINDEX CONCURRENTLY") => {
            use pg_query::protobuf::ReindexObjectType as R;
            let relation = RelName::of(s.relation.as_ref()?);
            match R::try_from(s.kind).ok()? {
                R::ReindexObjectIndex => Some(IndexBuild::ReindexIndex { index: relation }),
                R::ReindexObjectTable => Some(IndexBuild::ReindexTable { table: relation }),
                _ => None,
            }
        }
        _ => None,
    }
}

fn created_relation(node: &NodeEnum) -> Option<String> {
    let r = match node {
        NodeEnum::CreateStmt(s) => s.relation.as_ref(),
        NodeEnum::CreateTableAsStmt(s) => s.into.as_ref().and_then(|i| i.rel.as_ref()),
        NodeEnum::ViewStmt(s) => s.view.as_ref(),
        NodeEnum::CreateSeqStmt(s) => s.sequence.as_ref(),
        // SELECT … INTO t creates t.
        NodeEnum::SelectStmt(s) => s.into_clause.as_ref().and_then(|i| i.rel.as_ref()),
        _ => None,
    }?;
    Some(locks::range_var_name(r))
}

fn detaches_concurrently(cmd: &pg_query::protobuf::Node) -> bool {
    let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else { return false };
    c.subtype == pg_query::protobuf::AlterTableType::AtDetachPartition as i32
        && matches!(c.def.as_ref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent)
}

fn classify(node: &NodeEnum) -> StatementKind {
    use StatementKind::*;
    match node {
        NodeEnum::TransactionStmt(_) => TransactionControl,
        NodeEnum::IndexStmt(s) if s.concurrent => NonTransactional("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(s) if s.concurrent => NonTransactional("DROP INDEX CONCURRENTLY"),
        NodeEnum::ReindexStmt(s) => {
            let concurrently = s.params.iter().any(|p| {
                matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
            });
            let kind = pg_query::protobuf::ReindexObjectType::try_from(s.kind).ok();
            use pg_query::protobuf::ReindexObjectType as R;
            if concurrently {
                NonTransactional("REINDEX CONCURRENTLY")
            } else if matches!(kind, Some(R::ReindexObjectSystem | R::ReindexObjectDatabase | R::ReindexObjectSchema)) {
                NonTransactional("REINDEX SCHEMA/DATABASE/SYSTEM")
            } else {
                Transactional
            }
        }
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => NonTransactional("VACUUM"),
        NodeEnum::AlterTableStmt(s) if s.cmds.iter().any(detaches_concurrently) => {
            NonTransactional("DETACH PARTITION CONCURRENTLY")
        }
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => NonTransactional("CLUSTER without a table"),
        NodeEnum::CreatedbStmt(_) => ClusterLevel("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => ClusterLevel("DROP DATABASE"),
        NodeEnum::CreateTableSpaceStmt(_) => ClusterLevel("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => ClusterLevel("DROP TABLESPACE"),
        NodeEnum::AlterSystemStmt(_) => ClusterLevel("ALTER SYSTEM"),
        _ => Transactional,
    }
}

// libpg_query's parse result carries the error's cursor position, which the `pg_query` crate's
// safe API drops; these declarations match pg_query.h of the bundled libpg_query (linked
// statically by the `pg_query` crate).
#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

unsafe extern "C" {
    fn pg_query_parse_protobuf_opts(input: *const c_char, parser_options: c_int) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
}

/// Parse `sql` into libpg_query's protobuf tree. Unlike `pg_query::parse`, this keeps the error's
/// cursor position, and skips the crate's `ParseResult::new`, a walk of every node to collect
/// table and function names we do not use (a third of the time linting a large schema).
/// Parse with libpg_query and decode its protobuf tree. [`parse`] runs this on a large stack:
/// both recurse once per level of the tree (libpg_query's writer in C, prost's decoder in Rust, with frames as large
/// as `Node`'s), and a thread's 2 MiB overflowed at about 100 levels of nested SQL. libpg_query
/// checks its depth against `max_stack_depth`; inputs nested deeper than that are a syntax error.
fn parse_protobuf(sql: &str) -> Result<pg_query::protobuf::ParseResult, SyntaxError> {
    use prost::Message as _;
    let input = CString::new(sql)
        .map_err(|_| SyntaxError { message: "the text contains a NUL byte".into(), offset: sql.find('\0') })?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call; the result is
    // freed exactly once with the matching free function, after we copied what we need out of it.
    unsafe {
        let result = pg_query_parse_protobuf_opts(input.as_ptr(), 0);
        let out = if result.error.is_null() {
            let data: &[u8] = if result.parse_tree.data.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(result.parse_tree.data.cast::<u8>(), result.parse_tree.len)
            };
            pg_query::protobuf::ParseResult::decode(data)
                .map_err(|e| SyntaxError { message: format!("cannot decode the parse tree: {e}"), offset: None })
        } else {
            let err = &*result.error;
            let message = CStr::from_ptr(err.message).to_string_lossy().into_owned();
            // cursorpos counts characters from 1; 0 means unknown.
            let offset =
                usize::try_from(err.cursorpos).ok().filter(|p| *p > 0).map(|p| char_to_byte_offset(sql, p - 1));
            Err(SyntaxError { message, offset })
        };
        pg_query_free_protobuf_parse_result(result);
        out
    }
}

/// Byte offset of the `chars`-th character (0-based) of `text`, clamped to its end.
pub fn char_to_byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}

/// The length in bytes of the SQL token `rest` starts with: an identifier or number (dotted
/// names whole), a quoted name with its quotes, else one character; 0 for an empty text. What a
/// diagnostic underlines at a server's or parser's error position.
pub fn token_len(rest: &str) -> usize {
    match rest.chars().next() {
        Some('"') => rest[1..].find('"').map_or(1, |i| i + 2),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len())
        }
        Some(c) => c.len_utf8(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_parsed_or_refused_never_a_crash() {
        // On a test thread's 2 MiB stack, 100 levels of ARRAY[…] overflowed it (found by fuzzing).
        for (sql, ok) in [
            (format!("SELECT {}1{}", "ARRAY[".repeat(200), "]".repeat(200)), true),
            (format!("SELECT {}", vec!["a"; 300].join(" + ")), true),
            (vec!["SELECT 1"; 300].join(" UNION ALL "), true),
            (format!("SELECT {}1{}", "ARRAY[".repeat(50_000), "]".repeat(50_000)), false),
        ] {
            let result =
                std::thread::spawn(move || parse(&sql).map(|v| v.len())).join().expect("the parse thread returns");
            // Too deep is libpg_query's error ("stack depth limit exceeded", "memory exhausted").
            assert_eq!(result.is_ok(), ok, "{result:?}");
        }
    }

    #[test]
    fn finds_concurrent_index_builds() {
        let rel = |schema: Option<&str>, name: &str| RelName { schema: schema.map(String::from), name: name.into() };
        let cases: &[(&str, Option<IndexBuild>)] = &[
            ("CREATE INDEX ON t (a)", None),
            (
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a)",
                Some(IndexBuild::Create {
                    table: rel(Some("app"), "t"),
                    name: Some("t_a".into()),
                    if_not_exists: true,
                }),
            ),
            (
                "CREATE INDEX CONCURRENTLY ON \"We\"\"ird\" (a)",
                Some(IndexBuild::Create { table: rel(None, "We\"ird"), name: None, if_not_exists: false }),
            ),
            ("REINDEX INDEX CONCURRENTLY t_a", Some(IndexBuild::ReindexIndex { index: rel(None, "t_a") })),
            ("REINDEX (CONCURRENTLY) TABLE app.t", Some(IndexBuild::ReindexTable { table: rel(Some("app"), "t") })),
            ("REINDEX TABLE t", None),
        ];
        for (sql, want) in cases {
            assert_eq!(&split(sql).unwrap()[0].index_build, want, "{sql}");
        }
        assert_eq!(rel(Some("a"), "We\"ird").sql(), "\"a\".\"We\"\"ird\"");
    }

    #[test]
    fn splits_with_offsets() {
        let sql = "-- header\nCREATE TABLE a (id int);\n\n  CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\nSELECT ';'";
        let stmts = split(sql).unwrap();
        let texts: Vec<&str> = stmts.iter().map(|s| s.text(sql)).collect();
        assert_eq!(
            texts,
            vec![
                "CREATE TABLE a (id int)",
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$",
                "SELECT ';'"
            ]
        );
    }

    #[test]
    fn classifies() {
        let cases: &[(&str, StatementKind)] = &[
            ("CREATE TABLE t (id int)", StatementKind::Transactional),
            ("CREATE INDEX CONCURRENTLY i ON t (id)", StatementKind::NonTransactional("CREATE INDEX CONCURRENTLY")),
            ("CREATE INDEX i ON t (id)", StatementKind::Transactional),
            ("DROP INDEX CONCURRENTLY i", StatementKind::NonTransactional("DROP INDEX CONCURRENTLY")),
            ("REINDEX (CONCURRENTLY) TABLE t", StatementKind::NonTransactional("REINDEX CONCURRENTLY")),
            ("REINDEX TABLE CONCURRENTLY t", StatementKind::NonTransactional("REINDEX CONCURRENTLY")),
            ("REINDEX TABLE t", StatementKind::Transactional),
            ("VACUUM t", StatementKind::NonTransactional("VACUUM")),
            (
                "ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY",
                StatementKind::NonTransactional("DETACH PARTITION CONCURRENTLY"),
            ),
            ("ALTER TABLE m DETACH PARTITION m_2020", StatementKind::Transactional),
            ("ANALYZE t", StatementKind::Transactional),
            ("CREATE DATABASE x", StatementKind::ClusterLevel("CREATE DATABASE")),
            ("ALTER SYSTEM SET work_mem = '1MB'", StatementKind::ClusterLevel("ALTER SYSTEM")),
            ("BEGIN", StatementKind::TransactionControl),
            ("COMMIT", StatementKind::TransactionControl),
            ("SAVEPOINT s", StatementKind::TransactionControl),
        ];
        for (sql, want) in cases {
            let got = split(sql).unwrap();
            assert_eq!(got.len(), 1, "{sql}");
            assert_eq!(got[0].kind, *want, "{sql}");
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        let sql = "CREATE TABLE a (id int);\nCREATE TABLE é (id int,);\n";
        let err = split(sql).unwrap_err();
        assert!(err.message.contains("syntax error"), "{}", err.message);
        let offset = err.offset.unwrap();
        assert_eq!(&sql[offset..offset + 1], ")");

        let meta = "\\i other.sql\nSELECT 1;";
        let err = split(meta).unwrap_err();
        assert!(err.help(meta).unwrap().contains("meta-commands"));
    }
}
