//! The executor: runs a pipeline's stages as a DAG on tokio and returns a [`RunReport`].
//!
//! - A stage starts when all its dependencies have finished (successfully, or failed with
//!   `continue-on-error=#true`); stages with no path between them run concurrently, at most
//!   `jobs` at a time.
//! - Fail-fast: when a stage fails, running stages are cancelled and nothing new starts.
//! - Cancellation (Ctrl-C) reaches every running stage through its [`CancellationToken`]; stages
//!   get a grace period to clean up (roll back, drop what they created) before they are aborted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ExitCode;
use crate::event::{Event, EventKind, EventSink, Listener, Observer, Progress};
use crate::pipeline::Pipeline;
use crate::report::{ErrorReport, RunReport, RunStatus, StageReport, StageStatus, now_rfc3339};
use crate::resources::Databases;
use crate::stage::{Outputs, StageContext, StageError};

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Most stages running at once (at least 1).
    pub jobs: usize,
    /// Cancels the whole run (wire Ctrl-C to it).
    pub cancel: CancellationToken,
    /// How long cancelled stages get to clean up before they are aborted.
    pub grace: Duration,
    /// Called as stages start and finish (the CLI prints progress with it).
    pub observer: Option<Observer>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: default_jobs(),
            cancel: CancellationToken::new(),
            grace: Duration::from_secs(30),
            observer: None,
        }
    }
}

/// The number of CPUs, the default for `--jobs`.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

struct Finished {
    index: usize,
    result: Result<Outputs, StageError>,
    started_at: String,
    finished_at: String,
    duration: Duration,
}

