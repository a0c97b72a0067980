//! Small helpers over PostgreSQL parse trees (the `pg_query` protobuf types).

use confiture_engine::pg_query::NodeEnum;
use confiture_engine::pg_query::protobuf::{self, ConstrType, Node, RangeVar, TypeName};

/// A relation's name as statements compare it: `schema.name`, with `public.` dropped.
pub fn rel(r: &RangeVar) -> String {
    if r.schemaname.is_empty() || r.schemaname == "public" {
        r.relname.clone()
    } else {
        format!("{}.{}", r.schemaname, r.relname)
    }
}

/// The strings of a name list (`List` of `String` nodes, or the nodes themselves).
pub fn names(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match n.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// A dotted name from a node that is a `List` of `String`s (how DROP and COMMENT name objects).
pub fn dotted(n: &Node) -> Option<Vec<String>> {
    match n.node.as_ref()? {
        NodeEnum::List(l) => Some(names(&l.items)),
        NodeEnum::String(s) => Some(vec![s.sval.clone()]),
        NodeEnum::RangeVar(r) => Some(rel(r).split('.').map(str::to_string).collect()),
        _ => None,
    }
}

/// A dotted relation name from DROP/COMMENT objects, with `public.` dropped.
pub fn dotted_rel(parts: &[String]) -> String {
    match parts {
        [schema, name] if schema == "public" => name.clone(),
        _ => parts.join("."),
    }
}

/// A type as the parser names it: the last name part (`int4`, `varchar`, `serial`, `timestamp`),
/// its modifiers and whether it is an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    pub name: String,
    pub typmods: Vec<i64>,
    pub array: bool,
}

