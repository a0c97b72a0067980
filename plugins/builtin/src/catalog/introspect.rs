//! Reading a live database's catalog into a [`Model`]: a fixed set of set-based queries (one per
//! kind of object, not one per object), pipelined on one connection inside one read-only
//! REPEATABLE READ transaction, so the model is a consistent snapshot.
//!
//! Objects that belong to an extension, to PostgreSQL itself (`pg_*` schemas,
//! `information_schema`) or are derived (partitions' copies of the parent's indexes, constraints
//! and triggers; identity sequences) are left out: creating their owner creates them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use confiture_engine::pg::{PgError, Session};
use tokio_postgres::Row;

use super::model::{Key, Model, Object, ident, qname};

// Fixed OIDs of the system catalogs (they never change between servers).
const PG_CLASS: u32 = 1259;
const PG_TYPE: u32 = 1247;
const PG_PROC: u32 = 1255;
const PG_NAMESPACE: u32 = 2615;
const PG_CONSTRAINT: u32 = 2606;
const PG_TRIGGER: u32 = 2620;
const PG_POLICY: u32 = 3256;
const PG_ATTRDEF: u32 = 2604;
const PG_REWRITE: u32 = 2618;
const PG_EXTENSION: u32 = 3079;

/// Schemas no model includes.
const SYSTEM_SCHEMAS: &str = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'";

/// Read the schema of the database `session` is connected to.
pub async fn introspect(session: &Session) -> Result<Model, PgError> {
    let client = session.client();
    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = ''").await?;
    let result = read(session).await;
    // Read-only: ending it either way changes nothing.
    let _ = client.batch_execute("COMMIT").await;
    result
}

async fn read(session: &Session) -> Result<Model, PgError> {
    let c = session.client();
    let version: i32 = c.query_one("SELECT current_setting('server_version_num')::int", &[]).await?.get(0);
    let trigger_filter = if version >= 130000 {
        "t.tgparentid = 0"
    } else {
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid AND d.deptype = 'P')"
    };
    let sys = |q: &str| q.replace("{system}", SYSTEM_SCHEMAS);
    let (q_schemas, q_types, q_relations, q_columns, q_sequences) =
        (sys(SCHEMAS), sys(TYPES), sys(RELATIONS), sys(COLUMNS), sys(SEQUENCES));
    let (q_constraints, q_indexes, q_functions, q_policies, q_grants) =
        (sys(CONSTRAINTS), sys(INDEXES), sys(FUNCTIONS), sys(POLICIES), sys(GRANTS));
    let q_triggers = sys(TRIGGERS).replace("{trigger_filter}", trigger_filter);
    let (members, schemas, extensions, types, relations, columns, sequences, constraints, indexes, functions) = futures::try_join!(
        c.query(MEMBERS, &[]),
        c.query(&q_schemas, &[]),
        c.query(EXTENSIONS, &[]),
        c.query(&q_types, &[]),
        c.query(&q_relations, &[]),
        c.query(&q_columns, &[]),
        c.query(&q_sequences, &[]),
        c.query(&q_constraints, &[]),
        c.query(&q_indexes, &[]),
        c.query(&q_functions, &[]),
    )?;
    let (triggers, policies, comments, grants, default_acls, deps) = futures::try_join!(
        c.query(&q_triggers, &[]),
        c.query(&q_policies, &[]),
        c.query(COMMENTS, &[]),
        c.query(&q_grants, &[]),
        c.query(DEFAULT_ACLS, &[]),
        c.query(DEPENDS, &[]),
    )?;

    let mut b = Builder {
        model: Model { server_version: version, ..Model::default() },
        lookup: HashMap::new(),
        members: members.iter().map(|r| (r.get::<_, u32>(0), r.get::<_, u32>(1))).collect(),
        pending_owner: Vec::new(),
    };
    b.schemas(&schemas);
    b.extensions(&extensions);
    b.types(&types);
    b.relations(&relations);
    b.sequences(&sequences);
    b.columns(&columns);
    b.constraints(&constraints);
    b.indexes(&indexes);
    b.functions(&functions);
    b.triggers(&triggers);
    b.policies(&policies);
    b.comments(&comments);
    b.grants(&grants);
    b.default_acls(&default_acls);
    b.depends(&deps);
    Ok(b.model)
}

