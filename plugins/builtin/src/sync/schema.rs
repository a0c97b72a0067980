//! The target's schema. An empty target gets the source's, from the diff engine in two parts,
//! as pg_restore orders a dump: what the rows need before the load (schemas, types, functions,
//! tables with their columns, defaults and CHECK constraints, views), then after it what is
//! faster built once over the loaded rows (indexes, primary keys, unique and exclusion
//! constraints, foreign keys — validated as they are added — triggers, policies, materialized
//! views). A target that already has the tables is checked instead: every copied column must
//! exist with a type its text form loads into.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::plan::root_of;
use crate::catalog::model::{Key, Model, Object, ident};
use crate::catalog::tables::{Column, Tables};
use crate::diff::plan::{Action, plan};

/// When a step after the load runs; the phases run in this order, each when the one before
/// is done. They are cut so that the slow ones run several at once without waiting on each
/// other's locks, as pg_restore's do not: `CREATE INDEX` takes SHARE, which does not conflict
/// with itself, so one table's indexes build at once; `VALIDATE CONSTRAINT` takes SHARE UPDATE
/// EXCLUSIVE on the referencing table and only ROW SHARE on the referenced one, so every foreign
/// key into `users` validates at once, where `ADD FOREIGN KEY` (SHARE ROW EXCLUSIVE on both)
/// would add them one after the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Index builds (a key's unique index, or the key constraint itself when it cannot be
    /// attached to one): any number at once, the biggest table first.
    Build,
    /// Keys attached to their built index, foreign keys added `NOT VALID`: catalog changes
    /// only, one session, in the plan's order.
    Attach,
    /// Foreign keys validated: different tables at once, one table's in order.
    Validate,
    /// The rest (triggers, policies, materialized views), one session, in the plan's order.
    Rest,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Build, Phase::Attach, Phase::Validate, Phase::Rest];
}

/// One object made after the load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostStep {
    pub no: u32,
    pub phase: Phase,
    /// The table it is on, `schema.table` unquoted.
    pub table: String,
    /// Bytes of that table (with its partitions) in the source, to start the biggest first.
    #[serde(default)]
    pub weight: i64,
    /// For people: `index public.users_email_key`.
    pub what: String,
    pub statements: Vec<String>,
}

impl PostStep {
    pub fn new(phase: Phase, table: &str, what: String, statements: Vec<String>) -> PostStep {
        PostStep { no: 0, phase, table: unquote(table), weight: 0, what, statements }
    }
}

/// `PRIMARY KEY (a, b)`, `UNIQUE (email) DEFERRABLE`: a key over plain columns, the only kind
/// `ADD CONSTRAINT … USING INDEX` takes as it was.
static SIMPLE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(PRIMARY KEY|UNIQUE) (\([^()]*\))( DEFERRABLE(?: INITIALLY (?:DEFERRED|IMMEDIATE))?)?$")
        .expect("a valid pattern")
});

/// The steps of key constraint `name` on `table` (SQL), whose plan statements are `statements`:
/// a unique index built in parallel with the table's other indexes and then attached to the
/// constraint, when the key is over plain columns on a plain table (the index is the one
/// `ADD CONSTRAINT` would build, under the same name); else the plan's statements as one build.
pub fn key_steps(table: &str, name: &str, definition: &str, plain: bool, statements: Vec<String>) -> Vec<PostStep> {
    let what = format!("key {} on {table}", ident(name));
    let expected = format!("ALTER TABLE {table} ADD CONSTRAINT {} {definition}", ident(name));
    match SIMPLE_KEY.captures(definition) {
        Some(c) if plain && statements == [expected] => {
            let (kind, columns, deferrable) = (&c[1], &c[2], c.get(3).map_or("", |m| m.as_str()));
            let n = ident(name);
            vec![
                PostStep::new(
                    Phase::Build,
                    table,
                    format!("unique index {n} on {table}"),
                    vec![format!("CREATE UNIQUE INDEX {n} ON {table} USING btree {columns}")],
                ),
                PostStep::new(
                    Phase::Attach,
                    table,
                    what,
                    vec![format!("ALTER TABLE {table} ADD CONSTRAINT {n} {kind} USING INDEX {n}{deferrable}")],
                ),
            ]
        }
        _ => vec![PostStep::new(Phase::Build, table, what, statements)],
    }
}

