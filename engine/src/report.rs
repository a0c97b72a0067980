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
    pub hooks: Vec<crate::hooks::HookReport>,
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

impl GraphReport {
    pub fn of(p: &crate::pipeline::Pipeline) -> GraphReport {
        GraphReport {
            schema_version: 1,
            pipeline: p.name.clone(),
            file: p.source.name.clone(),
            nodes: p
                .stages
                .iter()
                .map(|s| GraphNode {
                    name: s.name.clone(),
                    uses: s.uses.clone(),
                    continue_on_error: s.continue_on_error,
                })
                .collect(),
            edges: p
                .stages
                .iter()
                .flat_map(|s| s.needs.iter().map(|n| GraphEdge { from: n.clone(), to: s.name.clone() }))
                .collect(),
        }
    }
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

impl PlanReport {
    /// The plan of a loaded pipeline.
    pub fn of(p: &crate::pipeline::Pipeline) -> PlanReport {
        use crate::pipeline::HookAction;
        use crate::project::DatabaseSpec;
        let waves = p.waves();
        let mut wave_of = vec![0; p.stages.len()];
        for (w, stages) in waves.iter().enumerate() {
            for &i in stages {
                wave_of[i] = w;
            }
        }
        PlanReport {
            schema_version: 1,
            pipeline: p.name.clone(),
            file: p.source.name.clone(),
            description: p.description.clone(),
            vars: p.vars_shown.iter().map(|(k, v)| (k.clone(), crate::redact::redact(v))).collect(),
            databases: p
                .databases
                .iter()
                .map(|d| match &d.spec {
                    DatabaseSpec::Ephemeral => {
                        PlanDatabase { name: d.name.clone(), kind: "ephemeral".into(), url: None }
                    }
                    DatabaseSpec::Url(u) => PlanDatabase {
                        name: d.name.clone(),
                        kind: "url".into(),
                        url: Some(
                            crate::pg::ConnInfo::parse(u)
                                .map(|c| c.to_string())
                                .unwrap_or_else(|_| crate::redact::redact(u)),
                        ),
                    },
                })
                .collect(),
            waves: waves.iter().map(|w| w.iter().map(|&i| p.stages[i].name.clone()).collect()).collect(),
            stages: p
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| PlanStage {
                    name: s.name.clone(),
                    uses: s.uses.clone(),
                    needs: s.needs.clone(),
                    continue_on_error: s.continue_on_error,
                    wave: wave_of[i],
                    settings: s.stage.settings(),
                })
                .collect(),
            hooks: p
                .hooks
                .iter()
                .map(|h| {
                    let kind = match &h.action {
                        HookAction::Sql(_) => "sql",
                        HookAction::Command(_) => "command",
                        HookAction::Wasm(_) => "wasm",
                    };
                    let action = crate::redact::redact(&h.action_shown);
                    PlanHook {
                        name: h.name.clone(),
                        on: h.on.clone(),
                        kind: kind.into(),
                        action,
                        stage: h.stage.clone(),
                        database: h.database.clone(),
                    }
                })
                .collect(),
        }
    }
}
