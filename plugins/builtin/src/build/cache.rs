//! The template cache: after a build, a copy of the database is kept as a template named after
//! the schema hash (`confiture_tpl_<first 16 hex digits>`); a later build of the same files on the
//! same server is a `CREATE DATABASE … TEMPLATE`, which takes milliseconds.
//!
//! Templates are marked `IS_TEMPLATE` and `ALLOW_CONNECTIONS false` (a session connected to a
//! template would block copies) and carry a JSON comment saying what they are and which database
//! they were built for; per target database, only the [`KEEP`] most recent are kept, so projects
//! sharing a server do not evict each other's templates.
//!
//! `CREATE DATABASE … TEMPLATE` copies the contents of a database, not what belongs to the
//! database object itself: its settings (`ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE …
//! SET`), privileges (`GRANT … ON DATABASE`), comment and connection limit. So when a template is
//! kept, those are read from the catalog of the database the build made and recorded in the
//! template's comment, and a cache hit replays them onto the copy: a hit gives the same database
//! as a miss. Templates recorded without them (by an older confiture) are not used.

use confiture_engine::pg::{PgError, Session, quote_ident, quote_literal};
use serde::{Deserialize, Serialize};

/// How many templates to keep per target database.
pub const KEEP: usize = 3;
const PREFIX: &str = "confiture_tpl_";

pub fn template_name(hash: &str) -> String {
    format!("{PREFIX}{}", &hash[..16])
}

/// What belongs to a database object rather than to its contents, as the build left it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseLevel {
    /// `(role or none for every role, "name=value")`, from `pg_db_role_setting`.
    pub settings: Vec<(Option<String>, String)>,
    /// `(grantee or none for PUBLIC, privilege, grantable)`, when `datacl` is not the default.
    pub acl: Option<Vec<(Option<String>, String, bool)>>,
    pub comment: Option<String>,
    pub connection_limit: i32,
    /// The owner, when a schema file gave the database to another role.
    #[serde(default)]
    pub owner: Option<String>,
}

/// A usable template: how many statements built it, and the database-level state to replay.
pub struct Cached {
    pub statements: usize,
    pub database: DatabaseLevel,
}

/// If our template for `hash` exists, what it holds. A template only counts if the current role
/// owns it and its comment names the full hash: on a shared server, a database that merely has
/// the right name could hold anything.
pub async fn lookup(session: &Session, name: &str, hash: &str) -> Result<Option<Cached>, PgError> {
    let row = session
        .client()
        .query_opt(
            "SELECT shobj_description(d.oid, 'pg_database') FROM pg_database d
             WHERE d.datname = $1 AND d.datistemplate
               AND d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
            &[&name],
        )
        .await?;
    let Some(note) = row.and_then(|r| r.get::<_, Option<String>>(0)) else { return Ok(None) };
    let Ok(note) = serde_json::from_str::<serde_json::Value>(&note) else { return Ok(None) };
    if note["schema_hash"].as_str() != Some(hash) {
        return Ok(None);
    }
    let Ok(database) = serde_json::from_value::<DatabaseLevel>(note["database"].clone()) else { return Ok(None) };
    let statements = note["statements"].as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    Ok(Some(Cached { statements, database }))
}

/// Create `target` as a copy of the template, then give it the database-level state the build
/// had left on the database the template was made from.
pub async fn create_from(session: &Session, target: &str, template: &str, db: &DatabaseLevel) -> Result<(), PgError> {
    let client = session.client();
    let sql = format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(target), quote_ident(template));
    client.batch_execute(&sql).await?;
    let result = replay(session, target, db).await;
    if result.is_err() {
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(target))).await;
    }
    result
}

