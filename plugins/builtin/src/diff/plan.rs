//! Model A vs model B → the statements that turn A into B, in an order PostgreSQL accepts.
//!
//! 1. Every key is classified: only in A → dropped; only in B → created; in both and different →
//!    altered in place when PostgreSQL can ([`super::render::alter`]), else dropped and recreated.
//! 2. Rebuilds spread to dependents: whatever depends (in A) on an object that is dropped or
//!    recreated is recreated too, and so is what blocks a column's type change (views, policies,
//!    generated columns); PostgreSQL refuses the change otherwise.
//! 3. Each drop, alter and create is a node of a petgraph graph with an edge for every dependency:
//!    dependents are dropped before what they depend on (A's dependencies), created after (B's);
//!    a name is freed before it is reused. Objects that go with their parent (a table's columns,
//!    indexes, constraints, comments) share the parent's node where the parent's statement does
//!    their work (`DROP TABLE`, `CREATE TABLE (columns…)`).
//! 4. A topological order that prefers drops, then alters, then creates, each by object kind and
//!    name, so the same two models always give the same plan.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use super::render;
pub use super::render::Hazard;
use crate::catalog::model::{Key, Model, Object};

/// What happens to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Drop,
    Alter,
    Create,
}

/// One step of a plan: the statements for one object.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Step {
    pub action: Action,
    /// The object's kind (`table`, `column`, `index`, …).
    pub kind: &'static str,
    /// The object, e.g. `column public.users.email`.
    #[schemars(with = "String")]
    pub object: Key,
    pub statements: Vec<String>,
    pub hazards: Vec<Hazard>,
}

/// What differs between the models, one entry per object.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Change {
    pub action: Action,
    pub kind: &'static str,
    #[schemars(with = "String")]
    pub object: Key,
    /// For alters: what differs, e.g. `type: integer → bigint`.
    pub details: Vec<String>,
}

/// The statements turning one model into another.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn statement_count(&self) -> usize {
        self.steps.iter().map(|s| s.statements.len()).sum()
    }

    /// Move the steps of `objects` into a plan of their own (for a second migration).
    pub fn split_off(&mut self, objects: &std::collections::HashSet<Key>) -> Plan {
        let (moved, kept): (Vec<Step>, Vec<Step>) =
            std::mem::take(&mut self.steps).into_iter().partition(|s| objects.contains(&s.object));
        self.steps = kept;
        Plan { changes: Vec::new(), steps: moved }
    }

    /// The plan as a SQL script: statements with `;`, hazards as comments before them.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        if self.steps.iter().any(|s| s.action != Action::Drop && s.kind.ends_with("function") || s.kind == "procedure")
        {
            // As pg_dump does: function bodies may name objects created later in the script.
            out.push_str("SET check_function_bodies = false;\n\n");
        }
        for step in &self.steps {
            for h in &step.hazards {
                out.push_str(&format!("-- hazard {}: {}\n", h.code, h.message));
            }
            for s in &step.statements {
                out.push_str(s);
                out.push_str(";\n");
            }
            out.push('\n');
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out
    }
}

/// The objects that cannot be ordered, when dependencies form a cycle.
#[derive(Debug, thiserror::Error)]
#[error("the changes depend on each other in a cycle: {}", .0.join(", "))]
pub struct CycleError(pub Vec<String>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Same,
    Drop,
    Create,
    Alter,
    Recreate,
}

