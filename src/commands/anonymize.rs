//! `confiture anonymize run|scan|check|preview|verify`: one-stage pipelines running the
//! `anonymize` stage in each mode, plus the strategy catalogue.

use clap::{Args, Subcommand};
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;
use confiture_engine::report::RunReport;
use confiture_plugins::anonymize::strategies;
use confiture_plugins::stages::anonymize::AnonymizeOutputs;

use super::Format;
use super::pipeline::Printing;

pub const HELP: &str = "Examples:
  confiture anonymize scan --env staging > profile.kdl       find PII, write a profile to edit
  confiture anonymize check --env staging --profile staging   coverage gate: exit 7 on an unmasked PII column
  confiture anonymize preview --env staging --profile staging --table users --limit 5
  confiture anonymize run --env staging --profile staging     mask the database in place (resumable)
  confiture anonymize run --env staging --profile staging --dry-run   check the profile, change nothing
  confiture anonymize verify --source production --target staging --profile staging   leak check
  confiture anonymize --list-strategies
  confiture anonymize --explain email

A profile is an `anonymize \"NAME\" { key env=\"CONFITURE_ANON_KEY\"; table \"users\" { column \"email\" \"email\" } }`
block in confiture.kdl, a .kdl file holding one, or a Python Confiture profile (.yaml). Masking is
keyed and deterministic: the same key and value give the same output on every run and in every
table, so joins keep matching; the key is never printed (reports show its fingerprint). `run`
rewrites the database in committed batches and resumes after a kill without masking a row twice;
it refuses a `protected` environment. See docs/anonymize.md and docs/strategies/.

Exit codes: 0 done, 1 a step failed, 3 cannot connect, 5 bad profile, missing key or protected
target, 7 PII without a rule (check) or original values left in the target (verify).";

#[derive(Args)]
pub struct AnonymizeArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// List the strategies and exit
    #[arg(long, conflicts_with = "explain")]
    pub list_strategies: bool,
    /// Show a strategy's documentation and exit
    #[arg(long, value_name = "STRATEGY")]
    pub explain: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Where the database is.
#[derive(Args)]
pub struct On {
    /// The environment (confiture.kdl) whose database to use
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// A connection string (wins over --env)
    #[arg(long, value_name = "DSN")]
    pub database_url: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Subcommand)]
