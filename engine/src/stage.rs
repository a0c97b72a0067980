//! The stage contract: a [`StageType`] decodes its KDL node into a configured [`Stage`] (no IO),
//! and the executor later calls [`Stage::run`] with a [`StageContext`].
//!
//! The engine never names a built-in stage; callers hand it a [`Registry`] (see
//! `confiture_plugins::registry()`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::ExitCode;
use crate::diag::{Diagnostic, Diagnostics, Location};
use crate::event::{Event, EventKind, EventSink, Progress, Refusal, Tone};
use crate::kdl::node::{Entry, Node, Text};
use crate::pg::{ConnInfo, PgError};
use crate::project::{Environment, Project};
use crate::resources::Databases;
use crate::template::Templates;

/// A kind of stage (`build`, `lint`, …): its name, documentation and decoder.
pub trait StageType: Send + Sync + 'static {
    /// The value of `uses=` that selects this type.
    fn name(&self) -> &'static str;
    /// One line for `--help` and "known stage types" lists.
    fn summary(&self) -> &'static str;
    /// The JSON Schema of its outputs, derived from the typed struct it builds them from
    /// (`schemas/stages/<name>.json`). `None`: it has no outputs.
    fn outputs_schema(&self) -> Option<schemars::Schema> {
        None
    }
    /// The names of its outputs, so `{{ stages.X.outputs.Y }}` can be checked before running:
    /// the properties of [`StageType::outputs_schema`], so the two cannot disagree.
    fn outputs(&self) -> Vec<String> {
        self.outputs_schema()
            .and_then(|s| {
                s.as_value().get("properties").and_then(|p| p.as_object()).map(|p| p.keys().cloned().collect())
            })
            .unwrap_or_default()
    }
    /// Lines for people below the stage's line in a text run report (without indentation),
    /// from its outputs as the report holds them; `paint` colours a word by its tone. `None`:
    /// each output as `key: value`, when the stage succeeded.
    fn text_report(&self, _outputs: &BTreeMap<String, serde_json::Value>, _paint: Paint<'_>) -> Option<Vec<String>> {
        None
    }
    /// The kinds of event it emits while it runs (hooks may attach to them), besides the
    /// engine's own around every stage.
    fn events(&self) -> &'static [EventKind] {
        &[]
    }
    /// Decode and validate the stage's node (its children and non-engine properties). No IO.
    /// Report every problem into `d`; return `None` if the stage cannot be configured.
    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>>;
}

/// How the CLI colours a word in a stage's text report.
pub type Paint<'a> = &'a dyn Fn(&str, Tone) -> String;

/// A configured stage, ready to run.
#[async_trait]
pub trait Stage: Send + Sync {
    /// Resolved settings for `confiture plan` (passwords redacted, deferred values as written).
    fn settings(&self) -> serde_json::Value;
    /// Do the work. Must return promptly with [`StageError::cancelled`] once `cx.cancel` fires,
    /// leaving nothing half-done behind.
    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError>;
}

/// The stage types available to a pipeline.
#[derive(Clone)]
pub struct Registry {
    types: Vec<&'static dyn StageType>,
}

