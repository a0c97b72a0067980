//! The one event type of a run, and the sink every event goes through.
//!
//! The run loop emits the engine's own events around each stage and at the end; stages emit the
//! kinds they declare (`StageType::events`) around their units of work — a migration, a table, a
//! phase. An [`EventSink`] hands each event to the observer (progress on the terminal, logs) and
//! then to its listeners (lifecycle hooks today; the audit trail next), any of which may refuse
//! the step. The engine names no kind of any built-in stage.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::report::StageStatus;

/// What happened: `before-stage`, `after-migration`, … Kebab-case, as hooks name it in `on=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKind(pub &'static str);

impl EventKind {
    /// Before a stage runs.
    pub const BEFORE_STAGE: EventKind = EventKind("before-stage");
    /// After a stage succeeded.
    pub const AFTER_STAGE: EventKind = EventKind("after-stage");
    /// After a stage failed (not when it was cancelled).
    pub const STAGE_FAILED: EventKind = EventKind("stage-failed");
    /// When the run ends, with its `status` and any `failed_stages`.
    pub const PIPELINE_FINISHED: EventKind = EventKind("pipeline-finished");

    pub fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The events the run loop emits for every stage type.
pub const ENGINE_EVENTS: &[EventKind] =
    &[EventKind::BEFORE_STAGE, EventKind::AFTER_STAGE, EventKind::STAGE_FAILED, EventKind::PIPELINE_FINISHED];

/// What an event is about, below the stage: `("migration", "20260101_add_users")`,
/// `("table", "public.users")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub kind: &'static str,
    pub name: String,
}

/// How a line for people reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

/// A line for the progress display: done (`✓ apply: 001_users (3 ms)`), or in progress (shown on a
/// live terminal only, replaced by the next line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub tone: Tone,
    pub pending: bool,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The pipeline and stage it happened in (filled in by the sink and the stage context).
    pub pipeline: String,
    pub stage: String,
    /// The database's *name* (never its URL).
    pub database: Option<String>,
    pub subject: Option<Subject>,
    /// SQL about to run (a migration's), for hooks that judge it.
    pub sql: Option<String>,
    /// Further facts, e.g. `("execution_ms", "12")`, `("error", "…")`.
    pub details: Vec<(String, String)>,
    /// What the progress display shows for it, if anything.
    pub note: Option<Note>,
}

impl Event {
    pub fn new(kind: EventKind) -> Self {
        Event {
            kind,
            pipeline: String::new(),
            stage: String::new(),
            database: None,
            subject: None,
            sql: None,
            details: Vec::new(),
            note: None,
        }
    }

    pub fn subject(mut self, kind: &'static str, name: impl Into<String>) -> Self {
        self.subject = Some(Subject { kind, name: name.into() });
        self
    }

    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.push((key.into(), value.into()));
        self
    }

    pub fn note(mut self, text: impl Into<String>, tone: Tone, pending: bool) -> Self {
        self.note = Some(Note { text: text.into(), tone, pending });
        self
    }

    /// The subject's name when it is of `kind`.
    pub fn subject_named(&self, kind: &str) -> Option<&str> {
        self.subject.as_ref().filter(|s| s.kind == kind).map(|s| s.name.as_str())
    }

    /// A detail's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What observers see, as it happens.
#[derive(Debug)]
pub enum Progress<'a> {
    StageStarted {
        name: &'a str,
        uses: &'a str,
    },
    /// A running stage says how far it is ("2000/5522 statements"); at most a few per second.
    StageProgress {
        name: &'a str,
        message: &'a str,
    },
    /// An event from the run or a stage.
    Event(&'a Event),
    StageFinished {
        name: &'a str,
        status: StageStatus,
        duration: Duration,
        error: Option<&'a str>,
    },
}

/// A callback for [`Progress`].
pub type Observer = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A listener refused the step (a hook denied it, or failed).
#[derive(Clone, Debug)]
pub struct Refusal {
    pub message: String,
    /// Who refused (a hook's name), for the report's fields.
    pub by: String,
}

/// Something every event is handed to, in order, which may refuse the step.
#[async_trait]
pub trait Listener: Send + Sync {
    async fn on_event(&self, event: &Event) -> Result<(), Refusal>;
}

/// Where a run's events go: the observer, then each listener.
pub struct EventSink {
    pipeline: String,
    observer: Option<Observer>,
    listeners: Vec<Arc<dyn Listener>>,
}

impl EventSink {
    pub fn new(pipeline: &str, observer: Option<Observer>, listeners: Vec<Arc<dyn Listener>>) -> Self {
        EventSink { pipeline: pipeline.to_string(), observer, listeners }
    }

    /// Tell the observer.
    pub fn progress(&self, p: &Progress<'_>) {
        if let Some(observer) = &self.observer {
            observer(p);
        }
    }

    /// Emit `event` (its pipeline filled in). `Err` when a listener refuses the step, which must
    /// then stop; the listeners after it do not see the event.
    pub async fn emit(&self, mut event: Event) -> Result<(), Refusal> {
        event.pipeline.clone_from(&self.pipeline);
        self.progress(&Progress::Event(&event));
        for l in &self.listeners {
            l.on_event(&event).await?;
        }
        Ok(())
    }
}