/// The steps of foreign key `name` on `table` (SQL): added `NOT VALID`, then validated, so that
/// keys into one table validate at once. PostgreSQL 15 takes no `NOT VALID` foreign key on a
/// partitioned table: there (and for a key the source itself has `NOT VALID`) the plan's
/// statements run as one step of the validate phase.
pub fn foreign_key_steps(
    table: &str,
    name: &str,
    definition: &str,
    partitioned: bool,
    statements: Vec<String>,
) -> Vec<PostStep> {
    let n = ident(name);
    let what = format!("foreign key {n} on {table}");
    let expected = format!("ALTER TABLE {table} ADD CONSTRAINT {n} {definition}");
    if partitioned || definition.ends_with(" NOT VALID") || statements != std::slice::from_ref(&expected) {
        return vec![PostStep::new(Phase::Validate, table, what, statements)];
    }
    vec![
        PostStep::new(Phase::Attach, table, format!("{what}, not valid yet"), vec![format!("{expected} NOT VALID")]),
        PostStep::new(Phase::Validate, table, what, vec![format!("ALTER TABLE {table} VALIDATE CONSTRAINT {n}")]),
    ]
}

/// Give each step its table's size in the source, a partitioned table's its partitions' summed.
pub fn weigh(steps: &mut [PostStep], tables: &Tables) {
    let mut bytes: BTreeMap<String, i64> = BTreeMap::new();
    for (name, t) in &tables.tables {
        *bytes.entry(name.clone()).or_default() += t.bytes;
        let root = root_of(tables, name);
        if root != *name {
            *bytes.entry(root).or_default() += t.bytes;
        }
    }
    for s in steps {
        s.weight = bytes.get(&s.table).copied().unwrap_or(0);
    }
}

/// The two parts, as SQL.
pub struct Split {
    pub before: Vec<String>,
    pub after: Vec<PostStep>,
    /// Grants left out because their role does not exist on the target.
    pub skipped_grants: usize,
}

/// Made after the load: the object itself is an index, a key/foreign-key/exclusion
/// constraint, a trigger, a policy or a materialized view (and what hangs on those).
fn after_load(o: &Object) -> bool {
    match o {
        Object::Index { .. } | Object::Trigger { .. } | Object::Policy { .. } => true,
        Object::Constraint { kind, .. } => matches!(kind, 'p' | 'u' | 'f' | 'x'),
        Object::View { materialized, .. } => *materialized,
        _ => false,
    }
}

/// `keys` and everything that belongs to them or depends on them, to a fixpoint.
fn close_over(model: &Model, mut keys: BTreeSet<Key>) -> BTreeSet<Key> {
    loop {
        let more: Vec<Key> = model
            .objects
            .iter()
            .filter(|(k, o)| {
                !keys.contains(*k)
                    && (o.parent().is_some_and(|p| keys.contains(&p))
                        || model.deps.get(*k).is_some_and(|d| d.iter().any(|d| keys.contains(d))))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if more.is_empty() {
            return keys;
        }
        keys.extend(more);
    }
}

fn remove(model: &mut Model, keys: &BTreeSet<Key>) {
    model.objects.retain(|k, _| !keys.contains(k));
    model.deps.retain(|k, _| !keys.contains(k));
    for d in model.deps.values_mut() {
        d.retain(|k| !keys.contains(k));
    }
}

/// Leave out of `model` the tables not in `keep` (as `schema.table`, unquoted), with what
/// belongs to them and what depends on them (a view over a table not copied).
pub fn limit(model: &mut Model, keep: &HashSet<String>) {
    let gone: BTreeSet<Key> = model
        .objects
        .iter()
        .filter(|(_, o)| match o {
            Object::Table { name, .. } => !keep.contains(&unquote(name)),
            _ => false,
        })
        .map(|(k, _)| k.clone())
        .collect();
    let gone = close_over(model, gone);
    remove(model, &gone);
}

/// `"My Schema".users` → `My Schema.users` (identifiers never contain an unquoted dot).
fn unquote(qualified: &str) -> String {
    let mut out = String::new();
    let mut chars = qualified.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.push('"');
            }
            '"' => quoted = !quoted,
            _ => out.push(c),
        }
    }
    out
}

