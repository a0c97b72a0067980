//! The mapping file: how OLD's tables and columns become NEW's.
//!
//! ```kdl
//! table "public.users" {                        // an OLD table; NEW's of the same name by default
//!     column "handle" from="nick"               // a renamed column (NEW ← OLD)
//!     column "display_name" from="first_name || ' ' || last_name"   // computed, SQL on OLD
//!     drop "legacy_flag"                        // an OLD column that is not carried over
//! }
//! table "public.users" to="public.profiles" {   // a split: another NEW table from the same rows
//!     column "user_id" from="id"
//! }
//! drop-table "public.audit_2019"                // an OLD table that is not carried over
//! ```
//!
//! Everything not said maps by name: a NEW table takes the OLD table of its name, a NEW column
//! the OLD column of its name; a NEW column with neither is filled by its default. An OLD column
//! or table that reaches nothing on NEW must be dropped by name, so nothing is lost unseen.

use std::path::Path;

use confiture_engine::diag::{Diagnostic, Diagnostics, SourceFile};
use confiture_engine::kdl::decode::{self, Fields};

/// One `table` block: OLD table → NEW table.
#[derive(Clone, Debug, Default)]
pub struct TableMap {
    /// `schema.table` on OLD.
    pub old: String,
    /// `schema.table` on NEW.
    pub new: String,
    /// `(NEW column, SQL over OLD's columns)`: a plain OLD column name is a rename.
    pub columns: Vec<(String, String)>,
    /// OLD columns dropped.
    pub drop: Vec<String>,
    /// NEW columns this table fills only (a split table's other part).
    pub only_mapped: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Mapping {
    pub tables: Vec<TableMap>,
    /// OLD tables dropped.
    pub drop_tables: Vec<String>,
}

/// `users` → `public.users`.
pub fn qualify(name: &str) -> String {
    if name.contains('.') { name.to_string() } else { format!("public.{name}") }
}

impl Mapping {
    /// Read and decode a mapping file; every problem at once, with its line.
    pub fn load(path: &Path) -> Result<Mapping, Diagnostics> {
        let shown = confiture_engine::project::display_path(path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "fdw::unreadable-mapping",
                (0..0).into(),
                format!("cannot read the mapping {shown}: {e}"),
            ))
        })?;
        let source = SourceFile::new(shown, text.clone());
        let mut d = Diagnostics::default();
        let templates = confiture_engine::template::Templates::from_process_env();
        let nodes = confiture_engine::kdl::node::parse(&source, &templates, &mut d).unwrap_or_default();
        let mut mapping = Mapping::default();
        for node in &nodes {
            match node.name.as_str() {
                "table" => {
                    let mut f = Fields::new(node, "mapping table");
                    let old = f.required_arg(0, "the OLD table", &mut d).and_then(|e| decode::static_text(e, &mut d));
                    let to = f.prop("to", &mut d).and_then(|e| decode::static_text(e, &mut d));
                    let mut t = TableMap {
                        only_mapped: f
                            .prop("only-mapped", &mut d)
                            .and_then(|e| decode::boolean(e, &mut d))
                            .unwrap_or(false),
                        ..TableMap::default()
                    };
                    for c in f.children("column") {
                        let mut cf = Fields::new(c, "mapping column");
                        let name =
                            cf.required_arg(0, "the NEW column", &mut d).and_then(|e| decode::static_text(e, &mut d));
                        let from = cf.prop("from", &mut d).and_then(|e| decode::static_text(e, &mut d));
                        cf.finish(&mut d);
                        match (name, from) {
                            (Some(n), Some(f)) => t.columns.push((n, f)),
                            (Some(n), None) => t.columns.push((n.clone(), n)),
                            _ => {}
                        }
                    }
                    for c in f.children("drop") {
                        for e in &c.args {
                            if let Some(v) = decode::static_text(e, &mut d) {
                                t.drop.push(v);
                            }
                        }
                    }
                    f.finish(&mut d);
                    if let Some(old) = old {
                        t.old = qualify(&old);
                        t.new = qualify(to.as_deref().unwrap_or(&old));
                        mapping.tables.push(t);
                    }
                }
                "drop-table" => {
                    for e in &node.args {
                        if let Some(v) = decode::static_text(e, &mut d) {
                            mapping.drop_tables.push(qualify(&v));
                        }
                    }
                }
                other => d.push(
                    Diagnostic::error(
                        "fdw::unknown-mapping-node",
                        node.span,
                        format!("unknown mapping entry `{other}`"),
                    )
                    .with_label("not `table` or `drop-table`")
                    .with_help(
                        "the mapping has `table \"OLD\" [to=\"NEW\"] { column …; drop … }` and `drop-table \"OLD\"`",
                    ),
                ),
            }
        }
        let d = d.finish(&source);
        if d.has_errors() { Err(d) } else { Ok(mapping) }
    }
}

/// SHA-256 of `bytes`, the first 16 hex digits.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}
