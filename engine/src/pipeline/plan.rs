//! What `confiture plan` and `confiture graph` show of a loaded pipeline (the report types are in [`crate::report`]).

use crate::hooks::HookAction;
use crate::report::{GraphEdge, GraphNode, GraphReport, PlanDatabase, PlanHook, PlanReport, PlanStage};

use super::Pipeline;

impl PlanReport {
    /// The plan of a loaded pipeline.
    pub fn of(p: &Pipeline) -> PlanReport {
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

impl GraphReport {
    pub fn of(p: &Pipeline) -> GraphReport {
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