/// Plan the statements that turn `a` into `b`.
pub fn plan(a: &Model, b: &Model) -> Result<Plan, CycleError> {
    let mut status: HashMap<&Key, Status> = HashMap::with_capacity(a.objects.len() + b.objects.len());
    let mut alters: HashMap<&Key, render::Alter> = HashMap::new();
    for (k, oa) in &a.objects {
        match b.objects.get(k) {
            None => {
                status.insert(k, Status::Drop);
            }
            Some(ob) if ob == oa => {
                status.insert(k, Status::Same);
            }
            Some(ob) => match render::alter(oa, ob, b) {
                Some(alter) => {
                    status.insert(k, Status::Alter);
                    alters.insert(k, alter);
                }
                None => {
                    status.insert(k, Status::Recreate);
                }
            },
        }
    }
    for k in b.objects.keys() {
        status.entry(k).or_insert(Status::Create);
    }

    // Rebuilds spread to what depends on them (in A).
    let mut dependents: HashMap<&Key, Vec<&Key>> = HashMap::new();
    for (from, ons) in &a.deps {
        for on in ons {
            dependents.entry(on).or_default().push(from);
        }
    }
    let mut work: Vec<&Key> =
        status.iter().filter(|(_, s)| matches!(s, Status::Drop | Status::Recreate)).map(|(k, _)| *k).collect();
    // A column whose type changes takes down what PostgreSQL will not rewrite for it.
    let retyped: Vec<&Key> = alters.iter().filter(|(_, a)| a.retypes_column).map(|(k, _)| *k).collect();
    for k in retyped {
        {
            for d in dependents.get(k).into_iter().flatten().copied().collect::<Vec<_>>() {
                let blocks = matches!(
                    a.objects.get(d),
                    Some(Object::View { .. } | Object::Policy { .. } | Object::Trigger { .. } | Object::Column { .. })
                ) || matches!(a.objects.get(d), Some(Object::ColumnDefault { .. }));
                if blocks && status.get(d) != Some(&Status::Drop) {
                    status.insert(d, Status::Recreate);
                    alters.remove(d);
                    work.push(d);
                }
            }
        }
    }
    // A sequence OWNED BY a column goes when the column goes.
    for o in a.objects.values() {
        if let Object::SequenceOwner { sequence, table, column } = o {
            let col = Key(format!("column {table}.{}", crate::catalog::model::ident(column)));
            let table_key = Key(format!("table {table}"));
            let gone = |k: &Key| matches!(status.get(k), Some(Status::Drop | Status::Recreate));
            if gone(&col) || gone(&table_key) {
                let seq = Key(format!("sequence {sequence}"));
                if let Some((k, s)) = status.get_key_value(&seq).map(|(k, s)| (*k, *s))
                    && matches!(s, Status::Same | Status::Alter)
                {
                    status.insert(k, Status::Recreate);
                    alters.remove(k);
                    work.push(k);
                }
            }
        }
    }
    while let Some(k) = work.pop() {
        for d in dependents.get(k).into_iter().flatten() {
            if matches!(status.get(d), Some(Status::Same | Status::Alter)) {
                status.insert(d, Status::Recreate);
                alters.remove(d);
                work.push(d);
            }
        }
    }

    let mut g = Graph::default();
    // Which node does an object's drop / create happen in? Its own, or its parent's when the
    // parent's statement does it.
    // A sequence OWNED BY a column that is dropped goes with the column.
    let owned_by: HashMap<Key, Key> = a
        .objects
        .values()
        .filter_map(|o| match o {
            Object::SequenceOwner { sequence, table, column } => Some((
                Key(format!("sequence {sequence}")),
                Key(format!("column {table}.{}", crate::catalog::model::ident(column))),
            )),
            _ => None,
        })
        .collect();
    let drop_node = |k: &Key| -> Option<Key> {
        let mut k = k.clone();
        loop {
            let o = a.objects.get(&k)?;
            let parent = match o {
                Object::Sequence { .. } => owned_by.get(&k).cloned(),
                _ => o.parent(),
            };
            match parent {
                Some(p) if goes_with_parent(o) && matches!(status.get(&p), Some(Status::Drop | Status::Recreate)) => {
                    k = p
                }
                _ => return Some(k),
            }
        }
    };
    let create_node = |k: &Key| -> Option<Key> {
        let mut k = k.clone();
        loop {
            let o = b.objects.get(&k)?;
            match o.parent() {
                Some(p)
                    if created_with_parent(o) && matches!(status.get(&p), Some(Status::Create | Status::Recreate)) =>
                {
                    k = p
                }
                _ => return Some(k),
            }
        }
    };

    let mut changes = Vec::new();
    // In key order, so reports and the graph are the same from run to run.
    let mut keys: Vec<&Key> = status.keys().copied().collect();
    keys.sort_unstable();
    for k in keys {
        let s = status[k];
        match s {
            Status::Same => {}
            Status::Drop => {
                changes.push(change(Action::Drop, &a.objects[k], Vec::new()));
                let owner = drop_node(k).unwrap_or_else(|| k.clone());
                g.node(Action::Drop, &owner, &a.objects[&owner]);
                if &owner == k {
                    g.set(Action::Drop, k, render::drop(&a.objects[k], a), render::drop_hazards(&a.objects[k]));
                }
            }
            Status::Create => {
                changes.push(change(Action::Create, &b.objects[k], Vec::new()));
                let owner = create_node(k).unwrap_or_else(|| k.clone());
                g.node(Action::Create, &owner, &b.objects[&owner]);
                if &owner == k {
                    g.set(
                        Action::Create,
                        k,
                        render::create(&b.objects[k], b),
                        render::create_hazards(&b.objects[k], a, b),
                    );
                }
            }
            Status::Recreate => {
                // Rebuilt only because something it depends on is: not a difference.
                if a.objects[k] != b.objects[k] {
                    changes.push(change(Action::Alter, &b.objects[k], render::details(&a.objects[k], &b.objects[k])));
                }
                let owner = drop_node(k).unwrap_or_else(|| k.clone());
                g.node(Action::Drop, &owner, &a.objects[&owner]);
                if &owner == k {
                    g.set(Action::Drop, k, render::drop(&a.objects[k], a), render::drop_hazards(&a.objects[k]));
                }
                let owner = create_node(k).unwrap_or_else(|| k.clone());
                g.node(Action::Create, &owner, &b.objects[&owner]);
                if &owner == k {
                    g.set(
                        Action::Create,
                        k,
                        render::create(&b.objects[k], b),
                        render::create_hazards(&b.objects[k], a, b),
                    );
                }
            }
            Status::Alter => {
                let alter = alters.remove(k).expect("alter planned");
                changes.push(change(Action::Alter, &b.objects[k], render::details(&a.objects[k], &b.objects[k])));
                g.node(Action::Alter, k, &b.objects[k]);
                g.set(Action::Alter, k, alter.statements, alter.hazards);
            }
        }
    }

    // Edges. `x depends on y`:
    //   in A: drop x before drop y; drop x before alter y; alter x before drop y;
    //   in B: create y before create x; create y before alter x; alter y before create x.
    // An unchanged object has no node of its own, so no edge starts at it.
    let same = |k: &Key| status.get(k) == Some(&Status::Same);
    for (x, ys) in a.deps.iter().filter(|(x, _)| !same(x)) {
        for y in ys {
            let (dx, dy) = (drop_node(x), drop_node(y));
            if let (Some(dx), Some(dy)) = (&dx, &dy) {
                g.edge((Action::Drop, dx), (Action::Drop, dy));
            }
            if let Some(dx) = dx {
                g.edge((Action::Drop, &dx), (Action::Alter, y));
            }
            if let Some(dy) = dy {
                g.edge((Action::Alter, x), (Action::Drop, &dy));
            }
        }
    }
    for (x, ys) in b.deps.iter().filter(|(x, _)| !same(x)) {
        for y in ys {
            let (cx, cy) = (create_node(x), create_node(y));
            if let (Some(cx), Some(cy)) = (&cx, &cy) {
                g.edge((Action::Create, cy), (Action::Create, cx));
            }
            if let Some(cy) = cy {
                g.edge((Action::Create, &cy), (Action::Alter, x));
            }
            if let Some(cx) = cx {
                g.edge((Action::Alter, y), (Action::Create, &cx));
            }
        }
    }
    // The same object: dropped before it is created again.
    for k in status.keys().copied() {
        if let (Some(d), Some(c)) = (drop_node(k), create_node(k)) {
            g.edge((Action::Drop, &d), (Action::Create, &c));
        }
    }
    // A name is freed before it is reused.
    let mut freed: HashMap<String, Vec<Key>> = HashMap::new();
    for (k, o) in &a.objects {
        if let (Some(slot), Some(d)) = (o.slot(), drop_node(k))
            && g.index.contains_key(&(Action::Drop, d.clone()))
        {
            freed.entry(slot).or_default().push(d);
        }
    }
    for (k, o) in &b.objects {
        if let (Some(slot), Some(c)) = (o.slot(), create_node(k)) {
            for d in freed.get(&slot).into_iter().flatten() {
                g.edge((Action::Drop, d), (Action::Create, &c));
            }
        }
    }

    let steps = g.order()?;
    Ok(Plan { changes, steps })
}