/// Plan the source's schema (`source`, already limited to the synced tables) onto `target`,
/// creating only what the target does not have. `roles`: the target's roles.
pub fn split(source: &Model, target: &Model, roles: &HashSet<String>) -> Result<Split, String> {
    let mut full = source.clone();
    // Grants to roles the target does not have cannot be made there.
    let before_grants = full.objects.len();
    full.objects.retain(|_, o| match o {
        Object::Grant { grantee, .. } | Object::DefaultPrivilege { grantee, .. } => {
            grantee == "PUBLIC" || roles.contains(grantee.trim_matches('"'))
        }
        _ => true,
    });
    let skipped_grants = before_grants - full.objects.len();
    // Before the load: everything but the after-load objects and what depends on them or
    // belongs to them.
    let later: BTreeSet<Key> = full.objects.iter().filter(|(_, o)| after_load(o)).map(|(k, _)| k.clone()).collect();
    let later = close_over(&full, later);
    let mut pre = full.clone();
    remove(&mut pre, &later);
    let mut base = target.clone();
    // Only what the target lacks is made: nothing of the target is dropped or altered.
    let first = plan(&base, &pre).map_err(|e| e.to_string())?;
    let mut before: Vec<String> = first
        .steps
        .iter()
        .filter(|s| s.action == Action::Create && !target.objects.contains_key(&s.object))
        .flat_map(|s| s.statements.iter().cloned())
        .collect();
    // Autovacuum would vacuum and analyze the tables while they load and while their indexes
    // build, and every `CREATE INDEX` or `ALTER TABLE` after the load would wait a
    // deadlock_timeout (1 s) before it is cancelled: it is off on the tables made here until
    // the end, then as in the source. Their statistics counters stay, so autovacuum analyzes
    // them once it is on again.
    let mut autovacuum_back = Vec::new();
    for (k, o) in &pre.objects {
        if let Object::Table { name, partitioned_by: None, options, .. } = o
            && !target.objects.contains_key(k)
        {
            before.push(format!("ALTER TABLE {name} SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)"));
            let mut back = vec![format!("ALTER TABLE {name} RESET (autovacuum_enabled, toast.autovacuum_enabled)")];
            if let Some(own) = options.iter().find(|o| o.starts_with("autovacuum_enabled=")) {
                back.push(format!("ALTER TABLE {name} SET ({own})"));
            }
            autovacuum_back.push(PostStep::new(Phase::Rest, name, format!("autovacuum on {name} again"), back));
        }
    }
    for (k, o) in &pre.objects {
        base.objects.entry(k.clone()).or_insert_with(|| o.clone());
    }
    for (k, d) in &pre.deps {
        base.deps.entry(k.clone()).or_default().extend(d.iter().cloned());
    }
    let second = plan(&base, &full).map_err(|e| e.to_string())?;
    // Tables by what they are, for the keys on them.
    let (mut partitioned, mut plain) = (HashSet::new(), HashSet::new());
    for o in full.objects.values() {
        match o {
            Object::Table { name, partitioned_by: Some(_), .. } => partitioned.insert(name.as_str()),
            Object::Table { name, partition_of: None, .. } => plain.insert(name.as_str()),
            _ => false,
        };
    }
    let mut after = Vec::new();
    for s in second.steps.iter().filter(|s| s.action == Action::Create && !base.objects.contains_key(&s.object)) {
        let o = full.objects.get(&s.object);
        let statements = s.statements.clone();
        match o {
            Some(Object::Constraint { table, name, kind: 'f', definition }) => after.extend(foreign_key_steps(
                table,
                name,
                definition,
                partitioned.contains(table.as_str()),
                statements,
            )),
            Some(Object::Constraint { table, name, kind: 'p' | 'u', definition }) => {
                after.extend(key_steps(table, name, definition, plain.contains(table.as_str()), statements))
            }
            Some(o @ (Object::Index { .. } | Object::Constraint { .. })) => {
                after.push(PostStep::new(Phase::Build, o.table().unwrap_or(""), s.object.0.clone(), statements))
            }
            _ => after.push(PostStep::new(
                Phase::Rest,
                o.and_then(Object::table).unwrap_or(""),
                s.object.0.clone(),
                statements,
            )),
        }
    }
    after.extend(autovacuum_back);
    Ok(Split { before, after, skipped_grants })
}

