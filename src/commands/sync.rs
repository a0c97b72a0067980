//! `confiture sync`: a one-stage pipeline running the `sync` stage.

use clap::Args;
use confiture_engine::ExitCode;
use confiture_engine::kdl::node::Node;

use super::Format;
use super::pipeline::Printing;

pub const HELP: &str = "Examples:
  confiture sync --from production --to staging --anonymize staging          masked with a profile
  confiture sync --from production --to staging --anonymize users.email      a strategy picked for the column
  confiture sync --from production --to staging --anonymize users.phone=phone --tables 'public.*' --jobs 4
  confiture sync --from postgresql://prod/app --to postgresql://localhost/app_copy --verify
  confiture sync --from production --to staging --subset \"public.orders:created_at > now() - interval '30 days'\"
  confiture sync --from production --to staging --dry-run                   print the plan, write nothing
  confiture sync --from production --to staging --resume                    finish a run that was killed

The whole copy reads one snapshot of the source (exported by a coordinator and imported by every
worker), in read-only transactions. Rows stream from COPY TO STDOUT into COPY FROM STDIN with no
intermediate files; tables without masked columns pass through as bytes, masked ones have only
their masked fields rewritten. Large tables are split into key or ctid ranges copied in parallel.
A target without the tables gets the source's schema (tables before the load; indexes,
constraints and triggers after it); a target with them is checked column by column and has only
the copied tables emptied. Every range commits with its progress row in `confiture_sync`, so after
a kill `--resume` copies only what is missing. A protected target and the source itself are
refused. See docs/sync.md.

Exit codes: 0 done, 1 a step failed, 3 cannot connect, 5 bad options or profile, refused target,
schema mismatch or an unfinished run without --resume, 6 another sync into the target is
running, 7 --verify found a difference, 130 interrupted (resume with --resume).";

#[derive(Args)]
pub struct SyncArgs {
    /// Where the rows come from: an environment (confiture.kdl) or a connection string; only read
    #[arg(long, value_name = "ENV|DSN")]
    pub from: String,
    /// Where they go: an environment or a connection string (refused when protected)
    #[arg(long, value_name = "ENV|DSN")]
    pub to: String,
    /// A profile (name in confiture.kdl, or a file), or `table.column[=strategy]` (repeatable)
    #[arg(long, value_name = "PROFILE|TABLE.COLUMN[=STRATEGY]")]
    pub anonymize: Vec<String>,
    /// Copy only these tables (globs over schema.table; repeatable)
    #[arg(long, value_name = "GLOB")]
    pub tables: Vec<String>,
    /// Leave these tables out (globs; repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep only the rows of TABLE matching CONDITION (and what they reference): `TABLE:CONDITION`
    #[arg(long, value_name = "TABLE:CONDITION")]
    pub subset: Vec<String>,
    /// With --subset: also keep the rows that reference kept rows
    #[arg(long)]
    pub include_children: bool,
    /// Parallel workers (default: the machine's cores)
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Rows per range of a large table
    #[arg(long, value_name = "ROWS", default_value_t = 250_000)]
    pub range_rows: u64,
    /// Finish the target's unfinished run (after a kill)
    #[arg(long)]
    pub resume: bool,
    /// Read the target back and compare row counts and checksums (exit 7 on a difference)
    #[arg(long)]
    pub verify: bool,
    /// Print the plan; write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub async fn sync(args: SyncArgs, quiet: bool) -> ExitCode {
    let project = match super::target::project() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut stage = Node::synthetic("stage").arg("sync").prop("uses", "sync");
    stage = stage.child(Node::synthetic("from").arg(&args.from));
    stage = stage.child(Node::synthetic("to").arg(&args.to));
    if !args.anonymize.is_empty() {
        let mut n = Node::synthetic("anonymize");
        for a in &args.anonymize {
            n = n.arg(a);
        }
        stage = stage.child(n);
    }
    for (name, values) in [("tables", &args.tables), ("exclude", &args.exclude)] {
        if !values.is_empty() {
            let mut n = Node::synthetic(name);
            for v in values {
                n = n.arg(v);
            }
            stage = stage.child(n);
        }
    }
    if !args.subset.is_empty() {
        let mut s = Node::synthetic("subset").prop_bool("include-children", args.include_children);
        for v in &args.subset {
            let Some((table, cond)) = v.split_once(':') else {
                crate::render::error(format!("--subset `{v}`: write TABLE:CONDITION, e.g. \"orders:id > 100\""));
                return ExitCode::Config;
            };
            s = s.child(Node::synthetic("table").arg(table.trim()).prop("where", cond.trim()));
        }
        stage = stage.child(s);
    }
    if let Some(j) = args.jobs {
        stage = stage.child(Node::synthetic("jobs").arg_int(j as i128));
    }
    stage = stage.child(Node::synthetic("range-rows").arg_int(i128::from(args.range_rows)));
    for (name, on) in [("resume", args.resume), ("verify", args.verify), ("dry-run", args.dry_run)] {
        if on {
            stage = stage.child(Node::synthetic(name).arg_bool(true));
        }
    }
    super::pipeline::run_stage(
        "sync",
        stage,
        project,
        Printing { format: args.format, quiet, text: crate::render::print_run_report },
    )
    .await
}
