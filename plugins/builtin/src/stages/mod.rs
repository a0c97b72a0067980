//! The built-in stages.

pub mod build;
pub mod migrate;
