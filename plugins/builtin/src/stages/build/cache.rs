//! The template cache: after a build, a copy of the database is kept as a template named after
//! the schema hash (`confiture_tpl_<first 16 hex digits>`); a later build of the same files on the
//! same server is a `CREATE DATABASE … TEMPLATE`, which takes milliseconds.
//!
//! Templates are marked `IS_TEMPLATE` and `ALLOW_CONNECTIONS false` (a session connected to a
//! template would block copies) and carry a JSON comment saying what they are and which database
//! they were built for; per target database, only the [`KEEP`] most recent are kept, so projects
//! sharing a server do not evict each other's templates.

use confiture_engine::pg::{PgError, Session, quote_ident, quote_literal};

/// How many templates to keep per target database.
pub const KEEP: usize = 3;
const PREFIX: &str = "confiture_tpl_";

pub fn template_name(hash: &str) -> String {
    format!("{PREFIX}{}", &hash[..16])
}

/// Whether the template for `hash` exists.
pub async fn exists(session: &Session, name: &str) -> Result<bool, PgError> {
    let row =
        session.client().query_opt("SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate", &[&name]).await?;
    Ok(row.is_some())
}

/// Create `target` as a copy of the template.
pub async fn create_from(session: &Session, target: &str, template: &str) -> Result<(), PgError> {
    let sql = format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(target), quote_ident(template));
    session.client().batch_execute(&sql).await?;
    Ok(())
}

/// Keep a copy of `source` (which nobody may be connected to) as the template for `hash`.
pub async fn store(session: &Session, source: &str, hash: &str) -> Result<(), PgError> {
    let name = template_name(hash);
    let client = session.client();
    let create = format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(&name), quote_ident(source));
    match client.batch_execute(&create).await {
        Ok(()) => {}
        // Another build of the same files got there first: that template is as good as ours.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let comment = serde_json::json!({
        "created_by": "confiture build",
        "schema_hash": hash,
        "target": source,
        "created_at": confiture_engine::report::now_rfc3339(),
    });
    let sql = format!(
        "ALTER DATABASE {n} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false; COMMENT ON DATABASE {n} IS {c}",
        n = quote_ident(&name),
        c = quote_literal(&comment.to_string())
    );
    if let Err(e) = client.batch_execute(&sql).await {
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&name))).await;
        return Err(e.into());
    }
    prune(session, source).await
}

/// Drop all but the [`KEEP`] newest templates built for `target`.
pub async fn prune(session: &Session, target: &str) -> Result<(), PgError> {
    let rows = session
        .client()
        .query(
            "SELECT datname FROM (
                 SELECT oid, datname, shobj_description(oid, 'pg_database') AS note
                 FROM pg_database WHERE datistemplate AND datname LIKE $1
             ) t
             WHERE CASE WHEN note LIKE '{%' THEN note::jsonb ->> 'target' END = $2
             ORDER BY oid DESC OFFSET $3",
            &[&format!("{}%", PREFIX.replace('_', "\\_")), &target, &(KEEP as i64)],
        )
        .await?;
    for row in rows {
        let name: String = row.get(0);
        tracing::debug!("dropping old build template {name}");
        let sql = format!("ALTER DATABASE {n} WITH IS_TEMPLATE false; DROP DATABASE {n}", n = quote_ident(&name));
        if let Err(e) = session.client().batch_execute(&sql).await {
            tracing::warn!("could not drop old build template {name}: {}", confiture_engine::pg::describe(&e));
        }
    }
    Ok(())
}
