//! Schema diff: compare two [`crate::catalog::Model`]s and plan the statements that turn one into
//! the other (docs/diff.md); `source` reads either side from a database, an environment, the
//! schema files or the migrations.

pub mod concurrent;
pub mod generate;
pub mod plan;
pub mod render;
pub mod source;

pub use plan::{Plan, plan};
