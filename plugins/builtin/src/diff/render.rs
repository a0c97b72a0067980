//! The SQL for creating, dropping and altering each kind of object, and the hazards of each.

use std::collections::BTreeSet;

use crate::catalog::model::{Key, Model, Object, ident, literal};

/// Something to know before running a statement.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema)]
pub struct Hazard {
    /// `deletes-data`, `rewrites-table`, `scans-table`, `builds-index`, `locks`, `validates`, `fails-on-data`.
    pub code: &'static str,
    pub message: String,
}

/// The in-place change of an object.
pub struct Alter {
    pub statements: Vec<String>,
    pub hazards: Vec<Hazard>,
    /// A column's type changes: dependents PostgreSQL cannot carry over must be rebuilt.
    pub retypes_column: bool,
}

fn hazard(code: &'static str, message: impl Into<String>) -> Hazard {
    Hazard { code, message: message.into() }
}

fn exclusive(table: &str) -> Hazard {
    hazard("locks", format!("ACCESS EXCLUSIVE lock on {table}: blocks reads and writes while it runs"))
}

/// `CREATE …` for an object of model `m`.
pub fn create(o: &Object, m: &Model) -> Vec<String> {
    match o {
        Object::Schema { name } => vec![format!("CREATE SCHEMA {}", ident(name))],
        Object::Extension { name, schema, .. } => {
            vec![format!("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}", ident(name), ident(schema))]
        }
        Object::Enum { name, labels } => vec![format!(
            "CREATE TYPE {name} AS ENUM ({})",
            labels.iter().map(|l| literal(l)).collect::<Vec<_>>().join(", ")
        )],
        Object::Composite { name, attributes } => vec![format!(
            "CREATE TYPE {name} AS ({})",
            attributes.iter().map(|(n, t)| format!("{} {t}", ident(n))).collect::<Vec<_>>().join(", ")
        )],
        Object::Domain { name, base, collation, default, not_null, constraints } => {
            let mut s = format!("CREATE DOMAIN {name} AS {base}");
            if let Some(c) = collation {
                s.push_str(&format!(" COLLATE {c}"));
            }
            if let Some(d) = default {
                s.push_str(&format!(" DEFAULT {d}"));
            }
            if *not_null {
                s.push_str(" NOT NULL");
            }
            for (n, def) in constraints {
                s.push_str(&format!(" CONSTRAINT {} {def}", ident(n)));
            }
            vec![s]
        }
        Object::Sequence { name, data_type, start, increment, min, max, cache, cycle, unlogged } => {
            let mut s = format!("CREATE {}SEQUENCE {name}", if *unlogged { "UNLOGGED " } else { "" });
            s.push_str(&sequence_options(data_type, *start, *increment, *min, *max, *cache, *cycle, true));
            vec![s]
        }
        Object::SequenceOwner { sequence, table, column } => {
            vec![format!("ALTER SEQUENCE {sequence} OWNED BY {table}.{}", ident(column))]
        }
        Object::Table {
            name,
            partitioned_by,
            partition_of,
            inherits,
            unlogged,
            options,
            row_security,
            force_row_security,
        } => {
            let mut columns: Vec<(i16, String)> = m
                .objects
                .values()
                .filter_map(|c| match c {
                    Object::Column { table, position, .. } if table == name => {
                        Some((position.0, column_definition(c, m)))
                    }
                    _ => None,
                })
                .collect();
            columns.sort();
            let body = columns.into_iter().map(|(_, d)| format!("    {d}")).collect::<Vec<_>>().join(",\n");
            let mut s = format!("CREATE {}TABLE {name}", if *unlogged { "UNLOGGED " } else { "" });
            match partition_of {
                Some((parent, bound)) => {
                    s.push_str(&format!(" PARTITION OF {parent}"));
                    if !body.is_empty() {
                        s.push_str(&format!(" (\n{body}\n)"));
                    }
                    s.push_str(&format!(" {bound}"));
                }
                None if body.is_empty() => s.push_str(" ()"),
                None => s.push_str(&format!(" (\n{body}\n)")),
            }
            if !inherits.is_empty() {
                s.push_str(&format!(" INHERITS ({})", inherits.join(", ")));
            }
            if let Some(p) = partitioned_by {
                s.push_str(&format!(" PARTITION BY {p}"));
            }
            if !options.is_empty() {
                s.push_str(&format!(" WITH ({})", options.join(", ")));
            }
            let mut out = vec![s];
            if *row_security {
                out.push(format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY"));
            }
            if *force_row_security {
                out.push(format!("ALTER TABLE {name} FORCE ROW LEVEL SECURITY"));
            }
            out
        }
        Object::Column { table, .. } => vec![format!("ALTER TABLE {table} ADD COLUMN {}", column_definition(o, m))],
        Object::ColumnDefault { table, column, expression } => {
            vec![format!("ALTER TABLE {table} ALTER COLUMN {} SET DEFAULT {expression}", ident(column))]
        }
        Object::Constraint { table, name, definition, .. } => {
            vec![format!("ALTER TABLE {table} ADD CONSTRAINT {} {definition}", ident(name))]
        }
        Object::Index { definition, .. } => vec![definition.clone()],
        Object::View { name, materialized, definition, options } => {
            let with = if options.is_empty() { String::new() } else { format!(" WITH ({})", options.join(", ")) };
            let kind = if *materialized { "MATERIALIZED VIEW" } else { "VIEW" };
            vec![format!("CREATE {kind} {name}{with} AS\n{}", definition.trim_end_matches(';'))]
        }
        Object::Function { definition, .. } => vec![definition.clone()],
        Object::Trigger { table, name, definition, enabled, .. } => {
            let mut out = vec![definition.clone()];
            if let Some(state) = trigger_state(*enabled) {
                out.push(format!("ALTER TABLE {table} {state} TRIGGER {}", ident(name)));
            }
            out
        }
        Object::Policy { table, name, permissive, command, roles, using, with_check } => {
            let mut s = format!("CREATE POLICY {} ON {table}", ident(name));
            if !permissive {
                s.push_str(" AS RESTRICTIVE");
            }
            s.push_str(&format!(" FOR {command} TO {}", roles.join(", ")));
            if let Some(u) = using {
                s.push_str(&format!(" USING ({u})"));
            }
            if let Some(c) = with_check {
                s.push_str(&format!(" WITH CHECK ({c})"));
            }
            vec![s]
        }
        Object::Comment { target, text, .. } => vec![format!("COMMENT ON {target} IS {}", literal(text))],
        Object::Grant { target, grantee, privileges, defaults, column, .. } => {
            grant_statements(target, column.as_deref(), grantee, defaults, privileges)
        }
        Object::DefaultPrivilege { role, schema, on, grantee, privileges } => {
            default_privilege_statements(role, schema.as_deref(), on, grantee, &BTreeSet::new(), privileges)
        }
    }
}

/// `DROP …` (or the statement that undoes it). Most objects drop as `DROP` + how `COMMENT ON`
/// names them (`DROP TABLE t`, `DROP TRIGGER x ON t`, `DROP AGGREGATE f(int)`, …).
pub fn drop(o: &Object, _m: &Model) -> Vec<String> {
    vec![match o {
        Object::SequenceOwner { sequence, .. } => format!("ALTER SEQUENCE {sequence} OWNED BY NONE"),
        Object::Column { table, name, .. } => format!("ALTER TABLE {table} DROP COLUMN {}", ident(name)),
        Object::ColumnDefault { table, column, .. } => {
            format!("ALTER TABLE {table} ALTER COLUMN {} DROP DEFAULT", ident(column))
        }
        Object::Constraint { table, name, .. } => format!("ALTER TABLE {table} DROP CONSTRAINT {}", ident(name)),
        Object::Comment { target, .. } => format!("COMMENT ON {target} IS NULL"),
        Object::Grant { target, grantee, privileges, defaults, column, .. } => {
            return grant_statements(target, column.as_deref(), grantee, privileges, defaults);
        }
        Object::DefaultPrivilege { role, schema, on, grantee, privileges } => {
            return default_privilege_statements(role, schema.as_deref(), on, grantee, privileges, &BTreeSet::new());
        }
        other => format!("DROP {}", other.target().expect("every other object has a COMMENT ON target")),
    }]
}

/// Statements changing `a` into `b` in place, or `None` when it must be dropped and recreated.
pub fn alter(a: &Object, b: &Object, m: &Model) -> Option<Alter> {
    let mut st = Vec::new();
    let mut hz = Vec::new();
    let mut retypes_column = false;
    match (a, b) {
        (Object::Extension { name, schema: s1, version: v1 }, Object::Extension { schema: s2, version: v2, .. }) => {
            if s1 != s2 {
                st.push(format!("ALTER EXTENSION {} SET SCHEMA {}", ident(name), ident(s2)));
            }
            if v1 != v2 {
                st.push(format!("ALTER EXTENSION {} UPDATE TO {}", ident(name), literal(v2)));
            }
        }
        (Object::Enum { name, labels: l1 }, Object::Enum { labels: l2, .. }) => {
            // Values can be added anywhere, never removed or reordered.
            let mut it = l2.iter();
            if !l1.iter().all(|l| it.any(|x| x == l)) {
                return None;
            }
            for (i, l) in l2.iter().enumerate() {
                if l1.contains(l) {
                    continue;
                }
                let anchor = match l2[i + 1..].iter().find(|x| l1.contains(x)) {
                    Some(next) => format!(" BEFORE {}", literal(next)),
                    None => match l2[..i].last() {
                        Some(prev) => format!(" AFTER {}", literal(prev)),
                        None => String::new(),
                    },
                };
                st.push(format!("ALTER TYPE {name} ADD VALUE {}{anchor}", literal(l)));
            }
        }
        (
            Object::Domain { name, base: b1, collation: c1, default: d1, not_null: n1, constraints: k1 },
            Object::Domain { base: b2, collation: c2, default: d2, not_null: n2, constraints: k2, .. },
        ) => {
            if b1 != b2 || c1 != c2 {
                return None;
            }
            if d1 != d2 {
                st.push(match d2 {
                    Some(d) => format!("ALTER DOMAIN {name} SET DEFAULT {d}"),
                    None => format!("ALTER DOMAIN {name} DROP DEFAULT"),
                });
            }
            if n1 != n2 {
                st.push(format!("ALTER DOMAIN {name} {} NOT NULL", if *n2 { "SET" } else { "DROP" }));
                if *n2 {
                    hz.push(hazard("scans-table", format!("checks every column of domain {name} for NULLs")));
                }
            }
            for (n, def) in k1 {
                if k2.get(n) != Some(def) {
                    st.push(format!("ALTER DOMAIN {name} DROP CONSTRAINT {}", ident(n)));
                }
            }
            for (n, def) in k2 {
                if k1.get(n) != Some(def) {
                    st.push(format!("ALTER DOMAIN {name} ADD CONSTRAINT {} {def}", ident(n)));
                    hz.push(hazard("scans-table", format!("checks every value of domain {name}")));
                }
            }
        }
        (
            Object::Sequence {
                name,
                data_type: t1,
                start: s1,
                increment: i1,
                min: n1,
                max: x1,
                cache: c1,
                cycle: y1,
                unlogged: u1,
            },
            Object::Sequence {
                data_type: t2,
                start: s2,
                increment: i2,
                min: n2,
                max: x2,
                cache: c2,
                cycle: y2,
                unlogged: u2,
                ..
            },
        ) => {
            let mut opts = String::new();
            if t1 != t2 {
                opts.push_str(&format!(" AS {t2}"));
            }
            if i1 != i2 {
                opts.push_str(&format!(" INCREMENT BY {i2}"));
            }
            if n1 != n2 {
                opts.push_str(&format!(" MINVALUE {n2}"));
            }
            if x1 != x2 {
                opts.push_str(&format!(" MAXVALUE {x2}"));
            }
            if s1 != s2 {
                opts.push_str(&format!(" START WITH {s2}"));
            }
            if c1 != c2 {
                opts.push_str(&format!(" CACHE {c2}"));
            }
            if y1 != y2 {
                opts.push_str(if *y2 { " CYCLE" } else { " NO CYCLE" });
            }
            if !opts.is_empty() {
                st.push(format!("ALTER SEQUENCE {name}{opts}"));
            }
            if u1 != u2 {
                st.push(format!("ALTER SEQUENCE {name} SET {}", if *u2 { "UNLOGGED" } else { "LOGGED" }));
            }
        }
        (Object::SequenceOwner { .. }, Object::SequenceOwner { .. }) => st.extend(create(b, m)),
        (
            Object::Table {
                name,
                partitioned_by: p1,
                partition_of: o1,
                inherits: h1,
                unlogged: u1,
                options: x1,
                row_security: r1,
                force_row_security: f1,
            },
            Object::Table {
                partitioned_by: p2,
                partition_of: o2,
                inherits: h2,
                unlogged: u2,
                options: x2,
                row_security: r2,
                force_row_security: f2,
                ..
            },
        ) => {
            if p1 != p2 {
                return None;
            }
            match (o1, o2) {
                (a, b) if a == b => {}
                (Some((parent, _)), Some((p, bound))) if parent == p => {
                    st.push(format!("ALTER TABLE {parent} DETACH PARTITION {name}"));
                    st.push(format!("ALTER TABLE {parent} ATTACH PARTITION {name} {bound}"));
                    hz.push(hazard("scans-table", format!("attaching {name} checks every row against {bound}")));
                }
                _ => return None,
            }
            for h in h1.iter().filter(|h| !h2.contains(h)) {
                st.push(format!("ALTER TABLE {name} NO INHERIT {h}"));
            }
            for h in h2.iter().filter(|h| !h1.contains(h)) {
                st.push(format!("ALTER TABLE {name} INHERIT {h}"));
            }
            if u1 != u2 {
                st.push(format!("ALTER TABLE {name} SET {}", if *u2 { "UNLOGGED" } else { "LOGGED" }));
                hz.push(hazard("rewrites-table", format!("{name} is rewritten")));
            }
            let keys =
                |o: &[String]| o.iter().map(|x| x.split('=').next().unwrap_or(x).to_string()).collect::<Vec<_>>();
            let gone: Vec<String> = keys(x1).into_iter().filter(|k| !keys(x2).contains(k)).collect();
            if !gone.is_empty() {
                st.push(format!("ALTER TABLE {name} RESET ({})", gone.join(", ")));
            }
            let set: Vec<&String> = x2.iter().filter(|o| !x1.contains(o)).collect();
            if !set.is_empty() {
                st.push(format!(
                    "ALTER TABLE {name} SET ({})",
                    set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            if r1 != r2 {
                st.push(format!("ALTER TABLE {name} {} ROW LEVEL SECURITY", if *r2 { "ENABLE" } else { "DISABLE" }));
            }
            if f1 != f2 {
                st.push(format!("ALTER TABLE {name} {} ROW LEVEL SECURITY", if *f2 { "FORCE" } else { "NO FORCE" }));
            }
            if !st.is_empty() {
                hz.push(exclusive(name));
            }
        }
        (
            Object::Column {
                table, name, data_type: t1, collation: c1, not_null: n1, identity: i1, generated: g1, ..
            },
            Object::Column { data_type: t2, collation: c2, not_null: n2, identity: i2, generated: g2, .. },
        ) => {
            if g1 != g2 {
                return None;
            }
            let col = ident(name);
            if t1 != t2 || c1 != c2 {
                let collate = c2.as_ref().map(|c| format!(" COLLATE {c}")).unwrap_or_default();
                let using = if t1 == t2 { String::new() } else { format!(" USING {col}::{t2}") };
                st.push(format!("ALTER TABLE {table} ALTER COLUMN {col} TYPE {t2}{collate}{using}"));
                retypes_column = t1 != t2;
                if !binary_coercible(t1, t2) || c1 != c2 {
                    hz.push(hazard(
                        "rewrites-table",
                        format!("{table} is rewritten (and its indexes rebuilt) for {col}: {t1} → {t2}"),
                    ));
                }
            }
            // An identity column is NOT NULL: the identity goes before NOT NULL can.
            if i1.is_some() && i2.is_none() {
                st.push(format!("ALTER TABLE {table} ALTER COLUMN {col} DROP IDENTITY"));
            }
            if n1 != n2 {
                st.push(format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} {} NOT NULL",
                    if *n2 { "SET" } else { "DROP" }
                ));
                if *n2 {
                    hz.push(hazard("scans-table", format!("{table} is scanned for NULLs in {col}")));
                    hz.push(hazard("fails-on-data", format!("fails if {table}.{col} holds NULLs")));
                }
            }
            match (i1, i2) {
                (None, None) => {}
                (None, Some((k, opts))) => st.push(format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} ADD GENERATED {} AS IDENTITY{}",
                    identity_kind(*k),
                    if opts.is_empty() { String::new() } else { format!(" ({opts})") }
                )),
                (Some(_), None) => {}
                (Some((k1, o1)), Some((k2, o2))) => {
                    if k1 != k2 {
                        st.push(format!("ALTER TABLE {table} ALTER COLUMN {col} SET GENERATED {}", identity_kind(*k2)));
                    }
                    if o1 != o2 {
                        // Options cannot be reset one by one: drop and re-add the identity.
                        st.push(format!("ALTER TABLE {table} ALTER COLUMN {col} DROP IDENTITY"));
                        st.push(format!(
                            "ALTER TABLE {table} ALTER COLUMN {col} ADD GENERATED {} AS IDENTITY{}",
                            identity_kind(*k2),
                            if o2.is_empty() { String::new() } else { format!(" ({o2})") }
                        ));
                        hz.push(hazard("resets-sequence", format!("the identity sequence of {table}.{col} restarts")));
                    }
                }
            }
            hz.push(exclusive(table));
        }
        (Object::ColumnDefault { table, .. }, Object::ColumnDefault { .. }) => {
            st.extend(create(b, m));
            hz.push(exclusive(table));
        }
        // NOT VALID → valid is a validation, not a new constraint.
        (Object::Constraint { table, name, definition: d1, .. }, Object::Constraint { definition: d2, .. })
            if d1.strip_suffix(" NOT VALID") == Some(d2.as_str()) =>
        {
            st.push(format!("ALTER TABLE {table} VALIDATE CONSTRAINT {}", ident(name)));
            hz.push(hazard("scans-table", format!("{table} is scanned to validate {}", ident(name))));
        }
        (Object::Function { kind: k1, result: r1, .. }, Object::Function { kind: k2, result: r2, definition, .. }) => {
            if k1 != k2 || r1 != r2 || *k1 == 'a' {
                return None;
            }
            st.push(definition.clone());
        }
        (Object::Trigger { table, name, definition: d1, .. }, Object::Trigger { definition: d2, enabled, .. }) => {
            if d1 != d2 {
                return None;
            }
            st.push(format!(
                "ALTER TABLE {table} {} TRIGGER {}",
                trigger_state(*enabled).unwrap_or("ENABLE"),
                ident(name)
            ));
        }
        (
            Object::Policy { table, name, permissive: p1, command: c1, roles: r1, using: u1, with_check: w1 },
            Object::Policy { permissive: p2, command: c2, roles: r2, using: u2, with_check: w2, .. },
        ) => {
            if p1 != p2 || c1 != c2 || (u1.is_some() && u2.is_none()) || (w1.is_some() && w2.is_none()) {
                return None;
            }
            let mut s = format!("ALTER POLICY {} ON {table}", ident(name));
            if r1 != r2 {
                s.push_str(&format!(" TO {}", r2.join(", ")));
            }
            if u1 != u2 {
                s.push_str(&format!(" USING ({})", u2.as_deref().unwrap_or_default()));
            }
            if w1 != w2 {
                s.push_str(&format!(" WITH CHECK ({})", w2.as_deref().unwrap_or_default()));
            }
            st.push(s);
        }
        (Object::Comment { .. }, Object::Comment { .. }) => st.extend(create(b, m)),
        (Object::Grant { target, grantee, privileges: p1, column, .. }, Object::Grant { privileges: p2, .. }) => {
            st.extend(grant_statements(target, column.as_deref(), grantee, p1, p2))
        }
        (
            Object::DefaultPrivilege { role, schema, on, grantee, privileges: p1 },
            Object::DefaultPrivilege { privileges: p2, .. },
        ) => st.extend(default_privilege_statements(role, schema.as_deref(), on, grantee, p1, p2)),
        _ => return None,
    }
    Some(Alter { statements: st, hazards: hz, retypes_column })
}