/// Whether a value of `from`, in its text form, loads into `to` without loss.
fn compatible(from: &Column, to: &Column) -> bool {
    if from.data_type == to.data_type && from.array == to.array {
        return true;
    }
    if from.array != to.array {
        return false;
    }
    let (a, b) = (from.type_name.as_str(), to.type_name.as_str());
    let widen = |chain: &[&str]| {
        let pa = chain.iter().position(|t| *t == a);
        let pb = chain.iter().position(|t| *t == b);
        matches!((pa, pb), (Some(x), Some(y)) if x <= y)
    };
    if a == b {
        // Same type, other modifier: a longer varchar, an unconstrained numeric.
        return match (from.max_len, to.max_len) {
            (_, None) => true,
            (Some(x), Some(y)) => x <= y,
            (None, Some(_)) => false,
        } && (a != "numeric" || !to.data_type.contains('('));
    }
    widen(&["int2", "int4", "int8", "numeric"])
        || widen(&["float4", "float8"])
        || (matches!(a, "varchar" | "bpchar" | "text" | "citext") && matches!(b, "text" | "citext"))
        || (a == "varchar" && b == "varchar" && to.max_len.is_none())
        || (a == "json" && b == "jsonb")
        || (a == "timestamp" && b == "timestamptz")
}

/// What keeps the rows of the chosen source tables from loading into the target's tables of the
/// same names; empty when they fit. Also lists target columns without a value (NOT NULL, no
/// default, not copied).
pub fn differences(
    source: &Tables,
    target: &Tables,
    chosen: &[String],
    target_defaults: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for name in chosen {
        let (Some(s), Some(t)) = (source.tables.get(name), target.tables.get(name)) else {
            out.push(format!("{name}: not in the target"));
            continue;
        };
        if s.kind != t.kind {
            out.push(format!("{name}: {} in the source, {} in the target", kind_word(s.kind), kind_word(t.kind)));
            continue;
        }
        if s.kind != 'r' {
            continue;
        }
        for c in s.columns.iter().filter(|c| !c.generated) {
            match t.column(&c.name) {
                None => out.push(format!("{name}.{}: missing in the target (source type {})", c.name, c.data_type)),
                Some(tc) if tc.generated => {
                    out.push(format!("{name}.{}: a generated column in the target, not in the source", c.name))
                }
                Some(tc) if !compatible(c, tc) => out
                    .push(format!("{name}.{}: {} in the source, {} in the target", c.name, c.data_type, tc.data_type)),
                Some(_) => {}
            }
        }
        let defaults = target_defaults.get(name);
        for tc in &t.columns {
            let copied = s.column(&tc.name).is_some_and(|c| !c.generated);
            if !copied
                && tc.not_null
                && !tc.generated
                && !tc.identity
                && !defaults.is_some_and(|d| d.contains(&tc.name))
            {
                out.push(format!(
                    "{name}.{}: NOT NULL without a default in the target, and not in the source",
                    tc.name
                ));
            }
        }
    }
    out
}

