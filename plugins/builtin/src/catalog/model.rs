//! The schema model: every object of a database that a migration can create, change or drop, read
//! from the catalog by [`super::introspect`] and compared by [`crate::diff::plan`].
//!
//! Objects are keyed by kind and qualified name, never by OID, so models of two databases compare.
//! Definitions come from PostgreSQL's own deparsers (`pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_viewdef`, `pg_get_functiondef`, `pg_get_triggerdef`, `pg_get_expr`, `format_type`) read
//! with an empty `search_path`, so every name in them is schema-qualified and two databases built
//! from equivalent DDL give equal text. Column order and ownership are not part of the model.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

/// A database's schema.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Model {
    /// The server's version (`server_version_num`).
    #[serde(skip)]
    pub server_version: i32,
    pub objects: BTreeMap<Key, Object>,
    /// `a → {b, …}`: object `a` depends on `b` (from `pg_depend`, plus parents).
    #[serde(skip)]
    pub deps: HashMap<Key, HashSet<Key>>,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.objects == other.objects
    }
}

impl Model {
    pub fn insert(&mut self, object: Object) -> Key {
        let key = object.key();
        self.objects.insert(key.clone(), object);
        key
    }

    pub fn depend(&mut self, from: &Key, on: &Key) {
        if from != on {
            self.deps.entry(from.clone()).or_default().insert(on.clone());
        }
    }

    /// Leave out the objects whose name `excluded` says so, with what belongs to them (a table's
    /// columns, indexes, comments, …). Names are matched as SQL spells them: `schema.name`.
    pub fn exclude(&mut self, excluded: impl Fn(&str) -> bool) {
        let direct: BTreeSet<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| o.name_for_matching().is_some_and(&excluded))
            .map(|(k, _)| k.clone())
            .collect();
        if direct.is_empty() {
            return;
        }
        let gone = |k: &Key, objects: &BTreeMap<Key, Object>| {
            let mut k = k.clone();
            for _ in 0..8 {
                if direct.contains(&k) {
                    return true;
                }
                match objects.get(&k).and_then(Object::parent) {
                    Some(p) => k = p,
                    None => return false,
                }
            }
            false
        };
        let remove: HashSet<Key> = self.objects.keys().filter(|k| gone(k, &self.objects)).cloned().collect();
        for k in &remove {
            self.objects.remove(k);
            self.deps.remove(k);
        }
        for deps in self.deps.values_mut() {
            deps.retain(|d| !remove.contains(d));
        }
    }
}

