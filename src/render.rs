//! Everything the command prints: logs, diagnostics, progress, reports, graphs.
//! Data goes to stdout; logs, progress and errors to stderr. NO_COLOR is respected.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use confiture_engine::diag::{self, Diagnostics};
use confiture_engine::event::{Observer, Progress, Tone};
use confiture_engine::pipeline::Pipeline;
use confiture_engine::report::{PlanReport, RunReport, RunStatus, StageStatus};
use tokio_util::sync::CancellationToken;

/// Whether to colour output on stderr: never with `NO_COLOR` (any non-empty value), always with
/// `CLICOLOR_FORCE`, else when stderr is a terminal.
pub fn color() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    set("CLICOLOR_FORCE") || std::io::stderr().is_terminal()
}

/// Print `error: message` on stderr (the prefix in red when colouring).
pub fn error(message: impl std::fmt::Display) {
    let message = confiture_engine::pg::dsn::redact(&message.to_string());
    eprintln!("{}: {message}", paint("error", "1;31"));
}

fn paint(text: &str, code: &str) -> String {
    if color() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},tokio_postgres=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color())
        .with_target(verbose >= 2)
        .without_time()
        .init();
}

fn handler() -> miette::GraphicalReportHandler {
    let theme = if color() { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100);
    miette::GraphicalReportHandler::new_themed(theme).with_width(width).with_links(false)
}

/// Print diagnostics to stderr as code frames (plain lines when there is no source to show).
pub fn eprint_diagnostics(diagnostics: &Diagnostics) {
    let h = handler();
    for d in diagnostics.iter() {
        if d.source.as_ref().is_some_and(|s| !s.text.is_empty()) {
            eprintln!("{}", d.render(&h));
        } else {
            eprintln!("{}: {}", paint(&format!("error[{}]", d.code), "1;31"), d.message);
            if let Some(help) = &d.help {
                eprintln!("  help: {help}");
            }
        }
    }
}

pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => outln!("{s}"),
        Err(e) => error(format!("cannot serialize the report: {e}")),
    }
}

/// Cancel on the first Ctrl-C or SIGTERM; exit at once on the second.
pub fn cancel_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        eprintln!("\ninterrupted: cancelling running stages (press Ctrl-C again to quit at once)");
        t.cancel();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        std::process::exit(confiture_engine::ExitCode::Interrupted.code().into());
    });
    token
}

