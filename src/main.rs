//! The `confiture` command: parse arguments, build the stage registry, hand work to the engine,
//! print the result, exit with the documented code. Nothing else lives here.

#[macro_use]
mod out;
mod commands;
mod render;

use std::process::ExitCode;

use clap::Parser;

// Linting and diffing allocate and free millions of small parse-tree nodes across threads;
// mimalloc does that in about half the time of glibc's malloc (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors are invalid input (exit 5), not clap's default 2, which we reserve for
            // "tracking table absent"; --help and --version exit 0.
            let _ = e.print();
            let code =
                if e.use_stderr() { confiture_engine::ExitCode::Config } else { confiture_engine::ExitCode::Success };
            return ExitCode::from(code.code());
        }
    };
    render::init_logging(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(confiture_engine::ExitCode::Failure.code());
        }
    };
    let code = runtime.block_on(commands::dispatch(cli));
    // Do not wait for blocking threads that are still busy (a plugin call abandoned after its
    // timeout): the answer is known.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    ExitCode::from(code.code())
}