pub enum Action {
    /// Mask the database in place with a profile (for a copy restored from a backup)
    Run {
        #[command(flatten)]
        on: On,
        /// The profile: a name in confiture.kdl, or a .kdl/.yaml file (default: the only one in confiture.kdl)
        #[arg(long)]
        profile: Option<String>,
        /// Check the profile against the database and print the plan; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Find columns that hold PII (names, types, comments, sampled values); print a profile
    Scan {
        #[command(flatten)]
        on: On,
        /// Values sampled per column
        #[arg(long, default_value_t = 100)]
        sample: usize,
        /// The name of the profile written
        #[arg(long, default_value = "staging")]
        name: String,
    },
    /// The coverage gate: every PII-looking column has a rule or a `keep` with a reason (else exit 7)
    Check {
        #[command(flatten)]
        on: On,
        /// The profile (default: the only one in confiture.kdl)
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, default_value_t = 100)]
        sample: usize,
    },
    /// Show original and masked values of a table side by side
    Preview {
        #[command(flatten)]
        on: On,
        /// The profile (default: the only one in confiture.kdl)
        #[arg(long)]
        profile: Option<String>,
        /// The table (`schema.table`, or a table in public)
        #[arg(long)]
        table: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Read a protected environment anyway (it is only read)
        #[arg(long)]
        allow_protected: bool,
    },
    /// The leak check: no original value of a masked column is left in the target (else exit 7)
    Verify {
        /// Where the original data is: an environment or a connection string (only read)
        #[arg(long, value_name = "ENV|DSN")]
        source: String,
        /// The anonymized database: an environment or a connection string
        #[arg(long, value_name = "ENV|DSN")]
        target: String,
        /// The profile (default: the only one in confiture.kdl)
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

fn list(format: Format) -> ExitCode {
    if format == Format::Json {
        let all: Vec<serde_json::Value> = strategies::all()
            .map(|m| {
                serde_json::json!({
                    "name": m.name, "summary": m.summary, "accepts": m.accepts, "deterministic": m.deterministic,
                    "uniqueness": m.uniqueness, "params": m.params,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return ExitCode::Success;
    }
    for m in strategies::all() {
        outln!("{:<16} {:<15} {}", m.name, m.uniqueness.as_str(), m.summary);
    }
    ExitCode::Success
}

/// A target given as an environment name or a connection string.
fn target_child(stage: Node, name: &str, env_name: &str, value: &str) -> Node {
    if confiture_engine::stage::looks_like_dsn(value) {
        stage.child(Node::synthetic(name).arg(value))
    } else {
        stage.child(Node::synthetic(env_name).arg(value))
    }
}

pub async fn anonymize(args: AnonymizeArgs, quiet: bool) -> ExitCode {
    if args.list_strategies {
        return list(args.format);
    }
    if let Some(name) = &args.explain {
        return match strategies::find(name) {
            Some(s) => {
                outln!("{}", s.meta().page().trim_end());
                ExitCode::Success
            }
            None => {
                let names: Vec<&str> = strategies::all().map(|m| m.name).collect();
                crate::render::error(confiture_engine::kdl::decode::one_of(
                    &format!("no strategy `{name}`; strategies"),
                    &names,
                    name,
                ));
                ExitCode::Config
            }
        };
    }
    let Some(action) = args.action else {
        crate::render::error("say what to do: run, scan, check, preview or verify (`confiture anonymize --help`)");
        return ExitCode::Config;
    };
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut stage = Node::synthetic("stage").arg("anonymize").prop("uses", "anonymize");
    let (mode, format, text): (&str, Format, fn(&RunReport)) = match &action {
        Action::Run { on, .. } => ("run", on.format, crate::render::print_run_report),
        Action::Scan { on, .. } => ("scan", on.format, print_scan),
        Action::Check { on, .. } => ("check", on.format, crate::render::print_run_report),
        Action::Preview { on, .. } => ("preview", on.format, print_preview),
        Action::Verify { format, .. } => ("verify", *format, crate::render::print_run_report),
    };
    stage = stage.child(Node::synthetic("mode").arg(mode));
    match &action {
        Action::Run { on, .. } | Action::Scan { on, .. } | Action::Check { on, .. } | Action::Preview { on, .. } => {
            let target = match super::target::resolve(&project, on.env.as_ref(), on.database_url.as_ref()) {
                Ok(t) => t,
                Err(code) => return code,
            };
            stage = target.apply(stage);
        }
        Action::Verify { source, target, .. } => {
            stage = target_child(stage, "source", "source-env", source);
            stage = target_child(stage, "database", "env", target);
        }
    }
    // Without --profile: the only profile confiture.kdl declares.
    let pick = |given: Option<String>| -> Result<String, ExitCode> {
        if let Some(p) = given {
            return Ok(p);
        }
        match project.named_blocks("anonymize").as_slice() {
            [one] => Ok(one.to_string()),
            [] => {
                crate::render::error(
                    "no profile: pass --profile FILE, or declare `anonymize \"NAME\" { … }` in confiture.kdl",
                );
                Err(ExitCode::Config)
            }
            many => {
                crate::render::error(format!(
                    "confiture.kdl declares several profiles ({}): choose one with --profile",
                    many.join(", ")
                ));
                Err(ExitCode::Config)
            }
        }
    };
    let profile = match &action {
        Action::Run { profile, .. }
        | Action::Check { profile, .. }
        | Action::Preview { profile, .. }
        | Action::Verify { profile, .. } => match pick(profile.clone()) {
            Ok(p) => p,
            Err(code) => return code,
        },
        Action::Scan { .. } => String::new(),
    };
    match action {
        Action::Run { dry_run, .. } => {
            stage = stage.child(Node::synthetic("profile").arg(profile));
            if dry_run {
                stage = stage.child(Node::synthetic("dry-run").arg_bool(true));
            }
        }
        Action::Scan { sample, name, .. } => {
            stage = stage.child(Node::synthetic("sample").arg_int(sample as i128));
            stage = stage.child(Node::synthetic("profile").arg(name));
        }
        Action::Check { sample, .. } => {
            stage = stage.child(Node::synthetic("profile").arg(profile));
            stage = stage.child(Node::synthetic("sample").arg_int(sample as i128));
        }
        Action::Preview { table, limit, allow_protected, .. } => {
            stage = stage.child(Node::synthetic("profile").arg(profile));
            stage = stage.child(Node::synthetic("table").arg(table));
            stage = stage.child(Node::synthetic("limit").arg_int(limit as i128));
            if allow_protected {
                stage = stage.child(Node::synthetic("allow-protected").arg_bool(true));
            }
        }
        Action::Verify { .. } => {
            stage = stage.child(Node::synthetic("profile").arg(profile));
        }
    }
    let name = format!("anonymize-{mode}");
    super::pipeline::run_stage(&name, stage, project, Printing { format, quiet, text }).await
}

fn outputs(report: &RunReport) -> Option<AnonymizeOutputs> {
    let stage = report.stages.first()?;
    serde_json::from_value(serde_json::Value::Object(stage.outputs.clone().into_iter().collect())).ok()
}

/// `scan`: the profile on stdout (to redirect into a file), the summary as usual on stderr.
fn print_scan(report: &RunReport) {
    match outputs(report).and_then(|o| o.suggested_profile) {
        Some(profile) => out!("{profile}"),
        None => crate::render::print_run_report(report),
    }
}

/// `preview`: one block per row, original → masked.
fn print_preview(report: &RunReport) {
    let Some(p) = outputs(report).and_then(|o| o.preview) else {
        return crate::render::print_run_report(report);
    };
    let width = p.columns.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    outln!("{} ({} rows)", p.table, p.rows.len());
    for (i, row) in p.rows.iter().enumerate() {
        outln!("row {}", i + 1);
        for (c, [original, masked]) in p.columns.iter().zip(row) {
            outln!("  {c:<width$}  {}  →  {}", show(original), show(masked));
        }
    }
}
