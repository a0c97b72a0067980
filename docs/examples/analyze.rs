//! The worked example of docs/ARCHITECTURE.md ("Adding a stage"), compiled and run against
//! PostgreSQL by plugins/builtin/tests/adding_a_stage.rs so it stays true. In the tree it would be
//! plugins/builtin/src/stages/analyze.rs.
//!
//! `analyze`: refresh the planner statistics of a database (`ANALYZE`), e.g. after a load.
//!
//! ```kdl
//! stage "stats" uses="analyze" needs="load" { database "staging"; }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::event::{Event, EventKind, Tone};
use confiture_engine::kdl::decode::Fields;
use confiture_engine::kdl::node::Node;
use confiture_engine::pg;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Stage, StageContext, StageError, StageType};

/// The `analyze` stage type.
pub struct Analyze;

/// After the statistics of the database were refreshed.
pub const ANALYZED: EventKind = EventKind("analyzed");

/// What an `analyze` stage produced (`schemas/stages/analyze.json`).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "outputs of an analyze stage")]
pub struct AnalyzeOutputs {
    /// How long ANALYZE took.
    pub ms: u64,
}

/// A configured `analyze` stage.
#[derive(Debug)]
pub struct AnalyzeStage {
    database: DatabaseRef,
}

impl StageType for Analyze {
    fn name(&self) -> &'static str {
        "analyze"
    }

    fn summary(&self) -> &'static str {
        "refresh the planner statistics of a database"
    }

    fn events(&self) -> &'static [EventKind] {
        &[ANALYZED]
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(AnalyzeOutputs))
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (analyze)", cx.stage));
        let database = f.setting("database", d).map(|e| cx.database_ref(e, d));
        f.finish(d);
        let Some(database) = database else {
            d.push(
                Diagnostic::error("pipeline::missing-property", node.span, "`analyze` needs a database")
                    .with_label("no database")
                    .with_help("add `database \"NAME\"`"),
            );
            return None;
        };
        Some(Arc::new(AnalyzeStage { database: database? }))
    }
}

#[async_trait]
impl Stage for AnalyzeStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "database": self.database.describe() })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let t0 = std::time::Instant::now();
        let session = pg::connect(&cx.database(&self.database).await?, "confiture analyze").await?;
        cx.progress("analyzing");
        session.cancellable(&cx.cancel, session.client().batch_execute("ANALYZE")).await?;
        let ms = t0.elapsed().as_millis() as u64;
        cx.emit(Event::new(ANALYZED).detail("ms", ms.to_string()).note(
            format!("analyzed ({ms} ms)"),
            Tone::Good,
            false,
        ))
        .await?;
        let mut outputs = Outputs::default();
        outputs.extend_from(&AnalyzeOutputs { ms });
        Ok(outputs)
    }
}