struct Builder {
    model: Model,
    /// `(catalog, oid, sub-id)` → the object it is in the model.
    lookup: HashMap<(u32, u32, i32), Key>,
    /// Extension members `(catalog, oid)`, left out of the model.
    members: HashSet<(u32, u32)>,
    /// Sequence owners waiting for their column: `(owner, table oid, attnum)`.
    pending_owner: Vec<(Key, u32, i32)>,
}

impl Builder {
    fn member(&self, class: u32, oid: u32) -> bool {
        self.members.contains(&(class, oid))
    }

    fn add(&mut self, class: u32, oid: u32, sub: i32, object: Object) -> Key {
        let key = self.model.insert(object);
        self.lookup.insert((class, oid, sub), key.clone());
        key
    }

    fn find(&self, class: u32, oid: u32, sub: i32) -> Option<&Key> {
        self.lookup.get(&(class, oid, sub)).or_else(|| self.lookup.get(&(class, oid, 0)))
    }

    fn schemas(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            if self.member(PG_NAMESPACE, oid) {
                continue;
            }
            self.add(PG_NAMESPACE, oid, 0, Object::Schema { name: r.get("name") });
        }
    }

    fn extensions(&mut self, rows: &[Row]) {
        for r in rows {
            let object = Object::Extension { name: r.get("name"), schema: r.get("schema"), version: r.get("version") };
            self.add(PG_EXTENSION, r.get("oid"), 0, object);
        }
    }

    fn types(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            if self.member(PG_TYPE, oid) {
                continue;
            }
            let name = qname(r.get("schema"), r.get("name"));
            let object = match r.get::<_, i8>("typtype") as u8 {
                b'e' => Object::Enum { name, labels: r.get("labels") },
                b'c' => {
                    let names: Vec<String> = r.get("attnames");
                    let types: Vec<String> = r.get("atttypes");
                    Object::Composite { name, attributes: names.into_iter().zip(types).collect() }
                }
                b'd' => {
                    let names: Vec<String> = r.get("connames");
                    let defs: Vec<String> = r.get("condefs");
                    Object::Domain {
                        name,
                        base: r.get("base"),
                        collation: r.get("collation"),
                        default: r.get("typdefault"),
                        not_null: r.get("typnotnull"),
                        constraints: names.into_iter().zip(defs).collect(),
                    }
                }
                _ => continue,
            };
            let key = self.add(PG_TYPE, oid, 0, object);
            // The composite type's relation and the array type stand for the type itself.
            if let Some(relid) = r.get::<_, Option<u32>>("typrelid") {
                self.lookup.insert((PG_CLASS, relid, 0), key.clone());
            }
            if let Some(array) = r.get::<_, Option<u32>>("typarray") {
                self.lookup.insert((PG_TYPE, array, 0), key.clone());
            }
            for con in r.get::<_, Vec<u32>>("conoids") {
                self.lookup.insert((PG_CONSTRAINT, con, 0), key.clone());
            }
        }
    }

    fn relations(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            if self.member(PG_CLASS, oid) {
                continue;
            }
            let name = qname(r.get("schema"), r.get("name"));
            let kind = r.get::<_, i8>("relkind") as u8;
            let options: Vec<String> = r.get::<_, Option<Vec<String>>>("reloptions").unwrap_or_default();
            let object = match kind {
                b'r' | b'p' => {
                    let parent: Option<String> = r.get("parent");
                    let bound: Option<String> = r.get("bound");
                    let inherits: Vec<String> = r.get("inherits");
                    Object::Table {
                        name,
                        partitioned_by: r.get("partkey"),
                        partition_of: parent.zip(bound),
                        inherits,
                        unlogged: r.get::<_, i8>("relpersistence") as u8 == b'u',
                        options,
                        row_security: r.get("relrowsecurity"),
                        force_row_security: r.get("relforcerowsecurity"),
                    }
                }
                b'v' | b'm' => Object::View {
                    name,
                    materialized: kind == b'm',
                    definition: r.get::<_, Option<String>>("viewdef").unwrap_or_default().trim().to_string(),
                    options,
                },
                _ => continue,
            };
            let key = self.add(PG_CLASS, oid, 0, object);
            if let Some(rowtype) = r.get::<_, Option<u32>>("reltype") {
                self.lookup.insert((PG_TYPE, rowtype, 0), key.clone());
            }
            if let Some(array) = r.get::<_, Option<u32>>("typarray") {
                self.lookup.insert((PG_TYPE, array, 0), key.clone());
            }
            if let Some(rule) = r.get::<_, Option<u32>>("rule") {
                self.lookup.insert((PG_REWRITE, rule, 0), key);
            }
        }
    }

    fn sequences(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            if self.member(PG_CLASS, oid) {
                continue;
            }
            let name = qname(r.get("schema"), r.get("name"));
            let key = self.add(
                PG_CLASS,
                oid,
                0,
                Object::Sequence {
                    name: name.clone(),
                    data_type: r.get("data_type"),
                    start: r.get("seqstart"),
                    increment: r.get("seqincrement"),
                    min: r.get("seqmin"),
                    max: r.get("seqmax"),
                    cache: r.get("seqcache"),
                    cycle: r.get("seqcycle"),
                    unlogged: r.get::<_, i8>("relpersistence") as u8 == b'u',
                },
            );
            if let (Some(table), Some(column)) =
                (r.get::<_, Option<String>>("owner_table"), r.get::<_, Option<String>>("owner_column"))
            {
                let owner = self.model.insert(Object::SequenceOwner { sequence: name, table, column });
                self.model.depend(&owner, &key);
                let (toid, tsub): (u32, i32) = (r.get("owner_oid"), r.get("owner_attnum"));
                self.pending_owner.push((owner, toid, tsub));
            }
        }
    }

    fn columns(&mut self, rows: &[Row]) {
        for r in rows {
            let relid: u32 = r.get("attrelid");
            let Some(table_key) = self.find(PG_CLASS, relid, 0).cloned() else { continue };
            let Some(Object::Table { name: table, .. }) = self.model.objects.get(&table_key) else { continue };
            let table = table.clone();
            let attnum: i16 = r.get("attnum");
            let name: String = r.get("attname");
            let generated = r.get::<_, i8>("attgenerated") as u8 == b's';
            let default: Option<String> = r.get("default");
            let identity = match r.get::<_, i8>("attidentity") as u8 {
                0 => None,
                k => Some((k as char, r.get::<_, Option<String>>("identity_options").unwrap_or_default())),
            };
            let local: bool = r.get("attislocal");
            let inherited = r.get::<_, i32>("attinhcount") > 0;
            let partition =
                matches!(self.model.objects.get(&table_key), Some(Object::Table { partition_of: Some(_), .. }));
            if !local || (partition && inherited) {
                // Inherited from a parent (or the partitioned table): creating the child creates it.
                // Its own settings still count, as the parent's key stands for it.
                self.lookup.insert((PG_CLASS, relid, attnum as i32), table_key.clone());
                continue;
            }
            let column = self.add(
                PG_CLASS,
                relid,
                attnum as i32,
                Object::Column {
                    table: table.clone(),
                    name: name.clone(),
                    data_type: r.get("data_type"),
                    collation: r.get("collation"),
                    not_null: r.get("attnotnull"),
                    identity,
                    generated: if generated { default.clone() } else { None },
                    position: super::model::Position(attnum),
                },
            );
            if let Some(def_oid) = r.get::<_, Option<u32>>("attrdef") {
                if generated {
                    self.lookup.insert((PG_ATTRDEF, def_oid, 0), column);
                } else if let Some(expression) = default {
                    self.add(PG_ATTRDEF, def_oid, 0, Object::ColumnDefault { table, column: name, expression });
                }
            }
        }
        for (owner, toid, tsub) in std::mem::take(&mut self.pending_owner) {
            if let Some(col) = self.find(PG_CLASS, toid, tsub).cloned() {
                self.model.depend(&owner, &col);
            }
        }
    }
}