/// Run `pipeline`. Never fails as a whole: every outcome is in the report.
pub async fn execute(pipeline: &Pipeline, databases: Arc<Databases>, options: &RunOptions) -> RunReport {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let n = pipeline.stages.len();
    let jobs = options.jobs.max(1);
    let stop = options.cancel.child_token();

    let mut reports: Vec<StageReport> = pipeline
        .stages
        .iter()
        .map(|s| StageReport {
            name: s.name.clone(),
            uses: s.uses.clone(),
            needs: s.needs.clone(),
            continue_on_error: s.continue_on_error,
            status: StageStatus::Skipped,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            outputs: BTreeMap::new(),
            error: None,
            skipped_because: None,
            diagnostics: Vec::new(),
        })
        .collect();
    let mut waiting_on: Vec<usize> = (0..n).map(|i| pipeline.dag.dependencies(i).len()).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
    let mut done_outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let mut first_failure: Option<(usize, ExitCode)> = None;
    let mut cancelled_at: Option<Instant> = None;
    let mut launched: Vec<Option<String>> = vec![None; n];
    let mut aborts: Vec<tokio::task::AbortHandle> = Vec::new();
    let hooks = (!pipeline.hooks.is_empty()).then(|| {
        Arc::new(crate::hooks::Hooks::new(
            pipeline.hooks.clone(),
            &pipeline.name,
            pipeline.project.root.clone(),
            databases.clone(),
        ))
    });
    let listeners: Vec<Arc<dyn Listener>> = hooks.iter().map(|h| h.clone() as Arc<dyn Listener>).collect();
    let sink = Arc::new(EventSink::new(&pipeline.name, options.observer.clone(), listeners));

    loop {
        while running.len() < jobs && first_failure.is_none() && !stop.is_cancelled() {
            let Some(i) = ready.pop_front() else { break };
            let decl = &pipeline.stages[i];
            let cx = StageContext {
                stage: decl.name.clone(),
                pipeline: pipeline.name.clone(),
                cancel: stop.child_token(),
                project: pipeline.project.clone(),
                databases: databases.clone(),
                templates: pipeline.templates.clone(),
                stage_outputs: Arc::new(outputs_value(&done_outputs)),
                sink: sink.clone(),
            };
            launched[i] = Some(now_rfc3339());
            sink.progress(&Progress::StageStarted { name: &decl.name, uses: &decl.uses });
            let stage = decl.stage.clone();
            let span = tracing::info_span!("stage", name = %decl.name);
            let handle = tokio::spawn(
                async move {
                    let started_at = now_rfc3339();
                    let t0 = Instant::now();
                    tracing::debug!("started");
                    let result = run_with_hooks(stage.as_ref(), &cx).await;
                    let duration = t0.elapsed();
                    let finished_at = now_rfc3339();
                    (result, started_at, finished_at, duration)
                }
                .instrument(span),
            );
            aborts.push(handle.abort_handle());
            running.push(async move { (i, handle.await) });
        }
        if running.is_empty() {
            break;
        }
        let grace_left = cancelled_at.map(|t| options.grace.saturating_sub(t.elapsed()));
        let next = tokio::select! {
            next = running.next() => next,
            () = stop.cancelled(), if cancelled_at.is_none() => {
                cancelled_at = Some(Instant::now());
                continue;
            }
            () = sleep_or_forever(grace_left) => {
                tracing::warn!("stages did not stop within {:?} of cancellation; aborting them", options.grace);
                for a in &aborts {
                    a.abort();
                }
                break;
            }
        };
        let Some((i, joined)) = next else { break };
        let finished = match joined {
            Ok((result, started_at, finished_at, duration)) => {
                Finished { index: i, result, started_at, finished_at, duration }
            }
            Err(e) => {
                let message = if e.is_panic() {
                    "the stage panicked (a bug in confiture; please report it)"
                } else {
                    "the stage was aborted"
                };
                let now = now_rfc3339();
                Finished {
                    index: i,
                    result: Err(StageError::new(ExitCode::Failure, message)),
                    started_at: now.clone(),
                    finished_at: now,
                    duration: Duration::ZERO,
                }
            }
        };
        let i = finished.index;
        let decl = &pipeline.stages[i];
        let report = &mut reports[i];
        report.started_at = Some(finished.started_at);
        report.finished_at = Some(finished.finished_at);
        report.duration_ms = Some(finished.duration.as_secs_f64() * 1000.0);
        let mut proceed = true;
        match finished.result {
            Ok(mut outputs) => {
                report.status = StageStatus::Succeeded;
                report.outputs = outputs.shown().clone();
                report.diagnostics = outputs.take_diagnostics();
                done_outputs.insert(decl.name.clone(), outputs);
            }
            Err(mut err) => {
                report.status = if err.is_cancelled() { StageStatus::Cancelled } else { StageStatus::Failed };
                if let Some(mut outputs) = err.outputs.take() {
                    report.outputs = outputs.shown().clone();
                    report.diagnostics = outputs.take_diagnostics();
                    done_outputs.insert(decl.name.clone(), *outputs);
                }
                if err.is_cancelled() || !decl.continue_on_error {
                    proceed = false;
                    if !err.is_cancelled() && first_failure.is_none() {
                        first_failure = Some((i, err.exit));
                        tracing::debug!("stage `{}` failed; cancelling the others", decl.name);
                        stop.cancel();
                    }
                }
                report.error = Some(error_report(err));
            }
        }
        sink.progress(&Progress::StageFinished {
            name: &decl.name,
            status: report.status,
            duration: finished.duration,
            error: report.error.as_ref().map(|e| e.message.as_str()),
        });
        if proceed {
            for dep in pipeline.dag.dependents(i) {
                waiting_on[dep] -= 1;
                if waiting_on[dep] == 0 {
                    ready.push_back(dep);
                }
            }
        }
    }

    // Whatever did not run.
    for r in reports.iter_mut().filter(|r| r.finished_at.is_none()) {
        r.skipped_because = Some(match (&first_failure, options.cancel.is_cancelled()) {
            (_, true) => "the run was cancelled".to_string(),
            (Some((f, _)), _) => format!("stage `{}` failed", pipeline.stages[*f].name),
            (None, false) => "a dependency did not succeed".to_string(),
        });
    }
    // Stages aborted after the grace period: started, never finished, maybe not cleaned up.
    for (r, at) in reports.iter_mut().zip(launched) {
        if r.finished_at.is_none() && at.is_some() {
            r.started_at = at;
            r.status = StageStatus::Cancelled;
            r.skipped_because = None;
            r.error = Some(ErrorReport {
                message: format!("aborted: did not stop within {:?} of cancellation", options.grace),
                exit_code: ExitCode::Interrupted.code(),
                code: None,
                location: None,
                fields: BTreeMap::new(),
                diagnostic: None,
            });
        }
    }

    {
        // How the run went so far, for notification hooks.
        let status = if options.cancel.is_cancelled() {
            "cancelled"
        } else if first_failure.is_some() || reports.iter().any(|r| r.status == StageStatus::Skipped) {
            "failed"
        } else {
            "succeeded"
        };
        let failed: Vec<&str> =
            reports.iter().filter(|r| r.status == StageStatus::Failed).map(|r| r.name.as_str()).collect();
        let mut event = Event::new(EventKind::PIPELINE_FINISHED).detail("status", status);
        if !failed.is_empty() {
            event = event.detail("failed_stages", failed.join(","));
        }
        if let Err(e) = sink.emit(event).await
            && first_failure.is_none()
        {
            tracing::warn!("{}", e.message);
            first_failure = Some((usize::MAX, ExitCode::Failure));
        }
    }
    let (status, exit) = if options.cancel.is_cancelled() {
        (RunStatus::Cancelled, ExitCode::Interrupted)
    } else if let Some((_, code)) = first_failure {
        (RunStatus::Failed, code)
    } else if reports.iter().any(|r| r.status == StageStatus::Skipped) {
        (RunStatus::Failed, ExitCode::Failure)
    } else {
        (RunStatus::Succeeded, ExitCode::Success)
    };
    RunReport {
        schema_version: RunReport::SCHEMA_VERSION,
        pipeline: pipeline.name.clone(),
        file: pipeline.source.name.clone(),
        status,
        exit_code: exit.code(),
        started_at,
        finished_at: now_rfc3339(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        stages: reports,
        hooks: hooks.map(|h| h.records()).unwrap_or_default(),
    }
}

/// A stage's run between the `before-stage` and `after-stage` / `stage-failed` events.
async fn run_with_hooks(stage: &dyn crate::stage::Stage, cx: &StageContext) -> Result<Outputs, StageError> {
    cx.emit(Event::new(EventKind::BEFORE_STAGE)).await?;
    let result = stage.run(cx).await;
    match &result {
        Ok(outputs) => {
            // A deny after the fact fails the stage; what it did stays in the report.
            if let Err(e) = cx.emit(Event::new(EventKind::AFTER_STAGE)).await {
                return Err(e.with_outputs(outputs.clone()));
            }
        }
        Err(e) if !e.is_cancelled() => {
            // The stage's own error is what the run reports; a failing hook here only logs.
            if let Err(h) = cx.emit(Event::new(EventKind::STAGE_FAILED).detail("error", e.message.clone())).await {
                tracing::warn!("{h}");
            }
        }
        Err(_) => {}
    }
    result
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn outputs_value(done: &BTreeMap<String, Outputs>) -> minijinja::Value {
    let map: BTreeMap<&str, BTreeMap<&str, &BTreeMap<String, serde_json::Value>>> =
        done.iter().map(|(name, o)| (name.as_str(), BTreeMap::from([("outputs", o.values())]))).collect();
    minijinja::Value::from(minijinja::value::Serde(map))
}

fn error_report(err: StageError) -> ErrorReport {
    let location = err.location();
    ErrorReport {
        code: err.diagnostic.as_ref().map(|d| d.code.to_string()),
        message: err.message,
        exit_code: err.exit.code(),
        location,
        fields: err.fields,
        diagnostic: err.diagnostic,
    }
}