/// Progress lines on stderr as stages start and finish; on a terminal, also a live line with what
/// running stages report.
pub fn progress_observer() -> Observer {
    let live = std::io::stderr().is_terminal();
    Arc::new(move |p: &Progress| match p {
        Progress::StageStarted { name, uses } => eprintln!("{} {name} ({uses})", paint("▶", "36")),
        Progress::StageProgress { name, message } => {
            if live {
                eprint!("\r\x1b[2K  {name}: {message}");
            }
        }
        // What a stage's events say for people (a migration done, a table copied…).
        Progress::Event(event) => {
            let Some(note) = &event.note else { return };
            if note.pending {
                if live {
                    eprint!("\r\x1b[2K  {}: {}", event.stage, note.text);
                }
                return;
            }
            if live {
                eprint!("\r\x1b[2K");
            }
            let mark = match note.tone {
                Tone::Good => paint("✓", "32"),
                Tone::Bad => paint("✗", "31"),
                Tone::Warn => paint("!", "33"),
                Tone::Plain => paint("·", "36"),
            };
            eprintln!("  {mark} {}: {}", event.stage, note.text);
        }
        Progress::StageFinished { name, status, duration, error } => {
            if live {
                eprint!("\r\x1b[2K");
            }
            let (mark, code) = status_mark(*status);
            let tail = error.map(|e| format!(": {}", first_line(e))).unwrap_or_default();
            eprintln!("{} {name} {} in {}{tail}", paint(mark, code), status_word(*status), secs(*duration));
        }
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn status_mark(s: StageStatus) -> (&'static str, &'static str) {
    match s {
        StageStatus::Succeeded => ("✓", "32"),
        StageStatus::Failed => ("✗", "31"),
        StageStatus::Skipped => ("-", "33"),
        StageStatus::Cancelled => ("⊘", "33"),
    }
}

fn status_word(s: StageStatus) -> &'static str {
    match s {
        StageStatus::Succeeded => "succeeded",
        StageStatus::Failed => "failed",
        StageStatus::Skipped => "skipped",
        StageStatus::Cancelled => "cancelled",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// A word in the colour of its tone (none without colour).
pub fn tone(text: &str, tone: Tone) -> String {
    match tone {
        Tone::Good => paint(text, "32"),
        Tone::Bad => paint(text, "31"),
        Tone::Warn => paint(text, "33"),
        Tone::Plain => text.to_string(),
    }
}

/// The text report on stdout: a line per stage, below it what the stage type says of it.
pub fn print_run_report(report: &RunReport) {
    let registry = confiture_plugins::registry();
    outln!("pipeline {} ({})", report.pipeline, report.file);
    let width = report.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &report.stages {
        let (mark, _) = status_mark(s.status);
        let time = s.duration_ms.map(|ms| format!("{:>7.2}s", ms / 1000.0)).unwrap_or_default();
        let detail = match (&s.error, &s.skipped_because) {
            (Some(e), _) => format!("  {}: {}", status_word(s.status), first_line(&e.message)),
            (None, Some(why)) => format!("  skipped: {why}"),
            (None, None) => String::new(),
        };
        outln!("  {mark} {:<width$} {time}{detail}", s.name);
        // Code frames the stage attached (lint's findings); notes, which pass, one line each.
        let h = handler();
        for d in &s.diagnostics {
            if d.severity == diag::Severity::Info {
                let at = d.location().map(|l| format!("{}:{}:{}: ", l.file, l.line, l.column)).unwrap_or_default();
                outln!("      ☞ {at}{} [{}]", d.message, d.code.trim_start_matches("lint::"));
            } else {
                outln!("{}", d.render(&h));
            }
        }
        // The stage's own text, else its outputs as `key: value`.
        match registry.get(&s.uses).and_then(|t| t.text_report(&s.outputs, &tone)) {
            Some(lines) => {
                for line in lines {
                    outln!("      {line}");
                }
            }
            None if s.error.is_none() => {
                for (k, v) in &s.outputs {
                    let shown = match v {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(s) if k == "hash" && s.len() > 16 => format!("{}…", &s[..16]),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    outln!("      {k}: {shown}");
                }
            }
            None => {}
        }
    }
    let verdict = match report.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    };
    outln!("{verdict} in {:.2}s (exit {})", report.duration_ms / 1000.0, report.exit_code);
}

/// Diagnostics as code frames, on stdout (findings are data).
pub fn print_code_frames(diagnostics: &[confiture_engine::diag::Diagnostic]) {
    let h = handler();
    for d in diagnostics {
        outln!("{}", d.render(&h));
    }
}

/// Code frames and details of failed stages, on stderr.
pub fn eprint_failures(report: &RunReport) {
    let h = handler();
    for s in &report.stages {
        let Some(e) = &s.error else { continue };
        if e.exit_code == confiture_engine::ExitCode::Interrupted.code() {
            continue;
        }
        eprintln!("\nstage `{}` failed: {}", s.name, e.message);
        if let Some(d) = &e.diagnostic {
            eprintln!("{}", d.render(&h));
        } else {
            for key in ["detail", "hint", "context"] {
                if let Some(v) = e.fields.get(key) {
                    eprintln!("  {key}: {v}");
                }
            }
        }
    }
}

pub fn print_plan(plan: &PlanReport) {
    outln!("pipeline {} ({})", plan.pipeline, plan.file);
    if let Some(d) = &plan.description {
        outln!("  {d}");
    }
    if !plan.vars.is_empty() {
        outln!("\nvars:");
        for (k, v) in &plan.vars {
            outln!("  {k} = {v}");
        }
    }
    if !plan.databases.is_empty() {
        outln!("\ndatabases:");
        for d in &plan.databases {
            outln!("  {} — {}", d.name, d.url.as_deref().unwrap_or("ephemeral (a throwaway local PostgreSQL)"));
        }
    }
    for (w, names) in plan.waves.iter().enumerate() {
        outln!("\nwave {}{}:", w + 1, if names.len() > 1 { " (concurrently)" } else { "" });
        for name in names {
            let s = plan.stages.iter().find(|s| &s.name == name).expect("waves list known stages");
            let mut header = format!("  {} ({})", s.name, s.uses);
            if !s.needs.is_empty() {
                header.push_str(&format!(" after {}", s.needs.join(", ")));
            }
            if s.continue_on_error {
                header.push_str(", continues on error");
            }
            outln!("{header}");
            if let serde_json::Value::Object(map) = &s.settings {
                for (k, v) in map {
                    let shown = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    outln!("      {k}: {shown}");
                }
            }
        }
    }
    if !plan.hooks.is_empty() {
        outln!("\nhooks:");
        for h in &plan.hooks {
            outln!("  {} on {} — {} {}", h.name, h.on, h.kind, h.action);
        }
    }
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn dot(p: &Pipeline) -> String {
    let mut out = format!("digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", dot_quote(&p.name));
    for s in &p.stages {
        let label = format!("{}\\n({})", s.name.replace('\\', "\\\\").replace('"', "\\\""), s.uses);
        out.push_str(&format!(
            "  {} [label=\"{label}\"{}];\n",
            dot_quote(&s.name),
            if s.continue_on_error { ", style=\"rounded,dashed\"" } else { "" }
        ));
    }
    for s in &p.stages {
        for dep in &s.needs {
            out.push_str(&format!("  {} -> {};\n", dot_quote(dep), dot_quote(&s.name)));
        }
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(p: &Pipeline) -> String {
    let id = |name: &str| p.stages.iter().position(|s| s.name == name).map(|i| format!("s{i}")).unwrap_or_default();
    let mut out = String::from("flowchart LR\n");
    for (i, s) in p.stages.iter().enumerate() {
        let label = format!("{}<br/>({})", s.name, s.uses).replace('"', "#quot;");
        out.push_str(&format!("  s{i}[\"{label}\"]\n"));
    }
    for s in &p.stages {
        for dep in &s.needs {
            out.push_str(&format!("  {} --> {}\n", id(dep), id(&s.name)));
        }
    }
    out
}