impl Registry {
    pub fn new(types: &[&'static dyn StageType]) -> Self {
        Registry { types: types.to_vec() }
    }

    pub fn get(&self, name: &str) -> Option<&'static dyn StageType> {
        self.types.iter().copied().find(|t| t.name() == name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.types.iter().map(|t| t.name()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static dyn StageType> + '_ {
        self.types.iter().copied()
    }
}

/// What a stage's `configure` may look at.
pub struct ConfigureCx<'a> {
    /// The stage's name in the pipeline.
    pub stage: &'a str,
    pub project: &'a Project,
    /// Names of the databases the pipeline declares.
    pub databases: &'a [String],
}

/// A reference to a database in a stage's settings.
#[derive(Clone, Debug)]
pub enum DatabaseRef {
    /// A `database` declared in the pipeline.
    Declared(String),
    /// A connection string (possibly from a template).
    Dsn(Text),
    /// The database of a project environment.
    Environment(Environment),
}

impl DatabaseRef {
    /// For `plan`: the name, or the redacted DSN.
    pub fn describe(&self) -> String {
        match self {
            DatabaseRef::Declared(name) => name.clone(),
            DatabaseRef::Dsn(text) => match (&text.shown, &text.rendered) {
                // Read from the environment: shown as written, the variables as `***`.
                (Some(shown), _) => crate::redact::redact(shown),
                (None, Some(s)) => {
                    ConnInfo::parse(s).map(|c| c.to_string()).unwrap_or_else(|_| crate::redact::redact(s))
                }
                (None, None) => text.raw.clone(),
            },
            DatabaseRef::Environment(env) => format!("environment {}", env.name),
        }
    }
}

/// Whether a string names a connection (URL or key=value) rather than a declared database.
pub fn looks_like_dsn(s: &str) -> bool {
    s.contains("://") || s.contains('=')
}

impl ConfigureCx<'_> {
    /// Decode a database reference: a declared name, or a DSN/template.
    pub fn database_ref(&self, entry: &Entry, d: &mut Diagnostics) -> Option<DatabaseRef> {
        let text = crate::kdl::decode::text(entry, d)?;
        match &text.rendered {
            None => Some(DatabaseRef::Dsn(text.clone())),
            Some(s) if looks_like_dsn(s) => match ConnInfo::parse(s) {
                Ok(_) => Some(DatabaseRef::Dsn(text.clone())),
                Err(e) => {
                    d.push(
                        Diagnostic::error("pipeline::invalid-dsn", entry.span, e.to_string())
                            .with_label("invalid connection string")
                            .with_help(
                                "write a postgresql:// URL, key=value pairs, or the name of a declared `database`",
                            ),
                    );
                    None
                }
            },
            Some(name) if self.databases.iter().any(|n| n == name) => Some(DatabaseRef::Declared(name.clone())),
            Some(name) => {
                let known: Vec<&str> = self.databases.iter().map(String::as_str).collect();
                d.push(
                    Diagnostic::error("pipeline::unknown-database", entry.span, format!("no database named `{name}`"))
                        .with_label("not declared")
                        .with_help(if known.is_empty() {
                            format!("declare it at the top level: `database \"{name}\" url=\"…\"` or `ephemeral=#true`")
                        } else {
                            crate::kdl::decode::one_of("declared databases", &known, name)
                        }),
                );
                None
            }
        }
    }

    /// A database a data stage reads or writes (`from`, `to`): a connection string or declared
    /// database, else an environment of the project.
    pub fn database_or_environment(&self, entry: &Entry, d: &mut Diagnostics) -> Option<DatabaseRef> {
        let text = crate::kdl::decode::text(entry, d)?;
        match text.rendered.as_deref() {
            Some(s) if !looks_like_dsn(s) && !self.databases.iter().any(|n| n == s) => {
                self.environment(entry, d).map(DatabaseRef::Environment)
            }
            _ => self.database_ref(entry, d),
        }
    }

    /// Look up a project environment named by `entry`.
    pub fn environment(&self, entry: &Entry, d: &mut Diagnostics) -> Option<Environment> {
        let name = crate::kdl::decode::static_text(entry, d)?;
        match self.project.environment(&name) {
            Ok(env) => Some(env),
            Err(e) => {
                let names = self.project.environment_names();
                let known: Vec<&str> = names.iter().map(String::as_str).collect();
                d.push(
                    Diagnostic::error("pipeline::unknown-environment", entry.span, e.to_string())
                        .with_label("environment")
                        .with_help(if known.is_empty() {
                            "declare environments in confiture.kdl (`confiture init` writes one)".to_string()
                        } else {
                            crate::kdl::decode::one_of("known environments", &known, &name)
                        }),
                );
                None
            }
        }
    }
}