/// Whether dropping the parent drops this object too.
fn goes_with_parent(o: &Object) -> bool {
    !matches!(o, Object::Table { .. })
}

/// Whether creating the parent creates this object too (columns and defaults are written into
/// `CREATE TABLE` / `ADD COLUMN`).
fn created_with_parent(o: &Object) -> bool {
    matches!(o, Object::Column { .. } | Object::ColumnDefault { .. })
}

fn change(action: Action, o: &Object, details: Vec<String>) -> Change {
    Change { action, kind: o.kind(), object: o.key(), details }
}

#[derive(Default)]
struct Graph {
    graph: DiGraph<(Action, Key, u8), ()>,
    index: HashMap<(Action, Key), NodeIndex>,
    body: HashMap<NodeIndex, (Vec<String>, Vec<Hazard>, &'static str)>,
}

impl Graph {
    fn node(&mut self, action: Action, key: &Key, o: &Object) -> NodeIndex {
        if let Some(&i) = self.index.get(&(action, key.clone())) {
            return i;
        }
        let i = self.graph.add_node((action, key.clone(), o.rank()));
        self.index.insert((action, key.clone()), i);
        self.body.insert(i, (Vec::new(), Vec::new(), o.kind()));
        i
    }

    fn set(&mut self, action: Action, key: &Key, statements: Vec<String>, hazards: Vec<Hazard>) {
        let i = self.index[&(action, key.clone())];
        let body = self.body.get_mut(&i).expect("node has a body");
        body.0 = statements;
        body.1 = hazards;
    }