fn kind_word(k: char) -> &'static str {
    if k == 'p' { "partitioned" } else { "a plain table" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases(steps: &[PostStep]) -> Vec<(Phase, &str)> {
        steps.iter().map(|s| (s.phase, s.statements[0].as_str())).collect()
    }

    #[test]
    fn simple_keys_build_as_indexes_then_attach() {
        let add = |def: &str| vec![format!("ALTER TABLE \"My S\".t ADD CONSTRAINT \"K y\" {def}")];
        let steps =
            key_steps("\"My S\".t", "K y", "UNIQUE (a, \"B\") DEFERRABLE", true, add("UNIQUE (a, \"B\") DEFERRABLE"));
        assert_eq!(
            phases(&steps),
            [
                (Phase::Build, "CREATE UNIQUE INDEX \"K y\" ON \"My S\".t USING btree (a, \"B\")"),
                (Phase::Attach, "ALTER TABLE \"My S\".t ADD CONSTRAINT \"K y\" UNIQUE USING INDEX \"K y\" DEFERRABLE"),
            ]
        );
        assert_eq!(steps[0].table, "My S.t");
        // INCLUDE, WITH, a partitioned table or statements of another shape: as planned.
        for (def, plain) in [("PRIMARY KEY (a) INCLUDE (b)", true), ("PRIMARY KEY (a)", false)] {
            let steps = key_steps("s.t", "k", def, plain, vec![format!("ALTER TABLE s.t ADD CONSTRAINT k {def}")]);
            assert_eq!(phases(&steps), [(Phase::Build, format!("ALTER TABLE s.t ADD CONSTRAINT k {def}").as_str())]);
        }
        let odd = key_steps("s.t", "k", "PRIMARY KEY (a)", true, vec!["something else".into()]);
        assert_eq!(phases(&odd), [(Phase::Build, "something else")]);
    }

    #[test]
    fn foreign_keys_are_added_not_valid_then_validated() {
        let def = "FOREIGN KEY (u) REFERENCES s.users(id)";
        let plan = vec![format!("ALTER TABLE s.t ADD CONSTRAINT f {def}")];
        let steps = foreign_key_steps("s.t", "f", def, false, plan.clone());
        assert_eq!(
            phases(&steps),
            [
                (Phase::Attach, format!("{} NOT VALID", plan[0]).as_str()),
                (Phase::Validate, "ALTER TABLE s.t VALIDATE CONSTRAINT f"),
            ]
        );
        // PostgreSQL 15 refuses NOT VALID on a partitioned table; a key NOT VALID in the source stays so.
        assert_eq!(
            phases(&foreign_key_steps("s.t", "f", def, true, plan.clone())),
            [(Phase::Validate, plan[0].as_str())]
        );
        let nv = format!("{def} NOT VALID");
        let steps = foreign_key_steps("s.t", "f", &nv, false, vec![format!("ALTER TABLE s.t ADD CONSTRAINT f {nv}")]);
        assert_eq!(steps.len(), 1);
    }

    fn col(t: &str, name: &str, max: Option<usize>) -> Column {
        Column {
            has_default: false,
            name: "c".into(),
            data_type: match max {
                Some(n) => format!("{t}({n})"),
                None => t.into(),
            },
            type_name: name.into(),
            category: "S".into(),
            array: false,
            not_null: false,
            max_len: max,
            generated: false,
            identity: false,
            comment: None,
        }
    }

    #[test]
    fn quoted_names_unquote() {
        assert_eq!(unquote("public.users"), "public.users");
        assert_eq!(unquote("\"My \"\"S\".\"T\""), "My \"S.T");
    }

    #[test]
    fn widening_is_compatible_and_narrowing_is_not() {
        assert!(compatible(&col("integer", "int4", None), &col("bigint", "int8", None)));
        assert!(!compatible(&col("bigint", "int8", None), &col("integer", "int4", None)));
        assert!(compatible(
            &col("character varying", "varchar", Some(20)),
            &col("character varying", "varchar", Some(40))
        ));
        assert!(!compatible(
            &col("character varying", "varchar", Some(40)),
            &col("character varying", "varchar", Some(20))
        ));
        assert!(compatible(&col("character varying", "varchar", Some(40)), &col("text", "text", None)));
        assert!(!compatible(&col("text", "text", None), &col("integer", "int4", None)));
    }
}
