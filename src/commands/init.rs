//! `confiture init [DIR]`.

use std::path::PathBuf;

use clap::Args;
use confiture_engine::ExitCode;
use confiture_engine::report::InitReport;

use super::Format;

#[derive(Args)]
pub struct InitArgs {
    /// Where to create the project (default: the current directory)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The project's name (default: the directory's name)
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn init(args: InitArgs) -> ExitCode {
    let name = args.name.unwrap_or_else(|| confiture_engine::scaffold::project_name(&args.dir));
    let files = match confiture_engine::scaffold::init(&args.dir, &name) {
        Ok(files) => files,
        Err(e) => {
            crate::render::error(format!("cannot create the project in {}: {e}", args.dir.display()));
            return ExitCode::Build;
        }
    };
    match args.format {
        Format::Json => crate::render::print_json(&InitReport {
            schema_version: 1,
            directory: args.dir.display().to_string(),
            files,
        }),
        Format::Text => {
            for f in &files {
                let shown = f.path.strip_prefix(&args.dir).unwrap_or(&f.path);
                if f.path.file_name().is_some_and(|n| n == ".gitkeep") {
                    continue;
                }
                outln!("{} {}", if f.created { "created" } else { "kept   " }, shown.display());
            }
            outln!("\nproject `{name}` is ready in {}. Next:", args.dir.display());
            outln!("  put your DDL in db/schema/ (files run in path order: 00_common, 10_tables, 20_views)");
            outln!("  confiture run pipelines/release.kdl   builds it on a throwaway PostgreSQL");
        }
    }
    ExitCode::Success
}
