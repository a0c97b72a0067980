//! Lifecycle hooks: actions declared with `hook NAME on=EVENT …` that run when the event fires —
//! before and after each stage, when one fails, around each migration, when the pipeline ends.
//!
//! Three kinds: `sql` runs a statement on a declared database; `command` runs a program (through
//! `/bin/sh -c`) with a timeout, an explicit environment (PATH, the hook's `env` entries and the
//! event as `CONFITURE_*` variables; the migration's SQL on stdin) and captured output; `wasm`
//! asks a plugin of the `hook-plugin` world. A hook allows, warns or denies: a deny stops the step
//! with exit 1 and the reason in the report; a warning is recorded. A hook that fails (an SQL
//! error, a timeout, a trap) stops the step too, unless it says `on-error="continue"`.
//!
//! A command's verdict is its exit status: 0 allows (a stdout line starting `warn:` warns),
//! anything else denies with the last line it wrote to stderr (or stdout) as the reason.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod decl;

pub use decl::{DEFAULT_HOOK_TIMEOUT, HookAction, HookDecl, OnError, decode_hook};

use crate::event::{Event, Listener, Refusal};
use crate::report::{HookReport, Outcome};
use crate::resources::Databases;
use crate::wasm::{Decision, Plugin, Runtime};

use DEFAULT_HOOK_TIMEOUT as DEFAULT_TIMEOUT;

/// The subject kind whose name hooks get as `migration` (the WIT event's field, the
/// `CONFITURE_MIGRATION` variable, the report's `migration`: contracts of hooks v0.1).
const MIGRATION: &str = "migration";

/// `text` with every secret (of at least 3 characters) as `***`, and passwords redacted.
fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    let mut by_length: Vec<&String> = secrets.iter().filter(|s| s.chars().count() >= 3).collect();
    by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in by_length {
        out = out.replace(secret.as_str(), crate::template::MASK);
    }
    crate::redact::redact(&out)
}

/// How much of a command hook's stdout, and of its stderr, is kept for the log and its verdict.
const OUTPUT_KEPT: usize = 64 * 1024;
/// How much is read at all: past it the pipe is closed, and a command that goes on writing gets
/// SIGPIPE (a verbose hook below it is read to the end, the rest of its output dropped).
const OUTPUT_CAP: usize = 16 << 20;

/// Read a pipe as it fills, keeping the first [`OUTPUT_KEPT`] bytes; `true` when more than
/// [`OUTPUT_CAP`] came and the pipe was closed (dropped) there.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let Some(mut pipe) = pipe else { return (String::new(), false) };
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    let cut = loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break false,
            Ok(n) => {
                let room = OUTPUT_KEPT - kept.len();
                kept.extend_from_slice(&chunk[..n.min(room)]);
                total += n;
                if total > OUTPUT_CAP {
                    break true;
                }
            }
        }
    };
    (String::from_utf8_lossy(&kept).into_owned(), cut)
}

/// The hooks of one run.
pub struct Hooks {
    decls: Vec<HookDecl>,
    pipeline: String,
    root: PathBuf,
    databases: Arc<Databases>,
    runtime: Mutex<Option<Arc<Runtime>>>,
    plugins: Mutex<HashMap<String, Plugin>>,
    records: Mutex<Vec<HookReport>>,
}

