//! prefer-bigint-keys

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags key columns — primary keys, foreign keys, `id` and `*_id` — typed `integer` or
    /// `smallint` (or `serial`/`smallserial`).
    ///
    /// ## Why is this bad?
    /// A 32-bit key runs out at 2,147,483,647. Busy tables get there, and widening the column then
    /// rewrites the table (and every table that references it) under `ACCESS EXCLUSIVE` locks.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer REFERENCES customers);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE orders (
    ///     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ///     customer_id bigint REFERENCES customers
    /// );
    /// ```
    pub struct PreferBigintKeys {
        id: "prefer-bigint-keys",
        category: Types,
        severity: Warning,
        summary: "integer or smallint key column",
    }
}

const NARROW: &[&str] = &["int4", "int2", "int", "integer", "smallint", "serial", "serial4", "smallserial", "serial2"];

impl Rule for PreferBigintKeys {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let table_keys: Vec<String> = match s.node {
            NodeEnum::CreateStmt(c) => ast::table_elements(c)
                .1
                .into_iter()
                .filter(|k| ast::is(k, ConstrType::ConstrPrimary) || ast::is(k, ConstrType::ConstrForeign))
                .flat_map(|k| ast::key_names(&k.keys).into_iter().chain(ast::key_names(&k.fk_attrs)))
                .collect(),
            _ => Vec::new(),
        };
        for (table, col) in ast::defined_columns(s.node) {
            let Some(ty) = col.type_name.as_ref().map(ast::type_of) else { continue };
            if ty.array || !NARROW.contains(&ty.name.as_str()) {
                continue;
            }
            let name = ast::column_name(s.node, col);
            let keyed = ast::column_constraints(col)
                .any(|k| ast::is(k, ConstrType::ConstrPrimary) || ast::is(k, ConstrType::ConstrForeign))
                || table_keys.iter().any(|k| k == name)
                || name == "id"
                || name.ends_with("_id");
            if keyed {
                cx.report(
                    s,
                    col.type_name.as_ref().map_or(col.location, |t| t.location),
                    format!("key column {table}.{name} is a 32-bit {}: it runs out at 2,147,483,647", ty.name),
                    "use bigint (and GENERATED ALWAYS AS IDENTITY for generated keys)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &PreferBigintKeys,
            &[
                ("CREATE TABLE t (id serial PRIMARY KEY);", 1),
                ("CREATE TABLE t (id int, PRIMARY KEY (id));", 1),
                ("CREATE TABLE t (customer_id integer);", 1),
                ("CREATE TABLE t (x int REFERENCES u);", 1),
                ("CREATE TABLE t (id bigint PRIMARY KEY, qty int);", 0),
                ("ALTER TABLE t ADD COLUMN user_id smallint;", 1),
            ],
        );
    }
}