/// Whether PostgreSQL changes the type without rewriting the table (the common cases).
fn binary_coercible(from: &str, to: &str) -> bool {
    let base = |t: &str| t.split('(').next().unwrap_or(t).trim().to_string();
    let typmod = |t: &str| {
        t.split_once('(').and_then(|(_, r)| {
            r.trim_end_matches(')').split(',').next().map(str::trim).and_then(|n| n.parse::<u32>().ok())
        })
    };
    match (base(from).as_str(), base(to).as_str()) {
        ("character varying", "text") | ("character varying", "character varying") => {
            typmod(to).is_none() || typmod(from).is_some_and(|f| typmod(to).is_some_and(|t| t >= f))
        }
        ("text", "character varying") => typmod(to).is_none(),
        ("numeric", "numeric") => typmod(to).is_none(),
        ("bit varying", "bit varying") => typmod(to).is_none() || typmod(from) <= typmod(to),
        _ => false,
    }
}

fn identity_kind(k: char) -> &'static str {
    if k == 'a' { "ALWAYS" } else { "BY DEFAULT" }
}

fn trigger_state(enabled: char) -> Option<&'static str> {
    match enabled {
        'D' => Some("DISABLE"),
        'R' => Some("ENABLE REPLICA"),
        'A' => Some("ENABLE ALWAYS"),
        _ => None,
    }
}