impl Builder {
    fn constraints(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            let relid: u32 = r.get("conrelid");
            let Some(Object::Table { name: table, .. }) =
                self.find(PG_CLASS, relid, 0).and_then(|k| self.model.objects.get(k))
            else {
                continue;
            };
            let table = table.clone();
            let kind = r.get::<_, i8>("contype") as u8 as char;
            let key = self.add(
                PG_CONSTRAINT,
                oid,
                0,
                Object::Constraint { table, name: r.get("conname"), kind, definition: r.get("definition") },
            );
            // The index behind a key constraint is the constraint.
            if let Some(index) = r.get::<_, Option<u32>>("conindid").filter(|_| matches!(kind, 'p' | 'u' | 'x')) {
                self.lookup.insert((PG_CLASS, index, 0), key);
            }
        }
    }

    fn indexes(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            if self.lookup.contains_key(&(PG_CLASS, oid, 0)) || self.member(PG_CLASS, oid) {
                continue;
            }
            let relid: u32 = r.get("indrelid");
            let Some(table) = self.find(PG_CLASS, relid, 0).and_then(|k| self.model.objects.get(k)) else { continue };
            let (table, on) = match table {
                Object::Table { name, .. } => (name.clone(), "table"),
                Object::View { name, materialized: true, .. } => (name.clone(), "materialized view"),
                _ => continue,
            };
            let name = qname(r.get("schema"), r.get("name"));
            // An index on a partitioned table reads `ON ONLY` (its partitions' indexes are attached
            // one by one); created without ONLY, PostgreSQL builds and attaches them itself.
            let definition = r.get::<_, String>("definition").replacen(" ON ONLY ", " ON ", 1);
            let valid: bool = r.get("indisvalid");
            self.add(PG_CLASS, oid, 0, Object::Index { name, table, on, definition, valid });
        }
    }

    fn functions(&mut self, rows: &[Row]) {
        for r in rows {
            let oid: u32 = r.get("oid");
            if self.member(PG_PROC, oid) {
                continue;
            }
            let signature: String = r.get("signature");
            let kind = r.get::<_, i8>("prokind") as u8 as char;
            let definition: String = match r.get::<_, Option<String>>("definition") {
                Some(d) => d.trim_end().to_string(),
                None => continue,
            };
            self.add(
                PG_PROC,
                oid,
                0,
                Object::Function {
                    signature,
                    kind,
                    result: r.get::<_, Option<String>>("result").unwrap_or_default(),
                    definition,
                },
            );
        }
    }

    fn triggers(&mut self, rows: &[Row]) {
        for r in rows {
            let relid: u32 = r.get("tgrelid");
            let Some(table) = self.find(PG_CLASS, relid, 0).and_then(|k| self.model.objects.get(k)) else { continue };
            let (table, on) = match table {
                Object::Table { name, .. } => (name.clone(), "table"),
                Object::View { name, materialized: false, .. } => (name.clone(), "view"),
                Object::View { name, .. } => (name.clone(), "materialized view"),
                _ => continue,
            };
            let object = Object::Trigger {
                table,
                on,
                name: r.get("tgname"),
                definition: r.get("definition"),
                enabled: r.get::<_, i8>("tgenabled") as u8 as char,
            };
            self.add(PG_TRIGGER, r.get("oid"), 0, object);
        }
    }

    fn policies(&mut self, rows: &[Row]) {
        for r in rows {
            let relid: u32 = r.get("polrelid");
            let Some(Object::Table { name: table, .. }) =
                self.find(PG_CLASS, relid, 0).and_then(|k| self.model.objects.get(k))
            else {
                continue;
            };
            let roles: Vec<String> = r.get("roles");
            let object = Object::Policy {
                table: table.clone(),
                name: r.get("polname"),
                permissive: r.get("polpermissive"),
                command: r.get("command"),
                roles: roles.iter().map(|r| role(r)).collect(),
                using: r.get("qual"),
                with_check: r.get("with_check"),
            };
            self.add(PG_POLICY, r.get("oid"), 0, object);
        }
    }

    fn comments(&mut self, rows: &[Row]) {
        for r in rows {
            let (class, oid, sub): (u32, u32, i32) = (r.get("classoid"), r.get("objoid"), r.get("objsubid"));
            let Some(of) = self.lookup.get(&(class, oid, sub)).cloned() else { continue };
            let Some(target) = self.model.objects.get(&of).and_then(Object::target) else { continue };
            // An extension's comment comes with the extension.
            if class == PG_EXTENSION {
                continue;
            }
            // A key constraint's index shares the constraint's key; its comment is the index's.
            if class == PG_CLASS && target.starts_with("CONSTRAINT ") {
                continue;
            }
            let comment = self.model.insert(Object::Comment { target, of: of.clone(), text: r.get("description") });
            self.model.depend(&comment, &of);
        }
    }

    fn grants(&mut self, rows: &[Row]) {
        // (object, column, grantee) → (privileges, default privileges)
        type Acl = (BTreeSet<String>, BTreeSet<String>);
        let mut acls: BTreeMap<(Key, Option<String>, String), Acl> = BTreeMap::new();
        for r in rows {
            let (class, oid, sub): (u32, u32, i32) = (r.get("classoid"), r.get("objoid"), r.get("objsubid"));
            let Some(of) = self.lookup.get(&(class, oid, sub)).or_else(|| self.lookup.get(&(class, oid, 0))).cloned()
            else {
                continue;
            };
            let column = match self.model.objects.get(&of) {
                Some(Object::Column { name, .. }) if sub != 0 => Some(name.clone()),
                _ => None,
            };
            let of = match (&column, self.model.objects.get(&of).and_then(Object::parent)) {
                (Some(_), Some(table)) => table,
                _ => of,
            };
            let mut privilege: String = r.get("privilege");
            if r.get::<_, bool>("grantable") {
                privilege.push('*');
            }
            let entry = acls.entry((of, column, role(&r.get::<_, String>("grantee")))).or_default();
            if r.get::<_, bool>("is_default") {
                entry.1.insert(privilege);
            } else {
                entry.0.insert(privilege);
            }
        }
        for ((of, column, grantee), (privileges, default)) in acls {
            if privileges == default {
                continue;
            }
            let Some(target) = self.model.objects.get(&of).and_then(Object::target) else { continue };
            // GRANT names views, materialized views and sequences' relation kinds as TABLE, and
            // aggregates and procedures as routines.
            let target = match target.split_once(' ') {
                Some(("VIEW", rest)) => format!("TABLE {rest}"),
                Some(("MATERIALIZED", rest)) => format!("TABLE {}", rest.trim_start_matches("VIEW ")),
                Some(("AGGREGATE", rest)) => format!("FUNCTION {rest}"),
                _ => target,
            };
            let grant = self.model.insert(Object::Grant {
                target,
                of: of.clone(),
                grantee,
                privileges,
                defaults: default,
                column,
            });
            self.model.depend(&grant, &of);
        }
    }

    fn default_acls(&mut self, rows: &[Row]) {
        let mut acls: BTreeMap<(String, Option<String>, String, String), BTreeSet<String>> = BTreeMap::new();
        for r in rows {
            let mut privilege: String = r.get("privilege");
            if r.get::<_, bool>("grantable") {
                privilege.push('*');
            }
            let on = match r.get::<_, i8>("objtype") as u8 {
                b'r' => "TABLES",
                b'S' => "SEQUENCES",
                b'f' => "FUNCTIONS",
                b'T' => "TYPES",
                b'n' => "SCHEMAS",
                _ => continue,
            };
            acls.entry((
                role(&r.get::<_, String>("role")),
                r.get("schema"),
                on.to_string(),
                role(&r.get::<_, String>("grantee")),
            ))
            .or_default()
            .insert(privilege);
        }
        for ((role, schema, on, grantee), privileges) in acls {
            let object = Object::DefaultPrivilege { role, schema: schema.clone(), on, grantee, privileges };
            let key = self.model.insert(object);
            if let Some(s) = schema {
                self.model.depend(&key, &Key(format!("schema {}", ident(&s))));
            }
        }
    }

    fn depends(&mut self, rows: &[Row]) {
        for r in rows {
            let (class, oid, sub): (u32, u32, i32) = (r.get(0), r.get(1), r.get(2));
            let (rclass, roid, rsub): (u32, u32, i32) = (r.get(3), r.get(4), r.get(5));
            let (Some(from), Some(on)) = (self.find(class, oid, sub).cloned(), self.find(rclass, roid, rsub).cloned())
            else {
                continue;
            };
            // A sequence's OWNED BY is its own object (see sequences()).
            if matches!(self.model.objects.get(&from), Some(Object::Sequence { .. })) && rsub != 0 {
                continue;
            }
            self.model.depend(&from, &on);
        }
        // Parents: a column needs its table, a partition its parent, …
        let parents: Vec<(Key, Key)> =
            self.model.objects.iter().filter_map(|(k, o)| o.parent().map(|p| (k.clone(), p))).collect();
        for (child, parent) in parents {
            if self.model.objects.contains_key(&parent) {
                self.model.depend(&child, &parent);
            }
        }
        // Inheritance parents.
        let inherits: Vec<(Key, Key)> = self
            .model
            .objects
            .iter()
            .flat_map(|(k, o)| match o {
                Object::Table { inherits, .. } => {
                    inherits.iter().map(|p| (k.clone(), Key(format!("table {p}")))).collect::<Vec<_>>()
                }
                _ => Vec::new(),
            })
            .collect();
        for (child, parent) in inherits {
            self.model.depend(&child, &parent);
        }
    }
}

