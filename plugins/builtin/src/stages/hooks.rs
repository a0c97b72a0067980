//! `hooks`: a checkpoint in the graph for hooks. The stage does no work of its own; its
//! `before-stage` and `after-stage` events fire where it sits in the DAG, so hooks attached to it
//! (`hook … on="before-stage" stage="NAME"`) run at exactly that point — an approval before
//! production, a notification after it — and a deny stops the pipeline there (docs/plugins.md).
//!
//! ```kdl
//! stage "approval" uses="hooks" needs="rehearse"
//! stage "apply" uses="migrate" needs="approval" { database "prod"; }
//! hook "change-window" on="before-stage" stage="approval" command="./scripts/change-window.sh"
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::diag::Diagnostics;
use confiture_engine::kdl::decode::Fields;
use confiture_engine::kdl::node::Node;
use confiture_engine::stage::{ConfigureCx, Outputs, Stage, StageContext, StageError, StageType};

/// The `hooks` stage type.
pub struct Hooks;

/// A configured checkpoint.
#[derive(Debug)]
pub struct HooksStage {
    description: Option<String>,
}

impl StageType for Hooks {
    fn name(&self) -> &'static str {
        "hooks"
    }

    fn summary(&self) -> &'static str {
        "a checkpoint in the graph where hooks attached to the stage run"
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (hooks)", cx.stage));
        let description = f.setting_text("description", d).map(|t| t.display().to_string());
        f.finish(d);
        Some(Arc::new(HooksStage { description }))
    }
}

#[async_trait]
impl Stage for HooksStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "description": self.description })
    }

    async fn run(&self, _cx: &StageContext) -> Result<Outputs, StageError> {
        // The engine runs this stage's before-stage hooks before calling `run` and its
        // after-stage hooks after: the checkpoint is the stage's place in the graph.
        Ok(Outputs::default())
    }
}
