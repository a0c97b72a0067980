//! `sync`: copy the rows of one database into another over COPY, from one snapshot, in parallel,
//! resumable, masked on the way (docs/sync.md).
//!
//! ```kdl
//! stage "refresh" uses="sync" {
//!     from "production"          // an environment, a declared database, or a connection string
//!     to "staging"               // refused when protected
//!     anonymize "staging"        // a profile (confiture.kdl or a file)…
//!     // anonymize "users.email" "users.phone=phone"   // …or columns, a strategy picked when none is said
//!     tables "public.*"          // globs over schema.table (default: every table)
//!     exclude "public.audit_*"
//!     jobs 4                     // default: the machine's cores
//!     range-rows 250000          // rows per range of a large table
//!     subset include-children=#false {
//!         table "public.orders" where="created_at > now() - interval '30 days'"
//!     }
//!     resume #true               // finish the target's unfinished run
//!     verify #true               // read the target back and compare checksums (exit 7)
//!     dry-run #true              // print the plan, write nothing
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::event::EventKind;
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::{Entry, Node};
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};

use crate::sync::run::{self, Ends};
use crate::sync::{ColumnRule, Masking, Options, Subset, SyncReport, copy};

/// The `sync` stage type.
pub struct Sync;

/// A configured sync stage.
pub struct SyncStage {
    from: DatabaseRef,
    to: DatabaseRef,
    options: Options,
}

fn texts(entries: &[Entry], d: &mut Diagnostics) -> Vec<String> {
    entries.iter().filter_map(|e| decode::static_text(e, d)).collect()
}

