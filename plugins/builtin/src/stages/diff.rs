//! `diff`: compare two schemas and plan the statements that turn one into the other.
//!
//! Reads two sources (a live database, DDL files, or the migration chain — see docs/diff.md) into
//! catalog models, plans the change (and, with `down`, the way back), and reports every
//! difference with its hazards. With `fail-on-change` a difference fails the stage with exit 7
//! (a drift gate); with `generate` the plan is written as a new migration pair. Reads only: the
//! databases compared are never changed; DDL and migrations are built into throwaway databases
//! on the run's ephemeral cluster, or on `dev-url`.
//!
//! ```kdl
//! stage "drift" uses="diff" {
//!     from "env:production"      // what is
//!     to "schema"                // what should be: db/schema of `env` (default: the default env)
//!     env "production"           // the environment `schema` and `migrations` refer to
//!     dev-url "postgresql://localhost/postgres"  // scratch server for DDL sources (default: ephemeral)
//!     fail-on-change #true       // exit 7 when they differ
//!     down #true                 // also plan the way back
//!     output "build/drift.sql"   // write the SQL
//!     generate "add_users"       // write migrations/{timestamp}_add_users.{up,down}.sql instead
//!     concurrent-indexes #true   // …and index builds on existing tables as a second, CONCURRENTLY
//!     exclude "audit.*" "public.tmp_*"  // leave these out (the tracking table always is)
//! }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use confiture_engine::ExitCode;
use confiture_engine::diag::Diagnostics;
use confiture_engine::event::Tone;
use confiture_engine::kdl::decode::Fields;
use confiture_engine::kdl::node::{Node, Text};
use confiture_engine::project::{DirSpec, Environment, display_path};
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};
use serde::Serialize;

use crate::diff::plan::{Change, Step};
use crate::diff::source::{self, Source};
use crate::diff::{concurrent, generate};

/// The `diff` stage type.
pub struct Diff;

/// What a `diff` stage found (`schemas/stages/diff.json`; also `confiture diff --format json`).
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
#[schemars(title = "outputs of a diff stage")]
pub struct DiffOutputs {
    /// The source compared from, as given (connection strings redacted).
    pub from: String,
    pub to: String,
    /// Whether the schemas differ.
    pub changed: bool,
    /// One entry per object that differs.
    pub changes: Vec<Change>,
    /// The statements from `from` to `to`, grouped by object, in the order they run.
    pub steps: Vec<Step>,
    /// The way back (with `down`).
    pub down_steps: Option<Vec<Step>>,
    pub statements: usize,
    /// Statements that carry at least one hazard.
    pub hazardous: usize,
    /// The plan as a script (`psql -1 -f`), hazards as comments.
    pub sql: String,
    /// The way back as a script (with `down`).
    pub down_sql: Option<String>,
    /// Files written (`output`, `generate`).
    pub files: Vec<String>,
    /// Milliseconds spent reading `from` and `to`, and planning.
    pub timings_ms: Timings,
}

#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
pub struct Timings {
    pub from: u64,
    pub to: u64,
    pub plan: u64,
}

/// A configured diff.
#[derive(Debug)]
pub struct DiffStage {
    from: Source,
    to: Source,
    dev: Option<DatabaseRef>,
    fail_on_change: bool,
    down: bool,
    output: Option<Text>,
    generate: Option<(String, PathBuf)>,
    /// With `generate`: index builds on existing tables go into a second, non-transactional
    /// migration as `CREATE INDEX CONCURRENTLY`.
    concurrent_indexes: bool,
    /// Globs over qualified names (`audit.*`, `public.tmp_*`); the tracking table always.
    exclude: Vec<String>,
    excluded: globset::GlobSet,
}