async fn replay(session: &Session, target: &str, db: &DatabaseLevel) -> Result<(), PgError> {
    let client = session.client();
    let name = quote_ident(target);
    let mut sql = String::new();
    if db.connection_limit != -1 {
        sql.push_str(&format!("ALTER DATABASE {name} CONNECTION LIMIT {};", db.connection_limit));
    }
    if let Some(acl) = &db.acl {
        sql.push_str(&format!("REVOKE ALL ON DATABASE {name} FROM PUBLIC, CURRENT_USER;"));
        for (grantee, privilege, grantable) in acl {
            let to = grantee.as_deref().map_or_else(|| "PUBLIC".to_string(), quote_ident);
            // The privilege comes from aclexplode: one of a fixed set of keywords.
            if !matches!(privilege.as_str(), "CREATE" | "CONNECT" | "TEMPORARY") {
                continue;
            }
            let option = if *grantable { " WITH GRANT OPTION" } else { "" };
            sql.push_str(&format!("GRANT {privilege} ON DATABASE {name} TO {to}{option};"));
        }
    }
    if let Some(comment) = &db.comment {
        sql.push_str(&format!("COMMENT ON DATABASE {name} IS {};", quote_literal(comment)));
    }
    if !sql.is_empty() {
        client.batch_execute(&sql).await?;
    }
    for (role, setting) in &db.settings {
        let Some((key, value)) = setting.split_once('=') else { continue };
        let target = match role {
            Some(r) => format!("ROLE {} IN DATABASE {name}", quote_ident(r)),
            None => format!("DATABASE {name}"),
        };
        client
            .batch_execute(&format!("ALTER {target} SET {} = {}", quote_ident(key), setting_value(key, value)))
            .await?;
    }
    // Last: once it belongs to another role, we may no longer change it.
    if let Some(owner) = &db.owner {
        client.batch_execute(&format!("ALTER DATABASE {name} OWNER TO {}", quote_ident(owner))).await?;
    }
    Ok(())
}

/// A stored setting's value (`pg_db_role_setting` holds text) written back as SQL: one literal,
/// or — for the settings PostgreSQL keeps as quoted lists, like pg_dump does — one per element.
fn setting_value(key: &str, value: &str) -> String {
    const LISTS: &[&str] = &[
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    ];
    if !LISTS.contains(&key.to_ascii_lowercase().as_str()) {
        return quote_literal(value);
    }
    let mut elements = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => elements.push(std::mem::take(&mut current)),
            c if c.is_whitespace() && !quoted => {}
            c => current.push(c),
        }
    }
    elements.push(current);
    elements.iter().map(|e| quote_literal(e)).collect::<Vec<_>>().join(", ")
}

/// Drop a template that could not be used (it would fail the same way every time).
pub async fn discard(session: &Session, name: &str) {
    let client = session.client();
    let result =
        match client.batch_execute(&format!("ALTER DATABASE {} WITH IS_TEMPLATE false", quote_ident(name))).await {
            Ok(()) => client.batch_execute(&format!("DROP DATABASE {}", quote_ident(name))).await,
            Err(e) => Err(e),
        };
    if let Err(e) = result {
        tracing::warn!("could not drop the build template {name}: {}", confiture_engine::pg::describe(&e));
    }
}

/// The database-level state of `name`, from the catalog.
pub async fn database_level(session: &Session, name: &str) -> Result<DatabaseLevel, PgError> {
    let row = session
        .client()
        .query_one(
            "SELECT d.datconnlimit,
                    (SELECT coalesce(json_agg(json_build_array(r.rolname, c.v) ORDER BY r.rolname NULLS FIRST, c.n), '[]')
                     FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole,
                          unnest(s.setconfig) WITH ORDINALITY AS c(v, n)
                     WHERE s.setdatabase = d.oid)::text,
                    CASE WHEN d.datacl IS NOT NULL THEN
                        (SELECT coalesce(json_agg(json_build_array(
                                    CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
                                    a.privilege_type, a.is_grantable)), '[]')
                         FROM aclexplode(d.datacl) a)::text END,
                    shobj_description(d.oid, 'pg_database'),
                    CASE WHEN d.datdba <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
                         THEN pg_get_userbyid(d.datdba) END
             FROM pg_database d WHERE d.datname = $1",
            &[&name],
        )
        .await?;
    fn parse<T: serde::de::DeserializeOwned>(text: Option<String>) -> Option<T> {
        text.and_then(|t| serde_json::from_str(&t).ok())
    }
    Ok(DatabaseLevel {
        connection_limit: row.get(0),
        settings: parse(row.get(1)).unwrap_or_default(),
        acl: parse(row.get(2)),
        comment: row.get(3),
        owner: row.get(4),
    })
}

/// Keep a copy of `source` (which nobody may be connected to) as the template for `hash`.
pub async fn store(session: &Session, source: &str, hash: &str, statements: usize) -> Result<(), PgError> {
    let name = template_name(hash);
    let client = session.client();
    let database = database_level(session, source).await?;
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
        "database": database,
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
        discard(session, &name).await;
    }
    Ok(())
}
