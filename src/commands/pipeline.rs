//! `confiture run | check | plan | graph FILE`.

use std::sync::Arc;

use clap::{Args, ValueEnum};
use confiture_engine::ExitCode;
use confiture_engine::diag::Diagnostics;
use confiture_engine::pipeline::{self, LoadOptions, Pipeline};
use confiture_engine::report::{CheckReport, PlanReport};
use confiture_engine::run::{self, RunOptions};

use super::{Format, PipelineFile};
use crate::render;

/// `run --help`: examples, then the stage types of the registry.
pub fn run_help() -> String {
    let registry = confiture_plugins::registry();
    let width = registry.names().iter().map(|n| n.len()).max().unwrap_or(0);
    let types: Vec<String> = registry.iter().map(|t| format!("  {:<width$}  {}", t.name(), t.summary())).collect();
    format!(
        "Examples:
  confiture run pipelines/release.kdl
  confiture run pipelines/release.kdl --set region=eu --jobs 4
  confiture run pipelines/release.kdl --format json > report.json

Stages with no path between them run concurrently (at most --jobs at once); a stage waits for the
stages it `needs`. The first failure cancels the rest unless the failing stage has
continue-on-error=#true. Ctrl-C cancels running stages cleanly (exit 130).

Stage types:
{}

The report (text, or JSON per schemas/run-report.json) goes to stdout; progress and errors to stderr.",
        types.join("\n")
    )
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineFile,
    /// Most stages running at once (default: the number of CPUs)
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub pipeline: PipelineFile,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub pipeline: PipelineFile,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub pipeline: PipelineFile,
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
}

fn load(file: &PipelineFile) -> Result<Pipeline, Diagnostics> {
    let registry = confiture_plugins::registry();
    pipeline::load(&file.file, &registry, &LoadOptions { set: file.set.clone(), ..LoadOptions::default() })
}

fn report_diagnostics(diagnostics: &Diagnostics, file: &std::path::Path) -> ExitCode {
    render::eprint_diagnostics(diagnostics);
    let n = diagnostics.iter().filter(|d| d.severity == confiture_engine::diag::Severity::Error).count();
    render::error(format!("{} in {}", plural(n, "problem"), file.display()));
    ExitCode::Config
}

pub fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

pub async fn run(args: RunArgs, quiet: bool) -> ExitCode {
    let pipeline = match load(&args.pipeline) {
        Ok(p) => p,
        Err(d) => return report_diagnostics(&d, &args.pipeline.file),
    };
    execute(pipeline, args.jobs.map(usize::from), args.format, quiet).await
}

/// How a command prints a run's report.
pub struct Printing {
    pub format: Format,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// The text report (with `--format text`).
    pub text: fn(&confiture_engine::report::RunReport),
}

impl Printing {
    /// The run report as `confiture run` prints it.
    pub fn standard(format: Format, quiet: bool) -> Self {
        Printing { format, quiet, text: render::print_run_report }
    }
}

/// A single-stage command: its stage node, built by the command from its flags, run as a
/// one-stage pipeline called `name` in `project`. Diagnostics about the node exit 5.
pub async fn run_stage(
    name: &str,
    stage: confiture_engine::kdl::node::Node,
    project: Arc<confiture_engine::project::Project>,
    printing: Printing,
) -> ExitCode {
    let registry = confiture_plugins::registry();
    let pipeline = match pipeline::from_nodes(name, vec![stage], project, &registry) {
        Ok(p) => p,
        Err(d) => {
            render::eprint_diagnostics(&d);
            return ExitCode::Config;
        }
    };
    execute_with(pipeline, Some(1), printing.format, printing.quiet, printing.text).await
}

/// Run a loaded pipeline and print its report; shared by `run` and the single-stage commands.
pub async fn execute(pipeline: Pipeline, jobs: Option<usize>, format: Format, quiet: bool) -> ExitCode {
    execute_with(pipeline, jobs, format, quiet, render::print_run_report).await
}

/// [`execute`], with a command's own text output.
pub async fn execute_with(
    pipeline: Pipeline,
    jobs: Option<usize>,
    format: Format,
    quiet: bool,
    print_text: fn(&confiture_engine::report::RunReport),
) -> ExitCode {
    let cancel = render::cancel_on_signals();
    let options = RunOptions {
        jobs: jobs.unwrap_or_else(run::default_jobs),
        cancel,
        observer: (!quiet).then(render::progress_observer),
        ..RunOptions::default()
    };
    let databases = Arc::new(pipeline.runtime_databases());
    let report = run::execute(&pipeline, databases.clone(), &options).await;
    drop(databases);
    match format {
        Format::Json => render::print_json(&report),
        Format::Text => print_text(&report),
    }
    render::eprint_failures(&report);
    report_exit(&report)
}

fn report_exit(report: &confiture_engine::report::RunReport) -> ExitCode {
    ExitCode::ALL.into_iter().find(|c| c.code() == report.exit_code).unwrap_or(ExitCode::Failure)
}

pub fn check(args: CheckArgs) -> ExitCode {
    let result = load(&args.pipeline);
    let file = args.pipeline.file.display().to_string();
    match args.format {
        Format::Json => {
            let (valid, stages, diagnostics) = match &result {
                Ok(p) => (true, p.stages.iter().map(|s| s.name.clone()).collect(), Vec::new()),
                Err(d) => (false, Vec::new(), d.iter().map(|d| d.to_json()).collect()),
            };
            render::print_json(&CheckReport { schema_version: 1, file, valid, stages, diagnostics });
            if valid { ExitCode::Success } else { ExitCode::Config }
        }
        Format::Text => match result {
            Ok(p) => {
                outln!(
                    "{file}: ok — pipeline `{}`, {}, {}",
                    p.name,
                    plural(p.stages.len(), "stage"),
                    plural(p.databases.len(), "database")
                );
                ExitCode::Success
            }
            Err(d) => report_diagnostics(&d, &args.pipeline.file),
        },
    }
}

pub fn plan(args: PlanArgs) -> ExitCode {
    let pipeline = match load(&args.pipeline) {
        Ok(p) => p,
        Err(d) => return report_diagnostics(&d, &args.pipeline.file),
    };
    let plan = PlanReport::of(&pipeline);
    match args.format {
        Format::Json => render::print_json(&plan),
        Format::Text => render::print_plan(&plan),
    }
    ExitCode::Success
}

pub fn graph(args: GraphArgs) -> ExitCode {
    let pipeline = match load(&args.pipeline) {
        Ok(p) => p,
        Err(d) => return report_diagnostics(&d, &args.pipeline.file),
    };
    match args.format {
        GraphFormat::Dot => out!("{}", render::dot(&pipeline)),
        GraphFormat::Mermaid => out!("{}", render::mermaid(&pipeline)),
        GraphFormat::Json => render::print_json(&confiture_engine::report::GraphReport::of(&pipeline)),
    }
    ExitCode::Success
}
