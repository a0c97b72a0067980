//! Stage types for engine tests: they do no database work, so the executor can be tested alone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confiture_engine::ExitCode;
use confiture_engine::diag::Diagnostics;
use confiture_engine::event::EventKind;
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::{Node, Text};
use confiture_engine::stage::{ConfigureCx, Outputs, Registry, Stage, StageContext, StageError, StageType};

/// `sleep { ms 100; fail #true }`: waits, then succeeds or fails; honours cancellation.
pub struct Sleep;
struct SleepStage {
    ms: u64,
    fail: bool,
}

impl StageType for Sleep {
    fn name(&self) -> &'static str {
        "sleep"
    }
    fn summary(&self) -> &'static str {
        "wait, then succeed or fail"
    }
    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::json_schema!({ "type": "object", "properties": { "slept_ms": { "type": "integer" } } }))
    }
    /// Events of its own, as a stage type declares them (named like the migrate stage's, so the
    /// hooks in the corpus of invalid pipelines have real events to be told about).
    fn events(&self) -> &'static [EventKind] {
        &[EventKind("before-migration"), EventKind("after-migration"), EventKind("migration-failed")]
    }
    fn configure(&self, node: &Node, _cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, "sleep");
        let ms = f.child_value("ms", d).and_then(|e| decode::integer(e, d)).unwrap_or(0);
        let fail = f.setting_bool("fail", d).unwrap_or(false);
        f.finish(d);
        Some(Arc::new(SleepStage { ms, fail }))
    }
}

#[async_trait]
impl Stage for SleepStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "ms": self.ms, "fail": self.fail })
    }
    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(self.ms)) => {}
            () = cx.cancel.cancelled() => return Err(StageError::cancelled()),
        }
        if self.fail {
            return Err(StageError::new(ExitCode::Build, "failed on purpose"));
        }
        let mut o = Outputs::default();
        o.set("slept_ms", self.ms);
        Ok(o)
    }
}

/// `echo { message "…" }`: outputs its (templated) message.
pub struct Echo;
struct EchoStage {
    message: Text,
}

impl StageType for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn summary(&self) -> &'static str {
        "output a message"
    }
    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::json_schema!({ "type": "object", "properties": { "message": { "type": "string" } } }))
    }
    fn configure(&self, node: &Node, _cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, "echo");
        let message = f.setting_text("message", d).cloned();
        f.finish(d);
        Some(Arc::new(EchoStage { message: message? }))
    }
}

#[async_trait]
impl Stage for EchoStage {
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "message": self.message.shown() })
    }
    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let mut o = Outputs::default();
        o.set("message", cx.render(&self.message)?);
        Ok(o)
    }
}

pub static TEST_STAGES: &[&dyn StageType] = &[&Sleep, &Echo];

pub fn registry() -> Registry {
    Registry::new(TEST_STAGES)
}