pub fn type_of(t: &TypeName) -> Type {
    let parts = names(&t.names);
    let typmods = t
        .typmods
        .iter()
        .filter_map(|m| match m.node.as_ref()? {
            NodeEnum::AConst(c) => match c.val.as_ref()? {
                protobuf::a_const::Val::Ival(i) => Some(i64::from(i.ival)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    Type { name: parts.last().cloned().unwrap_or_default(), typmods, array: !t.array_bounds.is_empty() }
}

/// The constraints of a column definition.
pub fn column_constraints(c: &protobuf::ColumnDef) -> impl Iterator<Item = &protobuf::Constraint> {
    c.constraints.iter().filter_map(|n| match n.node.as_ref() {
        Some(NodeEnum::Constraint(k)) => Some(k.as_ref()),
        _ => None,
    })
}

pub fn is(c: &protobuf::Constraint, t: ConstrType) -> bool {
    c.contype == t as i32
}

/// The column definitions and table constraints of a CREATE TABLE.
pub fn table_elements(s: &protobuf::CreateStmt) -> (Vec<&protobuf::ColumnDef>, Vec<&protobuf::Constraint>) {
    let mut cols = Vec::new();
    let mut cons: Vec<&protobuf::Constraint> = s
        .constraints
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::Constraint(k)) => Some(k.as_ref()),
            _ => None,
        })
        .collect();
    for e in &s.table_elts {
        match e.node.as_ref() {
            Some(NodeEnum::ColumnDef(c)) => cols.push(c.as_ref()),
            Some(NodeEnum::Constraint(k)) => cons.push(k.as_ref()),
            _ => {}
        }
    }
    (cols, cons)
}

/// The commands of an ALTER TABLE.
pub fn alter_cmds(s: &protobuf::AlterTableStmt) -> impl Iterator<Item = &protobuf::AlterTableCmd> {
    s.cmds.iter().filter_map(|n| match n.node.as_ref() {
        Some(NodeEnum::AlterTableCmd(c)) => Some(c.as_ref()),
        _ => None,
    })
}

pub fn subtype(c: &protobuf::AlterTableCmd) -> Option<protobuf::AlterTableType> {
    protobuf::AlterTableType::try_from(c.subtype).ok()
}

/// The definition of an ALTER TABLE command, when it is a column.
pub fn cmd_column(c: &protobuf::AlterTableCmd) -> Option<&protobuf::ColumnDef> {
    match c.def.as_ref()?.node.as_ref()? {
        NodeEnum::ColumnDef(d) => Some(d),
        _ => None,
    }
}

/// The definition of an ALTER TABLE command, when it is a constraint.
pub fn cmd_constraint(c: &protobuf::AlterTableCmd) -> Option<&protobuf::Constraint> {
    match c.def.as_ref()?.node.as_ref()? {
        NodeEnum::Constraint(k) => Some(k),
        _ => None,
    }
}

/// Every function called anywhere inside an expression (last name part, lowercased).
pub fn functions_called(n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    collect_functions(n, &mut out);
    out
}

fn collect_functions(n: &Node, out: &mut Vec<String>) {
    let Some(node) = n.node.as_ref() else { return };
    match node {
        NodeEnum::FuncCall(f) => {
            if let Some(name) = names(&f.funcname).last() {
                out.push(name.to_lowercase());
            }
            for a in &f.args {
                collect_functions(a, out);
            }
        }
        NodeEnum::TypeCast(t) => {
            if let Some(a) = &t.arg {
                collect_functions(a, out);
            }
        }
        NodeEnum::AExpr(e) => {
            for side in [&e.lexpr, &e.rexpr].into_iter().flatten() {
                collect_functions(side, out);
            }
        }
        NodeEnum::CoalesceExpr(c) => {
            for a in &c.args {
                collect_functions(a, out);
            }
        }
        NodeEnum::BoolExpr(b) => {
            for a in &b.args {
                collect_functions(a, out);
            }
        }
        NodeEnum::SqlvalueFunction(_) => out.push("sqlvaluefunction".into()),
        _ => {}
    }
}

/// The column names of a constraint's key list (`keys` / `fk_attrs`).
pub fn key_names(keys: &[Node]) -> Vec<String> {
    names(keys)
}

/// The leading column names of an index (expressions end the list).
pub fn index_columns(i: &protobuf::IndexStmt) -> Vec<String> {
    let mut out = Vec::new();
    for p in &i.index_params {
        match p.node.as_ref() {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => out.push(e.name.clone()),
            _ => break,
        }
    }
    out
}

/// The column an `ALTER TABLE … ADD COLUMN` command adds.
pub fn added_column(c: &protobuf::AlterTableCmd) -> Option<&protobuf::ColumnDef> {
    (subtype(c) == Some(protobuf::AlterTableType::AtAddColumn)).then(|| cmd_column(c)).flatten()
}

/// The columns an `ALTER TABLE` adds.
pub fn added_columns(s: &protobuf::AlterTableStmt) -> impl Iterator<Item = &protobuf::ColumnDef> {
    alter_cmds(s).filter_map(added_column)
}

/// Constraints a statement adds: those of CREATE TABLE (on its columns and on the table) and of
/// ALTER TABLE … ADD COLUMN and ADD CONSTRAINT, with their table and, for a column's, the column.
pub fn added_constraints(node: &NodeEnum) -> Vec<(String, Option<&str>, &protobuf::Constraint)> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(s) => {
            let Some(table) = s.relation.as_ref().map(rel) else { return out };
            let (cols, cons) = table_elements(s);
            for c in cols {
                out.extend(column_constraints(c).map(|k| (table.clone(), Some(c.colname.as_str()), k)));
            }
            out.extend(cons.into_iter().map(|k| (table.clone(), None, k)));
        }
        NodeEnum::AlterTableStmt(a) => {
            let Some(table) = a.relation.as_ref().map(rel) else { return out };
            for cmd in alter_cmds(a) {
                if let Some(c) = added_column(cmd) {
                    out.extend(column_constraints(c).map(|k| (table.clone(), Some(c.colname.as_str()), k)));
                } else if subtype(cmd) == Some(protobuf::AlterTableType::AtAddConstraint)
                    && let Some(k) = cmd_constraint(cmd)
                {
                    out.push((table.clone(), None, k));
                }
            }
        }
        _ => {}
    }
    out
}

/// Columns a statement creates: those of CREATE TABLE and ALTER TABLE … ADD COLUMN, with their
/// table.
pub fn new_columns(node: &NodeEnum) -> Vec<(String, &protobuf::ColumnDef)> {
    columns(node, false)
}

/// Columns a statement defines or retypes: those of CREATE TABLE, ALTER TABLE … ADD COLUMN and
/// ALTER COLUMN … TYPE, with their table.
pub fn defined_columns(node: &NodeEnum) -> Vec<(String, &protobuf::ColumnDef)> {
    columns(node, true)
}

