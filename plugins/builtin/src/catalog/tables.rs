//! Tables as data: their columns with types, keys, unique indexes, foreign keys, triggers and
//! size — what the data-moving stages (anonymize, sync, cutover) need to read and write rows,
//! as opposed to the DDL [`Model`](super::Model) diff compares. Read with a few set-based
//! queries in one read-only snapshot.

use std::collections::BTreeMap;

use confiture_engine::pg::{PgError, Session};
use serde::{Deserialize, Serialize};

use super::model::qname;

/// Every ordinary and partitioned table outside the system schemas, by `schema.table`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tables {
    pub tables: BTreeMap<String, Table>,
    /// `current_setting('is_superuser')`, and whether this role may set
    /// `session_replication_role` (superuser, or `GRANT SET` on it from PostgreSQL 15).
    pub may_skip_triggers: bool,
    pub server_version: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `p` for a partitioned table, `r` otherwise.
    pub kind: char,
    /// A partition of another table (masked through its parent).
    pub partition_of: Option<String>,
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order.
    pub primary_key: Option<Vec<String>>,
    /// Unique indexes (primary key included): name, columns (empty for an expression index),
    /// whether it is partial.
    pub unique: Vec<UniqueIndex>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Triggers that are not internal (constraint triggers of foreign keys are left out).
    pub user_triggers: usize,
    /// `reltuples` (−1 or 0 when never analyzed).
    pub estimated_rows: i64,
    /// `pg_class.oid` on the server it was read from.
    #[serde(default)]
    pub oid: u32,
    /// `relpages`: 8 kB pages as of the last VACUUM or ANALYZE.
    #[serde(default)]
    pub pages: i64,
    /// `pg_table_size` (heap and TOAST) in bytes.
    #[serde(default)]
    pub bytes: i64,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type`, e.g. `character varying(64)`.
    pub data_type: String,
    /// `pg_type.typname` of the type, or of its elements for an array.
    pub type_name: String,
    /// `pg_type.typcategory` of the same.
    pub category: String,
    pub array: bool,
    pub not_null: bool,
    /// Characters of varchar(n) / char(n).
    pub max_len: Option<usize>,
    pub generated: bool,
    pub identity: bool,
    pub comment: Option<String>,
    /// A `DEFAULT` expression (identity and generated columns have their own flags).
    #[serde(default)]
    pub has_default: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UniqueIndex {
    pub name: String,
    pub columns: Vec<String>,
    pub partial: bool,
    pub primary: bool,
    /// The constraint it backs (primary key, UNIQUE), if any.
    pub constraint: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    /// `schema.table`.
    pub references: String,
    pub referenced_columns: Vec<String>,
}

impl Table {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// `"schema"."table"`, quoted for SQL.
    pub fn sql_name(&self) -> String {
        qname(&self.schema, &self.name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// A key to walk the table in ranges by: the primary key, else a unique index over NOT NULL
    /// plain columns, none of them in `avoid` (columns about to be rewritten).
    pub fn walking_key(&self, avoid: &[&str]) -> Option<Vec<String>> {
        let usable = |cols: &[String]| {
            !cols.is_empty()
                && cols.iter().all(|c| !avoid.contains(&c.as_str()) && self.column(c).is_some_and(|c| c.not_null))
        };
        if let Some(pk) = &self.primary_key
            && usable(pk)
        {
            return Some(pk.clone());
        }
        self.unique.iter().find(|u| !u.partial && usable(&u.columns)).map(|u| u.columns.clone())
    }
}

const TABLES: &str = "
SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text, c.reltuples::int8,
       (SELECT pn.nspname || '.' || p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
          JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition),
       obj_description(c.oid, 'pg_class'),
       (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)::int8,
       c.relpages::int8, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 2, 3";

const COLUMNS: &str = "
SELECT a.attrelid::int8, a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(e.typname, t.typname)::text, coalesce(e.typcategory, t.typcategory)::text, e.oid IS NOT NULL,
       a.attnotnull, a.attgenerated <> '', a.attidentity <> '',
       CASE WHEN coalesce(e.typname, t.typname) IN ('varchar', 'bpchar') AND a.atttypmod > 4 THEN a.atttypmod - 4 END,
       col_description(a.attrelid, a.attnum), a.atthasdef
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY a.attrelid, a.attnum";

const UNIQUE: &str = "
SELECT i.indrelid::int8, ic.relname,
       array(SELECT coalesce(a.attname, '') FROM unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
             ORDER BY k.ord)::text[],
       i.indpred IS NOT NULL, i.indisprimary, con.conname::text
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
WHERE i.indisunique AND i.indisvalid AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY i.indrelid, i.indisprimary DESC, ic.relname";

const FOREIGN_KEYS: &str = "
SELECT con.conrelid::int8, con.conname,
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[],
       rn.nspname || '.' || r.relname,
       array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[]
FROM pg_constraint con JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND con.conparentid = 0
ORDER BY con.conrelid, con.conname";

/// Read every table of the database `session` is connected to, in one read-only snapshot.
pub async fn read(session: &Session) -> Result<Tables, PgError> {
    let c = session.client();
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = ''").await?;
    let result = read_in_snapshot(session).await;
    let _ = c.batch_execute("COMMIT").await;
    result
}

/// The same, inside a transaction the caller opened (sync reads the catalog in the snapshot
/// it copies).
pub async fn read_in_snapshot(session: &Session) -> Result<Tables, PgError> {
    let c = session.client();
    let version: i32 = c.query_one("SELECT current_setting('server_version_num')::int", &[]).await?.get(0);
    let privilege = if version >= 150000 {
        "current_setting('is_superuser') = 'on' OR has_parameter_privilege('session_replication_role', 'SET')"
    } else {
        "current_setting('is_superuser') = 'on'"
    };
    let may_skip: bool = c.query_one(&format!("SELECT {privilege}"), &[]).await?.get(0);
    let (tables, columns, unique, fks) = futures::try_join!(
        c.query(TABLES, &[]),
        c.query(COLUMNS, &[]),
        c.query(UNIQUE, &[]),
        c.query(FOREIGN_KEYS, &[]),
    )?;
    let mut by_oid: BTreeMap<i64, Table> = BTreeMap::new();
    for r in &tables {
        let kind: String = r.get(3);
        by_oid.insert(
            r.get(0),
            Table {
                schema: r.get(1),
                name: r.get(2),
                kind: kind.chars().next().unwrap_or('r'),
                estimated_rows: r.get::<_, i64>(4).max(0),
                partition_of: r.get(5),
                comment: r.get(6),
                user_triggers: r.get::<_, i64>(7) as usize,
                oid: r.get::<_, i64>(0) as u32,
                pages: r.get::<_, i64>(8).max(0),
                bytes: r.get(9),
                columns: Vec::new(),
                primary_key: None,
                unique: Vec::new(),
                foreign_keys: Vec::new(),
            },
        );
    }
    for r in &columns {
        let Some(t) = by_oid.get_mut(&r.get::<_, i64>(0)) else { continue };
        t.columns.push(Column {
            name: r.get(1),
            data_type: r.get(2),
            type_name: r.get(3),
            category: r.get(4),
            array: r.get(5),
            not_null: r.get(6),
            generated: r.get(7),
            identity: r.get(8),
            max_len: r.get::<_, Option<i32>>(9).map(|n| n as usize),
            comment: r.get(10),
            has_default: r.get(11),
        });
    }
    for r in &unique {
        let Some(t) = by_oid.get_mut(&r.get::<_, i64>(0)) else { continue };
        let cols: Vec<String> = r.get(2);
        // An expression in the key: no plain column list.
        let cols = if cols.iter().any(String::is_empty) { Vec::new() } else { cols };
        let primary: bool = r.get(4);
        if primary {
            t.primary_key = Some(cols.clone());
        }
        t.unique.push(UniqueIndex { name: r.get(1), columns: cols, partial: r.get(3), primary, constraint: r.get(5) });
    }
    for r in &fks {
        let Some(t) = by_oid.get_mut(&r.get::<_, i64>(0)) else { continue };
        t.foreign_keys.push(ForeignKey {
            name: r.get(1),
            columns: r.get(2),
            references: r.get(3),
            referenced_columns: r.get(4),
        });
    }
    Ok(Tables {
        tables: by_oid.into_values().map(|t| (t.qualified(), t)).collect(),
        may_skip_triggers: may_skip,
        server_version: version,
    })
}