/// A role name as SQL spells it (`PUBLIC` for the pseudo-role).
fn role(name: &str) -> String {
    if name == "PUBLIC" || name == "public" { "PUBLIC".to_string() } else { ident(name) }
}

const MEMBERS: &str = "SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'";

const SCHEMAS: &str = "SELECT n.oid, n.nspname AS name FROM pg_catalog.pg_namespace n WHERE {system}";

const EXTENSIONS: &str = "
SELECT e.oid, e.extname AS name, n.nspname AS schema, e.extversion AS version
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql'";

const TYPES: &str = "
SELECT t.oid, n.nspname AS schema, t.typname AS name, t.typtype,
       nullif(t.typrelid, 0) AS typrelid, nullif(t.typarray, 0) AS typarray,
       format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull, t.typdefault,
       CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation
            THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                  FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                  WHERE co.oid = t.typcollation) END AS collation,
       coalesce((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e
                 WHERE e.enumtypid = t.oid), '{}') AS labels,
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS attnames,
       coalesce((SELECT array_agg(format_type(a.atttypid, a.atttypmod)
                                  || CASE WHEN a.attcollation <> at.typcollation
                                          THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                                          ELSE '' END ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
                 LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
                 LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS atttypes,
       coalesce((SELECT array_agg(c.conname::text ORDER BY c.conname) FROM pg_catalog.pg_constraint c
                 WHERE c.contypid = t.oid), '{}') AS connames,
       coalesce((SELECT array_agg(pg_get_constraintdef(c.oid) ORDER BY c.conname) FROM pg_catalog.pg_constraint c
                 WHERE c.contypid = t.oid), '{}') AS condefs,
       coalesce((SELECT array_agg(c.oid ORDER BY c.conname) FROM pg_catalog.pg_constraint c
                 WHERE c.contypid = t.oid), '{}') AS conoids
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
WHERE {system}
  AND (t.typtype IN ('e', 'd')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c'))";

const RELATIONS: &str = "
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.relpersistence,
       c.relrowsecurity, c.relforcerowsecurity, c.reloptions::text[] AS reloptions,
       nullif(c.reltype, 0) AS reltype, nullif(rt.typarray, 0) AS typarray,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
       CASE WHEN c.relispartition THEN
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.relname) FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
          WHERE i.inhrelid = c.oid) END AS parent,
       coalesce(CASE WHEN NOT c.relispartition THEN
         (SELECT array_agg(quote_ident(pn.nspname) || '.' || quote_ident(p.relname) ORDER BY i.inhseqno)
          FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
          JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid) END, '{}') AS inherits,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS viewdef,
       (SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') AS rule
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_type rt ON rt.oid = c.reltype
WHERE {system} AND c.relkind IN ('r', 'p', 'v', 'm')";

const COLUMNS: &str = "
SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attnotnull, a.attidentity, a.attgenerated, a.attislocal, a.attinhcount,
       CASE WHEN a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
       ad.oid AS attrdef, pg_get_expr(ad.adbin, ad.adrelid) AS default,
       CASE WHEN a.attidentity <> '' THEN
         (SELECT concat_ws(' ',
                   CASE WHEN s.seqtypid <> a.atttypid THEN 'AS ' || format_type(s.seqtypid, NULL) END,
                   CASE WHEN s.seqstart <> CASE WHEN s.seqincrement > 0 THEN s.seqmin ELSE s.seqmax END
                        THEN 'START WITH ' || s.seqstart END,
                   CASE WHEN s.seqincrement <> 1 THEN 'INCREMENT BY ' || s.seqincrement END,
                   CASE WHEN s.seqmin <> CASE WHEN s.seqincrement > 0 THEN 1
                        ELSE CASE format_type(s.seqtypid, NULL) WHEN 'smallint' THEN -32768 WHEN 'integer' THEN -2147483648
                             ELSE -9223372036854775808 END END THEN 'MINVALUE ' || s.seqmin END,
                   CASE WHEN s.seqmax <> CASE WHEN s.seqincrement < 0 THEN -1
                        ELSE CASE format_type(s.seqtypid, NULL) WHEN 'smallint' THEN 32767 WHEN 'integer' THEN 2147483647
                             ELSE 9223372036854775807 END END THEN 'MAXVALUE ' || s.seqmax END,
                   CASE WHEN s.seqcache <> 1 THEN 'CACHE ' || s.seqcache END,
                   CASE WHEN s.seqcycle THEN 'CYCLE' END)
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_sequence s ON s.seqrelid = d.objid
          WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum
            AND d.classid = 'pg_class'::regclass AND d.deptype = 'i' LIMIT 1) END AS identity_options
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE {system} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const SEQUENCES: &str = "
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relpersistence, format_type(s.seqtypid, NULL) AS data_type,
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) AS owner_table, ta.attname::text AS owner_column,
       tc.oid AS owner_oid, ta.attnum::int AS owner_attnum
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
LEFT JOIN pg_catalog.pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
WHERE {system} AND c.relkind = 'S' AND (d.deptype IS NULL OR d.deptype = 'a')";

const CONSTRAINTS: &str = "
SELECT c.oid, c.conrelid, c.conname::text, c.contype, nullif(c.conindid, 0) AS conindid,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
WHERE {system} AND c.conrelid <> 0 AND c.conislocal AND c.conparentid = 0 AND c.contype IN ('p', 'u', 'c', 'f', 'x')";

const INDEXES: &str = "
SELECT c.oid, n.nspname AS schema, c.relname AS name, i.indrelid, i.indisvalid, pg_get_indexdef(c.oid) AS definition
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {system}
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = c.oid AND k.contype IN ('p', 'u', 'x'))";

const FUNCTIONS: &str = "
SELECT p.oid, n.nspname AS schema, p.proname AS name, p.prokind,
       p.oid::regprocedure::text AS signature,
       CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END AS result,
       CASE WHEN p.prokind = 'a' THEN
         (SELECT 'CREATE AGGREGATE ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
                 || '(' || CASE WHEN pg_get_function_arguments(p.oid) = '' THEN '*' ELSE pg_get_function_arguments(p.oid) END
                 || ') (SFUNC = ' || a.aggtransfn::regproc::text
                 || ', STYPE = ' || format_type(a.aggtranstype, NULL)
                 || CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text ELSE '' END
                 || CASE WHEN a.aggcombinefn <> 0 THEN ', COMBINEFUNC = ' || a.aggcombinefn::regproc::text ELSE '' END
                 || CASE WHEN a.agginitval IS NOT NULL THEN ', INITCOND = ' || quote_literal(a.agginitval) ELSE '' END
                 || CASE WHEN a.aggsortop <> 0 THEN ', SORTOP = ' || a.aggsortop::regoperator::text ELSE '' END
                 || ')'
          FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid)
       ELSE pg_get_functiondef(p.oid) END AS definition
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE {system}";

const TRIGGERS: &str = "
SELECT t.oid, t.tgrelid, t.tgname::text, t.tgenabled, pg_get_triggerdef(t.oid) AS definition
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {system} AND NOT t.tgisinternal AND {trigger_filter}";

const POLICIES: &str = "
SELECT p.oid, p.polrelid, p.polname::text, p.polpermissive,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE'
            ELSE 'ALL' END AS command,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END
             FROM unnest(p.polroles) r ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {system}";

const COMMENTS: &str = "
SELECT classoid, objoid, objsubid, description FROM pg_catalog.pg_description WHERE objoid >= 16384";

const GRANTS: &str = "
WITH acl AS (
  SELECT 'pg_class'::regclass::oid AS classoid, c.oid AS objoid, 0 AS objsubid, c.relowner AS owner,
         coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)) AS acl,
         acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner) AS def
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE {system} AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  UNION ALL
  SELECT 'pg_class'::regclass::oid, a.attrelid, a.attnum, c.relowner, a.attacl, NULL::aclitem[]
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE {system} AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'pg_namespace'::regclass::oid, n.oid, 0, n.nspowner,
         coalesce(n.nspacl, acldefault('n', n.nspowner)), acldefault('n', n.nspowner)
  FROM pg_catalog.pg_namespace n WHERE {system}
  UNION ALL
  SELECT 'pg_proc'::regclass::oid, p.oid, 0, p.proowner,
         coalesce(p.proacl, acldefault('f', p.proowner)), acldefault('f', p.proowner)
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {system}
  UNION ALL
  SELECT 'pg_type'::regclass::oid, t.oid, 0, t.typowner,
         coalesce(t.typacl, acldefault('T', t.typowner)), acldefault('T', t.typowner)
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE {system} AND t.typtype IN ('e', 'd', 'c')
)
SELECT a.classoid, a.objoid, a.objsubid, false AS is_default,
       CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee)::text END AS grantee,
       e.privilege_type AS privilege, e.is_grantable AS grantable
FROM acl a, LATERAL aclexplode(a.acl) e WHERE e.grantee <> a.owner
UNION ALL
SELECT a.classoid, a.objoid, a.objsubid, true,
       CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee)::text END,
       e.privilege_type, e.is_grantable
FROM acl a, LATERAL aclexplode(a.def) e WHERE e.grantee <> a.owner";

const DEFAULT_ACLS: &str = "
SELECT pg_get_userbyid(d.defaclrole)::text AS role, n.nspname::text AS schema, d.defaclobjtype AS objtype,
       CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee)::text END AS grantee,
       e.privilege_type AS privilege, e.is_grantable AS grantable
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace,
LATERAL aclexplode(d.defaclacl) e
WHERE e.grantee <> d.defaclrole";

const DEPENDS: &str = "
SELECT classid, objid, objsubid, refclassid, refobjid, refobjsubid
FROM pg_catalog.pg_depend WHERE deptype IN ('n', 'a') AND objid >= 16384";
