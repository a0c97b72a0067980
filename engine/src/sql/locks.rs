//! Which table-level locks a statement takes, read from its parse tree.
//!
//! The mapping follows PostgreSQL's documentation of table-level locks ("Explicit Locking"): for
//! each existing relation a statement touches, the strongest lock it takes. Relations the statement
//! creates are left out (nobody else can be waiting on them). Used by `migrate up --dry-run` and the
//! lint rules; it is a static reading of the statement, not a trace of the server.

use std::fmt;

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType, RangeVar};
use serde::{Deserialize, Serialize};

/// PostgreSQL's table lock modes, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum LockMode {
    #[serde(rename = "ACCESS SHARE")]
    AccessShare,
    #[serde(rename = "ROW SHARE")]
    RowShare,
    #[serde(rename = "ROW EXCLUSIVE")]
    RowExclusive,
    #[serde(rename = "SHARE UPDATE EXCLUSIVE")]
    ShareUpdateExclusive,
    #[serde(rename = "SHARE")]
    Share,
    #[serde(rename = "SHARE ROW EXCLUSIVE")]
    ShareRowExclusive,
    #[serde(rename = "EXCLUSIVE")]
    Exclusive,
    #[serde(rename = "ACCESS EXCLUSIVE")]
    AccessExclusive,
}

impl LockMode {
    /// The mode as PostgreSQL spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Whether it blocks ordinary reads (`SELECT`).
    pub fn blocks_reads(self) -> bool {
        self == LockMode::AccessExclusive
    }

    /// Whether it blocks ordinary writes (`INSERT`, `UPDATE`, `DELETE`).
    pub fn blocks_writes(self) -> bool {
        self >= LockMode::Share
    }

