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

/// If our template for `hash` exists, the number of statements it was built from. A template
/// only counts if the current role owns it and its comment names the full hash: on a shared
/// server, a database that merely has the right name could hold anything.
pub async fn lookup(session: &Session, name: &str, hash: &str) -> Result<Option<usize>, PgError> {
    let row = session
        .client()
        .query_opt(
            "SELECT CASE WHEN note LIKE '{%' THEN note::jsonb ->> 'statements' END,
                    CASE WHEN note LIKE '{%' THEN note::jsonb ->> 'schema_hash' END
             FROM (SELECT shobj_description(d.oid, 'pg_database') AS note FROM pg_database d
                   WHERE d.datname = $1 AND d.datistemplate
                     AND d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)) t",
            &[&name],
        )
        .await?;
    Ok(row.and_then(|r| {
        let statements: Option<String> = r.get(0);
        let stored: Option<String> = r.get(1);
        (stored.as_deref() == Some(hash)).then(|| statements.and_then(|s| s.parse().ok()).unwrap_or(0))
    }))
}

/// Create `target` as a copy of the template.
pub async fn create_from(session: &Session, target: &str, template: &str) -> Result<(), PgError> {
    let sql = format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(target), quote_ident(template));
    session.client().batch_execute(&sql).await?;
    Ok(())
}

/// Keep a copy of `source` (which nobody may be connected to) as the template for `hash`.
pub async fn store(session: &Session, source: &str, hash: &str, statements: usize) -> Result<(), PgError> {
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
        "statements": statements,
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
                   AND datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)
             ) t
             WHERE CASE WHEN note LIKE '{%' THEN note::jsonb ->> 'target' END = $2
             ORDER BY oid DESC OFFSET $3",
            &[&format!("{}%", PREFIX.replace('_', "\\_")), &target, &(KEEP as i64)],
        )
        .await?;
    for row in rows {
        let name: String = row.get(0);
        tracing::debug!("dropping old build template {name}");
        // Two queries: DROP DATABASE cannot run in the implicit transaction of a multi-statement query.
        let client = session.client();
        let result = match client
            .batch_execute(&format!("ALTER DATABASE {} WITH IS_TEMPLATE false", quote_ident(&name)))
            .await
        {
            Ok(()) => client.batch_execute(&format!("DROP DATABASE {}", quote_ident(&name))).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!("could not drop old build template {name}: {}", confiture_engine::pg::describe(&e));
        }
    }
    Ok(())
}
