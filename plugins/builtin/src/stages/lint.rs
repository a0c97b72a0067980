//! `lint`: check SQL files against the lint rules (docs/rules/).
//!
//! Reads the given paths (files or directories of `*.sql`, in path order; `-` is stdin), and with
//! `database` the sizes of the tables the lock rules talk about. Changes nothing; idempotent.
//! Defaults come from a `lint { … }` block in confiture.kdl; the stage's settings win.
//!
//! ```kdl
//! stage "lint" uses="lint" {
//!     paths "db/migrations" "db/schema"   // default: those two, where they exist
//!     exclude "db/schema/legacy/**"      // globs, relative to the project root
//!     rule "require-if-not-exists" severity="warning"
//!     rule "prefer-text-over-varchar" severity="off"
//!     deny-warnings #true                // fail on warnings, not only errors
//!     database "prod"                    // real table sizes for the lock rules
//!     kind "migration"                   // treat every file as a migration (default: by path)
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::ExitCode;
use confiture_engine::diag::{self, Diagnostic, Diagnostics};
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::Node;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};

use crate::lint::RunnerTimeouts;
use crate::lint::report::{LintCounts, LintOutputs};
use crate::lint::{Config, FileKind, Severity, rules};

/// The `lint` stage type.
pub struct Lint;

/// What a lint stage reads and how it judges.
#[derive(Debug, Default, Clone)]
struct Settings {
    paths: Vec<String>,
    exclude: Vec<String>,
    severity: BTreeMap<String, Severity>,
    deny_warnings: Option<bool>,
    kind: Option<FileKind>,
    /// `paths` were not given: missing directories are skipped, not errors.
    default_paths: bool,
}

/// A configured lint stage.
#[derive(Debug)]
pub struct LintStage {
    settings: Settings,
    database: Option<DatabaseRef>,
    /// Timeouts `migrate { … }` in confiture.kdl sets for every migration.
    runner_timeouts: RunnerTimeouts,
}

fn decode(
    node: &Node,
    context: &str,
    with_database: bool,
    cx: &ConfigureCx<'_>,
    d: &mut Diagnostics,
) -> (Settings, Option<DatabaseRef>) {
    let mut s = Settings::default();
    let mut f = Fields::new(node, context.to_string());
    for p in f.children("paths") {
        s.paths.extend(p.args.iter().filter_map(|e| decode::static_text(e, d)));
    }
    for p in f.children("exclude") {
        for e in &p.args {
            if let Some(g) = decode::static_text(e, d) {
                if let Err(err) = globset::Glob::new(&g) {
                    d.push(
                        Diagnostic::error("pipeline::invalid-glob", e.span, format!("invalid glob `{g}`: {err}"))
                            .with_label("not a glob")
                            .with_help("globs use `*`, `**`, `?` and `[abc]`, relative to the project root"),
                    );
                }
                s.exclude.push(g);
            }
        }
    }
    for r in f.children("rule") {
        let mut rf = Fields::new(r, "`rule`");
        let id = rf.required_arg(0, "a rule id", d).and_then(|e| {
            let id = decode::static_text(e, d)?;
            if rules::find(&id).is_none() {
                let ids: Vec<&str> = rules::all().map(|m| m.id).collect();
                d.push(
                    Diagnostic::error("pipeline::unknown-rule", e.span, format!("no lint rule named `{id}`"))
                        .with_label("unknown rule")
                        .with_help(decode::one_of("rules", &ids, &id)),
                );
                return None;
            }
            Some(id)
        });
        let severity = rf.prop("severity", d).and_then(|e| {
            let v = decode::static_text(e, d)?;
            let parsed = Severity::parse(&v);
            if parsed.is_none() {
                d.push(
                    Diagnostic::error("pipeline::wrong-type", e.span, format!("`{v}` is not a severity"))
                        .with_label("not a severity")
                        .with_help("use error, warning, info or off"),
                );
            }
            parsed
        });
        rf.finish(d);
        if let (Some(id), Some(sev)) = (id, severity) {
            s.severity.insert(id, sev);
        }
    }
    s.deny_warnings = f.setting_bool("deny-warnings", d);
    s.kind = f.setting("kind", d).and_then(|e| {
        let v = decode::static_text(e, d)?;
        let kind = match v.as_str() {
            "migration" => Some(FileKind::Migration),
            "schema" => Some(FileKind::Schema),
            "other" => Some(FileKind::Other),
            _ => None,
        };
        if kind.is_none() {
            d.push(
                Diagnostic::error("pipeline::wrong-type", e.span, format!("`{v}` is not a file kind"))
                    .with_label("not a kind")
                    .with_help("use migration, schema or other (default: decided by each file's path)"),
            );
        }
        kind
    });
    let database = if with_database { f.setting("database", d).and_then(|e| cx.database_ref(e, d)) } else { None };
    f.finish(d);
    (s, database)
}

