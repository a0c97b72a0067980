//! A deterministic generator of confiture projects with a large schema: N tables with identity
//! primary keys, foreign keys to earlier tables, indexes, CHECK constraints, comments and triggers,
//! plus views joining tables to their parents. The same options always give the same files.

use std::fmt::Write as _;
use std::path::Path;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    pub tables: usize,
    pub views: usize,
    /// Every `trigger_every`-th table gets an `updated_at` trigger.
    pub trigger_every: usize,
    pub seed: u64,
    /// Percent of tables to change (for a "what changed" copy of the same schema): each gets one
    /// of a new column, a dropped column, a wider type, a changed CHECK, a dropped index, a new
    /// index or a new comment; and as many new tables are added and views dropped, per 100 tables.
    pub mutate: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { tables: 1000, views: 100, trigger_every: 4, seed: 42, mutate: 0 }
    }
}

/// A small deterministic PRNG (xorshift64*), so no dependency is needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NOUNS: &[&str] = &[
    "accounts",
    "orders",
    "invoices",
    "shipments",
    "products",
    "customers",
    "payments",
    "refunds",
    "carts",
    "reviews",
    "suppliers",
    "warehouses",
    "stock",
    "prices",
    "coupons",
    "sessions",
    "events",
    "tickets",
];

/// The name of table `i` (1-based).
pub fn table_name(i: usize) -> String {
    format!("t{i:04}_{}", NOUNS[i % NOUNS.len()])
}

/// Files of the project, as (relative path, content), in no particular order.
pub fn files(o: &Options) -> Vec<(String, String)> {
    let mut rng = Rng(o.seed.max(1));
    // A separate stream, so a mutated copy is the same schema apart from its mutations.
    let mut mutations = Rng(o.seed.wrapping_mul(31).max(1));
    let mut out = Vec::new();
    out.push((
        "confiture.kdl".into(),
        "project \"generated\"\n\nenvironment \"bench\" {\n    database ephemeral=#true\n    schema \"db/schema\"\n}\n"
            .into(),
    ));
    out.push((
        "db/schema/00_common/00_functions.sql".into(),
        "CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    NEW.updated_at := now();\n    RETURN NEW;\nEND;\n$$;\n\nCREATE TYPE record_status AS ENUM ('new', 'active', 'archived');\n".into(),
    ));
    // parents[i]: the table that table i references, if any (index 0 unused).
    let mut parents: Vec<Option<usize>> = vec![None];
    for i in 1..=o.tables {
        let name = table_name(i);
        let mut sql = String::new();
        let _ = writeln!(sql, "CREATE TABLE {name} (");
        let _ = writeln!(sql, "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,");
        let parent = (i > 1 && rng.below(10) < 8).then(|| 1 + rng.below(i - 1));
        parents.push(parent);
        if let Some(p) = parent {
            let _ = writeln!(
                sql,
                "    {}_id bigint NOT NULL REFERENCES {} (id) ON DELETE CASCADE,",
                table_name(p),
                table_name(p)
            );
        }
        let second = (i > 2 && rng.below(10) < 3).then(|| 1 + rng.below(i - 1)).filter(|s| Some(*s) != parent);
        if let Some(s) = second {
            let _ = writeln!(
                sql,
                "    ref_{}_id bigint REFERENCES {} (id) ON DELETE SET NULL,",
                table_name(s),
                table_name(s)
            );
        }
        let _ = writeln!(sql, "    code varchar(32) NOT NULL UNIQUE,");
        let _ = writeln!(sql, "    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),");
        let _ = writeln!(sql, "    status record_status NOT NULL DEFAULT 'new',");
        let _ = writeln!(sql, "    amount numeric(12, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),");
        for c in 0..rng.below(6) {
            let ty = ["integer", "text", "boolean NOT NULL DEFAULT false", "date", "jsonb", "bigint"][rng.below(6)];
            let _ = writeln!(sql, "    attr_{c} {ty},");
        }
        let _ = writeln!(sql, "    created_at timestamptz NOT NULL DEFAULT now(),");
        let _ = writeln!(sql, "    updated_at timestamptz NOT NULL DEFAULT now()");
        let _ = writeln!(sql, ");\n");
        if let Some(p) = parent {
            let col = format!("{}_id", table_name(p));
            let _ = writeln!(sql, "CREATE INDEX {name}_{col}_idx ON {name} ({col});");
        }
        if let Some(s) = second {
            let col = format!("ref_{}_id", table_name(s));
            let _ = writeln!(sql, "CREATE INDEX {name}_{col}_idx ON {name} ({col}) WHERE {col} IS NOT NULL;");
        }
        let _ = writeln!(sql, "CREATE INDEX {name}_created_at_idx ON {name} (created_at DESC);\n");
        let _ = writeln!(sql, "COMMENT ON TABLE {name} IS 'generated table {i}';");
        let _ = writeln!(sql, "COMMENT ON COLUMN {name}.amount IS 'amount in the account currency';");
        if i % o.trigger_every.max(1) == 0 {
            let _ = writeln!(
                sql,
                "\nCREATE TRIGGER {name}_updated_at BEFORE UPDATE ON {name}\n    FOR EACH ROW EXECUTE FUNCTION set_updated_at();"
            );
        }
        let sql =
            if o.mutate > 0 && mutations.below(100) < o.mutate { mutate(&sql, &name, &mut mutations) } else { sql };
        out.push((format!("db/schema/10_tables/{i:04}_{}.sql", name), sql));
    }
    // Mutated copies gain tables after the last one.
    let extra = o.tables * o.mutate / 100;
    for j in 1..=extra {
        let name = format!("new{j:04}_{}", NOUNS[j % NOUNS.len()]);
        let sql = format!(
            "CREATE TABLE {name} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    {}_id bigint NOT NULL REFERENCES {} (id),\n    note text\n);\n",
            table_name(1),
            table_name(1)
        );
        out.push((format!("db/schema/10_tables/9{j:03}_{name}.sql"), sql));
    }
    let with_parent: Vec<usize> = (1..=o.tables).filter(|i| parents[*i].is_some()).collect();
    for v in 1..=o.views.min(with_parent.len()) {
        if (v * 37) % 100 < o.mutate {
            continue;
        }
        let child = with_parent[(v * 7919) % with_parent.len()];
        let parent = parents[child].expect("filtered on having a parent");
        let (c, p) = (table_name(child), table_name(parent));
        let sql = format!(
            "CREATE VIEW v{v:03}_{c} AS\nSELECT c.id, c.code, c.name, c.amount, p.code AS parent_code, p.name AS parent_name\nFROM {c} c\nJOIN {p} p ON p.id = c.{}_id\nWHERE c.status <> 'archived';\n\nCOMMENT ON VIEW v{v:03}_{c} IS 'generated view {v}';\n",
            p
        );
        out.push((format!("db/schema/20_views/{v:03}_{c}.sql"), sql));
    }
    out
}

