//! `confiture lint [PATH]…`: a one-stage pipeline running the `lint` stage, plus the rule catalogue.

use clap::{Args, ValueEnum};
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;
use confiture_engine::report::RunReport;
use confiture_plugins::lint::report::LintOutputs;
use confiture_plugins::lint::rules;

use super::Format;
use super::pipeline::Printing;

pub const HELP: &str = "Examples:
  confiture lint                                  db/migrations and db/schema
  confiture lint db/migrations/20260101_add.up.sql
  cat change.sql | confiture lint - --kind migration
  confiture lint --database postgresql://prod-replica/app     lock rules with real table sizes
  confiture lint --format sarif > lint.sarif      for code scanning (GitHub, GitLab)
  confiture lint --rule require-if-not-exists=warning --rule prefer-text-over-varchar=off
  confiture lint --list-rules
  confiture lint --explain require-concurrent-index-creation

Files are parsed with PostgreSQL's own parser. Lock rules skip tables created earlier in the same
file (they are new and empty) and schema files; with --database, also tables the database does
not have yet, and they give real sizes. To silence a finding, put
`-- confiture:ignore RULE reason` right above the statement; ignores that suppress nothing are
reported. Defaults can live in confiture.kdl: `lint { rule \"ID\" severity=\"off\"; exclude \"…\" }`;
`migrate { lock-timeout \"5s\" }` there satisfies the timeout rules. See docs/lint.md.

Exit codes: 0 clean (warnings and notes allowed), 1 an error (or a warning with --deny-warnings),
5 a file that does not parse or bad options.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Migration,
    Schema,
    Other,
}

#[derive(Args)]
pub struct LintArgs {
    /// Files or directories to lint (`-` reads standard input); default: db/migrations and db/schema
    pub paths: Vec<String>,
    /// Look up table sizes in this database, so lock findings say how big the table is
    #[arg(long, value_name = "DSN")]
    pub database: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// Exit 1 on warnings too
    #[arg(long)]
    pub deny_warnings: bool,
    /// Set a rule's severity: error, warning, info or off (repeatable)
    #[arg(long = "rule", value_name = "RULE=SEVERITY", value_parser = super::parse_set)]
    pub rules: Vec<(String, String)>,
    /// Skip files matching this glob, relative to the project root (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Treat every file as this kind (default: by path; stdin is `other`)
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// List the rules and exit
    #[arg(long, conflicts_with = "explain")]
    pub list_rules: bool,
    /// Show a rule's documentation and exit
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
}

pub async fn lint(args: LintArgs, quiet: bool) -> ExitCode {
    if args.list_rules {
        return list_rules(args.format);
    }
    if let Some(id) = &args.explain {
        return match rules::find(id) {
            Some(rule) => {
                let m = rule.meta();
                outln!(
                    "# {}\n\n*Category: {}. Default severity: {}.*\n\n{}",
                    m.id,
                    m.category.as_str(),
                    m.severity.as_str(),
                    m.markdown()
                );
                ExitCode::Success
            }
            None => {
                let ids: Vec<&str> = rules::all().map(|m| m.id).collect();
                crate::render::error(confiture_engine::kdl::decode::one_of(
                    &format!("no rule `{id}`; rules"),
                    &ids,
                    id,
                ));
                ExitCode::Config
            }
        };
    }
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut stage = Node::synthetic("stage").arg("lint").prop("uses", "lint");
    if !args.paths.is_empty() {
        let mut paths = Node::synthetic("paths");
        for p in &args.paths {
            // Paths on the command line are relative to the working directory.
            let shown = if p == "-" {
                p.clone()
            } else {
                std::path::absolute(p).map(|a| a.display().to_string()).unwrap_or_else(|_| p.clone())
            };
            paths = paths.arg(shown);
        }
        stage = stage.child(paths);
    }
    if !args.exclude.is_empty() {
        let mut exclude = Node::synthetic("exclude");
        for g in &args.exclude {
            exclude = exclude.arg(g);
        }
        stage = stage.child(exclude);
    }
    for (rule, severity) in &args.rules {
        stage = stage.child(Node::synthetic("rule").arg(rule).prop("severity", severity));
    }
    if args.deny_warnings {
        stage = stage.child(Node::synthetic("deny-warnings").arg_bool(true));
    }
    if let Some(kind) = args.kind {
        let k = match kind {
            Kind::Migration => "migration",
            Kind::Schema => "schema",
            Kind::Other => "other",
        };
        stage = stage.child(Node::synthetic("kind").arg(k));
    }
    if let Some(dsn) = &args.database {
        if !confiture_engine::stage::looks_like_dsn(dsn) {
            crate::render::error("--database takes a connection string (postgresql://… or key=value)");
            return ExitCode::Config;
        }
        stage = stage.child(Node::synthetic("database").arg(dsn));
    }
    let printing = match args.format {
        LintFormat::Text => Printing { format: Format::Text, quiet, text: print_text },
        LintFormat::Json => Printing::standard(Format::Json, true),
        LintFormat::Sarif => Printing { format: Format::Text, quiet: true, text: print_sarif },
        LintFormat::Junit => Printing { format: Format::Text, quiet: true, text: print_junit },
    };
    super::pipeline::run_stage("lint", stage, project, printing).await
}

/// Every finding as a code frame, then the counts. A stage that failed before linting (a
/// connection, a missing path) has no counts to give.
fn print_text(report: &RunReport) {
    let Some(stage) = report.stages.first() else { return };
    crate::render::print_code_frames(&stage.diagnostics);
    if !stage.outputs.is_empty() {
        outln!("{}", outputs(report).summary());
    }
}

fn outputs(report: &RunReport) -> LintOutputs {
    report
        .stages
        .first()
        .and_then(|s| serde_json::to_value(&s.outputs).ok())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn print_sarif(report: &RunReport) {
    // Findings (exit 1) are a successful run; anything else that failed did not check everything.
    let failure = report
        .stages
        .first()
        .and_then(|s| s.error.as_ref())
        .filter(|e| e.exit_code != ExitCode::Failure.code())
        .map(|e| e.message.clone());
    crate::render::print_json(&confiture_plugins::lint::report::sarif(&outputs(report), failure.as_deref()));
}

fn print_junit(report: &RunReport) {
    out!("{}", confiture_plugins::lint::report::junit(&outputs(report)));
}

fn list_rules(format: LintFormat) -> ExitCode {
    if format == LintFormat::Json {
        let list: Vec<serde_json::Value> = rules::all()
            .map(|m| serde_json::json!({ "id": m.id, "category": m.category.as_str(), "severity": m.severity.as_str(), "summary": m.summary }))
            .collect();
        crate::render::print_json(&list);
        return ExitCode::Success;
    }
    let width = rules::all().map(|m| m.id.len()).max().unwrap_or(0);
    let mut category = "";
    for m in rules::all() {
        if m.category.as_str() != category {
            category = m.category.as_str();
            outln!("\n{category}:");
        }
        outln!("  {:<width$}  {:<7}  {}", m.id, m.severity.as_str(), m.summary);
    }
    outln!("\n`off` rules are opt-in; `confiture lint --explain RULE` shows a rule's documentation.");
    ExitCode::Success
}
