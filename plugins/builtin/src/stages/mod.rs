//! The built-in stages.

pub mod build;
pub mod diff;
pub mod hooks;
pub mod lint;
pub mod migrate;