/// What a running stage gets.
#[derive(Clone)]
pub struct StageContext {
    pub stage: String,
    pub pipeline: String,
    /// Fires on Ctrl-C, or when another stage fails and the pipeline is fail-fast.
    pub cancel: CancellationToken,
    pub project: Arc<Project>,
    pub databases: Arc<Databases>,
    pub(crate) templates: Arc<Templates>,
    /// `{name: {outputs: {…}}}` of every stage that finished before this one started.
    pub(crate) stage_outputs: Arc<minijinja::Value>,
    pub(crate) sink: Arc<EventSink>,
}

impl StageContext {
    /// Emit an event of one of the kinds the stage type declares (its stage is filled in). The
    /// listeners (hooks) run before this returns; an error means one refused the step and the
    /// stage must stop.
    pub async fn emit(&self, mut event: Event) -> Result<(), StageError> {
        event.stage.clone_from(&self.stage);
        self.sink.emit(event).await.map_err(StageError::from)
    }

    /// Tell the user how far the stage is (shown live on a terminal; keep it short).
    pub fn progress(&self, message: &str) {
        self.sink.progress(&Progress::StageProgress { name: &self.stage, message });
    }

    /// Render a setting (deferred templates see the outputs of finished stages).
    pub fn render(&self, text: &Text) -> Result<String, StageError> {
        if let Some(s) = &text.rendered {
            return Ok(s.clone());
        }
        self.templates
            .render(&text.raw, Some(&self.stage_outputs))
            .map_err(|e| StageError::new(ExitCode::Config, format!("cannot render `{}`: {}", text.raw, e.message)))
    }

    /// Resolve a database reference to connection parameters, creating the database when it is
    /// an ephemeral one that does not exist yet.
    pub async fn database(&self, r: &DatabaseRef) -> Result<ConnInfo, StageError> {
        self.database_target(r, true).await
    }

    /// Resolve the database a stage is about to drop, truncate or rewrite; `what` says what will
    /// happen to it ("drop and rebuild it"). Refused with exit 5, whatever the command line
    /// says: a protected environment or declared database, any connection string that reaches
    /// one, and a connection string that does not name its database (libpq would pick the user
    /// name). Every destructive stage goes through here.
    pub async fn destructive_target(&self, r: &DatabaseRef, what: &str, create: bool) -> Result<ConnInfo, StageError> {
        let refuse = |why: String| {
            StageError::new(ExitCode::Config, format!("refusing to {what}: {why}")).with_field("refused", "protected")
        };
        if let DatabaseRef::Environment(env) = r
            && env.protected
        {
            return Err(refuse(format!(
                "environment `{}` is protected (`protected #true` in {})",
                env.name,
                crate::project::display_path(&env.origin)
            )));
        }
        if let DatabaseRef::Declared(name) = r
            && let Some(protected) = self.databases.declared_protected(name)
        {
            return Err(refuse(format!("{protected} is declared `protected=#true`")));
        }
        let info = self.database_target(r, create).await?;
        if let Some(protected) = self.databases.protection_of(&info) {
            return Err(refuse(format!("{info} is {protected}, which is protected")));
        }
        if !info.names_database() {
            return Err(StageError::new(
                ExitCode::Config,
                format!(
                    "refusing to {what}: the connection string {info} does not name a database (libpq would use `{}`, \
                     the user name); write it out, e.g. postgresql://host/{}",
                    info.dbname().unwrap_or(""),
                    info.dbname().unwrap_or("NAME")
                ),
            ));
        }
        Ok(info)
    }

    /// Resolve a database reference without creating it (for stages that create databases).
    pub async fn database_target(&self, r: &DatabaseRef, create: bool) -> Result<ConnInfo, StageError> {
        let result = match r {
            DatabaseRef::Declared(name) => self.databases.declared(name, create).await,
            DatabaseRef::Environment(env) => self.databases.environment(env, create).await,
            DatabaseRef::Dsn(text) => {
                // A template may render to a connection string or to a declared database's name.
                let value = self.render(text)?;
                if looks_like_dsn(&value) {
                    ConnInfo::parse(&value).and_then(ConnInfo::with_defaults).map_err(PgError::from)
                } else {
                    self.databases.declared(&value, create).await
                }
            }
        };
        result.map_err(StageError::from)
    }
}

