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

pub(crate) mod files;
mod indexes;
pub(crate) mod prepare;
mod report;
mod run;
mod session;
mod tracking;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::event::EventKind;
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::Node;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};

pub use files::new_stem;
pub use prepare::NO_TRANSACTION;
pub use report::{MigrateOutputs, NewMigration};

/// The `migrate` stage type.
pub struct Migrate;

/// What a migrate stage does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Up,
    Down,
    Status,
    Verify,
    Current,
    Baseline,
    DryRun,
    DryRunExecute,
    Preflight,
}

impl Mode {
    const ALL: [(&'static str, Mode); 9] = [
        ("up", Mode::Up),
        ("down", Mode::Down),
        ("status", Mode::Status),
        ("verify", Mode::Verify),
        ("current", Mode::Current),
        ("baseline", Mode::Baseline),
        ("dry-run", Mode::DryRun),
        ("dry-run-execute", Mode::DryRunExecute),
        ("preflight", Mode::Preflight),
    ];

    pub fn name(self) -> &'static str {
        Mode::ALL.iter().find(|(_, m)| *m == self).map(|(n, _)| *n).expect("every mode is listed")
    }

    fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }
}

/// How far `down` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownTo {
    Steps(u64),
    Version(String),
}

/// A configured migrate stage.
#[derive(Debug)]
pub struct MigrateStage {
    mode: Mode,
    database: Option<DatabaseRef>,
    dir: PathBuf,
    table: tracking::Table,
    target: Option<String>,
    down: DownTo,
    through: Option<String>,
    against: Option<DatabaseRef>,
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
}

/// Before each migration runs (up or down, with its SQL): hooks may deny it.
pub const BEFORE_MIGRATION: EventKind = EventKind("before-migration");
/// After a migration ran, with `execution_ms`.
pub const AFTER_MIGRATION: EventKind = EventKind("after-migration");
/// When a migration failed, with the `error`.
pub const MIGRATION_FAILED: EventKind = EventKind("migration-failed");

/// How long `up`, `down` and `baseline` wait for another runner without `lock-timeout`.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// What confiture.kdl's `migrate { … }` block sets for every migrate stage and command.
#[derive(Debug, Default)]
struct ProjectDefaults {
    dir: Option<PathBuf>,
    table: Option<tracking::Table>,
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
}

impl ProjectDefaults {
    fn decode(project: &confiture_engine::project::Project, d: &mut Diagnostics) -> Self {
        let Some(node) = project.stage_defaults("migrate") else { return Self::default() };
        let mut pd = Diagnostics::default();
        let mut f = Fields::new(node, "`migrate` in confiture.kdl");
        let defaults = ProjectDefaults {
            dir: f.setting_text("migrations", &mut pd).map(|t| PathBuf::from(t.display())),
            table: f.setting("tracking-table", &mut pd).and_then(|e| tracking_table(e, &mut pd)),
            lock_timeout: f.setting("lock-timeout", &mut pd).and_then(|e| decode::pg_timeout(e, &mut pd)),
            statement_timeout: f.setting("statement-timeout", &mut pd).and_then(|e| decode::pg_timeout(e, &mut pd)),
        };
        f.finish(&mut pd);
        if let Some(source) = &project.source {
            pd = pd.finish(source);
        }
        d.extend(pd);
        defaults
    }
}

/// Whether confiture.kdl makes every migration run with a lock_timeout / statement_timeout
/// (`migrate { lock-timeout "5s" }`): the lint rules about those timeouts are then satisfied.
pub fn project_timeouts(project: &confiture_engine::project::Project) -> crate::lint::check::RunnerTimeouts {
    let defaults = ProjectDefaults::decode(project, &mut Diagnostics::default());
    crate::lint::check::RunnerTimeouts {
        lock_timeout: defaults.lock_timeout.is_some(),
        statement_timeout: defaults.statement_timeout.is_some(),
    }
}

/// The tracking table (confiture.kdl's `migrate { tracking-table "…" }`, else
/// public.confiture_migrations) as the diff model names it: confiture's bookkeeping, not schema.
pub fn project_tracking_table(project: &confiture_engine::project::Project) -> String {
    let table = ProjectDefaults::decode(project, &mut Diagnostics::default())
        .table
        .unwrap_or_else(|| tracking::Table::parse("confiture_migrations").expect("a valid default"));
    crate::catalog::model::qname(&table.schema, &table.name)
}

/// The migrations directory confiture.kdl's `migrate { migrations "…" }` names, if any.
pub fn project_migrations_dir(project: &confiture_engine::project::Project) -> Option<PathBuf> {
    ProjectDefaults::decode(project, &mut Diagnostics::default()).dir
}

fn tracking_table(e: &confiture_engine::kdl::node::Entry, d: &mut Diagnostics) -> Option<tracking::Table> {
    let t = decode::static_text(e, d)?;
    let parsed = tracking::Table::parse(&t);
    if parsed.is_none() {
        d.push(
            Diagnostic::error("pipeline::wrong-type", e.span, format!("`{t}` is not a table name"))
                .with_label("expected table or schema.table")
                .with_help("e.g. \"confiture_migrations\" or \"ops.migrations\""),
        );
    }
    parsed
}

impl StageType for Migrate {
    fn name(&self) -> &'static str {
        "migrate"
    }

    fn summary(&self) -> &'static str {
        "apply, roll back, check or rehearse versioned migrations"
    }

    fn events(&self) -> &'static [EventKind] {
        &[BEFORE_MIGRATION, AFTER_MIGRATION, MIGRATION_FAILED]
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
        let defaults = ProjectDefaults::decode(cx.project, d);
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
        Some(Arc::new(MigrateStage {
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
        }))
    }
}

#[async_trait]
impl Stage for MigrateStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": self.mode.name(),
            "database": self.database.as_ref().map(DatabaseRef::describe),
            "migrations": self.dir.display().to_string(),
            "tracking_table": self.table.to_string(),
            "target": self.target,
            "down": match &self.down {
                DownTo::Steps(n) if self.mode == Mode::Down => Some(format!("{n} step(s)")),
                DownTo::Version(v) if self.mode == Mode::Down => Some(format!("to {v}")),
                _ => None,
            },
            "through": self.through,
            "against": self.against.as_ref().map(DatabaseRef::describe),
            "lock_timeout": self.lock_timeout.map(|d| humantime::format_duration(d).to_string()),
            "statement_timeout": self.statement_timeout.map(|d| humantime::format_duration(d).to_string()),
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        run::run(self, cx).await
    }
}