    /// From the numbering of PostgreSQL's lockdefs.h (as in `LOCK TABLE`'s parse tree).
    fn from_pg(n: i32) -> Option<Self> {
        Some(match n {
            1 => LockMode::AccessShare,
            2 => LockMode::RowShare,
            3 => LockMode::RowExclusive,
            4 => LockMode::ShareUpdateExclusive,
            5 => LockMode::Share,
            6 => LockMode::ShareRowExclusive,
            7 => LockMode::Exclusive,
            8 => LockMode::AccessExclusive,
            _ => return None,
        })
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lock on a relation, named as the statement names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lock {
    pub relation: String,
    pub mode: LockMode,
}

/// The locks a statement takes on existing relations, strongest per relation.
pub fn locks(node: &NodeEnum) -> Vec<Lock> {
    let mut out = Locks::default();
    use LockMode::*;
    match node {
        NodeEnum::InsertStmt(s) => out.rel(&s.relation, RowExclusive),
        NodeEnum::UpdateStmt(s) => out.rel(&s.relation, RowExclusive),
        NodeEnum::DeleteStmt(s) => out.rel(&s.relation, RowExclusive),
        NodeEnum::MergeStmt(s) => out.rel(&s.relation, RowExclusive),
        NodeEnum::CreateStmt(s) => {
            for parent in &s.inh_relations {
                out.node_rel(parent, if s.partbound.is_some() { AccessExclusive } else { ShareUpdateExclusive });
            }
            for elt in &s.table_elts {
                match elt.node.as_ref() {
                    Some(NodeEnum::ColumnDef(c)) => {
                        for con in &c.constraints {
                            out.foreign_key_target(con);
                        }
                    }
                    Some(_) => {
                        out.foreign_key_target(elt);
                    }
                    None => {}
                }
            }
            // A table that references itself is not an existing table being locked.
            if let Some(me) = s.relation.as_ref().map(range_var_name) {
                out.0.retain(|l| l.relation != me);
            }
        }
        NodeEnum::IndexStmt(s) => out.rel(&s.relation, if s.concurrent { ShareUpdateExclusive } else { Share }),
        NodeEnum::AlterTableStmt(s) => {
            let mut mode = None;
            for cmd in &s.cmds {
                let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else { continue };
                let m = match AlterTableType::try_from(c.subtype).ok() {
                    Some(
                        AlterTableType::AtValidateConstraint
                        | AlterTableType::AtSetStatistics
                        | AlterTableType::AtSetOptions
                        | AlterTableType::AtResetOptions
                        | AlterTableType::AtClusterOn
                        | AlterTableType::AtDropCluster
                        | AlterTableType::AtAttachPartition
                        | AlterTableType::AtDetachPartitionFinalize,
                    ) => ShareUpdateExclusive,
                    Some(AlterTableType::AtDetachPartition) => {
                        let concurrent = matches!(
                            c.def.as_ref().and_then(|d| d.node.as_ref()),
                            Some(NodeEnum::PartitionCmd(p)) if p.concurrent
                        );
                        if concurrent { ShareUpdateExclusive } else { AccessExclusive }
                    }
                    Some(AlterTableType::AtEnableTrig | AlterTableType::AtDisableTrig) => ShareRowExclusive,
                    Some(AlterTableType::AtAddConstraint) => {
                        let fk = c.def.as_ref().is_some_and(|d| out.foreign_key_target(d));
                        if fk { ShareRowExclusive } else { AccessExclusive }
                    }
                    _ => AccessExclusive,
                };
                if let Some(NodeEnum::PartitionCmd(p)) = c.def.as_ref().and_then(|d| d.node.as_ref())
                    && matches!(AlterTableType::try_from(c.subtype).ok(), Some(AlterTableType::AtAttachPartition))
                {
                    out.rel(&p.name, AccessExclusive);
                }
                mode = Some(mode.map_or(m, |old: LockMode| old.max(m)));
            }
            if let Some(m) = mode {
                out.rel(&s.relation, m);
            }
        }
        NodeEnum::DropStmt(s) => {
            let kind = ObjectType::try_from(s.remove_type).ok();
            if matches!(
                kind,
                Some(
                    ObjectType::ObjectTable
                        | ObjectType::ObjectIndex
                        | ObjectType::ObjectView
                        | ObjectType::ObjectMatview
                        | ObjectType::ObjectSequence
                        | ObjectType::ObjectForeignTable
                )
            ) {
                let mode = if s.concurrent { ShareUpdateExclusive } else { AccessExclusive };
                for obj in &s.objects {
                    if let Some(name) = qualified_name(obj) {
                        out.push(name, mode);
                    }
                }
            }
        }
        NodeEnum::TruncateStmt(s) => {
            for r in &s.relations {
                out.node_rel(r, AccessExclusive);
            }
        }
        NodeEnum::RenameStmt(s) => out.rel(&s.relation, AccessExclusive),
        NodeEnum::CreateTrigStmt(s) => out.rel(&s.relation, ShareRowExclusive),
        NodeEnum::RuleStmt(s) => out.rel(&s.relation, AccessExclusive),
        NodeEnum::CreatePolicyStmt(s) => out.rel(&s.table, AccessExclusive),
        NodeEnum::VacuumStmt(s) => {
            let full = s.options.iter().any(
                |o| matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("full")),
            );
            let mode = if s.is_vacuumcmd && full { AccessExclusive } else { ShareUpdateExclusive };
            for r in &s.rels {
                if let Some(NodeEnum::VacuumRelation(v)) = r.node.as_ref() {
                    out.rel(&v.relation, mode);
                }
            }
        }
        NodeEnum::ClusterStmt(s) => out.rel(&s.relation, AccessExclusive),
        NodeEnum::ReindexStmt(s) => {
            let concurrently = s.params.iter().any(|p| {
                matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
            });
            out.rel(&s.relation, if concurrently { ShareUpdateExclusive } else { AccessExclusive });
        }
        NodeEnum::RefreshMatViewStmt(s) => out.rel(&s.relation, if s.concurrent { Exclusive } else { AccessExclusive }),
        NodeEnum::LockStmt(s) => {
            if let Some(mode) = LockMode::from_pg(s.mode) {
                for r in &s.relations {
                    out.node_rel(r, mode);
                }
            }
        }
        NodeEnum::CommentStmt(s) => {
            let kind = ObjectType::try_from(s.objtype).ok();
            if matches!(kind, Some(ObjectType::ObjectTable | ObjectType::ObjectView | ObjectType::ObjectMatview))
                && let Some(name) = s.object.as_deref().and_then(qualified_name)
            {
                out.push(name, ShareUpdateExclusive);
            }
        }
        NodeEnum::CreateStatsStmt(s) => {
            for r in &s.relations {
                out.node_rel(r, ShareUpdateExclusive);
            }
        }
        _ => {}
    }
    out.0
}

#[derive(Default)]
struct Locks(Vec<Lock>);

impl Locks {
    fn push(&mut self, relation: String, mode: LockMode) {
        match self.0.iter_mut().find(|l| l.relation == relation) {
            Some(l) => l.mode = l.mode.max(mode),
            None => self.0.push(Lock { relation, mode }),
        }
    }

    fn rel(&mut self, r: &Option<RangeVar>, mode: LockMode) {
        if let Some(r) = r {
            self.push(range_var_name(r), mode);
        }
    }

    fn node_rel(&mut self, n: &pg_query::protobuf::Node, mode: LockMode) {
        if let Some(NodeEnum::RangeVar(r)) = n.node.as_ref() {
            self.push(range_var_name(r), mode);
        }
    }

