//! The built-in switch for applications behind PgBouncer: on its admin console `PAUSE db` (it
//! waits for running transactions to end and holds new ones), the `[databases]` entry of
//! pgbouncer.ini repointed, `RELOAD`, `RESUME db`. Applications see a pause, not an error.

use std::path::Path;
use std::time::Duration;

use confiture_engine::ExitCode;
use confiture_engine::pg::ConnInfo;
use confiture_engine::stage::StageError;
use tokio_postgres::{Client, NoTls};

use super::Bouncer;

fn failure(m: impl Into<String>) -> StageError {
    StageError::new(ExitCode::Failure, m)
}

/// A session on the admin console (it speaks only the simple query protocol).
pub struct Console {
    client: Client,
    database: String,
}

impl Console {
    pub async fn connect(b: &Bouncer) -> Result<Console, StageError> {
        let info = ConnInfo::parse(&b.admin)
            .map_err(|e| StageError::new(ExitCode::Config, format!("pgbouncer admin: {e}")))?;
        let config =
            info.to_config().map_err(|e| StageError::new(ExitCode::Config, format!("pgbouncer admin: {e}")))?;
        let (client, connection) = config.connect(NoTls).await.map_err(|e| {
            StageError::new(ExitCode::Connection, format!("cannot reach PgBouncer's admin console at {info}: {e}"))
        })?;
        tokio::spawn(connection);
        Ok(Console { client, database: b.database.clone() })
    }

    async fn command(&self, verb: &str) -> Result<(), StageError> {
        // The admin console takes names bare; refuse anything that is not a plain name.
        if !self.database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(StageError::new(
                ExitCode::Config,
                format!("pgbouncer database `{}`: not a plain name", self.database),
            ));
        }
        let sql = if verb == "RELOAD" { "RELOAD".to_string() } else { format!("{verb} {}", self.database) };
        self.client.simple_query(&sql).await.map_err(|e| failure(format!("PgBouncer `{sql}`: {e}")))?;
        Ok(())
    }

    /// `PAUSE db`, given up (and resumed) after `timeout`.
    pub async fn pause(&self, timeout: Duration) -> Result<(), StageError> {
        match tokio::time::timeout(timeout, self.command("PAUSE")).await {
            Ok(r) => r,
            Err(_) => {
                let _ = self.command("RESUME").await;
                Err(StageError::new(
                    ExitCode::LockContention,
                    format!(
                        "PgBouncer could not pause `{}` within {timeout:?}: a transaction stayed open",
                        self.database
                    ),
                ))
            }
        }
    }

    pub async fn resume(&self) -> Result<(), StageError> {
        self.command("RESUME").await
    }

    pub async fn reload(&self) -> Result<(), StageError> {
        self.command("RELOAD").await
    }
}

/// Rewrite `database`'s entry in the `[databases]` section to reach `to` (its host, port and
/// dbname; the entry's other settings kept), atomically, keeping the file's owner and mode.
pub fn repoint(config: &Path, database: &str, to: &ConnInfo) -> Result<(), StageError> {
    let text = std::fs::read_to_string(config).map_err(|e| failure(format!("reading {}: {e}", config.display())))?;
    let out = repoint_text(&text, database, to)
        .ok_or_else(|| failure(format!("{} has no entry `{database} = …` in [databases]", config.display())))?;
    let meta = std::fs::metadata(config).map_err(|e| failure(format!("{}: {e}", config.display())))?;
    let tmp = config.with_extension("ini.confiture-tmp");
    std::fs::write(&tmp, out).map_err(|e| failure(format!("writing {}: {e}", tmp.display())))?;
    std::fs::set_permissions(&tmp, meta.permissions()).map_err(|e| failure(format!("{}: {e}", tmp.display())))?;
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
    }
    std::fs::rename(&tmp, config).map_err(|e| failure(format!("replacing {}: {e}", config.display())))?;
    Ok(())
}

fn repoint_text(text: &str, database: &str, to: &ConnInfo) -> Option<String> {
    let mut section = String::new();
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].trim().to_ascii_lowercase();
        }
        let entry = trimmed.split_once('=').filter(|(k, _)| section == "databases" && k.trim() == database);
        match entry {
            Some((_, value)) if !found => {
                found = true;
                let mut parts: Vec<(String, String)> = value
                    .split_whitespace()
                    .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                for key in ["host", "port", "dbname"] {
                    if let Some(v) = to.get(key) {
                        match parts.iter_mut().find(|(k, _)| k == key) {
                            Some(p) => p.1 = v.to_string(),
                            None => parts.push((key.to_string(), v.to_string())),
                        }
                    }
                }
                let value: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("{database} = {}\n", value.join(" ")));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use confiture_engine::pg::ConnInfo;

    #[test]
    fn repoints_one_entry() {
        let ini = "[databases]\napp = host=127.0.0.1 port=5432 dbname=old pool_size=5\nother = host=x\n[pgbouncer]\nlisten_port = 6432\n";
        let to = ConnInfo::parse("postgresql://u@10.0.0.2:5433/new").unwrap();
        let out = super::repoint_text(ini, "app", &to).unwrap();
        assert!(out.contains("app = host=10.0.0.2 port=5433 dbname=new pool_size=5\n"), "{out}");
        assert!(out.contains("other = host=x\n") && out.contains("listen_port = 6432"));
        assert!(super::repoint_text(ini, "missing", &to).is_none());
    }
}
