//! Parse the collected files into statements, then run them: the transactional ones pipelined in
//! one transaction, then the ones that cannot run in a transaction, one by one.

use std::sync::Arc;

use confiture_engine::ExitCode;
use confiture_engine::diag::{Diagnostic, SourceFile};
use confiture_engine::pg::Session;
use confiture_engine::pg::script::{self, ScriptError};
use confiture_engine::sql::{self, StatementKind};
use confiture_engine::stage::StageError;
use tokio_util::sync::CancellationToken;

use super::collect::SqlFile;

/// A file as text, with its statements.
pub struct ParsedFile {
    pub source: SourceFile,
    pub statements: Vec<sql::Statement>,
}

/// Every statement of the build, in order.
pub struct Script {
    pub files: Vec<ParsedFile>,
    /// (file, statement) indices of the statements run inside the transaction.
    pub transactional: Vec<(usize, usize)>,
    /// (file, statement) indices of the statements run after it.
    pub deferred: Vec<(usize, usize)>,
}

impl Script {
    pub fn statement_count(&self) -> usize {
        self.transactional.len() + self.deferred.len()
    }

    fn text(&self, (f, s): (usize, usize)) -> &str {
        self.files[f].statements[s].text(&self.files[f].source.text)
    }
}

/// Parse every file. Stops at nothing: the first problem is returned, but only after reading all
/// files would be no better — a syntax error makes the build pointless, so we report the first.
pub fn parse(files: &[SqlFile]) -> Result<Script, StageError> {
    let mut parsed = Vec::with_capacity(files.len());
    let mut transactional = Vec::new();
    let mut deferred = Vec::new();
    for (fi, file) in files.iter().enumerate() {
        let mut text = String::from_utf8(file.bytes.clone()).map_err(|e| {
            StageError::new(
                ExitCode::Build,
                format!(
                    "{} is not valid UTF-8 (byte {}); save it as UTF-8",
                    file.relative,
                    e.utf8_error().valid_up_to()
                ),
            )
            .with_field("file", file.relative.clone())
        })?;
        if text.starts_with('\u{feff}') {
            text.drain(..3);
        }
        let source = SourceFile::new(file.relative.clone(), Arc::<str>::from(text));
        let statements = match sql::split(&source.text) {
            Ok(s) => s,
            Err(e) => {
                let offset = e.offset.unwrap_or(0);
                let mut d = Diagnostic::error("sql::syntax", (offset..offset + 1).into(), e.message.clone())
                    .with_label("here")
                    .with_source(&source);
                d.help = e.help(&source.text);
                return Err(StageError::new(
                    ExitCode::Build,
                    format!("{} does not parse: {}", file.relative, e.message),
                )
                .with_field("file", file.relative.clone())
                .with_diagnostic(d));
            }
        };
        for (si, st) in statements.iter().enumerate() {
            let span = (st.offset..st.offset + st.text(&source.text).lines().next().unwrap_or("").len()).into();
            match st.kind {
                StatementKind::Transactional => transactional.push((fi, si)),
                StatementKind::NonTransactional(what) => {
                    tracing::debug!("{}: {what} runs after the transaction", file.relative);
                    deferred.push((fi, si));
                }
                StatementKind::TransactionControl => {
                    return Err(refused(
                        &source,
                        span,
                        "transaction control in a schema file",
                        "the build runs all files in one transaction; remove BEGIN/COMMIT/ROLLBACK/SAVEPOINT from the file",
                    ));
                }
                StatementKind::ClusterLevel(what) => {
                    return Err(refused(
                        &source,
                        span,
                        &format!("{what} in a schema file"),
                        "schema files describe one database; run cluster-level commands outside the build",
                    ));
                }
            }
        }
        parsed.push(ParsedFile { source, statements });
    }
    Ok(Script { files: parsed, transactional, deferred })
}

fn refused(source: &SourceFile, span: miette::SourceSpan, what: &str, help: &str) -> StageError {
    let d = Diagnostic::error("build::statement-not-allowed", span, format!("{what} is not allowed"))
        .with_label("not allowed in a build")
        .with_help(help)
        .with_source(source);
    StageError::new(ExitCode::Build, format!("{}: {what} is not allowed", source.name))
        .with_field("file", source.name.clone())
        .with_diagnostic(d)
}

