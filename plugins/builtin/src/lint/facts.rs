//! What the statements so far have established (tables created, columns added and their types,
//! indexes, keys, settings, transactions), learned after each statement is checked and read by
//! the [`super::scope::Scope`] and the rules of the statements after it. What only one rule needs
//! (for its `finish`) is that rule's own state instead ([`super::report::Cx::state`]).

use std::collections::{HashMap, HashSet};

use confiture_engine::pg_query::NodeEnum;
use confiture_engine::pg_query::protobuf::{self, AlterTableType};

use super::ast;
use super::stmt::{At, Stmt};

/// What the statements so far have established.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Relations (and indexes) created by earlier statements of this run, with the file that
    /// created them.
    pub created: HashMap<String, usize>,
    /// Columns added by ALTER TABLE … ADD COLUMN, with the file that added them.
    pub added_columns: HashMap<(String, String), usize>,
    /// Tables created with PARTITION BY.
    pub partitioned: HashSet<String>,
    /// A table's new name (after RENAME or SET SCHEMA) → its name before.
    pub aliases: HashMap<String, String>,
    /// Per file: the schemas of `SET search_path`, in order.
    pub search_path: Option<Vec<String>>,
    /// Index name → its table, for indexes created in the files.
    pub index_tables: HashMap<String, String>,
    /// (table, column) → its type, from CREATE TABLE, ADD COLUMN and ALTER COLUMN … TYPE.
    pub column_types: HashMap<(String, String), ast::Type>,
    /// Per file: `SET lock_timeout` / `SET statement_timeout` seen, inside BEGIN…COMMIT.
    pub lock_timeout: bool,
    pub statement_timeout: bool,
    pub in_transaction: bool,
    /// Per file: a statement took a write-blocking lock on an existing table.
    pub locking_ddl_seen: bool,
    /// Per file: statements so far, and the first non-transactional one.
    pub statements_in_file: usize,
    pub non_transactional_in_file: Option<At>,
    pub transactional_in_file: bool,
}

/// Remember what `stmt` established, for the statements after it. `locks`: it took a
/// write-blocking lock on an existing table.
pub fn learn(facts: &mut Facts, stmt: &Stmt<'_>, file: usize, locks: bool, exists_already: bool) {
    facts.statements_in_file += 1;
    if stmt.non_transactional().is_some() {
        facts.non_transactional_in_file.get_or_insert(stmt.at());
    } else if !matches!(stmt.node, NodeEnum::VariableSetStmt(_) | NodeEnum::TransactionStmt(_)) {
        facts.transactional_in_file = true;
    }
    if locks {
        facts.locking_ddl_seen = true;
    }
    // `CREATE TABLE IF NOT EXISTS` of a table that exists creates nothing.
    if let Some(c) = &stmt.classification.creates
        && !exists_already
    {
        facts.created.insert(c.strip_prefix("public.").unwrap_or(c).to_string(), file);
    }
    match stmt.node {
        NodeEnum::VariableSetStmt(v) => match v.name.as_str() {
            "lock_timeout" => facts.lock_timeout = true,
            "statement_timeout" => facts.statement_timeout = true,
            "search_path" => facts.search_path = Some(ast::setting_values(&v.args)),
            _ => {}
        },
        NodeEnum::TransactionStmt(t) => {
            use protobuf::TransactionStmtKind as K;
            match K::try_from(t.kind).ok() {
                Some(K::TransStmtBegin | K::TransStmtStart) => facts.in_transaction = true,
                Some(K::TransStmtCommit | K::TransStmtRollback | K::TransStmtPrepare) => facts.in_transaction = false,
                _ => {}
            }
        }
        NodeEnum::CreateStmt(s) => {
            let Some(table) = s.relation.as_ref().map(ast::rel) else { return };
            if s.partspec.is_some() {
                facts.partitioned.insert(table.clone());
            }
            for c in ast::table_elements(s).0 {
                learn_column(facts, &table, c);
            }
        }
        NodeEnum::AlterTableStmt(s) => {
            let Some(table) = s.relation.as_ref().map(ast::rel) else { return };
            for cmd in ast::alter_cmds(s) {
                match ast::subtype(cmd) {
                    Some(AlterTableType::AtAddColumn) => {
                        if let Some(c) = ast::cmd_column(cmd) {
                            facts.added_columns.insert((table.clone(), c.colname.clone()), file);
                            learn_column(facts, &table, c);
                        }
                    }
                    Some(AlterTableType::AtAlterColumnType) => {
                        if let Some(t) = ast::cmd_column(cmd).and_then(|c| c.type_name.as_ref()) {
                            facts.column_types.insert((table.clone(), cmd.name.clone()), ast::type_of(t));
                        }
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::RenameStmt(r) if r.rename_type == protobuf::ObjectType::ObjectTable as i32 => {
            if let Some(old) = r.relation.as_ref().map(ast::rel) {
                let schema = old.rsplit_once('.').map(|(s, _)| format!("{s}.")).unwrap_or_default();
                learn_move(facts, &old, format!("{schema}{}", r.newname));
            }
        }
        NodeEnum::AlterObjectSchemaStmt(a) if a.object_type == protobuf::ObjectType::ObjectTable as i32 => {
            if let Some(old) = a.relation.as_ref().map(ast::rel) {
                let name = old.rsplit_once('.').map_or(old.as_str(), |(_, n)| n);
                let new = if a.newschema == "public" { name.to_string() } else { format!("{}.{name}", a.newschema) };
                learn_move(facts, &old, new);
            }
        }
        NodeEnum::IndexStmt(i) => {
            if let Some(r) = &i.relation {
                let table = ast::rel(r);
                if !i.idxname.is_empty() {
                    let schema = table.rsplit_once('.').map(|(s, _)| format!("{s}.")).unwrap_or_default();
                    let index = format!("{schema}{}", i.idxname);
                    facts.created.insert(index.clone(), file);
                    facts.index_tables.insert(index, table.clone());
                }
            }
        }
        _ => {}
    }
}

/// A table renamed or moved to another schema: the same table under a new name (new if it was).
fn learn_move(facts: &mut Facts, old: &str, new: String) {
    if let Some(f) = facts.created.get(old).copied() {
        facts.created.insert(new.clone(), f);
    }
    if facts.partitioned.contains(old) {
        facts.partitioned.insert(new.clone());
    }
    let original = facts.aliases.get(old).cloned().unwrap_or_else(|| old.to_string());
    facts.aliases.insert(new, original);
}

fn learn_column(facts: &mut Facts, table: &str, c: &protobuf::ColumnDef) {
    if let Some(t) = &c.type_name {
        facts.column_types.insert((table.to_string(), c.colname.clone()), ast::type_of(t));
    }
}
