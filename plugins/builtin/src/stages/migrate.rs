//! `migrate`: versioned migrations with a tracking table, applied exactly once.
//!
//! Reads `db/migrations/{version}_{name}.up.sql` (and `.down.sql`), the tracking table and the
//! advisory lock of the target database. Writes, depending on `mode`: the migrations' changes and
//! their tracking rows (`up`, `down`, `baseline`); nothing (`status`, `verify`, `current`, `dry-run`,
//! and the rehearsals `dry-run-execute` and `preflight`, which roll back). `up` is idempotent: what is
//! recorded never runs again.
//!
//! ```kdl
//! stage "apply" uses="migrate" {
//!     database "prod"             // or: env "production"
//!     mode "up"                   // up | down | status | verify | current | baseline
//!                                 // | dry-run | dry-run-execute | preflight
//!     target "20260101120000"     // up: stop after this version
//!     lock-timeout "5s"           // wait for the migration lock, and SET lock_timeout
//!     statement-timeout "10m"     // SET statement_timeout
//!     tracking-table "public.confiture_migrations"
//!     migrations "db/migrations"
//! }
//! ```
//! `down` takes `steps N` or `to "VERSION"`; `baseline` takes `through "VERSION"`; `preflight` takes
//! `against "scratch"` (a database to rehearse on).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::event::EventKind;
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::Node;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};

use crate::migrate::project::{Defaults, tracking_table};
use crate::migrate::{self, DownTo, Job, MigrateOutputs, Mode, files, tracking};

/// The `migrate` stage type.
pub struct Migrate;

/// A configured migrate stage.
#[derive(Debug)]
pub struct MigrateStage(Job);