impl StageType for Sync {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn summary(&self) -> &'static str {
        "copy rows to another database over COPY: one snapshot, parallel, resumable, masked on the way"
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(SyncReport))
    }

    fn events(&self) -> &'static [EventKind] {
        &[copy::AFTER_TABLE]
    }

    fn text_report(&self, outputs: &BTreeMap<String, serde_json::Value>, _paint: Paint<'_>) -> Option<Vec<String>> {
        let r: SyncReport =
            serde_json::from_value(serde_json::Value::Object(outputs.clone().into_iter().collect())).ok()?;
        let mut lines = Vec::new();
        lines.push(format!(
            "{}{} → {} (schema {}, {}{})",
            if r.dry_run { "plan: " } else { "" },
            r.source,
            r.target,
            r.schema,
            if r.resumed { "resumed, consistent per range" } else { "one snapshot" },
            r.profile.as_deref().map(|p| format!(", masked with {p}")).unwrap_or_default()
        ));
        if !r.created.is_empty() {
            lines.push(format!(
                "creates {} tables ({} statements before the load, {} after)",
                r.created.len(),
                r.statements_before_load,
                r.statements_after_load
            ));
        }
        if !r.truncated.is_empty() {
            lines.push(format!("empties {}", r.truncated.join(", ")));
        }
        for c in &r.masked_columns {
            lines.push(format!("masks {}.{} with {} ({})", c.table, c.column, c.strategy, c.uniqueness.as_str()));
        }
        for t in &r.tables {
            let subset = t.subset.as_deref().map(|s| format!(", subset: {s}")).unwrap_or_default();
            if r.dry_run {
                lines.push(format!(
                    "{}: ~{} rows, ~{:.1} MB, {} range{} ({}){subset}",
                    t.table,
                    t.estimated_rows,
                    t.estimated_bytes as f64 / 1e6,
                    t.ranges,
                    if t.ranges == 1 { "" } else { "s" },
                    t.split
                ));
            } else {
                lines.push(format!(
                    "{}: {} rows, {:.1} MB, {} range{}{subset}",
                    t.table,
                    t.rows,
                    t.bytes as f64 / 1e6,
                    t.ranges,
                    if t.ranges == 1 { "" } else { "s" }
                ));
            }
        }
        if r.sequences > 0 {
            lines.push(format!("{} sequences set to the source's values", r.sequences));
        }
        if !r.dry_run {
            lines.push(format!(
                "{} rows, {:.1} MB in {:.1}s",
                r.rows,
                r.bytes as f64 / 1e6,
                r.duration_ms as f64 / 1000.0
            ));
        }
        for n in &r.notes {
            lines.push(format!("note: {n}"));
        }
        if let Some(checks) = &r.verify {
            let bad: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.table.as_str()).collect();
            if bad.is_empty() {
                lines.push(format!("verified {} tables: row counts and checksums match", checks.len()));
            } else {
                lines.push(format!("verify: {} differ: {}", bad.len(), bad.join(", ")));
            }
        }
        Some(lines)
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (sync)", cx.stage));
        let from = f.setting("from", d).map(|e| cx.database_or_environment(e, d));
        let to = f.setting("to", d).map(|e| cx.database_or_environment(e, d));
        let mut options = Options::default();
        for n in f.children("anonymize") {
            let values = texts(&n.args, d);
            let single_profile = values.len() == 1
                && (cx.project.named_block("anonymize", &values[0]).is_some()
                    || [".kdl", ".yaml", ".yml"].iter().any(|x| values[0].ends_with(x))
                    || !values[0].contains('.'));
            if single_profile {
                options.masking = Masking::Profile(values[0].clone());
                continue;
            }
            let mut rules = Vec::new();
            for (v, e) in values.iter().zip(&n.args) {
                match ColumnRule::parse(v) {
                    Ok(r) => rules.push(r),
                    Err(m) => d.push(
                        Diagnostic::error("sync::bad-anonymize", e.span, m)
                            .with_label("not a profile or table.column")
                            .with_help("a profile name, a profile file, or `table.column[=strategy]` values"),
                    ),
                }
            }
            options.masking = Masking::Columns(rules);
        }
        for n in f.children("tables") {
            options.tables.extend(texts(&n.args, d));
        }
        for n in f.children("exclude") {
            options.exclude.extend(texts(&n.args, d));
        }
        if let Some(e) = f.setting("jobs", d) {
            options.jobs = decode::integer(e, d).unwrap_or(1).max(1) as usize;
        }
        if let Some(e) = f.setting("range-rows", d) {
            options.range_rows = decode::integer(e, d).unwrap_or(250_000);
        }
        options.resume = f.setting_bool("resume", d).unwrap_or(false);
        options.verify = f.setting_bool("verify", d).unwrap_or(false);
        options.dry_run = f.setting_bool("dry-run", d).unwrap_or(false);
        if let Some(s) = f.child("subset", d) {
            let mut sf = Fields::new(s, "subset");
            let mut subset = Subset {
                include_children: sf.setting_bool("include-children", d).unwrap_or(false),
                ..Subset::default()
            };
            for t in sf.children("table") {
                let mut tf = Fields::new(t, "subset table");
                let name = tf.required_arg(0, "the table", d).and_then(|e| decode::static_text(e, d));
                let cond = tf.prop("where", d).and_then(|e| decode::static_text(e, d));
                tf.finish(d);
                match (name, cond) {
                    (Some(n), Some(c)) => subset.tables.push((n, c)),
                    (Some(_), None) => d.push(
                        Diagnostic::error("sync::subset-without-where", t.span, "a subset table needs `where=\"…\"`")
                            .with_label("no condition")
                            .with_help(
                                "e.g. `table \"public.orders\" where=\"created_at > now() - interval '30 days'\"`",
                            ),
                    ),
                    _ => {}
                }
            }
            sf.finish(d);
            options.subset = subset;
        }
        f.finish(d);
        let missing = |what: &str, help: &str, d: &mut Diagnostics| {
            d.push(
                Diagnostic::error("sync::missing-end", node.span, format!("stage `{}` has no `{what}`", cx.stage))
                    .with_label(format!("no {what}"))
                    .with_help(help.to_string()),
            );
        };
        let Some(from) = from else {
            missing("from", "add `from \"production\"`: an environment, a declared database or a connection string", d);
            return None;
        };
        let Some(to) = to else {
            missing("to", "add `to \"staging\"`: the database the rows are copied into", d);
            return None;
        };
        Some(Arc::new(SyncStage { from: from?, to: to?, options }))
    }
}

#[async_trait]
impl Stage for SyncStage {
    fn settings(&self) -> serde_json::Value {
        let o = &self.options;
        serde_json::json!({
            "from": self.from.describe(),
            "to": self.to.describe(),
            "anonymize": match &o.masking {
                Masking::None => serde_json::Value::Null,
                Masking::Profile(p) => serde_json::json!(p),
                Masking::Columns(c) => serde_json::json!(c.iter().map(|r| format!("{}.{}{}", r.table, r.column,
                    r.strategy.as_deref().map(|s| format!("={s}")).unwrap_or_default())).collect::<Vec<_>>()),
            },
            "tables": o.tables,
            "exclude": o.exclude,
            "jobs": o.jobs,
            "resume": o.resume,
            "verify": o.verify,
            "dry_run": o.dry_run,
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let source = cx.database_target(&self.from, false).await?;
        let target = cx.destructive_target(&self.to, "sync into it (its copied tables are emptied)", true).await?;
        let report = run::run(&Ends { source, target }, &self.options, cx).await?;
        let mut outputs = Outputs::default();
        outputs.extend_from(&report);
        Ok(outputs)
    }
}
