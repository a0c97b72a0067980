//! Concurrent index builds that go wrong. `CREATE INDEX CONCURRENTLY` (and `REINDEX …
//! CONCURRENTLY`) that fails part way leaves an INVALID index: the planner never uses it, writes
//! still maintain it, and a retry with `IF NOT EXISTS` would skip it and record the migration as
//! applied. So around each such statement the runner:
//!
//! - before: drops an invalid leftover that the statement is about to build again (the index of
//!   the same name, or the `_ccnew` copies a failed `REINDEX CONCURRENTLY` leaves), so a rerun
//!   rebuilds it;
//! - after, whether the statement succeeded or failed: lists the invalid indexes on the table that
//!   were not there before. Any is a failure of the migration, named, with how to recover.

use confiture_engine::pg::{PgError, Session};
use confiture_engine::sql::IndexBuild;
use tokio_postgres::types::Oid;

/// What to look at after the statement.
pub struct Watch {
    table: Option<Oid>,
    /// The table's invalid indexes before the statement.
    before: Vec<Oid>,
    /// All the table's indexes before the statement.
    existing: Vec<Oid>,
}

/// Prepare for a concurrent index build: drop invalid leftovers it would rebuild, and note the
/// table's invalid indexes.
pub async fn before(session: &Session, build: &IndexBuild, migration: &str) -> Result<Watch, PgError> {
    let client = session.client();
    let table: Option<Oid> = match build {
        IndexBuild::Create { table, .. } | IndexBuild::ReindexTable { table } => {
            client.query_one("SELECT to_regclass($1)::oid", &[&table.sql()]).await?.get(0)
        }
        IndexBuild::ReindexIndex { index } => client
            .query_opt("SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass($1)", &[&index.sql()])
            .await?
            .map(|r| r.get(0)),
    };
    let Some(table) = table else {
        // The statement will fail on its own ("relation does not exist").
        return Ok(Watch { table: None, before: Vec::new(), existing: Vec::new() });
    };
    let like = |s: &str| s.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%");
    let pattern = match build {
        IndexBuild::Create { name: Some(name), .. } => Some(like(name)),
        IndexBuild::Create { name: None, .. } => None,
        // REINDEX CONCURRENTLY leaves `_ccnew` copies (and, failing late, `_ccold` ones).
        IndexBuild::ReindexIndex { index } => Some(format!("{}\\_cc%", like(&index.name))),
        IndexBuild::ReindexTable { .. } => Some("%\\_cc%".to_string()),
    };
    let leftovers = match pattern {
        Some(p) => invalid_named(session, table, &p).await?,
        None => Vec::new(),
    };
    for index in &leftovers {
        tracing::warn!(
            "{migration}: dropping the INVALID index {index} left by an earlier failed concurrent build, to build it again"
        );
        client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")).await?;
    }
    let existing: Vec<Oid> = client
        .query("SELECT indexrelid FROM pg_index WHERE indrelid = $1", &[&table])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Watch {
        table: Some(table),
        before: invalid_on(session, table).await?.into_iter().map(|(o, _)| o).collect(),
        existing,
    })
}

/// After an index build without a name succeeded: an INVALID index on the table with the same
/// definition as the one just built (a leftover of an earlier failed run of it, which had to
/// pick another name) is dropped.
pub async fn drop_superseded(session: &Session, watch: &Watch, migration: &str) -> Result<(), PgError> {
    let Some(table) = watch.table else { return Ok(()) };
    let rows = session
        .client()
        .query(
            "WITH defs AS (
                 SELECT i.indexrelid, i.indisvalid,
                        replace(pg_get_indexdef(i.indexrelid), ' ' || quote_ident(c.relname) || ' ON ', ' ON ') AS def
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1)
             SELECT DISTINCT o.indexrelid::regclass::text
             FROM defs o JOIN defs n ON n.def = o.def
             WHERE NOT o.indisvalid AND n.indisvalid AND NOT (n.indexrelid = ANY($2))",
            &[&table, &watch.existing],
        )
        .await?;
    for row in rows {
        let index: String = row.get(0);
        tracing::warn!(
            "{migration}: dropping {index}, an INVALID copy of the index just built (left by an earlier failed run)"
        );
        session.client().batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")).await?;
    }
    Ok(())
}

/// The invalid indexes on the table that the statement left (names as SQL, qualified if needed).
pub async fn left_invalid(session: &Session, watch: &Watch) -> Result<Vec<String>, PgError> {
    let Some(table) = watch.table else { return Ok(Vec::new()) };
    Ok(invalid_on(session, table)
        .await?
        .into_iter()
        .filter(|(o, _)| !watch.before.contains(o))
        .map(|(_, n)| n)
        .collect())
}

/// Invalid indexes of `table` whose name matches the LIKE `pattern`.
async fn invalid_named(session: &Session, table: Oid, pattern: &str) -> Result<Vec<String>, PgError> {
    let rows = session
        .client()
        .query(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = $1 AND NOT i.indisvalid AND c.relname LIKE $2 ORDER BY 1",
            &[&table, &pattern],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn invalid_on(session: &Session, table: Oid) -> Result<Vec<(Oid, String)>, PgError> {
    let rows = session
        .client()
        .query(
            "SELECT indexrelid, indexrelid::regclass::text FROM pg_index WHERE indrelid = $1 AND NOT indisvalid \
             ORDER BY 1",
            &[&table],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// What to tell the user about invalid indexes a statement left.
pub fn advice(indexes: &[String]) -> String {
    let list = indexes.join(", ");
    let one = indexes.len() == 1;
    format!(
        "it left {} INVALID ({list}): the planner never uses {}, writes still maintain {}. Fix the cause and run \
         `confiture migrate up` again, which drops and rebuilds {}, or drop {} yourself: DROP INDEX CONCURRENTLY {}",
        if one { "an index" } else { "indexes" },
        if one { "it" } else { "them" },
        if one { "it" } else { "them" },
        if one { "it" } else { "them" },
        if one { "it" } else { "them" },
        indexes.first().map(String::as_str).unwrap_or("")
    )
}