impl StageType for Migrate {
    fn name(&self) -> &'static str {
        "migrate"
    }

    fn summary(&self) -> &'static str {
        "apply, roll back, check or rehearse versioned migrations"
    }

    fn events(&self) -> &'static [EventKind] {
        &[migrate::BEFORE_MIGRATION, migrate::AFTER_MIGRATION, migrate::MIGRATION_FAILED]
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(MigrateOutputs))
    }

    /// The migrations as a table, and the counts.
    fn text_report(
        &self,
        outputs: &std::collections::BTreeMap<String, serde_json::Value>,
        paint: Paint<'_>,
    ) -> Option<Vec<String>> {
        let o: MigrateOutputs =
            serde_json::from_value(serde_json::Value::Object(outputs.clone().into_iter().collect())).ok()?;
        Some(o.text(paint))
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let defaults = Defaults::decode(cx.project, d);
        let mut f = Fields::new(node, format!("stage `{}` (migrate)", cx.stage));
        let mode_entry = f.setting("mode", d);
        let mode = match mode_entry {
            Some(e) => decode::static_text(e, d).and_then(|m| {
                let parsed = Mode::parse(&m);
                if parsed.is_none() {
                    let names: Vec<&str> = Mode::ALL.iter().map(|(n, _)| *n).collect();
                    d.push(
                        Diagnostic::error("pipeline::unknown-mode", e.span, format!("unknown migrate mode `{m}`"))
                            .with_label("not a mode")
                            .with_help(decode::one_of("modes", &names, &m)),
                    );
                }
                parsed
            }),
            None => Some(Mode::Up),
        };
        let database = f.setting("database", d).map(|e| cx.database_ref(e, d));
        let env = f.setting("env", d).map(|e| cx.environment(e, d));
        let dir = f
            .setting_text("migrations", d)
            .map(|t| PathBuf::from(t.display()))
            .or(defaults.dir)
            .unwrap_or_else(|| PathBuf::from("db/migrations"));
        let table = match f.setting("tracking-table", d) {
            Some(e) => tracking_table(e, d),
            None => defaults.table.or_else(|| tracking::Table::parse("public.confiture_migrations")),
        };
        let version = |f: &mut Fields<'_>, name: &'static str, d: &mut Diagnostics| {
            let e = f.setting(name, d)?;
            let v = match &e.value {
                confiture_engine::kdl::node::Value::Int(i) => i.to_string(),
                _ => decode::static_text(e, d)?,
            };
            if files::version_number(&v).is_none() {
                d.push(
                    Diagnostic::error("pipeline::wrong-type", e.span, format!("`{v}` is not a migration version"))
                        .with_label("expected digits")
                        .with_help("versions are the digits before the first `_` of a migration file name"),
                );
                return None;
            }
            Some((v, e.span))
        };
        let target = version(&mut f, "target", d);
        let to = version(&mut f, "to", d);
        let through = version(&mut f, "through", d);
        let steps = f.setting("steps", d).and_then(|e| decode::integer(e, d).map(|n| (n, e.span)));
        let against = f.setting("against", d).map(|e| (cx.database_ref(e, d), e.span));
        let lock_timeout =
            f.setting("lock-timeout", d).and_then(|e| decode::pg_timeout(e, d)).or(defaults.lock_timeout);
        let statement_timeout =
            f.setting("statement-timeout", d).and_then(|e| decode::pg_timeout(e, d)).or(defaults.statement_timeout);
        f.finish(d);
        let mode = mode?;

        // Settings that only make sense for some modes.
        let misplaced = |d: &mut Diagnostics, what: &str, span: miette::SourceSpan, modes: &str| {
            d.push(
                Diagnostic::error(
                    "pipeline::conflicting-settings",
                    span,
                    format!("`{what}` does not apply to mode `{}`", mode.name()),
                )
                .with_label("not used by this mode")
                .with_help(format!("`{what}` is for {modes}")),
            );
        };
        if let Some((_, span)) = &target
            && !matches!(mode, Mode::Up | Mode::DryRun | Mode::DryRunExecute | Mode::Preflight)
        {
            misplaced(d, "target", *span, "up and its dry runs");
        }
        for (what, span) in [("steps", steps.as_ref().map(|s| s.1)), ("to", to.as_ref().map(|t| t.1))] {
            if let Some(span) = span
                && mode != Mode::Down
            {
                misplaced(d, what, span, "down");
            }
        }
        if let (Some(_), Some((_, span))) = (&steps, &to) {
            d.push(
                Diagnostic::error("pipeline::conflicting-settings", *span, "give `steps` or `to`, not both")
                    .with_label("both given")
                    .with_help("`steps N` rolls back the last N migrations; `to V` everything after V"),
            );
        }
        if let Some((_, span)) = &through
            && mode != Mode::Baseline
        {
            misplaced(d, "through", *span, "baseline");
        }
        if mode == Mode::Baseline && through.is_none() {
            d.push(
                Diagnostic::error(
                    "pipeline::missing-property",
                    node.span,
                    "mode `baseline` needs `through \"VERSION\"`",
                )
                .with_label("no version")
                .with_help("baseline marks every migration up to and including VERSION as applied, without running it"),
            );
        }
        if let Some((_, span)) = &against
            && mode != Mode::Preflight
        {
            misplaced(d, "against", *span, "preflight");
        }
        let against = match against {
            Some((r, _)) => Some(r?),
            None => None,
        };
        if mode == Mode::Preflight && against.is_none() {
            d.push(
                Diagnostic::error(
                    "pipeline::missing-property",
                    node.span,
                    "mode `preflight` needs `against \"DATABASE\"`",
                )
                .with_label("no scratch database")
                .with_help("preflight rehearses pending migrations on another database, e.g. a scratch copy"),
            );
            return None;
        }
        let database = match (database, env) {
            (Some(r), _) => Some(r?),
            (None, Some(env)) => Some(DatabaseRef::Environment(env?)),
            (None, None) => None,
        };
        if database.is_none() && mode != Mode::Preflight {
            d.push(
                Diagnostic::error(
                    "build::no-database",
                    node.span,
                    format!("stage `{}` has no database to migrate", cx.stage),
                )
                .with_label("no target")
                .with_help("add `database \"NAME\"` (a declared database) or `env \"NAME\"` (a project environment)"),
            );
            return None;
        }
        Some(Arc::new(MigrateStage(Job {
            mode,
            database,
            dir,
            table: table?,
            target: target.map(|t| t.0),
            down: match (steps, to) {
                (_, Some((v, _))) => DownTo::Version(v),
                (Some((n, _)), None) => DownTo::Steps(n),
                (None, None) => DownTo::Steps(1),
            },
            through: through.map(|t| t.0),
            against,
            lock_timeout,
            statement_timeout,
        })))
    }
}

#[async_trait]
impl Stage for MigrateStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": self.0.mode.name(),
            "database": self.0.database.as_ref().map(DatabaseRef::describe),
            "migrations": self.0.dir.display().to_string(),
            "tracking_table": self.0.table.to_string(),
            "target": self.0.target,
            "down": match &self.0.down {
                DownTo::Steps(n) if self.0.mode == Mode::Down => Some(format!("{n} step(s)")),
                DownTo::Version(v) if self.0.mode == Mode::Down => Some(format!("to {v}")),
                _ => None,
            },
            "through": self.0.through,
            "against": self.0.against.as_ref().map(DatabaseRef::describe),
            "lock_timeout": self.0.lock_timeout.map(|d| humantime::format_duration(d).to_string()),
            "statement_timeout": self.0.statement_timeout.map(|d| humantime::format_duration(d).to_string()),
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        migrate::run(&self.0, cx).await
    }
}
