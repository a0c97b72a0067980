//! Schema diff: read databases into a [`model::Model`], compare two models, and plan the statements
//! that turn one into the other (docs/diff.md).

pub mod introspect;
pub mod model;
pub mod plan;
pub mod render;
pub mod source;

pub use introspect::introspect;
pub use model::Model;
pub use plan::{Plan, plan};
