//! Hook declarations: `hook NAME on=EVENT sql=… | command=… | wasm=… { … }` in a pipeline.

use std::path::PathBuf;

use miette::SourceSpan;

use crate::diag::{Diagnostic, Diagnostics};
use crate::kdl::decode::{self, Fields};
use crate::kdl::node::{self, Node, Value};

/// What a hook does when its event fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookAction {
    Sql(String),
    Command(String),
    Wasm(PathBuf),
}

/// `hook NAME on=EVENT sql=… | command=… | wasm=… [stage=…] [database=…] [on-error=…] { … }`.
#[derive(Clone)]
pub struct HookDecl {
    pub name: String,
    pub on: String,
    pub action: HookAction,
    /// The action as plan, reports and messages show it (environment variables as `***`).
    pub action_shown: String,
    /// Values the hook's settings took from the environment: masked in what the hook prints.
    pub secrets: Vec<String>,
    pub stage: Option<String>,
    pub database: Option<String>,
    /// `param KEY VALUE` children: a wasm hook's `configure` params.
    pub params: Vec<(String, String)>,
    /// `env KEY VALUE` children: a command's environment (besides PATH and `CONFITURE_*`).
    pub env: Vec<(String, String)>,
    /// `timeout "30s"`: a command's or wasm hook's time limit (default 60 s).
    pub timeout: Option<std::time::Duration>,
    /// `fuel`, `memory`, `batch` children: a wasm hook's limits.
    pub limits: crate::wasm::Limits,
    pub on_error: OnError,
    pub span: SourceSpan,
}

impl std::fmt::Debug for HookDecl {
    /// The action as shown (environment variables as `***`); of `env` and `param`, the keys only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("HookDecl")
            .field("name", &self.name)
            .field("on", &self.on)
            .field("action", &crate::redact::redact(&self.action_shown))
            .field("stage", &self.stage)
            .field("database", &self.database)
            .field("params", &keys(&self.params))
            .field("env", &keys(&self.env))
            .finish()
    }
}

/// How long a hook may take unless it says `timeout`.
pub const DEFAULT_HOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What a failing hook (an error, a timeout, a trap — not a deny) does to its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Stop the step (the default).
    Fail,
    /// Record the failure and go on.
    Continue,
}