/// An object's identity: its kind and its name as SQL would spell it (quoted where needed), e.g.
/// `table public.users`, `column public.users.email`, `function public.f(integer)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key(pub String);

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `schema.name`, each part quoted when needed.
pub fn qname(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// An identifier as SQL needs it: bare when it is lower-case, simple and not a keyword; quoted
/// otherwise.
pub fn ident(name: &str) -> String {
    let simple = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && KEYWORDS.binary_search(&name).is_err();
    if simple { name.to_string() } else { confiture_engine::pg::quote_ident(name) }
}

pub fn literal(value: &str) -> String {
    confiture_engine::pg::quote_literal(value)
}

/// PostgreSQL's reserved, column-name and type/function-name keywords (kwlist.h): a bare
/// identifier spelled like one of these may not parse, so it is quoted.
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "merge_action",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// A column's position: used to order `CREATE TABLE`, equal to any other position.
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
pub struct Position(pub i16);

impl PartialEq for Position {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One object. Fields are what the catalog says, in the deparsers' normalized text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Object {
    Schema {
        name: String,
    },
    Extension {
        name: String,
        schema: String,
        version: String,
    },
    Enum {
        name: String,
        labels: Vec<String>,
    },
    Composite {
        name: String,
        /// `(attribute, type [COLLATE …])` in order.
        attributes: Vec<(String, String)>,
    },
    Domain {
        name: String,
        base: String,
        collation: Option<String>,
        default: Option<String>,
        not_null: bool,
        /// constraint name → `CHECK (…)`.
        constraints: BTreeMap<String, String>,
    },
    Sequence {
        name: String,
        data_type: String,
        start: i64,
        increment: i64,
        min: i64,
        max: i64,
        cache: i64,
        cycle: bool,
        unlogged: bool,
    },
    /// `ALTER SEQUENCE … OWNED BY table.column`.
    SequenceOwner {
        sequence: String,
        table: String,
        column: String,
    },
    Table {
        name: String,
        partitioned_by: Option<String>,
        /// `(parent, FOR VALUES …)` of a partition.
        partition_of: Option<(String, String)>,
        inherits: Vec<String>,
        unlogged: bool,
        options: Vec<String>,
        row_security: bool,
        force_row_security: bool,
    },
    Column {
        table: String,
        name: String,
        data_type: String,
        collation: Option<String>,
        not_null: bool,
        /// `a` (ALWAYS) or `d` (BY DEFAULT), with the sequence options that differ from defaults.
        identity: Option<(char, String)>,
        /// The expression of a `GENERATED ALWAYS AS (…) STORED` column.
        generated: Option<String>,
        /// Position, for `CREATE TABLE` only: PostgreSQL cannot reorder columns, so it is not compared.
        #[serde(skip)]
        position: Position,
    },
    ColumnDefault {
        table: String,
        column: String,
        expression: String,
    },
    Constraint {
        table: String,
        name: String,
        /// `p`, `u`, `c`, `f`, `x` as in `pg_constraint.contype`.
        #[serde(rename = "type")]
        kind: char,
        definition: String,
    },
    Index {
        name: String,
        table: String,
        /// What `table` is: `table` or `materialized view`.
        #[serde(skip)]
        on: &'static str,
        definition: String,
        /// `false` for an index whose build failed (`CREATE INDEX CONCURRENTLY`) or that is not
        /// attached on every partition: it is not used, and a plan rebuilds it.
        valid: bool,
    },
    View {
        name: String,
        materialized: bool,
        definition: String,
        options: Vec<String>,
    },
    Function {
        /// `schema.name(identity arguments)`.
        signature: String,
        /// `f` function, `p` procedure, `a` aggregate, `w` window.
        #[serde(rename = "type")]
        kind: char,
        result: String,
        definition: String,
    },
    Trigger {
        table: String,
        /// What `table` is: `table`, `view` or `materialized view`.
        #[serde(skip)]
        on: &'static str,
        name: String,
        definition: String,
        enabled: char,
    },
    Policy {
        table: String,
        name: String,
        permissive: bool,
        command: String,
        roles: Vec<String>,
        using: Option<String>,
        with_check: Option<String>,
    },
    Comment {
        /// What `COMMENT ON` names, e.g. `TABLE public.users`, `COLUMN public.users.email`.
        target: String,
        /// The key of the object commented.
        of: Key,
        text: String,
    },
    Grant {
        /// What `GRANT … ON` names, e.g. `TABLE public.users`, `SCHEMA app`.
        target: String,
        of: Key,
        grantee: String,
        /// Privileges, upper case; `*` suffix = WITH GRANT OPTION.
        privileges: BTreeSet<String>,
        /// What a new object gets without any GRANT (`acldefault`), which `privileges` differs from.
        defaults: BTreeSet<String>,
        /// For column privileges: the column.
        column: Option<String>,
    },
    DefaultPrivilege {
        role: String,
        schema: Option<String>,
        /// TABLES, SEQUENCES, FUNCTIONS, TYPES, SCHEMAS.
        on: String,
        grantee: String,
        privileges: BTreeSet<String>,
    },
}

impl Object {
    /// Its identity in the model.
    pub fn key(&self) -> Key {
        Key(match self {
            Object::Schema { name } => format!("schema {}", ident(name)),
            Object::Extension { name, .. } => format!("extension {}", ident(name)),
            Object::Enum { name, .. } | Object::Composite { name, .. } => format!("type {name}"),
            Object::Domain { name, .. } => format!("domain {name}"),
            Object::Sequence { name, .. } => format!("sequence {name}"),
            Object::SequenceOwner { sequence, .. } => format!("sequence-owner {sequence}"),
            Object::Table { name, .. } => format!("table {name}"),
            Object::Column { table, name, .. } => format!("column {table}.{}", ident(name)),
            Object::ColumnDefault { table, column, .. } => format!("default {table}.{}", ident(column)),
            Object::Constraint { table, name, .. } => format!("constraint {} on {table}", ident(name)),
            Object::Index { name, .. } => format!("index {name}"),
            Object::View { name, materialized: false, .. } => format!("view {name}"),
            Object::View { name, materialized: true, .. } => format!("materialized view {name}"),
            Object::Function { signature, kind: 'p', .. } => format!("procedure {signature}"),
            Object::Function { signature, kind: 'a', .. } => format!("aggregate {signature}"),
            Object::Function { signature, .. } => format!("function {signature}"),
            Object::Trigger { table, name, .. } => format!("trigger {} on {table}", ident(name)),
            Object::Policy { table, name, .. } => format!("policy {} on {table}", ident(name)),
            Object::Comment { target, .. } => format!("comment on {target}"),
            Object::Grant { target, grantee, column: None, .. } => format!("grant on {target} to {grantee}"),
            Object::Grant { target, grantee, column: Some(c), .. } => {
                format!("grant on {target} ({}) to {grantee}", ident(c))
            }
            Object::DefaultPrivilege { role, schema, on, grantee, .. } => format!(
                "default privileges for {role}{} on {on} to {grantee}",
                schema.as_ref().map(|s| format!(" in {}", ident(s))).unwrap_or_default()
            ),
        })
    }

    /// The kind, as in keys and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Schema { .. } => "schema",
            Object::Extension { .. } => "extension",
            Object::Enum { .. } => "enum",
            Object::Composite { .. } => "composite type",
            Object::Domain { .. } => "domain",
            Object::Sequence { .. } => "sequence",
            Object::SequenceOwner { .. } => "sequence owner",
            Object::Table { .. } => "table",
            Object::Column { .. } => "column",
            Object::ColumnDefault { .. } => "column default",
            Object::Constraint { .. } => "constraint",
            Object::Index { .. } => "index",
            Object::View { materialized: false, .. } => "view",
            Object::View { .. } => "materialized view",
            Object::Function { kind: 'p', .. } => "procedure",
            Object::Function { kind: 'a', .. } => "aggregate",
            Object::Function { .. } => "function",
            Object::Trigger { .. } => "trigger",
            Object::Policy { .. } => "policy",
            Object::Comment { .. } => "comment",
            Object::Grant { .. } => "grant",
            Object::DefaultPrivilege { .. } => "default privileges",
        }
    }

    /// The object whose `DROP` takes this one with it (a table's columns, constraints, indexes, …).
    pub fn parent(&self) -> Option<Key> {
        match self {
            Object::Column { table, .. } | Object::Constraint { table, .. } | Object::Policy { table, .. } => {
                Some(Key(format!("table {table}")))
            }
            Object::Index { table, on, .. } | Object::Trigger { table, on, .. } => Some(Key(format!("{on} {table}"))),
            Object::ColumnDefault { table, column, .. } => Some(Key(format!("column {table}.{}", ident(column)))),
            Object::SequenceOwner { sequence, .. } => Some(Key(format!("sequence {sequence}"))),
            Object::Comment { of, .. } | Object::Grant { of, .. } => Some(of.clone()),
            Object::Table { partition_of: Some((parent, _)), .. } => Some(Key(format!("table {parent}"))),
            _ => None,
        }
    }

    /// Names that cannot exist twice: relations and types share `pg_class`/`pg_type` names, and a
    /// key constraint has an index of its name. A drop of one must come before the create of another.
    pub fn slot(&self) -> Option<String> {
        match self {
            Object::Enum { name, .. }
            | Object::Composite { name, .. }
            | Object::Domain { name, .. }
            | Object::Sequence { name, .. }
            | Object::Table { name, .. }
            | Object::Index { name, .. }
            | Object::View { name, .. } => Some(format!("rel {name}")),
            Object::Constraint { table, name, kind: 'p' | 'u' | 'x', .. } => {
                let schema = table.split_once('.').map(|(s, _)| s).unwrap_or("public");
                Some(format!("rel {schema}.{}", ident(name)))
            }
            Object::Function { signature, .. } => Some(format!("routine {signature}")),
            _ => None,
        }
    }

    /// Deterministic creation rank among objects that do not depend on each other.
    pub fn rank(&self) -> u8 {
        match self {
            Object::Schema { .. } => 0,
            Object::Extension { .. } => 1,
            Object::Enum { .. } | Object::Composite { .. } | Object::Domain { .. } => 2,
            Object::Sequence { .. } => 3,
            Object::Function { .. } => 4,
            Object::Table { .. } => 5,
            Object::Column { .. } => 6,
            Object::ColumnDefault { .. } => 7,
            Object::SequenceOwner { .. } => 8,
            Object::Constraint { kind: 'f', .. } => 10,
            Object::Constraint { .. } => 9,
            Object::Index { .. } => 11,
            Object::View { .. } => 12,
            Object::Trigger { .. } => 13,
            Object::Policy { .. } => 14,
            Object::Comment { .. } => 15,
            Object::Grant { .. } | Object::DefaultPrivilege { .. } => 16,
        }
    }

    /// How `COMMENT ON` and `GRANT … ON` name this object, if they can.
    pub fn target(&self) -> Option<String> {
        Some(match self {
            Object::Schema { name } => format!("SCHEMA {}", ident(name)),
            Object::Extension { name, .. } => format!("EXTENSION {}", ident(name)),
            Object::Enum { name, .. } | Object::Composite { name, .. } => format!("TYPE {name}"),
            Object::Domain { name, .. } => format!("DOMAIN {name}"),
            Object::Sequence { name, .. } => format!("SEQUENCE {name}"),
            Object::Table { name, .. } => format!("TABLE {name}"),
            Object::Column { table, name, .. } => format!("COLUMN {table}.{}", ident(name)),
            Object::Constraint { table, name, .. } => format!("CONSTRAINT {} ON {table}", ident(name)),
            Object::Index { name, .. } => format!("INDEX {name}"),
            Object::View { name, materialized: false, .. } => format!("VIEW {name}"),
            Object::View { name, .. } => format!("MATERIALIZED VIEW {name}"),
            Object::Function { signature, kind: 'p', .. } => format!("PROCEDURE {signature}"),
            Object::Function { signature, kind: 'a', .. } => format!("AGGREGATE {signature}"),
            Object::Function { signature, .. } => format!("FUNCTION {signature}"),
            Object::Trigger { table, name, .. } => format!("TRIGGER {} ON {table}", ident(name)),
            Object::Policy { table, name, .. } => format!("POLICY {} ON {table}", ident(name)),
            _ => return None,
        })
    }

    /// The name `exclude` patterns match: the object's own qualified name, or its table's.
    pub fn name_for_matching(&self) -> Option<&str> {
        match self {
            Object::Schema { name } | Object::Extension { name, .. } => Some(name),
            Object::Enum { name, .. }
            | Object::Composite { name, .. }
            | Object::Domain { name, .. }
            | Object::Sequence { name, .. }
            | Object::Table { name, .. }
            | Object::Index { name, .. }
            | Object::View { name, .. } => Some(name),
            Object::SequenceOwner { table, .. } => Some(table),
            Object::Function { signature, .. } => signature.split('(').next(),
            _ => self.table(),
        }
    }

    /// The table it belongs to, for reports.
    pub fn table(&self) -> Option<&str> {
        match self {
            Object::Table { name, .. } => Some(name),
            Object::Column { table, .. }
            | Object::ColumnDefault { table, .. }
            | Object::Constraint { table, .. }
            | Object::Index { table, .. }
            | Object::Trigger { table, .. }
            | Object::Policy { table, .. } => Some(table),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_sorted_so_binary_search_works() {
        let mut sorted = KEYWORDS.to_vec();
        sorted.sort();
        assert_eq!(sorted, KEYWORDS);
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(ident("users"), "users");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("Users"), "\"Users\"");
        assert_eq!(ident("a b"), "\"a b\"");
        assert_eq!(ident("1a"), "\"1a\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(qname("public", "order"), "public.\"order\"");
    }
}
