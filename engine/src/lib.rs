//! confiture's engine: KDL pipelines become a DAG of stages that run against PostgreSQL.
//!
//! The engine knows nothing about any particular stage: stages register themselves through a
//! [`stage::Registry`] supplied by the caller (the `confiture-plugins` crate provides the built-in
//! ones). The flow is
//!
//! 1. [`pipeline::load`] reads a `.kdl` file and returns a typed [`pipeline::Pipeline`] or every
//!    problem at once as span-labelled [`diag::Diagnostic`]s;
//! 2. each stage is configured (decoded and validated, no IO) by its [`stage::StageType`];
//! 3. [`run::execute`] runs the configured stages as a DAG on tokio and returns a [`report::RunReport`].
//!
//! Only [`pg`] opens PostgreSQL connections; it also owns the ephemeral cluster.

pub mod dag;
pub mod diag;
pub mod event;
pub mod exit;
pub mod hooks;
pub mod kdl;
pub mod pg;
pub mod pipeline;
pub mod project;
pub mod redact;
pub mod report;
pub mod resources;
pub mod run;
pub mod scaffold;
pub mod sql;
pub mod stage;
pub mod template;
pub mod wasm;

pub use exit::ExitCode;
/// PostgreSQL's parser, as the engine uses it (stages that read parse trees use this one).
pub use pg_query;