/// One change to a table's file.
fn mutate(sql: &str, name: &str, rng: &mut Rng) -> String {
    match rng.below(7) {
        0 => sql.replacen("    created_at timestamptz", "    extra_note text,\n    created_at timestamptz", 1),
        1 => match sql.find("    attr_0 ") {
            Some(start) => {
                let end = start + sql[start..].find('\n').map_or(0, |e| e + 1);
                format!("{}{}", &sql[..start], &sql[end..])
            }
            None => sql.replacen("varchar(32)", "varchar(64)", 1),
        },
        2 => sql.replacen("varchar(32)", "varchar(64)", 1),
        3 => sql.replacen("BETWEEN 1 AND 200", "BETWEEN 1 AND 300", 1),
        4 => {
            let line = format!("CREATE INDEX {name}_created_at_idx ON {name} (created_at DESC);\n");
            sql.replacen(&line, "", 1)
        }
        5 => format!("{sql}\nCREATE INDEX {name}_status_idx ON {name} (status) WHERE status <> 'archived';\n"),
        _ => sql.replacen("IS 'generated table", "IS 'changed table", 1),
    }
}

/// Write the project into `dir`.
pub fn write(dir: &Path, o: &Options) -> std::io::Result<usize> {
    let files = files(o);
    for (rel, content) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let o = Options { tables: 50, views: 10, ..Options::default() };
        let a = files(&o);
        assert_eq!(a, files(&o));
        assert_eq!(a.iter().filter(|(p, _)| p.starts_with("db/schema/10_tables/")).count(), 50);
        assert_eq!(a.iter().filter(|(p, _)| p.starts_with("db/schema/20_views/")).count(), 10);
        // Foreign keys only point backwards, so path order is a valid creation order.
        for (path, sql) in &a {
            if let Some(rest) = path.strip_prefix("db/schema/10_tables/") {
                let me: usize = rest[..4].parse().unwrap();
                for target in sql.split("REFERENCES t").skip(1) {
                    let n: usize = target[..4].parse().unwrap();
                    assert!(n < me, "{path} references a later table");
                }
            }
        }
    }
}
