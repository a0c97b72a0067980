//! What `--database` tells the linter about a live database: table sizes for the lock rules,
//! indexes for the foreign-key rule, column types for the type-change rule.

use std::collections::HashMap;

use confiture_engine::pg::{self, ConnInfo, PgError};
use confiture_engine::stage::StageError;

/// What `--database` tells the linter about a live database (names with `public.` dropped).
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// The schemas of the database's search path (`current_schemas(false)`).
    pub search_path: Vec<String>,
    /// Tables, partitioned tables and materialized views.
    pub relations: HashMap<String, Relation>,
    /// Index name → its table.
    pub index_tables: HashMap<String, String>,
    /// Table → each of its non-partial indexes: name and leading key columns.
    pub indexes: HashMap<String, Vec<(String, Vec<String>)>>,
    /// (table, column) → its type, as `format_type` writes it (`character varying(30)`).
    pub column_types: HashMap<(String, String), String>,
}

/// A relation of the live database.
#[derive(Clone, Copy, Debug, Default)]
pub struct Relation {
    /// The planner's row estimate (`reltuples`, summed over partitions); `None` if never analyzed.
    pub rows: Option<f64>,
    /// `pg_relation_size` (summed over partitions).
    pub bytes: i64,
    pub partitioned: bool,
}

/// What the lock and index rules need to know about a live database: every table's row
/// estimate and size (partitioned tables summed over their partitions), every index's table and
/// key columns, every column's type. Three set-based catalog queries, pipelined; read only.
pub async fn read(info: &ConnInfo) -> Result<Live, StageError> {
    let session = pg::connect(info, "confiture lint").await?;
    let client = session.client();
    const USER_SCHEMAS: &str =
        "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'";
    let relations = format!(
        "SELECT n.nspname, c.relname, c.relkind = 'p',
                CASE WHEN c.relkind = 'p' THEN
                    (SELECT CASE WHEN bool_or(l.reltuples >= 0) THEN sum(greatest(l.reltuples, 0))::float8 END
                     FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
                ELSE CASE WHEN c.reltuples >= 0 THEN c.reltuples::float8 END END,
                CASE WHEN c.relkind = 'p' THEN
                    (SELECT coalesce(sum(pg_relation_size(t.relid)), 0)::int8
                     FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
                ELSE pg_relation_size(c.oid) END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND {USER_SCHEMAS}"
    );
    let indexes = format!(
        "SELECT n.nspname, i.relname, tn.nspname, t.relname, pg_get_expr(x.indpred, x.indrelid),
                ARRAY(SELECT a.attname::text
                      FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                      LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                      WHERE k.ord <= x.indnkeyatts ORDER BY k.ord)
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
         JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE {USER_SCHEMAS}"
    );
    let columns = format!(
        "SELECT n.nspname, c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {USER_SCHEMAS}"
    );
    let (path, relations, indexes, columns) = tokio::try_join!(
        client.query_one("SELECT current_schemas(false)::text[]", &[]),
        client.query(&relations, &[]),
        client.query(&indexes, &[]),
        client.query(&columns, &[])
    )
    .map_err(PgError::from)?;
    let name = |schema: String, name: String| if schema == "public" { name } else { format!("{schema}.{name}") };
    let mut live = Live { search_path: path.get(0), ..Live::default() };
    for r in relations {
        live.relations.insert(
            name(r.get(0), r.get(1)),
            Relation { partitioned: r.get(2), rows: r.get(3), bytes: r.get::<_, Option<i64>>(4).unwrap_or(0) },
        );
    }
    for r in indexes {
        let table = name(r.get(2), r.get(3));
        let index: String = r.get(1);
        live.index_tables.insert(name(r.get(0), index.clone()), table.clone());
        // Leading key columns, up to the first expression.
        let keys: Vec<Option<String>> = r.get(5);
        let keys: Vec<String> = keys.into_iter().map_while(|k| k).collect();
        // A partial index serves only the queries its predicate matches; `WHERE col IS NOT
        // NULL` on its own columns still serves lookups by value.
        let predicate: Option<String> = r.get(4);
        if predicate.as_deref().is_none_or(|p| super::ast::predicate_only_excludes_nulls(p, &keys)) {
            live.indexes.entry(table).or_default().push((index, keys));
        }
    }
    for r in columns {
        live.column_types.insert((name(r.get(0), r.get(1)), r.get(2)), r.get(3));
    }
    Ok(live)
}
