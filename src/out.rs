//! `outln!` and `out!`: `println!` and `print!` for a reader that may stop reading.
//!
//! `confiture lint --list-rules | head` closes stdout early. `println!` would panic on the
//! broken pipe; these exit quietly instead, with 141 (128 + SIGPIPE), the status a shell shows
//! for a command the pipe's reader cut short. Reports are printed after stages have finished and
//! cleaned up, so nothing is left behind by exiting here.

use std::io::Write;

pub fn write(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(confiture_engine::ExitCode::OutputClosed.code().into());
        }
        panic!("cannot write to standard output: {e}");
    }
}

macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}
