//! `fdw-cutover`: move OLD's data into NEW's schema in another database while the application
//! keeps writing — postgres_fdw, change capture, catch-up, verification, a short write freeze,
//! the switch (hooks, PgBouncer) and rollback (docs/fdw-cutover.md).
//!
//! ```kdl
//! stage "cutover" uses="fdw-cutover" {
//!     from "old"                  // an environment, a declared database or a connection string
//!     to "new"                    // refused when protected; built from `schema` when empty
//!     mapping "db/cutover.kdl"    // renamed tables and columns, computed columns, split tables
//!     phase "copy"                // one phase (default: plan … cutover, cleanup in order)
//!     schema "db/schema"
//!     jobs 4
//!     batch 10000                 // change-log entries per catch-up batch
//!     max-lag 1000                // catch-up stops below this many waiting changes
//!     lock-timeout "500ms"        // per attempt to freeze writes on OLD
//!     lock-attempts 20
//!     keep #true                  // stop after the switch: no cleanup, so rollback stays possible
//!     pgbouncer admin="postgresql://pgbouncer@127.0.0.1:6432/pgbouncer" database="app" config="/etc/pgbouncer/pgbouncer.ini"
//!     dry-run #true               // print the plan, write nothing
//! }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::event::EventKind;
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::Node;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};

use crate::fdw::run::{self, Ends};
use crate::fdw::{AFTER_PHASE, Bouncer, CUTOVER, CutoverReport, Options, Phase};

/// The `fdw-cutover` stage type.
pub struct FdwCutover;

pub struct FdwCutoverStage {
    from: DatabaseRef,
    to: DatabaseRef,
    options: Options,
}