/// What a stage produced: values for later stages' templates and for the run report.
#[derive(Clone, Default)]
pub struct Outputs {
    values: BTreeMap<String, serde_json::Value>,
    /// Report view of values that hold secrets.
    shown: BTreeMap<String, serde_json::Value>,
    /// Code frames to show with the text report (lint findings, …); not in JSON.
    diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Debug for Outputs {
    /// The report view: connection strings redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs").field("shown", &self.shown).finish_non_exhaustive()
    }
}

impl Outputs {
    pub fn set(&mut self, key: &str, value: impl Serialize) -> &mut Self {
        let v = serde_json::to_value(value).expect("stage outputs serialize to JSON");
        self.values.insert(key.into(), v.clone());
        self.shown.insert(key.into(), v);
        self
    }

    /// A connection string: later stages get it whole, the report shows it redacted.
    pub fn set_dsn(&mut self, key: &str, info: &ConnInfo) -> &mut Self {
        self.values.insert(key.into(), serde_json::Value::String(info.to_secret_string()));
        self.shown.insert(key.into(), serde_json::Value::String(info.to_string()));
        self
    }

    /// Every field of a struct (serialized to a JSON object) as an output: stages describe their
    /// outputs with one typed struct, which also gives the schema in `schemas/stages/`.
    pub fn extend_from(&mut self, value: &impl Serialize) -> &mut Self {
        if let serde_json::Value::Object(map) = serde_json::to_value(value).expect("stage outputs serialize to JSON") {
            for (k, v) in map {
                self.values.insert(k.clone(), v.clone());
                self.shown.insert(k, v);
            }
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.values.get(key)
    }

    /// Attach a code frame for the text report.
    pub fn attach(&mut self, d: Diagnostic) -> &mut Self {
        self.diagnostics.push(d);
        self
    }

    /// Take the attached code frames.
    pub fn take_diagnostics(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.diagnostics)
    }

    /// The values for templates.
    pub fn values(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.values
    }

    /// The values for reports (secrets redacted).
    pub fn shown(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.shown
    }
}

/// Why a stage failed.
#[derive(Debug)]
pub struct StageError {
    pub exit: ExitCode,
    pub message: String,
    /// A code frame to show, e.g. the SQL statement that failed.
    pub diagnostic: Option<Box<Diagnostic>>,
    /// Structured facts for the JSON report (SQLSTATE, detail, hint, file…).
    pub fields: BTreeMap<String, String>,
    /// What the stage did or found before it failed (a migration run reports what it applied).
    pub outputs: Option<Box<Outputs>>,
}

impl StageError {
    /// A failure; its message is redacted (it may quote a connection string).
    pub fn new(exit: ExitCode, message: impl Into<String>) -> Self {
        StageError {
            exit,
            message: crate::redact::redact(&message.into()),
            diagnostic: None,
            fields: BTreeMap::new(),
            outputs: None,
        }
    }

    pub fn cancelled() -> Self {
        StageError::new(ExitCode::Interrupted, "cancelled")
    }

    pub fn with_diagnostic(mut self, d: Diagnostic) -> Self {
        self.diagnostic = Some(Box::new(d));
        self
    }

    pub fn with_field(mut self, key: &str, value: impl Into<String>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    pub fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = Some(Box::new(outputs));
        self
    }

    pub fn is_cancelled(&self) -> bool {
        self.exit == ExitCode::Interrupted
    }

    pub fn location(&self) -> Option<Location> {
        self.diagnostic.as_ref().and_then(|d| d.location())
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Refusal> for StageError {
    /// A hook refused the step: exit 1, naming it.
    fn from(r: Refusal) -> Self {
        StageError::new(ExitCode::Failure, r.message).with_field("hook", r.by)
    }
}

impl From<PgError> for StageError {
    fn from(e: PgError) -> Self {
        if matches!(e, PgError::Cancelled) {
            return StageError::cancelled();
        }
        let mut err = StageError::new(e.exit_code(), e.to_string());
        if let Some(db) = e.db_error() {
            err = err.with_field("sqlstate", db.code().code());
        }
        err
    }
}
