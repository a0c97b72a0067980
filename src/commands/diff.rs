//! `confiture diff`, `confiture drift` and `confiture migrate generate`: one-stage pipelines of the
//! `diff` stage.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;
use confiture_engine::report::RunReport;

use super::Format;

pub const HELP: &str = "Sources (--from, --to):
  postgresql://…, key=value      a live database
  env:NAME                       the database of environment NAME (confiture.kdl)
  schema, schema:ENV             the schema files of the default environment / of ENV
  migrations, migrations:DIR     the migration chain, replayed in order
  PATH                           a .sql file or a directory of them (a directory of *.up.sql
                                 files is a migration chain)
DDL and migrations are built into a throwaway database on an ephemeral PostgreSQL (or on
--dev-url), so the server normalizes them; live databases are only read.

Examples:
  confiture diff --from env:production --to schema          what production lacks, as SQL
  confiture diff --from migrations --to schema > next.sql   what the next migration must do
  confiture diff --from schema --to env:staging --format json
  confiture diff --from env:production --to schema --check  exit 7 when they differ (CI gate)
  confiture diff --from old.sql --to new.sql --down         the way back
  confiture diff --from env:production --to schema --exclude 'audit.*'

The SQL runs as is (`psql -1 -f next.sql`); each step's hazards (locks, rewrites, data loss)
are comments above it. Renamed objects appear as a drop and a create: review before running.
Exit codes: 0 done (differences or not), 7 differences with --check, 3 connection failed,
4 a DDL source does not build, 5 bad arguments.";

pub const DRIFT_HELP: &str = "Examples:
  confiture drift --env production              is production what db/schema says?
  confiture drift --env production --format json

Compares the environment's live database with its schema files (built into a throwaway
database). Prints what differs: `+` only in the schema files, `-` only in the database,
`~` different. Exit codes: 0 no drift, 7 drift, 3 connection failed, 4 schema does not build.
`confiture diff --from env:NAME --to schema:NAME` prints the SQL that would fix it.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// The plan as SQL, hazards as comments
    Sql,
    /// The plan and every difference (schemas/stages/diff.json)
    Json,
}

