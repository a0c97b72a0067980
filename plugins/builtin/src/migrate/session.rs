//! The migration session: the runner's own settings, and the reset before each migration.
//!
//! Migrations share one session (it holds the advisory lock), so without a reset a `SET
//! statement_timeout = 0`, `SET ROLE` or `SET search_path` in one migration would silently apply
//! to the next, and results would depend on how migrations were batched into runs. Before each
//! migration the session is put back as it was when the runner connected — session user, role,
//! every setting, temporary tables — and the runner's `lock_timeout` / `statement_timeout` are set
//! again. None of this releases the advisory lock.

use super::Job;

/// `SET` statements for the runner's timeouts (each at least 1 ms: 0 would mean "no limit").
pub fn settings(job: &Job) -> String {
    let mut sql = String::new();
    if let Some(t) = job.lock_timeout {
        sql.push_str(&format!("SET lock_timeout = {};", t.as_millis().max(1)));
    }
    if let Some(t) = job.statement_timeout {
        sql.push_str(&format!("SET statement_timeout = {};", t.as_millis().max(1)));
    }
    sql
}

/// The statements that reset the session before a migration. They may run inside a transaction
/// (a rehearsal runs every migration in one).
pub fn reset(job: &Job) -> String {
    format!("SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; DISCARD TEMP; {}", settings(job))
}
