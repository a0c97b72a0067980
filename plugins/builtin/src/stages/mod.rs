//! The built-in stage types, one adapter file each: it decodes the stage's KDL into settings
//! (`StageType::configure`, no IO), runs them through a library (`Stage::run`), and owns its
//! outputs' type and text summary. An adapter never imports another adapter.
//!
//! Adding a stage: its file here, its module and its entry in [`STAGES`] below
//! (docs/ARCHITECTURE.md, "Adding a stage").

pub mod anonymize;
pub mod build;
pub mod diff;
pub mod fdw_cutover;
pub mod hooks;
pub mod lint;
pub mod migrate;
pub mod sync;

use confiture_engine::stage::StageType;

/// Every built-in stage type.
pub static STAGES: &[&dyn StageType] = &[
    &anonymize::Anonymize,
    &build::Build,
    &diff::Diff,
    &fdw_cutover::FdwCutover,
    &hooks::Hooks,
    &lint::Lint,
    &migrate::Migrate,
    &sync::Sync,
];