/// Decode a `hook` node. `events` are the kinds hooks may attach to (the engine's and those the
/// registry's stage types declare), `stages` and `databases` the names it may refer to.
pub fn decode_hook(
    n: &Node,
    events: &[&str],
    stages: &[&str],
    databases: &[String],
    d: &mut Diagnostics,
) -> Option<HookDecl> {
    let mut f = Fields::new(n, "`hook`");
    let name = f.required_arg(0, "a name", d).and_then(|e| decode::static_text(e, d));
    let on = match f.prop("on", d) {
        Some(e) => decode::static_text(e, d).and_then(|ev| {
            if events.contains(&ev.as_str()) {
                Some(ev)
            } else {
                d.push(
                    Diagnostic::error("pipeline::unknown-event", e.span, format!("unknown hook event `{ev}`"))
                        .with_label("not an event")
                        .with_help(decode::one_of("hook events", events, &ev)),
                );
                None
            }
        }),
        None => {
            d.push(
                Diagnostic::error("pipeline::missing-property", n.name_span, "a hook needs `on=EVENT`")
                    .with_label("no event")
                    .with_help(decode::one_of("hook events", events, "")),
            );
            None
        }
    };
    let shown = |e: &node::Entry| match &e.value {
        Value::Text(t) => t.shown().to_string(),
        _ => String::new(),
    };
    let mut secrets: Vec<String> = n
        .props
        .iter()
        .map(|p| &p.value)
        .chain(n.children.iter().flat_map(|c| c.args.iter()))
        .filter_map(|e| match &e.value {
            Value::Text(t) => Some(t.secrets()),
            _ => None,
        })
        .flatten()
        .collect();
    secrets.sort();
    secrets.dedup();
    let sql = f.prop("sql", d).and_then(|e| decode::static_text(e, d).map(|v| (HookAction::Sql(v), shown(e))));
    let command =
        f.prop("command", d).and_then(|e| decode::static_text(e, d).map(|v| (HookAction::Command(v), shown(e))));
    let wasm = f
        .prop("wasm", d)
        .and_then(|e| decode::static_text(e, d).map(|p| (HookAction::Wasm(PathBuf::from(p)), shown(e))));
    let actions: Vec<(HookAction, String)> = [sql, command, wasm].into_iter().flatten().collect();
    if actions.len() != 1 {
        d.push(
            Diagnostic::error(
                "pipeline::hook-action",
                n.name_span,
                if actions.is_empty() { "a hook needs something to do" } else { "a hook does one thing" },
            )
            .with_label(if actions.is_empty() { "no action" } else { "several actions" })
            .with_help("give exactly one of `sql=\"…\"`, `command=\"program args\"` or `wasm=\"plugin.wasm\"`"),
        );
    }
    let stage = match f.prop("stage", d) {
        Some(e) => decode::static_text(e, d).filter(|s| {
            let ok = stages.contains(&s.as_str());
            if !ok {
                d.push(
                    Diagnostic::error(
                        "pipeline::unknown-dependency",
                        e.span,
                        format!("hook filters on stage `{s}`, which does not exist"),
                    )
                    .with_label("no such stage")
                    .with_help(decode::one_of("known stages", stages, s)),
                );
            }
            ok
        }),
        None => None,
    };
    let database_given = n.props.iter().any(|p| p.key == "database");
    let database = match f.prop("database", d) {
        Some(e) => decode::static_text(e, d).filter(|s| {
            let ok = databases.iter().any(|db| db == s);
            if !ok {
                let known: Vec<&str> = databases.iter().map(String::as_str).collect();
                d.push(
                    Diagnostic::error("pipeline::unknown-database", e.span, format!("no database named `{s}`"))
                        .with_label("not declared")
                        .with_help(decode::one_of("declared databases", &known, s)),
                );
            }
            ok
        }),
        None => None,
    };
    let on_error = match f.prop("on-error", d).and_then(|e| decode::static_text(e, d).map(|v| (v, e.span))) {
        None => OnError::Fail,
        Some((v, _)) if v == "fail" => OnError::Fail,
        Some((v, _)) if v == "continue" => OnError::Continue,
        Some((v, span)) => {
            d.push(
                Diagnostic::error(
                    "pipeline::wrong-type",
                    span,
                    format!("`on-error` is `fail` or `continue`, not `{v}`"),
                )
                .with_label("fail or continue")
                .with_help("`on-error=\"continue\"` records a failing hook and goes on; a deny always stops"),
            );
            OnError::Fail
        }
    };
    let pairs = |f: &mut decode::Fields, name: &'static str, d: &mut Diagnostics| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in f.children(name) {
            match c.args.as_slice() {
                [k, v] => {
                    if let (Some(k), Some(v)) = (decode::static_text(k, d), decode::static_text(v, d)) {
                        out.push((k, v));
                    }
                }
                _ => d.push(
                    Diagnostic::error("pipeline::wrong-type", c.span, format!("`{name}` takes a key and a value"))
                        .with_label("expected two values")
                        .with_help(format!("e.g. `{name} \"key\" \"value\"`")),
                ),
            }
        }
        out
    };
    let params = pairs(&mut f, "param", d);
    let env = pairs(&mut f, "env", d);
    let timeout = f.setting("timeout", d).and_then(|e| decode::duration(e, d));
    let mut limits = crate::wasm::Limits::default();
    if let Some(v) = f.setting("fuel", d).and_then(|e| decode::integer(e, d)) {
        limits.fuel = v;
    }
    if let Some(e) = f.setting("memory", d) {
        match decode::static_text(e, d).map(|t| crate::wasm::parse_size(&t)) {
            Some(Ok(v)) => limits.memory = v,
            Some(Err(message)) => d.push(
                Diagnostic::error("pipeline::wrong-type", e.span, message)
                    .with_label("not a size")
                    .with_help("e.g. `memory \"64MiB\"`"),
            ),
            None => {}
        }
    }
    if let Some(v) = f.setting("batch", d).and_then(|e| decode::integer(e, d)) {
        limits.batch = usize::try_from(v).unwrap_or(usize::MAX).max(1);
    }
    // A wasm hook's calls are stopped at its timeout (epoch deadline), not just abandoned.
    limits.time = timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT);
    if actions.len() == 1 && matches!(actions.first(), Some((HookAction::Sql(_), _))) && !database_given {
        d.push(
            Diagnostic::error("pipeline::missing-property", n.name_span, "an sql hook needs `database=`")
                .with_label("which database?")
                .with_help("name a declared database: `database=\"prod\"`"),
        );
    }
    f.finish(d);
    let (action, action_shown) = actions.into_iter().next()?;
    Some(HookDecl {
        name: name?,
        on: on?,
        action,
        action_shown,
        secrets,
        stage,
        database,
        params,
        env,
        timeout,
        limits,
        on_error,
        span: n.span,
    })
}