impl StageType for Lint {
    fn name(&self) -> &'static str {
        "lint"
    }

    fn summary(&self) -> &'static str {
        "check SQL against over 50 rules: locks, destructive changes, types, security"
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(crate::lint::report::LintOutputs))
    }

    /// The counts (the findings themselves are the stage's code frames).
    fn text_report(&self, outputs: &BTreeMap<String, serde_json::Value>, _paint: Paint<'_>) -> Option<Vec<String>> {
        let o: LintOutputs =
            serde_json::from_value(serde_json::Value::Object(outputs.clone().into_iter().collect())).ok()?;
        Some(vec![o.summary()])
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut settings = Settings::default();
        if let Some(defaults) = cx.project.stage_defaults("lint") {
            let mut pd = Diagnostics::default();
            let (s, _) = decode(defaults, "`lint` in confiture.kdl", false, cx, &mut pd);
            if let Some(source) = &cx.project.source {
                pd = pd.finish(source);
            }
            d.extend(pd);
            settings = s;
        }
        let (own, database) = decode(node, &format!("stage `{}` (lint)", cx.stage), true, cx, d);
        if !own.paths.is_empty() {
            settings.paths = own.paths;
        }
        settings.exclude.extend(own.exclude);
        settings.severity.extend(own.severity);
        settings.deny_warnings = own.deny_warnings.or(settings.deny_warnings);
        settings.kind = own.kind.or(settings.kind);
        // Timeouts confiture.kdl's `migrate { }` sets for every migration satisfy the timeout rules.
        let runner = crate::migrate::project::Defaults::decode(cx.project, &mut Diagnostics::default());
        let runner_timeouts = RunnerTimeouts {
            lock_timeout: runner.lock_timeout.is_some(),
            statement_timeout: runner.statement_timeout.is_some(),
        };
        if settings.paths.is_empty() {
            // The migrations confiture.kdl's `migrate { }` names, and the schema, where they exist.
            let migrations = crate::migrate::project::migrations_dir(cx.project)
                .map_or_else(|| "db/migrations".to_string(), |d| d.display().to_string());
            settings.paths = vec![migrations, "db/schema".to_string()];
            settings.default_paths = true;
        }
        Some(Arc::new(LintStage { settings, database, runner_timeouts }))
    }
}

#[async_trait]
impl Stage for LintStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "paths": self.settings.paths,
            "exclude": self.settings.exclude,
            "rules": self.settings.severity.iter().map(|(k, v)| (k.clone(), v.as_str())).collect::<BTreeMap<_, _>>(),
            "deny_warnings": self.settings.deny_warnings.unwrap_or(false),
            "database": self.database.as_ref().map(DatabaseRef::describe),
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let s = &self.settings;
        let inputs = crate::lint::files::read_inputs(&cx.project.root, &s.paths, &s.exclude, s.kind, s.default_paths)?;
        let live = match &self.database {
            Some(r) => Some(crate::lint::live::read(&cx.database(r).await?).await?),
            None => None,
        };
        let config = Config {
            severity: self.settings.severity.clone(),
            deny_warnings: self.settings.deny_warnings.unwrap_or(false),
            runner_timeouts: self.runner_timeouts,
        };
        let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
        let sizes_given = live.is_some();
        let result = tokio::task::spawn_blocking(move || crate::lint::lint(inputs, &config, live.as_ref()))
            .await
            .map_err(|e| StageError::new(ExitCode::Failure, format!("the linter stopped: {e}")))?;
        tracing::info!("linted {} files, {} statements", names.len(), result.statements);
        let counts = LintCounts::of(&result.findings);
        let mut outputs = Outputs::default();
        outputs.extend_from(&LintOutputs {
            files: names,
            statements: result.statements,
            counts: counts.clone(),
            findings: result.findings.clone(),
            database_sizes: sizes_given,
            deny_warnings: self.settings.deny_warnings.unwrap_or(false),
        });
        for f in &result.findings {
            let severity = match f.severity {
                Severity::Error => diag::Severity::Error,
                Severity::Warning => diag::Severity::Warning,
                _ => diag::Severity::Info,
            };
            outputs.attach(
                Diagnostic::error(
                    format!("lint::{}", f.rule),
                    (f.span.0..f.span.0 + f.span.1).into(),
                    f.message.clone(),
                )
                .with_severity(severity)
                .with_label(f.rule.clone())
                .with_help(f.help.clone())
                .with_source(&result.sources[f.source]),
            );
        }
        let deny = self.settings.deny_warnings.unwrap_or(false);
        let summary = format!(
            "{} error{}, {} warning{}, {} note{} in {} file{}",
            counts.error,
            plural(counts.error),
            counts.warning,
            plural(counts.warning),
            counts.info,
            plural(counts.info),
            result.sources.len(),
            plural(result.sources.len())
        );
        if !result.syntax_errors.is_empty() {
            let files: Vec<&str> = result.syntax_errors.iter().map(|f| f.file.as_str()).collect();
            return Err(StageError::new(ExitCode::Config, format!("{summary}; {} does not parse", files.join(", ")))
                .with_outputs(outputs));
        }
        if counts.error > 0 || (deny && counts.warning > 0) {
            return Err(StageError::new(ExitCode::Failure, summary).with_outputs(outputs));
        }
        Ok(outputs)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