impl StageType for FdwCutover {
    fn name(&self) -> &'static str {
        "fdw-cutover"
    }

    fn summary(&self) -> &'static str {
        "move data into a new schema in another database while writes go on: postgres_fdw, change capture, verify, a short freeze, switch, rollback"
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(CutoverReport))
    }

    fn events(&self) -> &'static [EventKind] {
        &[CUTOVER, AFTER_PHASE]
    }

    fn text_report(&self, outputs: &BTreeMap<String, serde_json::Value>, _paint: Paint<'_>) -> Option<Vec<String>> {
        let r: CutoverReport =
            serde_json::from_value(serde_json::Value::Object(outputs.clone().into_iter().collect())).ok()?;
        let mut lines = vec![format!(
            "{}{} → {}{}",
            if r.dry_run { "plan: " } else { "" },
            r.from,
            r.to,
            if r.run.is_empty() { String::new() } else { format!(" (run {}, {})", r.run, r.state) }
        )];
        for t in &r.tables {
            let cols: Vec<&String> = t.columns.iter().filter(|c| c.contains('←')).collect();
            lines.push(format!(
                "{} → {}: ~{} rows via {}, key ({}){}{}",
                t.old,
                t.new,
                t.estimated_rows,
                match t.via {
                    crate::fdw::plan::Via::Copy => "COPY",
                    crate::fdw::plan::Via::Fdw => "postgres_fdw",
                },
                t.key.join(", "),
                if cols.is_empty() {
                    String::new()
                } else {
                    format!("; {}", cols.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("; "))
                },
                if t.defaulted.is_empty() { String::new() } else { format!("; default: {}", t.defaulted.join(", ")) }
            ));
        }
        if !r.dropped.is_empty() {
            lines.push(format!("drops {}", r.dropped.join(", ")));
        }
        if !r.unfilled.is_empty() {
            lines.push(format!("NEW tables left as they are: {}", r.unfilled.join(", ")));
        }
        for p in &r.phases {
            lines.push(format!("{} {}: {} ({} ms)", p.phase, p.result, p.summary, p.duration_ms));
        }
        if let Some(v) = &r.verify {
            for c in v.iter().filter(|c| !c.ok) {
                lines.push(format!("differs: {} (OLD {} rows, NEW {})", c.table, c.old_rows, c.new_rows));
                for d in &c.differences {
                    lines.push(format!("  {d}"));
                }
            }
        }
        for n in &r.notes {
            lines.push(format!("note: {n}"));
        }
        Some(lines)
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (fdw-cutover)", cx.stage));
        let from = f.setting("from", d).map(|e| cx.database_or_environment(e, d));
        let to = f.setting("to", d).map(|e| cx.database_or_environment(e, d));
        let mut options = Options::default();
        if let Some(e) = f.setting("mapping", d) {
            options.mapping = decode::static_text(e, d).map(PathBuf::from);
        }
        if let Some(e) = f.setting("schema", d)
            && let Some(s) = decode::static_text(e, d)
        {
            options.schema_dir = PathBuf::from(s);
        }
        let keep = f.setting_bool("keep", d).unwrap_or(false);
        if let Some(e) = f.setting("phase", d) {
            if let Some(p) = decode::static_text(e, d) {
                match Phase::parse(&p) {
                    Some(p) => options.phases = vec![p],
                    None => d.push(
                        Diagnostic::error("fdw::unknown-phase", e.span, format!("unknown phase `{p}`"))
                            .with_label("not a phase")
                            .with_help(decode::one_of(
                                "a phase",
                                &Phase::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                                &p,
                            )),
                    ),
                }
            }
        } else if keep {
            options.phases.retain(|p| *p != Phase::Cleanup);
        }
        for (name, slot) in [("jobs", &mut options.jobs)] {
            if let Some(e) = f.setting(name, d) {
                *slot = decode::integer(e, d).unwrap_or(1).max(1) as usize;
            }
        }
        if let Some(e) = f.setting("batch", d) {
            options.batch = decode::integer(e, d).unwrap_or(10_000).max(1) as i64;
        }
        if let Some(e) = f.setting("max-lag", d) {
            options.max_lag = decode::integer(e, d).unwrap_or(1_000) as i64;
        }
        if let Some(e) = f.setting("range-rows", d) {
            options.range_rows = decode::integer(e, d).unwrap_or(250_000).max(1);
        }
        if let Some(e) = f.setting("small-rows", d) {
            options.small_rows = decode::integer(e, d).unwrap_or(10_000);
        }
        if let Some(e) = f.setting("lock-timeout", d)
            && let Some(t) = decode::pg_timeout(e, d)
        {
            options.lock_timeout = t;
        }
        if let Some(e) = f.setting("lock-attempts", d) {
            options.lock_attempts = decode::integer(e, d).unwrap_or(20).max(1) as u32;
        }
        options.dry_run = f.setting_bool("dry-run", d).unwrap_or(false);
        if let Some(b) = f.child("pgbouncer", d) {
            let mut bf = Fields::new(b, "pgbouncer");
            let admin = bf.prop("admin", d).and_then(|e| decode::text(e, d)).and_then(|t| t.rendered.clone());
            let database = bf.prop("database", d).and_then(|e| decode::static_text(e, d));
            let config = bf.prop("config", d).and_then(|e| decode::static_text(e, d));
            bf.finish(d);
            match (admin, database, config) {
                (Some(admin), Some(database), Some(config)) => {
                    options.bouncer = Some(Bouncer { admin, database, config: cx.project.resolve(&PathBuf::from(config)) })
                }
                _ => d.push(
                    Diagnostic::error("fdw::pgbouncer", b.span, "`pgbouncer` needs admin=, database= and config=")
                        .with_label("incomplete")
                        .with_help("e.g. `pgbouncer admin=\"postgresql://pgbouncer@127.0.0.1:6432/pgbouncer\" database=\"app\" config=\"/etc/pgbouncer/pgbouncer.ini\"`"),
                ),
            }
        }
        f.finish(d);
        let missing = |what: &str, help: &str, d: &mut Diagnostics| {
            d.push(
                Diagnostic::error("fdw::missing-end", node.span, format!("stage `{}` has no `{what}`", cx.stage))
                    .with_label(format!("no {what}"))
                    .with_help(help.to_string()),
            );
        };
        let Some(from) = from else {
            missing("from", "add `from \"old\"`: the database the application uses now", d);
            return None;
        };
        let Some(to) = to else {
            missing("to", "add `to \"new\"`: the database with the new schema", d);
            return None;
        };
        Some(Arc::new(FdwCutoverStage { from: from?, to: to?, options }))
    }
}

#[async_trait]
impl Stage for FdwCutoverStage {
    fn settings(&self) -> serde_json::Value {
        let o = &self.options;
        serde_json::json!({
            "from": self.from.describe(),
            "to": self.to.describe(),
            "phases": o.phases.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "mapping": o.mapping.as_ref().map(|p| p.display().to_string()),
            "jobs": o.jobs,
            "batch": o.batch,
            "max_lag": o.max_lag,
            "lock_timeout_ms": o.lock_timeout.as_millis() as u64,
            "lock_attempts": o.lock_attempts,
            "pgbouncer": o.bouncer.as_ref().map(|b| b.database.clone()),
            "dry_run": o.dry_run,
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let old = cx.database_target(&self.from, false).await?;
        let new = if self.options.dry_run {
            cx.database_target(&self.to, false).await?
        } else {
            cx.destructive_target(&self.to, "migrate into it (its tables are filled)", true).await?
        };
        let report = run::run(&Ends { old, new }, &self.options, cx).await?;
        let mut outputs = Outputs::default();
        outputs.extend_from(&report);
        Ok(outputs)
    }
}
