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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::ExitCode;
use confiture_engine::diag::{self, Diagnostic, Diagnostics};
use confiture_engine::pg::{self, PgError};
use confiture_engine::pipeline::decode::{self, Fields};
use confiture_engine::pipeline::node::Node;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Stage, StageContext, StageError, StageType};
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::lint::check::Sizes;
use crate::lint::report::{LintCounts, LintOutputs};
use crate::lint::{Config, FileKind, Input, Severity, rules};

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
}

/// A configured lint stage.
#[derive(Debug)]
pub struct LintStage {
    settings: Settings,
    database: Option<DatabaseRef>,
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
                if let Err(err) = Glob::new(&g) {
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

    fn outputs(&self) -> &'static [&'static str] {
        &["files", "statements", "counts", "findings", "database_sizes"]
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
        Some(Arc::new(LintStage { settings, database }))
    }
}

#[async_trait]
impl Stage for LintStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "paths": if self.settings.paths.is_empty() { vec!["db/migrations".to_string(), "db/schema".to_string()] } else { self.settings.paths.clone() },
            "exclude": self.settings.exclude,
            "rules": self.settings.severity.iter().map(|(k, v)| (k.clone(), v.as_str())).collect::<BTreeMap<_, _>>(),
            "deny_warnings": self.settings.deny_warnings.unwrap_or(false),
            "database": self.database.as_ref().map(DatabaseRef::describe),
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let inputs = read_inputs(&cx.project.root, &self.settings)?;
        let sizes = match &self.database {
            Some(r) => Some(table_sizes(&cx.database(r).await?).await?),
            None => None,
        };
        let config = Config {
            severity: self.settings.severity.clone(),
            deny_warnings: self.settings.deny_warnings.unwrap_or(false),
        };
        let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
        let sizes_given = sizes.is_some();
        let result = tokio::task::spawn_blocking(move || crate::lint::lint(inputs, &config, sizes.as_ref()))
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

fn glob_set(patterns: &[String]) -> Result<GlobSet, StageError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| StageError::new(ExitCode::Config, format!("invalid glob `{p}`: {e}")))?);
    }
    b.build().map_err(|e| StageError::new(ExitCode::Config, e.to_string()))
}

/// The files to lint, in order: each path in turn; directories in natural path order.
fn read_inputs(root: &Path, settings: &Settings) -> Result<Vec<Input>, StageError> {
    let exclude = glob_set(&settings.exclude)?;
    let defaults = settings.paths.is_empty();
    let paths: Vec<String> =
        if defaults { vec!["db/migrations".into(), "db/schema".into()] } else { settings.paths.clone() };
    let mut inputs = Vec::new();
    let shown = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let read = |path: &Path| -> Result<String, StageError> {
        let bytes = std::fs::read(path)
            .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read {}: {e}", shown(path))))?;
        String::from_utf8(bytes)
            .map_err(|_| StageError::new(ExitCode::Config, format!("{} is not valid UTF-8", shown(path))))
    };
    for p in paths {
        if p == "-" {
            let text = std::io::read_to_string(std::io::stdin())
                .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read standard input: {e}")))?;
            inputs.push(Input { name: "<stdin>".into(), text, kind: settings.kind.unwrap_or(FileKind::Other) });
            continue;
        }
        let path = if Path::new(&p).is_absolute() { PathBuf::from(&p) } else { root.join(&p) };
        if path.is_file() {
            let name = shown(&path);
            if exclude.is_match(&name) {
                continue;
            }
            inputs.push(Input { kind: settings.kind.unwrap_or_else(|| FileKind::of(&name)), text: read(&path)?, name });
        } else if path.is_dir() {
            // Path order, except that a migration's .up.sql comes before its .down.sql: a down
            // undoes what its up (and earlier ones) created.
            let key = |name: &std::ffi::OsStr| name.to_string_lossy().replace(".down.sql", ".~down.sql");
            let walker = walkdir::WalkDir::new(&path)
                .follow_links(true)
                .sort_by(move |a, b| crate::stages::build::natural_cmp(&key(a.file_name()), &key(b.file_name())));
            for entry in
                walker.into_iter().filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
            {
                let entry = entry
                    .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read {}: {e}", shown(&path))))?;
                let name = shown(entry.path());
                if !entry.file_type().is_file() || !name.ends_with(".sql") || exclude.is_match(&name) {
                    continue;
                }
                inputs.push(Input {
                    kind: settings.kind.unwrap_or_else(|| FileKind::of(&name)),
                    text: read(entry.path())?,
                    name,
                });
            }
        } else if !defaults {
            return Err(StageError::new(ExitCode::Config, format!("{p}: no such file or directory")));
        }
    }
    Ok(inputs)
}

/// Row estimates and sizes of every table in the database (`public.` dropped from names).
async fn table_sizes(info: &confiture_engine::pg::ConnInfo) -> Result<Sizes, StageError> {
    let session = pg::connect(info, "confiture lint").await?;
    let rows = session
        .client()
        .query(
            "SELECT n.nspname, c.relname, c.reltuples::float8, pg_relation_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm', 'i')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'",
            &[],
        )
        .await
        .map_err(PgError::from)?;
    let mut sizes = Sizes::default();
    for r in rows {
        let (schema, name, rows, bytes): (String, String, f64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let key = if schema == "public" { name } else { format!("{schema}.{name}") };
        sizes.tables.insert(key, (rows.max(0.0), bytes));
    }
    Ok(sizes)
}
