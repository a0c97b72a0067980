//! Run many SQL statements over one connection with pipelining: every statement is its own simple
//! query (so an error names exactly one statement and its position is relative to it), but they
//! are sent without waiting for each reply, so a schema of thousands of statements costs about one
//! network round trip instead of one per statement.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::Poll;

use futures::Future;
use tokio_util::sync::CancellationToken;

use super::Session;

/// How many statements may be in flight at once (bounds client memory, not server work).
const WINDOW: usize = 512;

/// Why a script stopped.
#[derive(Debug)]
pub enum ScriptError {
    /// Statement `index` (0-based, in the order given) failed.
    Statement {
        index: usize,
        error: tokio_postgres::Error,
    },
    Cancelled,
}

/// One request of a pipeline: a future that sends on its first poll.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>;

/// Execute `statements` in order, pipelined. Stops sending at the first failure and returns it
/// (statements already in flight after a failure are drained; inside a transaction they fail with
/// "current transaction is aborted" and change nothing).
///
/// `progress` is called with the number of statements done so far, at most every 250 ms.
pub async fn run_pipelined<'a, I>(
    session: &'a Session,
    statements: I,
    cancel: &CancellationToken,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<usize, ScriptError>
where
    I: IntoIterator<Item = &'a str>,
{
    let client = session.client();
    // Collected first: a closure held across an await makes the future not `Send` for callers.
    let requests: Vec<Pending<'a>> =
        statements.into_iter().map(|sql| Box::pin(client.batch_execute(sql)) as Pending<'a>).collect();
    run_requests(session, requests, cancel, progress).await
}

/// Like [`run_pipelined`], for any requests (simple queries, prepared statements).
pub async fn run_requests<'a, I>(
    session: &'a Session,
    requests: I,
    cancel: &CancellationToken,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<usize, ScriptError>
where
    I: IntoIterator<Item = Pending<'a>>,
{
    let mut last_progress = std::time::Instant::now();
    let mut requests = requests.into_iter().enumerate();
    let mut in_flight: VecDeque<(usize, Pending<'a>)> = VecDeque::new();
    let mut first_error: Option<(usize, tokio_postgres::Error)> = None;
    let mut done = 0usize;
    let mut exhausted = false;
    loop {
        while !exhausted && first_error.is_none() && in_flight.len() < WINDOW {
            match requests.next() {
                Some((index, mut fut)) => {
                    // Poll once now so the request is written in order.
                    match futures::poll!(fut.as_mut()) {
                        Poll::Ready(result) => {
                            record(result, index, &mut first_error, &mut done);
                        }
                        Poll::Pending => in_flight.push_back((index, fut)),
                    }
                }
                None => exhausted = true,
            }
        }
        let Some((index, fut)) = in_flight.front_mut() else { break };
        let index = *index;
        tokio::select! {
            biased;
            result = fut.as_mut() => {
                in_flight.pop_front();
                record(result, index, &mut first_error, &mut done);
                if last_progress.elapsed() >= std::time::Duration::from_millis(250) {
                    last_progress = std::time::Instant::now();
                    progress(done);
                }
            }
            () = cancel.cancelled() => {
                session.cancel_running().await;
                for (_, fut) in in_flight.drain(..) {
                    let _ = fut.await;
                }
                return Err(ScriptError::Cancelled);
            }
        }
    }
    match first_error {
        Some((index, error)) => Err(ScriptError::Statement { index, error }),
        None => Ok(done),
    }
}

fn record(
    result: Result<(), tokio_postgres::Error>,
    index: usize,
    first_error: &mut Option<(usize, tokio_postgres::Error)>,
    done: &mut usize,
) {
    match result {
        Ok(()) => *done += 1,
        Err(e) => {
            if first_error.is_none() {
                *first_error = Some((index, e));
            }
        }
    }
}

/// A diagnostic for a server error raised by `statement`, which starts at byte `offset` of
/// `file`: PostgreSQL's error position (characters from 1, relative to the statement) becomes a
/// span in the file; without one, the statement's first line is marked.
pub fn error_diagnostic(
    file: &crate::diag::SourceFile,
    offset: usize,
    statement: &str,
    error: &tokio_postgres::Error,
) -> crate::diag::Diagnostic {
    use crate::diag::Diagnostic;
    use tokio_postgres::error::ErrorPosition;

    let Some(db) = error.as_db_error() else {
        let first_line = statement.lines().next().unwrap_or("").len().max(1);
        return Diagnostic::error("postgres::connection", (offset..offset + first_line).into(), super::describe(error))
            .with_label("while running this statement")
            .with_source(file);
    };
    let (span, label) = match db.position() {
        Some(ErrorPosition::Original(pos)) => {
            let at = offset + crate::sql::char_to_byte_offset(statement, (*pos as usize).saturating_sub(1));
            (token_span(&file.text, at), "error here".to_string())
        }
        Some(ErrorPosition::Internal { position, query }) => {
            let first_line = statement.lines().next().unwrap_or("").len().max(1);
            let pos = (*position as usize).saturating_sub(1);
            let excerpt: String = query.chars().skip(pos.saturating_sub(20)).take(50).collect();
            ((offset..offset + first_line).into(), format!("in this statement, at `{}`", excerpt.trim()))
        }
        None => {
            let first_line = statement.lines().next().unwrap_or("").len().max(1);
            ((offset..offset + first_line).into(), "in this statement".to_string())
        }
    };
    let mut d = Diagnostic::error(format!("postgres::{}", db.code().code()), span, db.message().to_string())
        .with_label(label)
        .with_source(file);
    d.help = db.hint().map(str::to_string).or_else(|| db.detail().map(|s| format!("detail: {s}")));
    d
}

/// The span of the token starting at `at` (an identifier, number or quoted name), at least one
/// character.
fn token_span(text: &str, at: usize) -> miette::SourceSpan {
    let len = crate::sql::token_len(&text[at.min(text.len())..]);
    (at..at + len).into()
}

/// The fields of a server error for the JSON report.
pub fn error_fields(error: &tokio_postgres::Error) -> Vec<(&'static str, String)> {
    let Some(db) = error.as_db_error() else { return Vec::new() };
    let mut fields = vec![("sqlstate", db.code().code().to_string()), ("severity", db.severity().to_string())];
    for (key, value) in [
        ("detail", db.detail()),
        ("hint", db.hint()),
        ("context", db.where_()),
        ("schema", db.schema()),
        ("table", db.table()),
        ("column", db.column()),
        ("constraint", db.constraint()),
    ] {
        if let Some(v) = value {
            fields.push((key, v.to_string()));
        }
    }
    fields
}
