//! TLS for PostgreSQL connections, following libpq's `sslmode` semantics with native-tls.
//!
//! | sslmode | encryption | certificate chain checked | host name checked |
//! |---|---|---|---|
//! | disable | no | – | – |
//! | prefer (allow) | if the server offers it | no | no |
//! | require | yes | only when a root certificate file exists (as libpq: then like verify-ca) | no |
//! | verify-ca | yes | yes | no |
//! | verify-full | yes | yes | yes |
//!
//! The trusted roots are `sslrootcert` (a PEM file, or `system` for the platform's store, which
//! makes `verify-full` the default and refuses weaker modes, as libpq 16), else
//! `~/.postgresql/root.crt`; verify modes without either are refused, as libpq does.

use std::path::{Path, PathBuf};

use postgres_native_tls::MakeTlsConnector;

use super::dsn::{ConnInfo, SslMode};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("invalid {what} {path}: {source}")]
    Parse { what: &'static str, path: PathBuf, source: native_tls::Error },
    #[error(
        "sslmode={mode} needs a root certificate: set sslrootcert=FILE (or sslrootcert=system for the \
         system's trusted roots), or create ~/.postgresql/root.crt"
    )]
    NoRootCert { mode: &'static str },
    #[error("cannot set up TLS: {0}")]
    Setup(native_tls::Error),
}

/// A TLS connector configured for the connection's `sslmode`.
pub fn connector(info: &ConnInfo) -> Result<MakeTlsConnector, TlsError> {
    let mode = info.sslmode();
    let mut builder = native_tls::TlsConnector::builder();
    let root = root_cert(info);
    let verify_chain = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => matches!(root, RootCert::File(_)),
        SslMode::Disable | SslMode::Prefer => false,
    };
    if verify_chain {
        match root {
            RootCert::System => {}
            RootCert::File(path) => {
                let pem = std::fs::read(&path).map_err(|source| TlsError::Read {
                    what: "root certificate",
                    path: path.clone(),
                    source,
                })?;
                let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|source| TlsError::Parse {
                    what: "root certificate",
                    path: path.clone(),
                    source,
                })?;
                builder.disable_built_in_roots(true);
                for cert in certs {
                    builder.add_root_certificate(cert);
                }
            }
            RootCert::None => {
                return Err(TlsError::NoRootCert {
                    mode: if mode == SslMode::VerifyFull { "verify-full" } else { "verify-ca" },
                });
            }
        }
        builder.danger_accept_invalid_hostnames(mode != SslMode::VerifyFull);
    } else {
        builder.danger_accept_invalid_certs(true);
        builder.danger_accept_invalid_hostnames(true);
    }
    if let (Some(cert), Some(key)) = (info.get("sslcert"), info.get("sslkey")) {
        let read =
            |p: &str, what| std::fs::read(p).map_err(|source| TlsError::Read { what, path: PathBuf::from(p), source });
        let identity =
            native_tls::Identity::from_pkcs8(&read(cert, "client certificate")?, &read(key, "client key")?).map_err(
                |source| TlsError::Parse { what: "client certificate or key", path: PathBuf::from(cert), source },
            )?;
        builder.identity(identity);
    }
    let connector = builder.build().map_err(TlsError::Setup)?;
    Ok(MakeTlsConnector::new(connector))
}

enum RootCert {
    System,
    File(PathBuf),
    None,
}

fn root_cert(info: &ConnInfo) -> RootCert {
    match info.get("sslrootcert") {
        Some("system") => RootCert::System,
        Some(path) => RootCert::File(PathBuf::from(path)),
        None => match std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")) {
            Some(path) if path.is_file() => RootCert::File(path),
            _ => RootCert::None,
        },
    }
}