    /// If `n` is a FOREIGN KEY constraint, lock its referenced table; says whether it was one.
    fn foreign_key_target(&mut self, n: &pg_query::protobuf::Node) -> bool {
        match n.node.as_ref() {
            Some(NodeEnum::Constraint(c)) if c.contype == ConstrType::ConstrForeign as i32 => {
                self.rel(&c.pktable, LockMode::ShareRowExclusive);
                true
            }
            _ => false,
        }
    }
}

/// `schema.name` (or `name`) of a range variable.
pub fn range_var_name(r: &RangeVar) -> String {
    if r.schemaname.is_empty() { r.relname.clone() } else { format!("{}.{}", r.schemaname, r.relname) }
}

/// A dotted name from a `List` of `String` nodes (how DROP and COMMENT name objects).
fn qualified_name(n: &pg_query::protobuf::Node) -> Option<String> {
    match n.node.as_ref()? {
        NodeEnum::List(l) => {
            let parts: Vec<&str> = l
                .items
                .iter()
                .filter_map(|i| match i.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                    _ => None,
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("."))
        }
        NodeEnum::RangeVar(r) => Some(range_var_name(r)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks_of(sql: &str) -> Vec<(String, &'static str)> {
        let parsed = pg_query::parse(sql, 0).unwrap();
        let node = parsed.protobuf.stmts[0].stmt.as_ref().unwrap().node.as_ref().unwrap();
        locks(node).into_iter().map(|l| (l.relation, l.mode.as_str())).collect()
    }

    #[test]
    fn statements_take_the_documented_locks() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("CREATE TABLE t (id int)", &[]),
            ("CREATE TABLE t (id int REFERENCES users (id))", &[("users", "SHARE ROW EXCLUSIVE")]),
            ("CREATE TABLE tree (id int PRIMARY KEY, parent int REFERENCES tree (id))", &[]),
            ("CREATE TABLE t (id int, FOREIGN KEY (id) REFERENCES app.users)", &[("app.users", "SHARE ROW EXCLUSIVE")]),
            ("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)", &[("p", "ACCESS EXCLUSIVE")]),
            ("CREATE INDEX i ON t (a)", &[("t", "SHARE")]),
            ("CREATE INDEX CONCURRENTLY i ON t (a)", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("ALTER TABLE t ADD COLUMN c int", &[("t", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE t VALIDATE CONSTRAINT c", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            (
                "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id) NOT VALID",
                &[("users", "SHARE ROW EXCLUSIVE"), ("t", "SHARE ROW EXCLUSIVE")],
            ),
            ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", &[("t", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE t SET (fillfactor = 70)", &[("t", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE t VALIDATE CONSTRAINT a, ADD COLUMN b int", &[("t", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", &[("p", "SHARE UPDATE EXCLUSIVE")]),
            (
                "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)",
                &[("p1", "ACCESS EXCLUSIVE"), ("p", "SHARE UPDATE EXCLUSIVE")],
            ),
            ("DROP TABLE a, s.b", &[("a", "ACCESS EXCLUSIVE"), ("s.b", "ACCESS EXCLUSIVE")]),
            ("DROP INDEX CONCURRENTLY i", &[("i", "SHARE UPDATE EXCLUSIVE")]),
            ("TRUNCATE a, b", &[("a", "ACCESS EXCLUSIVE"), ("b", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE t RENAME COLUMN a TO b", &[("t", "ACCESS EXCLUSIVE")]),
            ("INSERT INTO t VALUES (1)", &[("t", "ROW EXCLUSIVE")]),
            ("UPDATE s.t SET a = 1", &[("s.t", "ROW EXCLUSIVE")]),
            ("DELETE FROM t", &[("t", "ROW EXCLUSIVE")]),
            ("CREATE TRIGGER x BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()", &[("t", "SHARE ROW EXCLUSIVE")]),
            ("VACUUM FULL t", &[("t", "ACCESS EXCLUSIVE")]),
            ("VACUUM t", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("ANALYZE t", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("REINDEX TABLE CONCURRENTLY t", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("REFRESH MATERIALIZED VIEW CONCURRENTLY m", &[("m", "EXCLUSIVE")]),
            ("LOCK TABLE t IN SHARE MODE", &[("t", "SHARE")]),
            ("COMMENT ON TABLE t IS 'x'", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("CREATE POLICY p ON t USING (true)", &[("t", "ACCESS EXCLUSIVE")]),
            ("SELECT 1", &[]),
        ];
        for (sql, want) in cases {
            let want: Vec<(String, &str)> = want.iter().map(|(r, m)| (r.to_string(), *m)).collect();
            assert_eq!(locks_of(sql), want, "{sql}");
        }
    }
}
