//! The process exit codes: a frozen, documented contract (docs/exit-codes.md).

use serde::Serialize;

/// Why confiture exits. The numeric values never change; new reasons get new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExitCode {
    /// Everything succeeded.
    Success,
    /// Findings were reported or a step failed.
    Failure,
    /// The migration tracking table does not exist.
    NoTrackingTable,
    /// A database connection could not be made (or no PostgreSQL could be started).
    Connection,
    /// The schema could not be built: a SQL file failed or could not be read.
    Build,
    /// The configuration or input is invalid: a pipeline, a flag, a file name.
    Config,
    /// Another process holds the lock that this one needs.
    LockContention,
    /// Drift or preflight findings.
    Drift,
    /// A rollback cannot be done because a step is irreversible.
    Irreversible,
    /// Interrupted by Ctrl-C (SIGINT) or SIGTERM.
    Interrupted,
    /// Standard output was closed before everything was printed (`confiture … | head`).
    OutputClosed,
}

impl ExitCode {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::NoTrackingTable => 2,
            ExitCode::Connection => 3,
            ExitCode::Build => 4,
            ExitCode::Config => 5,
            ExitCode::LockContention => 6,
            ExitCode::Drift => 7,
            ExitCode::Irreversible => 8,
            ExitCode::Interrupted => 130,
            ExitCode::OutputClosed => 141,
        }
    }

    /// Every exit code, in numeric order (used by the docs test).
    pub const ALL: [ExitCode; 11] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::NoTrackingTable,
        ExitCode::Connection,
        ExitCode::Build,
        ExitCode::Config,
        ExitCode::LockContention,
        ExitCode::Drift,
        ExitCode::Irreversible,
        ExitCode::Interrupted,
        ExitCode::OutputClosed,
    ];
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}
