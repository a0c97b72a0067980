//! The built-in stages.

pub mod build;
