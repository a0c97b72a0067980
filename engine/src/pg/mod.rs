//! PostgreSQL access. Architecture invariant: this is the only module that opens connections.
//!
//! - [`dsn`]: libpq connection strings, `PG*` variables, redaction;
//! - [`tls`]: `sslmode` with real TLS;
//! - [`ephemeral`]: a throwaway cluster from the machine's PostgreSQL binaries;
//! - [`script`]: runs a list of SQL statements pipelined, mapping errors back to files;
//! - [`testing`] (feature `testing`): one cluster per test binary, a fresh database per test.

pub mod dsn;
pub mod ephemeral;
pub mod script;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;

use std::future::Future;

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, Client};
use tokio_util::sync::CancellationToken;

pub use dsn::{ConnInfo, DsnError};

use crate::ExitCode;

/// Everything that can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    #[error(transparent)]
    Dsn(#[from] DsnError),
    #[error("cannot connect to {target}: {tls}")]
    Tls { target: String, tls: tls::TlsError },
    #[error("cannot connect to {target}: {}", describe(.source))]
    Connect { target: String, source: tokio_postgres::Error },
    #[error("{}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Ephemeral(#[from] ephemeral::EphemeralError),
}

impl PgError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            PgError::Dsn(_) => ExitCode::Config,
            PgError::Tls { .. } | PgError::Connect { .. } | PgError::Ephemeral(_) => ExitCode::Connection,
            PgError::Query(e) => exit_code(e, ExitCode::Failure),
            PgError::Cancelled => ExitCode::Interrupted,
        }
    }

    /// The server's error, when there is one.
    pub fn db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            PgError::Query(e) | PgError::Connect { source: e, .. } => e.as_db_error(),
            _ => None,
        }
    }
}

/// The exit code of a failed statement: the connection was lost (closed, an I/O error, SQLSTATE
/// class 08, a terminated or shut-down backend, a FATAL error) → 3; a lock not obtained within
/// `lock_timeout` or `NOWAIT` (55P03) → 6; any other server error → `otherwise`.
pub fn exit_code(err: &tokio_postgres::Error, otherwise: ExitCode) -> ExitCode {
    let Some(db) = err.as_db_error() else {
        // No reply from the server: the connection is gone, or the error is our own (a row that
        // did not decode, an unexpected row count), which is not a connection failure.
        let io =
            std::iter::successors(std::error::Error::source(err), |e| e.source()).any(|e| e.is::<std::io::Error>());
        return if err.is_closed() || io { ExitCode::Connection } else { otherwise };
    };
    let code = db.code().code();
    if code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03")
        || matches!(
            db.parsed_severity(),
            Some(tokio_postgres::error::Severity::Fatal | tokio_postgres::error::Severity::Panic)
        )
    {
        return ExitCode::Connection;
    }
    if code == "55P03" {
        return ExitCode::LockContention;
    }
    otherwise
}

/// A readable, one-paragraph description of a driver error (server message, detail and hint, or
/// the IO cause), never including connection parameters.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        return s;
    }
    let mut s = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    dsn::redact(&s)
}

/// An open connection: the client, plus what is needed to cancel its running query.
pub struct Session {
    client: Client,
    info: ConnInfo,
}

impl Session {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Await `fut`; if `cancel` fires first, ask the server to cancel the running query and wait
    /// for it to stop, then return [`PgError::Cancelled`] (or the result, if the query completed
    /// anyway).
    pub async fn cancellable<T, F>(&self, cancel: &CancellationToken, fut: F) -> Result<T, PgError>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        tokio::pin!(fut);
        tokio::select! {
            biased;
            result = &mut fut => result.map_err(PgError::Query),
            () = cancel.cancelled() => {
                self.cancel_running().await;
                // If the statement finished before the cancel reached the server, it happened:
                // say so, and let the caller stop before the next one.
                match fut.await {
                    Ok(value) => Ok(value),
                    Err(_) => Err(PgError::Cancelled),
                }
            }
        }
    }

    /// Send a cancel request for whatever this session is running.
    pub async fn cancel_running(&self) {
        let token = self.client.cancel_token();
        let result = match tls::connector(&self.info) {
            Ok(tls) => token.cancel_query(tls).await,
            Err(_) => token.cancel_query(tokio_postgres::NoTls).await,
        };
        if let Err(e) = result {
            tracing::warn!("could not cancel the running query: {}", describe(&e));
        }
    }
}

/// Connect with the given application name (shown in `pg_stat_activity`).
pub async fn connect(info: &ConnInfo, application_name: &str) -> Result<Session, PgError> {
    let mut info = info.clone();
    if info.get("application_name").is_none() {
        info.set("application_name", application_name);
    }
    let target = info.to_string();
    let config = info.to_config()?;
    tracing::debug!("connecting to {target}");
    let client = if info.sslmode() == dsn::SslMode::Disable {
        let (client, connection) =
            config.connect(tokio_postgres::NoTls).await.map_err(|source| PgError::Connect { target, source })?;
        spawn_connection(connection);
        client
    } else {
        let tls = tls::connector(&info).map_err(|tls| PgError::Tls { target: target.clone(), tls })?;
        let (client, connection) = config.connect(tls).await.map_err(|source| PgError::Connect { target, source })?;
        spawn_connection(connection);
        client
    };
    Ok(Session { client, info })
}

fn spawn_connection<S, T>(mut connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notice(notice)) => {
                    tracing::debug!("server {}: {}", notice.severity(), notice.message())
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("connection closed: {}", describe(&e));
                    break;
                }
            }
        }
    });
}

/// Quote an identifier for SQL (`"` doubled). Every identifier from config or the catalog goes
/// through this; values go through bind parameters instead.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quote a string literal, for the few statements that cannot take bind parameters (`COMMENT ON
/// DATABASE`, `SET`). Standard-conforming strings are assumed (the default since PostgreSQL 9.1).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes() {
        assert_eq!(super::quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(super::quote_literal("it's"), "'it''s'");
    }
}
