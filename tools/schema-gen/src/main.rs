//! `schema-gen DIR [--tables N] [--views N] [--seed N] [--mutate PCT]`: write a generated confiture project.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut options = schema_gen::Options::default();
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Option<usize> {
            let v = args.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("error: {name} takes a number");
            }
            v
        };
        match arg.as_str() {
            "--tables" => match number("--tables") {
                Some(n) => options.tables = n,
                None => return ExitCode::from(5),
            },
            "--views" => match number("--views") {
                Some(n) => options.views = n,
                None => return ExitCode::from(5),
            },
            "--mutate" => match number("--mutate") {
                Some(n) => options.mutate = n,
                None => return ExitCode::from(5),
            },
            "--seed" => match number("--seed") {
                Some(n) => options.seed = n as u64,
                None => return ExitCode::from(5),
            },
            "-h" | "--help" => {
                println!(
                    "usage: schema-gen DIR [--tables N] [--views N] [--seed N] [--mutate PCT]\n\nWrites a confiture project with N tables (default 1000), \
                     views (default 100), foreign keys, indexes, checks, comments and triggers.\n--mutate PCT changes PCT % of the tables \
                     (and adds and drops a few objects): the same schema, a release later."
                );
                return ExitCode::SUCCESS;
            }
            other if dir.is_none() && !other.starts_with('-') => dir = Some(std::path::PathBuf::from(other)),
            other => {
                eprintln!("error: unexpected argument `{other}` (see --help)");
                return ExitCode::from(5);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("error: give the directory to write (see --help)");
        return ExitCode::from(5);
    };
    match schema_gen::write(&dir, &options) {
        Ok(n) => {
            println!("wrote {n} files to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", dir.display());
            ExitCode::from(4)
        }
    }
}
