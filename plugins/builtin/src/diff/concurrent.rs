//! `concurrent-indexes`: the index builds of a plan that can move to a migration of their own,
//! built (and dropped) CONCURRENTLY so writes go on.

use std::collections::HashSet;

use super::plan::{Action, Hazard, Plan};
use crate::catalog::Model;
use crate::catalog::model::{Key, Object};

/// The index builds of `up` that can move to a migration of their own, built CONCURRENTLY: new
/// indexes on tables that exist already (and are not partitioned, which CONCURRENTLY does not
/// support), that nothing else in the target depends on (a foreign key may need a unique index).
pub fn candidates(a: &Model, b: &Model, up: &Plan) -> HashSet<Key> {
    let needed: HashSet<&Key> = b.deps.values().flatten().collect();
    up.steps
        .iter()
        .filter(|s| s.action == Action::Create && !needed.contains(&s.object))
        .filter(|s| match b.objects.get(&s.object) {
            Some(Object::Index { table, on: "table", .. }) => matches!(
                a.objects.get(&Key(format!("table {table}"))),
                Some(Object::Table { partitioned_by: None, .. })
            ),
            _ => false,
        })
        .map(|s| s.object.clone())
        .collect()
}

/// The same index steps, `CONCURRENTLY`: writes go on while the index builds.
pub fn concurrently(mut plan: Plan) -> Plan {
    for step in &mut plan.steps {
        for s in &mut step.statements {
            for (from, to) in [
                ("CREATE INDEX ", "CREATE INDEX CONCURRENTLY "),
                ("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX CONCURRENTLY "),
                ("DROP INDEX ", "DROP INDEX CONCURRENTLY "),
            ] {
                if let Some(rest) = s.strip_prefix(from) {
                    *s = format!("{to}{rest}");
                    break;
                }
            }
        }
        step.hazards.retain(|h| h.code != "builds-index" && h.code != "locks");
        if step.action == Action::Create {
            step.hazards.push(Hazard {
                code: "builds-index",
                message: "built CONCURRENTLY: writes go on; if the build fails, drop the INVALID index it leaves"
                    .into(),
            });
        }
    }
    plan
}
