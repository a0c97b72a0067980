//! The run report: what every run returns, as text or JSON (`schemas/run-report.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::diag::{Diagnostic, Location};

/// The report of one pipeline run. Field names and meanings are a public contract.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "confiture run report")]
pub struct RunReport {
    /// Version of this JSON shape; bumped on incompatible changes.
    pub schema_version: u32,
    pub pipeline: String,
    /// The pipeline file, as given (or `<command>` for one-stage command pipelines).
    pub file: String,
    pub status: RunStatus,
    /// The process exit code this run maps to (see docs/exit-codes.md).
    pub exit_code: u8,
    /// RFC 3339 timestamps, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: f64,
    /// Stages in declaration order.
    pub stages: Vec<StageReport>,
    /// Every hook that ran, in order (docs/pipelines.md#hooks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Every stage succeeded (or failed with `continue-on-error`).
    Succeeded,
    Failed,
    /// Interrupted (Ctrl-C).
    Cancelled,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StageReport {
    pub name: String,
    /// The stage type.
    pub uses: String,
    pub needs: Vec<String>,
    pub continue_on_error: bool,
    pub status: StageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// What the stage produced (connection strings are redacted).
    pub outputs: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// Why the stage did not run, when it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_because: Option<String>,
    /// Code frames the stage attached (e.g. lint findings), for text output only.
    #[serde(skip)]
    #[schemars(skip)]
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StageStatus {
    Succeeded,
    Failed,
    /// Not run: a dependency failed, or an earlier failure stopped the pipeline.
    Skipped,
    /// Stopped by Ctrl-C or by fail-fast after another stage failed.
    Cancelled,
}

/// A stage's error.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorReport {
    pub message: String,
    /// The exit code this error maps to.
    pub exit_code: u8,
    /// A stable code, e.g. `postgres::42P01` for a server error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Where in which file, when the error points into one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Further facts (SQLSTATE, detail, hint, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The code frame, for text output only.
    #[serde(skip)]
    #[schemars(skip)]
    pub diagnostic: Option<Box<Diagnostic>>,
}

impl RunReport {
    pub const SCHEMA_VERSION: u32 = 1;
}

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// `confiture check --format json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "confiture check report")]
pub struct CheckReport {
    pub schema_version: u32,
    pub file: String,
    /// Whether the pipeline has no errors.
    pub valid: bool,
    /// Stage names, in declaration order (empty when invalid).
    pub stages: Vec<String>,
    pub diagnostics: Vec<crate::diag::DiagnosticJson>,
}

/// `confiture plan --format json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "confiture plan")]
pub struct PlanReport {
    pub schema_version: u32,
    pub pipeline: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub databases: Vec<PlanDatabase>,
    /// Stage names grouped into waves: stages in a wave have no path between them and may run
    /// concurrently; each wave starts when its dependencies have finished.
    pub waves: Vec<Vec<String>>,
    pub stages: Vec<PlanStage>,
    pub hooks: Vec<PlanHook>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PlanDatabase {
    pub name: String,
    /// `url` or `ephemeral`.
    pub kind: String,
    /// The connection string, redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PlanStage {
    pub name: String,
    pub uses: String,
    pub needs: Vec<String>,
    pub continue_on_error: bool,
    /// Index of the stage's wave, from 0.
    pub wave: usize,
    /// The stage's resolved settings (values that wait for stage outputs are shown as written).
    pub settings: serde_json::Value,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PlanHook {
    pub name: String,
    pub on: String,
    /// `sql`, `command` or `wasm`.
    pub kind: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// `confiture graph --format json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "confiture stage graph")]
pub struct GraphReport {
    pub schema_version: u32,
    pub pipeline: String,
    pub file: String,
    pub nodes: Vec<GraphNode>,
    /// `from` must finish before `to` starts.
    pub edges: Vec<GraphEdge>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct GraphNode {
    pub name: String,
    pub uses: String,
    pub continue_on_error: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
}

/// `confiture init --format json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "confiture init report")]
pub struct InitReport {
    pub schema_version: u32,
    pub directory: String,
    pub files: Vec<crate::scaffold::Created>,
}

/// Every JSON output and the file its schema lives in under `schemas/`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("run-report.json", schemars::schema_for!(RunReport)),
        ("check.json", schemars::schema_for!(CheckReport)),
        ("plan.json", schemars::schema_for!(PlanReport)),
        ("graph.json", schemars::schema_for!(GraphReport)),
        ("init.json", schemars::schema_for!(InitReport)),
    ]
}

/// What happened when a hook ran (`hooks` in the run report).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct HookReport {
    pub hook: String,
    pub event: String,
    /// The stage the event is about (empty for `pipeline-finished`).
    pub stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    pub outcome: Outcome,
    /// The reason of a warn or deny, or the error of a failed hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_ms: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Allowed,
    Warned,
    Denied,
    /// The hook failed and its `on-error` stopped the step.
    Failed,
    /// The hook failed and `on-error="continue"` let the step go on.
    FailedContinued,
}
