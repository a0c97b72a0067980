//! The target's schema. An empty target gets the source's, from the diff engine in two parts,
//! as pg_restore orders a dump: what the rows need before the load (schemas, types, functions,
//! tables with their columns, defaults and CHECK constraints, views), then after it what is
//! faster built once over the loaded rows (indexes, primary keys, unique and exclusion
//! constraints, foreign keys — validated as they are added — triggers, policies, materialized
//! views). A target that already has the tables is checked instead: every copied column must
//! exist with a type its text form loads into.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::catalog::model::{Key, Model, Object};
use crate::catalog::tables::{Column, Tables};
use crate::diff::plan::{Action, plan};

/// One object made after the load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostStep {
    pub no: u32,
    /// 1: indexes and key constraints, 2: foreign keys (the keys they reference exist), 3: the
    /// rest, in the plan's order. Steps of phases 1 and 2 on different tables run in parallel.
    pub phase: u8,
    /// The table it is on (steps of one table run one after the other).
    pub table: String,
    /// For people: `index public.users_email_key`.
    pub what: String,
    pub statements: Vec<String>,
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
    let before: Vec<String> = first
        .steps
        .iter()
        .filter(|s| s.action == Action::Create && !target.objects.contains_key(&s.object))
        .flat_map(|s| s.statements.iter().cloned())
        .collect();
    for (k, o) in &pre.objects {
        base.objects.entry(k.clone()).or_insert_with(|| o.clone());
    }
    for (k, d) in &pre.deps {
        base.deps.entry(k.clone()).or_default().extend(d.iter().cloned());
    }
    let second = plan(&base, &full).map_err(|e| e.to_string())?;
    let mut after = Vec::new();
    for s in second.steps.iter().filter(|s| s.action == Action::Create && !base.objects.contains_key(&s.object)) {
        let o = full.objects.get(&s.object);
        let phase = match o {
            Some(Object::Constraint { kind: 'f', .. }) => 2,
            Some(Object::Index { .. }) | Some(Object::Constraint { .. }) => 1,
            _ => 3,
        };
        let table = o.and_then(Object::table).unwrap_or("").to_string();
        after.push(PostStep {
            no: after.len() as u32,
            phase,
            table,
            what: s.object.0.clone(),
            statements: s.statements.clone(),
        });
    }
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

    fn col(t: &str, name: &str, max: Option<usize>) -> Column {
        Column {
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