impl Hooks {
    pub fn new(decls: Vec<HookDecl>, pipeline: &str, root: PathBuf, databases: Arc<Databases>) -> Hooks {
        Hooks {
            decls,
            pipeline: pipeline.to_string(),
            root,
            databases,
            runtime: Mutex::new(None),
            plugins: Mutex::new(HashMap::new()),
            records: Mutex::new(Vec::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.decls.is_empty()
    }

    /// What ran, in order.
    pub fn records(&self) -> Vec<HookReport> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Run the hooks attached to `ev`, in declaration order. `Err` when one denies the step or
    /// fails with `on-error="fail"`: the step must stop.
    pub async fn fire(&self, ev: &Event) -> Result<(), Refusal> {
        let matching: Vec<HookDecl> = self
            .decls
            .iter()
            .filter(|h| h.on == ev.kind.name() && h.stage.as_ref().is_none_or(|s| *s == ev.stage))
            .cloned()
            .collect();
        for h in matching {
            let t0 = Instant::now();
            let result = match &h.action {
                HookAction::Sql(sql) => self.sql(&h, sql).await.map(|()| Decision::Allow),
                HookAction::Command(command) => self.command(&h, command, ev).await,
                HookAction::Wasm(path) => self.wasm(&h, path, ev).await,
            };
            let (outcome, message) = match &result {
                Ok(Decision::Allow) => (Outcome::Allowed, None),
                Ok(Decision::Warn(m)) => (Outcome::Warned, Some(m.clone())),
                Ok(Decision::Deny(m)) => (Outcome::Denied, Some(m.clone())),
                Err(e) if h.on_error == OnError::Continue => (Outcome::FailedContinued, Some(e.clone())),
                Err(e) => (Outcome::Failed, Some(e.clone())),
            };
            let what = match ev.subject_named(MIGRATION) {
                Some(m) => format!("migration {m}"),
                None if ev.stage.is_empty() => format!("pipeline {}", self.pipeline),
                None => format!("stage `{}`", ev.stage),
            };
            match outcome {
                Outcome::Warned => {
                    tracing::warn!("hook `{}` warns about {what}: {}", h.name, message.as_deref().unwrap_or(""))
                }
                Outcome::FailedContinued => {
                    tracing::warn!("hook `{}` failed (continuing): {}", h.name, message.as_deref().unwrap_or(""))
                }
                _ => tracing::debug!("hook `{}` on {}: {outcome:?}", h.name, ev.kind),
            }
            self.records.lock().unwrap_or_else(|e| e.into_inner()).push(HookReport {
                hook: h.name.clone(),
                event: ev.kind.name().to_string(),
                stage: ev.stage.clone(),
                migration: ev.subject_named(MIGRATION).map(String::from),
                outcome,
                message: message.clone(),
                duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
            });
            match outcome {
                Outcome::Denied => {
                    return Err(Refusal {
                        message: format!("hook `{}` denied {what}: {}", h.name, message.unwrap_or_default()),
                        by: h.name.clone(),
                    });
                }
                Outcome::Failed => {
                    return Err(Refusal {
                        message: format!("hook `{}` failed on {}: {}", h.name, ev.kind, message.unwrap_or_default()),
                        by: h.name.clone(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn sql(&self, h: &HookDecl, sql: &str) -> Result<(), String> {
        let name = h.database.as_deref().ok_or("an sql hook needs `database=`")?;
        let info = self.databases.declared(name, true).await.map_err(|e| e.to_string())?;
        let session =
            crate::pg::connect(&info, &format!("confiture-hook-{}", h.name)).await.map_err(|e| e.to_string())?;
        session.client().batch_execute(sql).await.map_err(|e| crate::pg::describe(&e))
    }

    async fn command(&self, h: &HookDecl, command: &str, ev: &Event) -> Result<Decision, String> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.root)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .envs(h.env.iter().map(|(k, v)| (k, v)))
            .env("CONFITURE_EVENT", ev.kind.name())
            .env("CONFITURE_PIPELINE", &self.pipeline)
            .env("CONFITURE_STAGE", &ev.stage)
            .env("CONFITURE_DATABASE", ev.database.as_deref().unwrap_or(""))
            .env("CONFITURE_MIGRATION", ev.subject_named(MIGRATION).unwrap_or(""))
            .envs(ev.details.iter().map(|(k, v)| (format!("CONFITURE_{}", k.to_ascii_uppercase()), v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a timeout stops what the shell started too.
            .process_group(0);
        // Messages show the command as written, environment variables as `***`.
        let shown = &h.action_shown;
        let mut child = cmd.spawn().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
        let pgid = child.id();
        if let Some(mut stdin) = child.stdin.take() {
            let sql = ev.sql.clone().unwrap_or_default();
            tokio::spawn(async move {
                let _ = stdin.write_all(sql.as_bytes()).await;
            });
        }
        let timeout = h.timeout.unwrap_or(DEFAULT_TIMEOUT);
        // Output is read as it comes and kept up to a cap; past it, the pipe is closed (a command
        // that goes on writing gets SIGPIPE), so a hook running `yes` cannot fill the memory.
        let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
        let finished = tokio::time::timeout(timeout, async {
            let (out, err, status) = tokio::join!(read_capped(out_pipe), read_capped(err_pipe), child.wait());
            (out, err, status)
        })
        .await;
        let ((stdout, out_cut), (stderr, err_cut), status) = match finished {
            Ok((out, err, Ok(status))) => (out, err, status),
            Ok((_, _, Err(e))) => return Err(format!("`{shown}`: {e}")),
            Err(_) => {
                if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                    let _ =
                        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                return Err(format!("`{shown}` did not finish within its timeout ({timeout:?})"));
            }
        };
        // A hook may echo what it was given (`set -x`, an error quoting its command line):
        // values from the environment and passwords are masked in everything it printed.
        let (stdout, stderr) = (mask(&stdout, &h.secrets), mask(&stderr, &h.secrets));
        for line in stdout.lines().chain(stderr.lines()).filter(|l| !l.trim().is_empty()) {
            tracing::info!("hook {}: {line}", h.name);
        }
        let cut: Vec<&str> =
            [(out_cut, "stdout"), (err_cut, "stderr")].into_iter().filter(|c| c.0).map(|c| c.1).collect();
        if !cut.is_empty() {
            tracing::warn!(
                "hook {} wrote more than {} MiB to {}: the rest was not read",
                h.name,
                OUTPUT_CAP >> 20,
                cut.join(" and ")
            );
        }
        let last = |s: &str| s.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim).map(String::from);
        if status.success() {
            return Ok(match stdout.lines().find_map(|l| l.trim().strip_prefix("warn:")) {
                Some(w) => Decision::Warn(w.trim().to_string()),
                None => Decision::Allow,
            });
        }
        if !cut.is_empty() {
            return Ok(Decision::Deny(format!(
                "`{shown}` wrote more than {} MiB to {}, which was then closed, and exited with {status}",
                OUTPUT_CAP >> 20,
                cut.join(" and ")
            )));
        }
        let reason =
            last(&stderr).or_else(|| last(&stdout)).unwrap_or_else(|| format!("`{shown}` exited with {status}"));
        Ok(Decision::Deny(reason))
    }

    async fn wasm(&self, h: &HookDecl, path: &std::path::Path, ev: &Event) -> Result<Decision, String> {
        let runtime = {
            let mut rt = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
            match rt.as_ref() {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(Runtime::new(Runtime::default_cache_dir()).map_err(|e| e.to_string())?);
                    *rt = Some(r.clone());
                    r
                }
            }
        };
        let plugin = self.plugins.lock().unwrap_or_else(|e| e.into_inner()).remove(&h.name);
        let path = self.root.join(path);
        let event = crate::wasm::Event {
            kind: ev.kind.name().to_string(),
            pipeline: self.pipeline.clone(),
            stage: ev.stage.clone(),
            environment: String::new(),
            database: ev.database.clone().unwrap_or_default(),
            migration: ev.subject_named(MIGRATION).map(String::from),
            sql: ev.sql.clone(),
            details: ev.details.clone(),
        };
        let (limits, params, name) = (h.limits.clone(), h.params.clone(), h.name.clone());
        // Plugins run synchronously, off the async threads. The plugin's own deadline (its
        // `timeout`, in `limits.time`) stops a guest that computes, and its thread with it; waiting
        // a little longer here bounds a guest blocked in a host call (a WASI timer), which uses no
        // CPU while it is abandoned.
        let timeout = h.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let wait = timeout + timeout.min(Duration::from_secs(5));
        let until = Instant::now() + timeout;
        let call = tokio::task::spawn_blocking(move || {
            let mut plugin = match plugin {
                Some(p) => p,
                None => {
                    let mut p = runtime.load(&path, limits).map_err(|e| e.to_string())?;
                    p.set_label(format!("{name} ({})", path.display()));
                    p.expect(crate::wasm::World::HookPlugin).map_err(|e| e.to_string())?;
                    p.set_deadline(Some(until));
                    p.configure(params).map_err(|e| e.to_string())?;
                    p
                }
            };
            // Instantiating, configuring and answering share the event's time.
            plugin.set_deadline(Some(until));
            let result = plugin.on_event(&event).map_err(|e| e.to_string());
            plugin.set_deadline(None);
            Ok::<_, String>((plugin, result))
        });
        let (plugin, result) = match tokio::time::timeout(wait, call).await {
            Ok(joined) => joined.map_err(|e| format!("the plugin thread failed: {e}"))??,
            // The instance is abandoned with its thread; the next event loads a fresh one.
            Err(_) => return Err(format!("the plugin did not answer within its timeout ({timeout:?})")),
        };
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).insert(h.name.clone(), plugin);
        result
    }
}

#[async_trait::async_trait]
impl Listener for Hooks {
    async fn on_event(&self, event: &Event) -> Result<(), Refusal> {
        self.fire(event).await
    }
}