/// `name type [COLLATE c] [GENERATED …] [DEFAULT …] [NOT NULL]` as in `CREATE TABLE`.
fn column_definition(c: &Object, m: &Model) -> String {
    let Object::Column { table, name, data_type, collation, not_null, identity, generated, .. } = c else {
        return String::new();
    };
    let mut s = format!("{} {data_type}", ident(name));
    if let Some(col) = collation {
        s.push_str(&format!(" COLLATE {col}"));
    }
    if let Some(g) = generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
    }
    let default_key = Key(format!("default {table}.{}", ident(name)));
    if let Some(Object::ColumnDefault { expression, .. }) = m.objects.get(&default_key) {
        s.push_str(&format!(" DEFAULT {expression}"));
    }
    if let Some((k, opts)) = identity {
        s.push_str(&format!(" GENERATED {} AS IDENTITY", identity_kind(*k)));
        if !opts.is_empty() {
            s.push_str(&format!(" ({opts})"));
        }
    }
    if *not_null {
        s.push_str(" NOT NULL");
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn sequence_options(
    data_type: &str,
    start: i64,
    increment: i64,
    min: i64,
    max: i64,
    cache: i64,
    cycle: bool,
    create: bool,
) -> String {
    let (tmin, tmax) = match data_type {
        "smallint" => (i16::MIN as i64, i16::MAX as i64),
        "integer" => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    let (dmin, dmax) = if increment > 0 { (1, tmax) } else { (tmin, -1) };
    let dstart = if increment > 0 { min } else { max };
    let mut s = String::new();
    if data_type != "bigint" {
        s.push_str(&format!(" AS {data_type}"));
    }
    if increment != 1 {
        s.push_str(&format!(" INCREMENT BY {increment}"));
    }
    if min != dmin {
        s.push_str(&format!(" MINVALUE {min}"));
    }
    if max != dmax {
        s.push_str(&format!(" MAXVALUE {max}"));
    }
    if start != dstart || !create {
        s.push_str(&format!(" START WITH {start}"));
    }
    if cache != 1 {
        s.push_str(&format!(" CACHE {cache}"));
    }
    if cycle {
        s.push_str(" CYCLE");
    }
    s
}

/// GRANT/REVOKE taking privileges `from` → `to` (a `*` suffix is WITH GRANT OPTION).
fn grant_statements(
    target: &str,
    column: Option<&str>,
    grantee: &str,
    from: &BTreeSet<String>,
    to: &BTreeSet<String>,
) -> Vec<String> {
    let cols = column.map(|c| format!(" ({})", ident(c))).unwrap_or_default();
    let plain = |s: &BTreeSet<String>| s.iter().map(|p| p.trim_end_matches('*').to_string()).collect::<BTreeSet<_>>();
    let mut out = Vec::new();
    // Privileges lost entirely, then grant options lost.
    let revoke: Vec<String> = plain(from).difference(&plain(to)).cloned().collect();
    if !revoke.is_empty() {
        out.push(format!("REVOKE {}{cols} ON {target} FROM {grantee}", revoke.join(", ")));
    }
    let option_lost: Vec<String> = from
        .iter()
        .filter(|p| p.ends_with('*') && to.contains(p.trim_end_matches('*')))
        .map(|p| p.trim_end_matches('*').to_string())
        .collect();
    if !option_lost.is_empty() {
        out.push(format!("REVOKE GRANT OPTION FOR {}{cols} ON {target} FROM {grantee}", option_lost.join(", ")));
    }
    let grant: Vec<String> = to.iter().filter(|p| !p.ends_with('*') && !plain(from).contains(*p)).cloned().collect();
    if !grant.is_empty() {
        out.push(format!("GRANT {}{cols} ON {target} TO {grantee}", grant.join(", ")));
    }
    let with_option: Vec<String> = to
        .iter()
        .filter(|p| p.ends_with('*') && !from.contains(*p))
        .map(|p| p.trim_end_matches('*').to_string())
        .collect();
    if !with_option.is_empty() {
        out.push(format!("GRANT {}{cols} ON {target} TO {grantee} WITH GRANT OPTION", with_option.join(", ")));
    }
    out
}

fn default_privilege_statements(
    role: &str,
    schema: Option<&str>,
    on: &str,
    grantee: &str,
    from: &BTreeSet<String>,
    to: &BTreeSet<String>,
) -> Vec<String> {
    let prefix = format!(
        "ALTER DEFAULT PRIVILEGES FOR ROLE {role}{}",
        schema.map(|s| format!(" IN SCHEMA {}", ident(s))).unwrap_or_default()
    );
    grant_statements(on, None, grantee, from, to).into_iter().map(|s| format!("{prefix} {s}")).collect()
}

/// What differs between two versions of an object, for reports.
pub fn details(a: &Object, b: &Object) -> Vec<String> {
    let (Ok(serde_json::Value::Object(ja)), Ok(serde_json::Value::Object(jb))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "none".to_string(),
        Some(serde_json::Value::String(s)) if s.contains('\n') || s.len() > 80 => "(changed)".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let mut out = Vec::new();
    for (k, va) in &ja {
        let vb = jb.get(k);
        if Some(va) != vb {
            out.push(format!("{}: {} → {}", k.replace('_', " "), show(Some(va)), show(vb)));
        }
    }
    out
}

pub fn drop_hazards(o: &Object) -> Vec<Hazard> {
    match o {
        Object::Table { name, .. } => vec![hazard("deletes-data", format!("drops table {name} and its rows"))],
        Object::Column { table, name, .. } => vec![
            hazard("deletes-data", format!("drops column {table}.{} and its values", ident(name))),
            exclusive(table),
        ],
        Object::View { name, materialized: true, .. } => {
            vec![hazard("deletes-data", format!("drops materialized view {name} (refilled only when it is recreated)"))]
        }
        Object::Sequence { name, .. } => {
            vec![hazard("deletes-data", format!("drops sequence {name} and its position"))]
        }
        Object::Constraint { table, .. }
        | Object::Index { table, .. }
        | Object::Trigger { table, .. }
        | Object::Policy { table, .. } => {
            vec![exclusive(table)]
        }
        _ => Vec::new(),
    }
}

/// Hazards of creating `o` when `a` is the model it is created in.
pub fn create_hazards(o: &Object, a: &Model, b: &Model) -> Vec<Hazard> {
    let existing = |table: &str| a.objects.contains_key(&Key(format!("table {table}")));
    match o {
        Object::Column { table, name, not_null, generated, identity, .. } if existing(table) => {
            let mut h = vec![exclusive(table)];
            let default = b.objects.contains_key(&Key(format!("default {table}.{}", ident(name))));
            if generated.is_some() || identity.is_some() {
                h.push(hazard("rewrites-table", format!("{table} is rewritten to fill {}", ident(name))));
            }
            if *not_null && !default && generated.is_none() && identity.is_none() {
                h.push(hazard("fails-on-data", format!("NOT NULL without a default fails if {table} has rows")));
            }
            h
        }
        Object::ColumnDefault { table, .. } if existing(table) => vec![exclusive(table)],
        Object::Constraint { table, name, kind, definition } if existing(table) => {
            let mut h = Vec::new();
            match kind {
                'f' => h.push(hazard(
                    "locks",
                    format!(
                        "SHARE ROW EXCLUSIVE lock on {table} and the referenced table: blocks writes while it runs"
                    ),
                )),
                _ => h.push(exclusive(table)),
            }
            if matches!(kind, 'p' | 'u' | 'x') {
                h.push(hazard("builds-index", format!("{} builds an index on {table} while writes wait", ident(name))));
            } else if !definition.ends_with("NOT VALID") {
                h.push(hazard(
                    "validates",
                    format!("{table} is scanned to validate {}; add it NOT VALID and VALIDATE later", ident(name)),
                ));
            }
            h
        }
        Object::Index { table, name, definition, on: "table", .. }
            if existing(table) && !definition.contains(" CONCURRENTLY ") =>
        {
            vec![hazard("builds-index", format!("{name} is built under a SHARE lock on {table}: writes wait"))]
        }
        _ => Vec::new(),
    }
}