    fn edge(&mut self, from: (Action, &Key), to: (Action, &Key)) {
        let (Some(&f), Some(&t)) = (self.index.get(&(from.0, from.1.clone())), self.index.get(&(to.0, to.1.clone())))
        else {
            return;
        };
        if f != t {
            self.graph.update_edge(f, t, ());
        }
    }

    /// Kahn's algorithm, always taking the ready node that sorts first: drops (dependents first,
    /// so by reverse kind rank), then alters, then creates (by kind rank), then by name.
    fn order(mut self) -> Result<Vec<Step>, CycleError> {
        type Prio = (Action, u8, Key);
        let prio = |g: &DiGraph<(Action, Key, u8), ()>, i: NodeIndex| -> Reverse<(Prio, usize)> {
            let (action, key, rank) = &g[i];
            let rank = if *action == Action::Drop { u8::MAX - rank } else { *rank };
            Reverse(((*action, rank, key.clone()), i.index()))
        };
        let mut indegree: Vec<usize> =
            self.graph.node_indices().map(|i| self.graph.neighbors_directed(i, petgraph::Incoming).count()).collect();
        let mut ready: BinaryHeap<_> =
            self.graph.node_indices().filter(|i| indegree[i.index()] == 0).map(|i| prio(&self.graph, i)).collect();
        let mut steps = Vec::new();
        while let Some(Reverse((_, i))) = ready.pop() {
            let i = NodeIndex::new(i);
            for n in self.graph.neighbors_directed(i, petgraph::Outgoing).collect::<Vec<_>>() {
                indegree[n.index()] -= 1;
                if indegree[n.index()] == 0 {
                    ready.push(prio(&self.graph, n));
                }
            }
            let (action, key, _) = self.graph[i].clone();
            let (statements, mut hazards, kind) = self.body.remove(&i).expect("node has a body");
            if statements.is_empty() {
                continue;
            }
            hazards.sort();
            hazards.dedup();
            steps.push(Step { action, kind, object: key, statements, hazards });
        }
        if !self.body.is_empty() {
            let mut stuck: BTreeSet<String> = BTreeSet::new();
            for i in self.body.keys() {
                let (action, key, _) = &self.graph[*i];
                stuck.insert(format!("{action:?} {key}").to_lowercase());
            }
            return Err(CycleError(stuck.into_iter().collect()));
        }
        Ok(steps)
    }
}