fn columns(node: &NodeEnum, retyped: bool) -> Vec<(String, &protobuf::ColumnDef)> {
    use protobuf::AlterTableType::{AtAddColumn, AtAlterColumnType};
    match node {
        NodeEnum::CreateStmt(s) => {
            let table = s.relation.as_ref().map(rel).unwrap_or_default();
            table_elements(s).0.into_iter().map(|c| (table.clone(), c)).collect()
        }
        NodeEnum::AlterTableStmt(a) => {
            let table = a.relation.as_ref().map(rel).unwrap_or_default();
            alter_cmds(a)
                .filter(|c| match subtype(c) {
                    Some(AtAddColumn) => true,
                    Some(AtAlterColumnType) => retyped,
                    _ => false,
                })
                .filter_map(cmd_column)
                .map(|c| (table.clone(), c))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The column's name (ALTER COLUMN … TYPE keeps it in the command, not the definition).
pub fn column_name<'a>(node: &'a NodeEnum, col: &'a protobuf::ColumnDef) -> &'a str {
    if !col.colname.is_empty() {
        return &col.colname;
    }
    if let NodeEnum::AlterTableStmt(a) = node {
        for c in alter_cmds(a) {
            if cmd_column(c).is_some_and(|d| std::ptr::eq(d, col)) {
                return &c.name;
            }
        }
    }
    ""
}

/// Whether function options (CREATE FUNCTION's, or ALTER FUNCTION's actions) set search_path.
pub fn pins_search_path(options: &[Node]) -> bool {
    options.iter().any(|o| {
        matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "set"
            && matches!(d.arg.as_deref().and_then(|a| a.node.as_ref()), Some(NodeEnum::VariableSetStmt(v)) if v.name == "search_path"))
    })
}

/// Whether function options make it SECURITY DEFINER.
pub fn security_definer(options: &[Node]) -> bool {
    options.iter().any(|o| {
        matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "security"
            && matches!(d.arg.as_deref().and_then(|a| a.node.as_ref()), Some(NodeEnum::Boolean(b)) if b.boolval))
    })
}

/// A column type in one spelling for comparisons: PostgreSQL's internal base name (`int4`,
/// `varchar`, `timestamptz`), its modifiers, and whether it is an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canon {
    pub base: String,
    pub mods: Vec<i64>,
    pub array: bool,
}

/// The canonical form of a type from a parse tree.
pub fn canon(t: &Type) -> Canon {
    let base = match t.name.as_str() {
        "int" | "integer" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "decimal" => "numeric",
        "real" => "float4",
        "boolean" => "bool",
        other => other,
    };
    Canon { base: base.to_string(), mods: t.typmods.clone(), array: t.array }
}

/// The canonical form of a type as `format_type` writes it (`character varying(30)`,
/// `timestamp(3) with time zone`, `numeric(10,2)[]`).
pub fn canon_formatted(s: &str) -> Canon {
    let (s, array) = match s.strip_suffix("[]") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let (words, mods) = match (s.find('('), s.find(')')) {
        (Some(open), Some(close)) if open < close => {
            let mods = s[open + 1..close].split(',').filter_map(|m| m.trim().parse().ok()).collect();
            (format!("{}{}", &s[..open], &s[close + 1..]), mods)
        }
        _ => (s.to_string(), Vec::new()),
    };
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = match words.as_str() {
        "integer" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "real" => "float4",
        "double precision" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "character" => "bpchar",
        "bit varying" => "varbit",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        w if w.starts_with("interval") => "interval",
        w => w.strip_prefix("public.").unwrap_or(w),
    };
    Canon { base: base.to_string(), mods, array }
}

/// How a type reads in a message: `bigint`, `varchar(200)`, `numeric(12,2)`, `text[]`.
pub fn display(c: &Canon) -> String {
    let base = match c.base.as_str() {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bpchar" => "char",
        "bool" => "boolean",
        other => other,
    };
    let mods = if c.mods.is_empty() || c.base == "interval" {
        String::new()
    } else {
        format!("({})", c.mods.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
    };
    format!("{base}{mods}{}", if c.array { "[]" } else { "" })
}

/// Whether changing a column from `old` to `new` (without USING) rewrites the table. No rewrite
/// when the change is binary-coercible: a wider or unbounded varchar, varchar ↔ text, a wider
/// numeric precision with the same scale, a larger time precision, cidr → inet.
pub fn rewrites(old: &Canon, new: &Canon) -> bool {
    if old.array != new.array {
        return true;
    }
    let widens = |o: Option<&i64>, n: Option<&i64>, default: Option<i64>| match (n, o.copied().or(default)) {
        (None, _) => true,
        (Some(n), Some(o)) => *n >= o,
        (Some(_), None) => false,
    };
    match (old.base.as_str(), new.base.as_str()) {
        ("varchar", "varchar") | ("varbit", "varbit") => !widens(old.mods.first(), new.mods.first(), None),
        ("numeric", "numeric") => {
            let same_scale = old.mods.get(1).copied().unwrap_or(0) == new.mods.get(1).copied().unwrap_or(0);
            !(new.mods.is_empty()
                || (!old.mods.is_empty() && same_scale && widens(old.mods.first(), new.mods.first(), None)))
        }
        ("timestamp", "timestamp") | ("timestamptz", "timestamptz") | ("time", "time") | ("timetz", "timetz") => {
            !widens(old.mods.first(), new.mods.first(), Some(6))
        }
        ("varchar", "text") | ("cidr", "inet") => false,
        ("text", "varchar") => !new.mods.is_empty(),
        (o, n) if o == n => old.mods != new.mods,
        _ => true,
    }
}

/// Whether an index predicate only excludes NULLs of the index's own `columns` (`col IS NOT
/// NULL`, `a IS NOT NULL AND b IS NOT NULL`): such a partial index still serves equality lookups
/// on them — a foreign key's check among them — since `col = $1` implies `col IS NOT NULL`.
pub fn only_excludes_nulls(predicate: &Node, columns: &[String]) -> bool {
    match predicate.node.as_ref() {
        Some(NodeEnum::NullTest(t)) => {
            let column = match t.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::ColumnRef(c)) => names(&c.fields).last().cloned(),
                _ => None,
            };
            t.nulltesttype == protobuf::NullTestType::IsNotNull as i32 && column.is_some_and(|c| columns.contains(&c))
        }
        Some(NodeEnum::BoolExpr(b)) => {
            b.boolop == protobuf::BoolExprType::AndExpr as i32 && b.args.iter().all(|a| only_excludes_nulls(a, columns))
        }
        _ => false,
    }
}