#[derive(Args)]
pub struct DiffArgs {
    /// What is (see Sources below)
    #[arg(long, value_name = "SRC")]
    pub from: String,
    /// What should be
    #[arg(long, value_name = "SRC")]
    pub to: String,
    #[arg(long, value_enum, default_value = "sql")]
    pub format: DiffFormat,
    /// Print the way back (from --to to --from) instead
    #[arg(long)]
    pub down: bool,
    /// Exit 7 when the schemas differ
    #[arg(long)]
    pub check: bool,
    /// A server to build DDL and migration sources on, instead of an ephemeral one
    #[arg(long, value_name = "DSN")]
    pub dev_url: Option<String>,
    /// The environment `schema` and `migrations` refer to [default: `default`]
    #[arg(long, short = 'e', value_name = "ENV")]
    pub env: Option<String>,
    /// Leave out objects whose qualified name matches, e.g. 'audit.*' (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

#[derive(Args)]
pub struct DriftArgs {
    /// The environment whose database is checked against its schema files
    #[arg(long, short = 'e', value_name = "ENV", env = "CONFITURE_ENV")]
    pub env: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// A server to build the schema files on, instead of an ephemeral one
    #[arg(long, value_name = "DSN")]
    pub dev_url: Option<String>,
    /// Leave out objects whose qualified name matches, e.g. 'audit.*' (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

fn with_exclude(mut stage: Node, exclude: &[String]) -> Node {
    if !exclude.is_empty() {
        let mut n = Node::synthetic("exclude");
        for g in exclude {
            n = n.arg(g);
        }
        stage = stage.child(n);
    }
    stage
}

fn stage(from: &str, to: &str, env: Option<&str>, dev_url: Option<&str>) -> Node {
    let mut stage = Node::synthetic("stage")
        .arg("diff")
        .prop("uses", "diff")
        .child(Node::synthetic("from").arg(confiture_plugins::diff::source::from_command_line(from)))
        .child(Node::synthetic("to").arg(confiture_plugins::diff::source::from_command_line(to)));
    if let Some(e) = env {
        stage = stage.child(Node::synthetic("env").arg(e));
    }
    if let Some(d) = dev_url {
        stage = stage.child(Node::synthetic("dev-url").arg(d));
    }
    stage
}

async fn run(stage: Node, name: &str, format: Format, quiet: bool, print: fn(&RunReport)) -> ExitCode {
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    super::pipeline::run_stage(name, stage, project, super::pipeline::Printing { format, quiet, text: print }).await
}

pub async fn diff(args: DiffArgs, quiet: bool) -> ExitCode {
    let mut s = with_exclude(stage(&args.from, &args.to, args.env.as_deref(), args.dev_url.as_deref()), &args.exclude);
    if args.check {
        s = s.child(Node::synthetic("fail-on-change").arg_bool(true));
    }
    if args.down {
        s = s.child(Node::synthetic("down").arg_bool(true));
    }
    match (args.format, args.down) {
        (DiffFormat::Json, _) => run(s, "diff", Format::Text, true, print_outputs).await,
        (DiffFormat::Sql, false) => run(s, "diff", Format::Text, quiet, print_up).await,
        (DiffFormat::Sql, true) => run(s, "diff", Format::Text, quiet, print_down).await,
    }
}

pub async fn drift(args: DriftArgs, quiet: bool) -> ExitCode {
    let s = stage(&format!("env:{}", args.env), &format!("schema:{}", args.env), None, args.dev_url.as_deref())
        .child(Node::synthetic("fail-on-change").arg_bool(true));
    let s = with_exclude(s, &args.exclude);
    match args.format {
        Format::Json => run(s, "drift", Format::Text, true, print_outputs).await,
        Format::Text => run(s, "drift", Format::Text, quiet, print_drift).await,
    }
}

/// `confiture migrate generate`'s options.
pub struct Generate {
    pub env: Option<String>,
    pub migrations: Option<PathBuf>,
    pub dev_url: Option<String>,
    pub concurrently: bool,
}

/// `confiture migrate generate`: the migration chain → the environment's schema, as a new pair.
pub async fn generate(name: &str, o: Generate, format: Format, quiet: bool) -> ExitCode {
    let from = match &o.migrations {
        Some(dir) => format!("migrations:{}", dir.display()),
        None => "migrations".to_string(),
    };
    let to = match &o.env {
        Some(e) => format!("schema:{e}"),
        None => "schema".to_string(),
    };
    let mut s = stage(&from, &to, o.env.as_deref(), o.dev_url.as_deref()).child(Node::synthetic("generate").arg(name));
    if let Some(dir) = &o.migrations {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        s = s.child(Node::synthetic("migrations").arg(dir.display().to_string()));
    }
    if o.concurrently {
        s = s.child(Node::synthetic("concurrent-indexes").arg_bool(true));
    }
    match format {
        Format::Json => run(s, "migrate-generate", Format::Text, true, print_outputs).await,
        Format::Text => run(s, "migrate-generate", Format::Text, quiet, print_generated).await,
    }
}

fn outputs(report: &RunReport) -> std::collections::BTreeMap<String, serde_json::Value> {
    report.stages.first().map(|s| s.outputs.clone()).unwrap_or_default()
}

/// Whether the stage got as far as a plan (a failure before has nothing to print).
fn planned(report: &RunReport) -> bool {
    outputs(report).contains_key("changed")
}

fn print_outputs(report: &RunReport) {
    if planned(report) {
        crate::render::print_json(&outputs(report));
    }
}

fn print_up(report: &RunReport) {
    if let Some(serde_json::Value::String(sql)) = outputs(report).get("sql")
        && !sql.is_empty()
    {
        outln!("{sql}");
    }
    summary(report);
}

fn print_down(report: &RunReport) {
    if let Some(serde_json::Value::String(sql)) = outputs(report).get("down_sql")
        && !sql.is_empty()
    {
        outln!("{sql}");
    }
    summary(report);
}

/// One line on stderr, so stdout stays a clean script.
fn summary(report: &RunReport) {
    let o = outputs(report);
    if !planned(report) {
        return;
    }
    let n = o.get("changes").and_then(|c| c.as_array()).map_or(0, Vec::len);
    let statements = o.get("statements").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let hazardous = o.get("hazardous").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if n == 0 {
        eprintln!("-- no differences");
    } else {
        eprintln!(
            "-- {n} difference{}, {statements} statement{} ({hazardous} with hazards)",
            if n == 1 { "" } else { "s" },
            if statements == 1 { "" } else { "s" }
        );
    }
}

fn print_drift(report: &RunReport) {
    if !planned(report) {
        return;
    }
    let o = outputs(report);
    let s = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let changes = o.get("changes").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    if changes.is_empty() {
        outln!("no drift: {} matches {}", s("from"), s("to"));
        return;
    }
    outln!("drift: {} differs from {}\n", s("from"), s("to"));
    for line in confiture_plugins::stages::diff::change_lines(&o, &crate::render::tone) {
        outln!("  {line}");
    }
    outln!(
        "\n{} difference{}. `confiture diff --from env:NAME --to schema:NAME` prints the SQL that fixes it.",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    );
}

fn print_generated(report: &RunReport) {
    if !planned(report) {
        return;
    }
    let o = outputs(report);
    let files: Vec<String> = o
        .get("files")
        .and_then(|f| f.as_array())
        .map(|f| f.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if files.is_empty() {
        outln!("no changes: the schema files match the migrations; nothing written");
        return;
    }
    for f in &files {
        outln!("created {f}");
    }
    summary(report);
}