impl StageType for Diff {
    fn name(&self) -> &'static str {
        "diff"
    }

    fn summary(&self) -> &'static str {
        "compare two schemas (live, DDL or migrations) and plan the migration between them"
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(DiffOutputs))
    }

    /// Whether the two sides match, else what differs; the files written.
    fn text_report(&self, outputs: &BTreeMap<String, serde_json::Value>, paint: Paint<'_>) -> Option<Vec<String>> {
        outputs.contains_key("changed").then(|| text(outputs, paint))
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (diff)", cx.stage));
        let env = match f.setting("env", d) {
            Some(e) => cx.environment(e, d)?,
            None => default_environment(cx),
        };
        let from = f.setting("from", d);
        let to = f.setting("to", d);
        let dev = f.setting("dev-url", d).and_then(|e| cx.database_ref(e, d));
        let fail_on_change = f.setting_bool("fail-on-change", d).unwrap_or(false);
        let down = f.setting_bool("down", d).unwrap_or(false);
        let output = f.setting_text("output", d).cloned();
        let generate = f.setting_text("generate", d).map(|t| t.display().to_string());
        let concurrent_indexes = f.setting_bool("concurrent-indexes", d).unwrap_or(false);
        let migrations = f.setting_text("migrations", d).map(|t| PathBuf::from(t.display()));
        let mut exclude = Vec::new();
        let mut globs = globset::GlobSetBuilder::new();
        for n in f.children("exclude") {
            for e in &n.args {
                let Some(g) = confiture_engine::kdl::decode::static_text(e, d) else { continue };
                match globset::Glob::new(&g) {
                    Ok(glob) => {
                        globs.add(glob);
                        exclude.push(g);
                    }
                    Err(err) => d.push(
                        confiture_engine::diag::Diagnostic::error(
                            "pipeline::invalid-glob",
                            e.span,
                            format!("invalid glob `{g}`: {err}"),
                        )
                        .with_label("not a glob")
                        .with_help("match qualified names: `audit.*`, `public.tmp_*`, `*.log_*`"),
                    ),
                }
            }
        }
        globs
            .add(globset::Glob::new(&globset::escape(&crate::migrate::project::tracking_table_name(cx.project))).ok()?);
        let excluded = globs.build().ok()?;
        f.finish(d);
        let missing = |d: &mut Diagnostics, what: &str| {
            d.push(
                confiture_engine::diag::Diagnostic::error(
                    "diff::missing-source",
                    node.span,
                    format!("stage `{}` needs `{what}`", cx.stage),
                )
                .with_label(format!("no `{what}`"))
                .with_help(format!("add `{what} \"…\"`: {}", source::FORMS)),
            );
        };
        if from.is_none() {
            missing(d, "from");
        }
        if to.is_none() {
            missing(d, "to");
        }
        let from = Source::decode(from?, cx, &env, d);
        let to = Source::decode(to?, cx, &env, d);
        let generate = match generate {
            Some(name) => {
                let dir = migrations
                    .or_else(|| crate::migrate::project::migrations_dir(cx.project))
                    .unwrap_or_else(|| "db/migrations".into());
                Some((name, cx.project.resolve(&dir)))
            }
            None => None,
        };
        Some(Arc::new(DiffStage {
            from: from?,
            to: to?,
            dev,
            fail_on_change,
            down: down || generate.is_some(),
            output,
            generate,
            concurrent_indexes,
            exclude,
            excluded,
        }))
    }
}

fn default_environment(cx: &ConfigureCx<'_>) -> Environment {
    cx.project.environment("default").unwrap_or_else(|_| Environment {
        name: "default".into(),
        database: None,
        protected: false,
        schema: vec![DirSpec::new("db/schema")],
        seeds: Vec::new(),
        origin: cx.project.root.clone(),
    })
}

