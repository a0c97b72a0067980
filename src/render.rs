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

/// The text report on stdout: a line per stage, its outputs below it.
pub fn print_run_report(report: &RunReport) {
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
        if s.uses == "migrate" && !s.outputs.is_empty() {
            print_migrations(&s.outputs);
        } else if s.uses == "diff" && s.outputs.contains_key("changed") {
            let shown = |k: &str| s.outputs.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            let statements = s.outputs.get("statements").and_then(serde_json::Value::as_u64).unwrap_or(0);
            if s.outputs["changed"] == serde_json::Value::Bool(false) {
                outln!("      {} matches {}", shown("from"), shown("to"));
            } else {
                outln!("      from {} to {}: {statements} statements", shown("from"), shown("to"));
                print_changes(&s.outputs, "      ");
            }
            if let Some(files) = s.outputs.get("files").and_then(|f| f.as_array()) {
                for f in files.iter().filter_map(|f| f.as_str()) {
                    outln!("      wrote {f}");
                }
            }
        } else if s.uses == "lint" && !s.outputs.is_empty() {
            // Errors and warnings as code frames; notes, which pass a release, one line each.
            let h = handler();
            for d in &s.diagnostics {
                if d.severity == diag::Severity::Info {
                    let at = d.location().map(|l| format!("{}:{}:{}: ", l.file, l.line, l.column)).unwrap_or_default();
                    outln!("      ☞ {at}{} [{}]", d.message, d.code.trim_start_matches("lint::"));
                } else {
                    outln!("{}", d.render(&h));
                }
            }
            out!("      ");
            print_lint_summary(&s.outputs);
        } else if s.error.is_none() {
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
    }
    let verdict = match report.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    };
    outln!("{verdict} in {:.2}s (exit {})", report.duration_ms / 1000.0, report.exit_code);
}

/// `confiture lint`: every finding as a code frame, then a summary.
pub fn print_lint(report: &RunReport) {
    let h = handler();
    let Some(stage) = report.stages.first() else { return };
    for d in &stage.diagnostics {
        outln!("{}", d.render(&h));
    }
    // A stage that failed before linting (a connection, a missing path) has no summary to give.
    if !stage.outputs.is_empty() {
        print_lint_summary(&stage.outputs);
    }
}

fn print_lint_summary(outputs: &std::collections::BTreeMap<String, serde_json::Value>) {
    let counts = outputs.get("counts").cloned().unwrap_or_default();
    let files = outputs.get("files").and_then(|f| f.as_array()).map_or(0, Vec::len);
    let statements = outputs.get("statements").and_then(|v| v.as_u64()).unwrap_or(0);
    let n = |k: &str| counts[k].as_u64().unwrap_or(0);
    let s = |n: u64| if n == 1 { "" } else { "s" };
    outln!(
        "{} error{}, {} warning{}, {} note{} in {files} file{} ({statements} statement{})",
        n("error"),
        s(n("error")),
        n("warning"),
        s(n("warning")),
        n("info"),
        s(n("info")),
        s(files as u64),
        s(statements)
    );
}

/// `migrate current`: the bare version (nothing when nothing is applied).
pub fn print_current(report: &RunReport) {
    if let Some(serde_json::Value::String(v)) = report.stages.first().and_then(|s| s.outputs.get("current")) {
        outln!("{v}");
    }
}

/// A diff's changes, a line each: `+` only in the target (`to`), `-` only in the source (`from`),
/// `~` different, with what differs.
pub fn print_changes(outputs: &std::collections::BTreeMap<String, serde_json::Value>, indent: &str) {
    let changes = outputs.get("changes").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    let width = changes.iter().filter_map(|c| c["object"].as_str()).map(str::len).max().unwrap_or(0).min(60);
    for c in &changes {
        let object = c["object"].as_str().unwrap_or("?");
        let (mark, what) = match c["action"].as_str() {
            Some("create") => (paint("+", "32"), format!("only in {}", outputs["to"].as_str().unwrap_or("the target"))),
            Some("drop") => (paint("-", "31"), format!("only in {}", outputs["from"].as_str().unwrap_or("the source"))),
            _ => (
                paint("~", "33"),
                c["details"]
                    .as_array()
                    .map(|d| d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default(),
            ),
        };
        outln!("{indent}{mark} {object:<width$}  {what}");
    }
}

/// A migrate stage's outputs as a table of migrations.
fn print_migrations(outputs: &std::collections::BTreeMap<String, serde_json::Value>) {
    let s = |k: &str| outputs.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    outln!("      database: {}   tracking table: {}", s("database"), s("tracking_table"));
    let rows = outputs.get("migrations").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let width = rows.iter().filter_map(|r| r["name"].as_str()).map(str::len).max().unwrap_or(0);
    for r in &rows {
        let state = r["state"].as_str().unwrap_or("?");
        let paint_state = match state {
            "ran" | "applied" | "rehearsed" | "rolled-back" | "baselined" => paint(state, "32"),
            "failed" | "modified" | "missing-from-disk" => paint(state, "31"),
            _ => paint(state, "33"),
        };
        let mut line = format!(
            "      {:>14}  {:<width$}  {paint_state}",
            r["version"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("")
        );
        if let Some(ms) = r["execution_ms"].as_f64().filter(|_| state == "ran") {
            line.push_str(&format!(" ({ms:.0} ms)"));
        }
        if r["transactional"] == serde_json::Value::Bool(false) {
            line.push_str(" [outside a transaction]");
        }
        outln!("{line}");
        for st in r["statements"].as_array().into_iter().flatten() {
            let locks: Vec<String> = st["locks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| format!("{} on {}", l["mode"].as_str().unwrap_or(""), l["relation"].as_str().unwrap_or("")))
                .collect();
            let mut detail = String::new();
            if let Some(why) = st["why"].as_str() {
                detail.push_str(&format!(" [{why}: outside a transaction]"));
            }
            if !locks.is_empty() {
                detail.push_str(&format!(" — takes {}", locks.join(", ")));
            }
            outln!("          line {:>4}: {}{detail}", st["line"], st["sql"].as_str().unwrap_or(""));
        }
        if let Some(e) = r["error"].as_str() {
            outln!("          {}", first_line(e));
        }
    }
    let counts = &outputs.get("counts").cloned().unwrap_or_default();
    outln!(
        "      current: {}   applied {} · pending {} · modified {} · missing {}",
        outputs.get("current").and_then(|v| v.as_str()).unwrap_or("none"),
        counts["applied"],
        counts["pending"],
        counts["modified"],
        counts["missing_from_disk"]
    );
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
