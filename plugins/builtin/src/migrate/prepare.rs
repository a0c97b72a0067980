//! A migration file parsed for running: its statements, and whether it runs in a transaction.

use std::sync::Arc;

use confiture_engine::ExitCode;
use confiture_engine::diag::{Diagnostic, SourceFile};
use confiture_engine::sql::{self, StatementKind};
use confiture_engine::stage::StageError;

use super::report::StatementReport;

/// The directive that makes a migration run statement by statement, outside a transaction.
pub const NO_TRANSACTION: &str = "-- confiture:no-transaction";

/// A parsed SQL file.
pub struct Prepared {
    pub source: SourceFile,
    pub statements: Vec<sql::Statement>,
    /// `None`: one transaction; `Some(why)`: statement by statement.
    pub outside_transaction: Option<String>,
}

impl Prepared {
    pub fn text(&self, i: usize) -> &str {
        self.statements[i].text(&self.source.text)
    }

    pub fn transactional(&self) -> bool {
        self.outside_transaction.is_none()
    }

    /// The statements as a dry run shows them. Locks on relations the migration itself created
    /// earlier are left out: nothing else can be using them yet.
    pub fn report(&self) -> Vec<StatementReport> {
        let mut created: Vec<&str> = Vec::new();
        self.statements
            .iter()
            .map(|s| {
                let locks = s.locks.iter().filter(|l| !created.contains(&l.relation.as_str())).cloned().collect();
                if let Some(c) = &s.creates {
                    created.push(c);
                }
                let text = s.text(&self.source.text);
                let first =
                    text.lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--")).unwrap_or("");
                let mut shown: String = first.trim().chars().take(120).collect();
                if first.trim().chars().count() > 120 || text.lines().count() > 1 {
                    shown.push_str(" …");
                }
                let why = match s.kind {
                    StatementKind::NonTransactional(w) | StatementKind::ClusterLevel(w) => Some(w.to_string()),
                    _ => None,
                };
                StatementReport {
                    line: self.source.line_col(s.offset).0,
                    transactional: why.is_none(),
                    why,
                    locks,
                    sql: shown,
                }
            })
            .collect()
    }
}

/// Parse `bytes` (the file `shown`), refusing what a migration may not contain. `server_version`
/// (`server_version_num`) decides whether `ALTER TYPE … ADD VALUE` can run in a transaction.
pub fn prepare(shown: &str, bytes: &[u8], server_version: i32) -> Result<Prepared, StageError> {
    let mut text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        StageError::new(
            ExitCode::Config,
            format!("{shown} is not valid UTF-8 (byte {}); save it as UTF-8", e.utf8_error().valid_up_to()),
        )
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..3);
    }
    let source = SourceFile::new(shown, Arc::<str>::from(text));
    let statements = sql::split(&source.text).map_err(|e| {
        let offset = e.offset.unwrap_or(0);
        let mut d = Diagnostic::error("sql::syntax", (offset..offset + 1).into(), e.message.clone())
            .with_label("here")
            .with_source(&source);
        d.help = e.help(&source.text);
        let at =
            d.location().map(|l| format!("{}:{}:{}", l.file, l.line, l.column)).unwrap_or_else(|| shown.to_string());
        StageError::new(ExitCode::Config, format!("{at}: {} (nothing ran)", e.message)).with_diagnostic(d)
    })?;
    let first_line = source.text.lines().next().unwrap_or("").trim();
    let mut outside = (first_line == NO_TRANSACTION).then(|| format!("`{NO_TRANSACTION}`"));
    for s in &statements {
        let first = (s.offset..s.offset + s.text(&source.text).lines().next().unwrap_or("").len()).into();
        match s.kind {
            StatementKind::TransactionControl => {
                let d = Diagnostic::error("migrate::transaction-control", first, "BEGIN/COMMIT inside a migration")
                    .with_label("not allowed")
                    .with_help(format!(
                        "confiture runs each migration in its own transaction; remove it (for statements that cannot run in a \
                         transaction, start the file with `{NO_TRANSACTION}`)"
                    ))
                    .with_source(&source);
                let at = d.location().map(|l| format!("{}:{}", l.file, l.line)).unwrap_or_default();
                return Err(StageError::new(
                    ExitCode::Config,
                    format!("{at}: transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) in a migration is refused (nothing ran)"),
                )
                .with_diagnostic(d));
            }
            StatementKind::NonTransactional(what) | StatementKind::ClusterLevel(what) if outside.is_none() => {
                outside = Some(what.to_string());
            }
            StatementKind::Transactional if s.adds_enum_value && server_version < 120000 && outside.is_none() => {
                outside = Some("ALTER TYPE … ADD VALUE before PostgreSQL 12".into());
            }
            _ => {}
        }
    }
    Ok(Prepared { source, statements, outside_transaction: outside })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_how_a_migration_runs() {
        let cases: &[(&str, Option<&str>)] = &[
            ("CREATE TABLE a (id int);\nCREATE INDEX ON a (id);", None),
            ("CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY ON a (id);", Some("CREATE INDEX CONCURRENTLY")),
            ("-- confiture:no-transaction\nUPDATE a SET id = 1;", Some("`-- confiture:no-transaction`")),
            ("ALTER TYPE mood ADD VALUE 'meh';", None),
        ];
        for (sql, want) in cases {
            let p = prepare("m.up.sql", sql.as_bytes(), 150000).unwrap();
            assert_eq!(p.outside_transaction.as_deref(), *want, "{sql}");
        }
        let old = prepare("m.up.sql", b"ALTER TYPE mood ADD VALUE 'meh';", 110000).unwrap();
        assert!(old.outside_transaction.is_some());
    }

    #[test]
    fn refuses_transaction_control_and_bad_sql() {
        let err =
            prepare("db/migrations/1_a.up.sql", b"BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n", 150000).err().unwrap();
        assert_eq!(err.exit, ExitCode::Config);
        assert!(err.message.starts_with("db/migrations/1_a.up.sql:1: transaction control"), "{}", err.message);
        let err = prepare("x.up.sql", b"CREATE TABLE (;", 150000).err().unwrap();
        assert!(err.message.contains("syntax error") && err.message.contains("x.up.sql:1:"), "{}", err.message);
    }
}