#[async_trait]
impl Stage for DiffStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from.describe(),
            "to": self.to.describe(),
            "dev_url": self.dev.as_ref().map(DatabaseRef::describe),
            "fail_on_change": self.fail_on_change,
            "down": self.down,
            "output": self.output.as_ref().map(|t| t.shown().to_string()),
            "generate": self.generate.as_ref().map(|(n, dir)| format!("{} in {}", n, display_path(dir))),
            "concurrent_indexes": self.concurrent_indexes,
            "exclude": self.exclude,
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        // Both sides at once: two connections, and the server reads both catalogs in parallel.
        cx.progress(&format!("reading {} and {}", self.from.describe(), self.to.describe()));
        let ((a, t_from), (b, t_to)) = futures::try_join!(self.read(&self.from, cx), self.read(&self.to, cx))?;
        let t2 = Instant::now();
        let cycle = |e: crate::diff::plan::CycleError| StageError::new(ExitCode::Failure, e.to_string());
        let up = crate::diff::plan(&a, &b).map_err(cycle)?;
        let down = if self.down { Some(crate::diff::plan(&b, &a).map_err(cycle)?) } else { None };
        let t_plan = t2.elapsed().as_millis() as u64;
        // What `generate` writes: the plan, or with `concurrent-indexes` the plan without the index
        // builds on existing tables, which get a second, non-transactional migration.
        let (first_up, first_down, concurrent) = match (&self.generate, self.concurrent_indexes) {
            (Some(_), true) => {
                let keys = concurrent::candidates(&a, &b, &up);
                let (mut u, mut d) = (up.clone(), down.clone().unwrap_or_default());
                let (cu, cd) = (u.split_off(&keys), d.split_off(&keys));
                (u.to_sql(), d.to_sql(), Some((concurrent::concurrently(cu), concurrent::concurrently(cd))))
            }
            _ => (up.to_sql(), down.as_ref().map(|p| p.to_sql()).unwrap_or_default(), None),
        };

        let mut outputs = DiffOutputs {
            from: self.from.describe(),
            to: self.to.describe(),
            changed: !up.is_empty(),
            statements: up.statement_count(),
            hazardous: up.steps.iter().filter(|s| !s.hazards.is_empty()).map(|s| s.statements.len()).sum(),
            sql: up.to_sql(),
            down_sql: down.as_ref().map(|p| p.to_sql()),
            changes: up.changes,
            steps: up.steps,
            down_steps: down.map(|p| p.steps),
            files: Vec::new(),
            timings_ms: Timings { from: t_from, to: t_to, plan: t_plan },
        };
        tracing::info!(
            "{} differences, {} statements ({} ms reading, {} ms planning)",
            outputs.changes.len(),
            outputs.statements,
            t_from + t_to,
            t_plan
        );
        if let Some(t) = &self.output {
            let path = cx.project.resolve(&PathBuf::from(cx.render(t)?));
            generate::write(&path, &outputs.sql)?;
            outputs.files.push(display_path(&path));
        }
        if let Some((name, dir)) = &self.generate {
            if outputs.changed {
                let now = std::time::SystemTime::now();
                outputs.files.extend(generate::generate(
                    name,
                    now,
                    dir,
                    &first_up,
                    Some(&first_down),
                    &self.from,
                    &self.to,
                    None,
                )?);
                if let Some((up, down)) = concurrent.filter(|(up, _)| !up.steps.is_empty()) {
                    let second = now + std::time::Duration::from_secs(1);
                    outputs.files.extend(generate::generate(
                        &format!("{name}_indexes"),
                        second,
                        dir,
                        &up.to_sql(),
                        Some(&down.to_sql()),
                        &self.from,
                        &self.to,
                        Some(crate::migrate::NO_TRANSACTION),
                    )?);
                }
            } else {
                tracing::info!("no changes: nothing to generate");
            }
        }
        let changed = outputs.changed;
        let count = outputs.changes.len();
        let mut out = Outputs::default();
        out.extend_from(&outputs);
        if changed && self.fail_on_change {
            return Err(StageError::new(
                ExitCode::Drift,
                format!(
                    "{} and {} differ: {count} difference{}",
                    outputs.from,
                    outputs.to,
                    if count == 1 { "" } else { "s" }
                ),
            )
            .with_outputs(out));
        }
        Ok(out)
    }
}

impl DiffStage {
    /// A source's model without the excluded objects, and how long reading it took (ms).
    async fn read(&self, source: &Source, cx: &StageContext) -> Result<(crate::catalog::Model, u64), StageError> {
        let t0 = Instant::now();
        let mut model = source::load(source, cx, self.dev.as_ref()).await?;
        model.exclude(|name| self.excluded.is_match(name));
        Ok((model, t0.elapsed().as_millis() as u64))
    }
}

/// The text report of a diff's outputs (as the run report holds them).
fn text(outputs: &BTreeMap<String, serde_json::Value>, paint: Paint<'_>) -> Vec<String> {
    let shown = |k: &str| outputs.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let statements = outputs.get("statements").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let mut out = Vec::new();
    if outputs.get("changed") == Some(&serde_json::Value::Bool(false)) {
        out.push(format!("{} matches {}", shown("from"), shown("to")));
    } else {
        out.push(format!("from {} to {}: {statements} statements", shown("from"), shown("to")));
        out.extend(change_lines(outputs, paint));
    }
    for f in outputs.get("files").and_then(|f| f.as_array()).into_iter().flatten().filter_map(|f| f.as_str()) {
        out.push(format!("wrote {f}"));
    }
    out
}

/// A diff's changes, a line each: `+` only in the target (`to`), `-` only in the source
/// (`from`), `~` different, with what differs.
pub fn change_lines(outputs: &BTreeMap<String, serde_json::Value>, paint: Paint<'_>) -> Vec<String> {
    let changes = outputs.get("changes").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    let width = changes.iter().filter_map(|c| c["object"].as_str()).map(str::len).max().unwrap_or(0).min(60);
    let side = |k: &str, or: &str| outputs.get(k).and_then(|v| v.as_str()).unwrap_or(or).to_string();
    changes
        .iter()
        .map(|c| {
            let object = c["object"].as_str().unwrap_or("?");
            let (mark, what) = match c["action"].as_str() {
                Some("create") => (paint("+", Tone::Good), format!("only in {}", side("to", "the target"))),
                Some("drop") => (paint("-", Tone::Bad), format!("only in {}", side("from", "the source"))),
                _ => (
                    paint("~", Tone::Warn),
                    c["details"]
                        .as_array()
                        .map(|d| d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
                        .unwrap_or_default(),
                ),
            };
            format!("{mark} {object:<width$}  {what}")
        })
        .collect()
}
