//! The built-in stages.

pub mod build;
pub mod lint;
pub mod migrate;