/// Run the transactional statements in one transaction (pipelined). On failure the transaction
/// is rolled back and the error points at the statement's file, line and column.
pub async fn run_transaction(
    session: &Session,
    script: &Script,
    cancel: &CancellationToken,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<(), StageError> {
    let client = session.client();
    session.cancellable(cancel, client.batch_execute("BEGIN")).await?;
    let statements: Vec<&str> = script.transactional.iter().map(|&i| script.text(i)).collect();
    match script::run_pipelined(session, statements, cancel, progress).await {
        Ok(_) => {
            // Not raced against cancellation: once COMMIT is sent, its outcome is the outcome.
            client.batch_execute("COMMIT").await.map_err(|e| commit_error(script, &e))?;
            Ok(())
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(match e {
                ScriptError::Cancelled => StageError::cancelled(),
                ScriptError::Statement { index, error } => statement_error(script, script.transactional[index], &error),
            })
        }
    }
}

/// Run the statements that cannot run in a transaction, one by one.
pub async fn run_deferred(session: &Session, script: &Script, cancel: &CancellationToken) -> Result<(), StageError> {
    for &i in &script.deferred {
        if let Err(e) = session.cancellable(cancel, session.client().batch_execute(script.text(i))).await {
            return Err(match e {
                confiture_engine::pg::PgError::Query(error) => statement_error(script, i, &error),
                other => other.into(),
            });
        }
    }
    Ok(())
}

fn statement_error(script: &Script, (f, s): (usize, usize), error: &tokio_postgres::Error) -> StageError {
    let file = &script.files[f];
    let st = &file.statements[s];
    let d = script::error_diagnostic(&file.source, st.offset, st.text(&file.source.text), error);
    let location = d.location();
    let exit = confiture_engine::pg::exit_code(error, ExitCode::Build);
    let where_ = location.as_ref().map(|l| format!("{}:{}:{}: ", l.file, l.line, l.column)).unwrap_or_default();
    let mut err = StageError::new(exit, format!("{where_}{}", confiture_engine::pg::describe(error)))
        .with_field("file", file.source.name.clone());
    for (k, v) in script::error_fields(error) {
        err = err.with_field(k, v);
    }
    err.with_diagnostic(d)
}

/// A COMMIT that failed: a deferred constraint (or trigger) checked at the end of the build. The
/// server names the constraint and its table, not a statement; the location given is where that
/// table is created, the best pointer the files offer.
fn commit_error(script: &Script, error: &tokio_postgres::Error) -> StageError {
    let exit = confiture_engine::pg::exit_code(error, ExitCode::Build);
    let Some(db) = error.as_db_error() else {
        return StageError::new(
            exit,
            format!(
                "the connection was lost during COMMIT, so whether the build took effect is unknown: {}",
                confiture_engine::pg::describe(error)
            ),
        );
    };
    let what = match (db.constraint(), db.table()) {
        (Some(c), Some(t)) => format!("constraint {c} on table {t}"),
        (Some(c), None) => format!("constraint {c}"),
        _ => "a deferred check".to_string(),
    };
    let creates = |(f, s): (usize, usize)| {
        let st = &script.files[f].statements[s];
        let name = st.creates.as_deref()?;
        let table = db.table()?;
        let matches = name == table || db.schema().is_some_and(|schema| name == format!("{schema}.{table}"));
        matches.then_some((f, st))
    };
    let found = script.transactional.iter().copied().find_map(creates);
    let mut err = StageError::new(
        exit,
        format!(
            "{}COMMIT failed: {} — {what} is deferred, so it was checked at the end of the build (the seeds are the \
             usual cause); nothing was committed",
            found
                .map(|(f, st)| {
                    let file = &script.files[f];
                    let (line, column) = file.source.line_col(st.offset);
                    format!("{}:{line}:{column}: ", file.source.name)
                })
                .unwrap_or_default(),
            confiture_engine::pg::describe(error)
        ),
    );
    if let Some((f, st)) = found {
        let file = &script.files[f];
        let first_line = st.text(&file.source.text).lines().next().unwrap_or("").len().max(1);
        let d = Diagnostic::error(
            format!("postgres::{}", db.code().code()),
            (st.offset..st.offset + first_line).into(),
            db.message().to_string(),
        )
        .with_label(format!("{what} belongs to this table"))
        .with_source(&file.source);
        err = err.with_field("file", file.source.name.clone()).with_diagnostic(d);
    }
    for (k, v) in script::error_fields(error) {
        err = err.with_field(k, v);
    }
    err
}