/// [`only_excludes_nulls`] for a predicate as `pg_get_expr` writes it.
pub fn predicate_only_excludes_nulls(predicate: &str, columns: &[String]) -> bool {
    let Ok(stmts) = confiture_engine::sql::parse(&format!("SELECT 1 WHERE {predicate}")) else { return false };
    match stmts.first().and_then(|(_, n)| n.as_ref()) {
        Some(NodeEnum::SelectStmt(s)) if stmts.len() == 1 => {
            s.where_clause.as_deref().is_some_and(|p| only_excludes_nulls(p, columns))
        }
        _ => false,
    }
}

/// The values of a `SET name = a, b` (e.g. the schemas of a search_path).
pub fn setting_values(args: &[Node]) -> Vec<String> {
    args.iter()
        .filter_map(|a| match a.node.as_ref()? {
            NodeEnum::AConst(c) => match c.val.as_ref()? {
                protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Whether a CREATE statement says IF NOT EXISTS (and so may create nothing).
pub fn creates_if_not_exists(node: &NodeEnum) -> bool {
    match node {
        NodeEnum::CreateStmt(c) => c.if_not_exists,
        NodeEnum::CreateTableAsStmt(c) => c.if_not_exists,
        NodeEnum::CreateSeqStmt(c) => c.if_not_exists,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(base: &str, mods: &[i64]) -> Canon {
        Canon { base: base.into(), mods: mods.to_vec(), array: false }
    }

    #[test]
    fn formatted_types() {
        assert_eq!(canon_formatted("character varying(30)"), c("varchar", &[30]));
        assert_eq!(canon_formatted("numeric(10,2)"), c("numeric", &[10, 2]));
        assert_eq!(canon_formatted("timestamp(3) with time zone"), c("timestamptz", &[3]));
        assert_eq!(canon_formatted("integer"), c("int4", &[]));
        assert_eq!(canon_formatted("text[]"), Canon { array: true, ..c("text", &[]) });
        assert_eq!(display(&c("int8", &[])), "bigint");
        assert_eq!(display(&c("numeric", &[12, 2])), "numeric(12,2)");
    }

    #[test]
    fn which_changes_rewrite() {
        let no = [
            (c("varchar", &[10]), c("varchar", &[30])),
            (c("varchar", &[10]), c("varchar", &[])),
            (c("varchar", &[10]), c("text", &[])),
            (c("text", &[]), c("varchar", &[])),
            (c("numeric", &[10, 2]), c("numeric", &[12, 2])),
            (c("numeric", &[10, 2]), c("numeric", &[])),
            (c("timestamptz", &[3]), c("timestamptz", &[])),
            (c("timestamptz", &[]), c("timestamptz", &[6])),
            (c("cidr", &[]), c("inet", &[])),
        ];
        for (old, new) in no {
            assert!(!rewrites(&old, &new), "{old:?} -> {new:?}");
        }
        let yes = [
            (c("varchar", &[30]), c("varchar", &[10])),
            (c("text", &[]), c("varchar", &[10])),
            (c("int4", &[]), c("int8", &[])),
            (c("int4", &[]), c("text", &[])),
            (c("numeric", &[10, 2]), c("numeric", &[12, 3])),
            (c("numeric", &[]), c("numeric", &[12, 2])),
            (c("timestamptz", &[]), c("timestamptz", &[3])),
            (c("timestamp", &[]), c("timestamptz", &[])),
            (c("bpchar", &[2]), c("text", &[])),
        ];
        for (old, new) in yes {
            assert!(rewrites(&old, &new), "{old:?} -> {new:?}");
        }
    }
}
