//! confiture's built-in stages. Each lives in `stages/<name>.rs` and is listed once in [`STAGES`].

pub mod build;
pub mod catalog;
pub mod diff;
pub mod lint;
pub mod migrate;
pub mod stages;

use confiture_engine::stage::{Registry, StageType};

/// Every built-in stage type. Adding one: write `stages/<name>.rs`, add it here, add an example
/// pipeline under `pipelines/` and a test.
pub static STAGES: &[&dyn StageType] = &[
    &stages::build::Build,
    &stages::diff::Diff,
    &stages::hooks::Hooks,
    &stages::lint::Lint,
    &stages::migrate::Migrate,
];

/// The JSON Schemas of the built-in stages' outputs (from each stage type) and commands, by file
/// under `schemas/`.
pub fn schemas() -> Vec<(String, schemars::Schema)> {
    let mut out: Vec<(String, schemars::Schema)> =
        STAGES.iter().filter_map(|t| Some((format!("stages/{}.json", t.name()), t.outputs_schema()?))).collect();
    out.push(("migrate-new.json".into(), schemars::schema_for!(migrate::NewMigration)));
    out
}

/// The registry of built-in stages.
pub fn registry() -> Registry {
    Registry::new(STAGES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        for (file, schema) in schemas() {
            let path = dir.join(&file);
            let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if std::env::var_os("CONFITURE_UPDATE_SCHEMAS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &want).unwrap();
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                have, want,
                "schemas/{file} is stale: run `CONFITURE_UPDATE_SCHEMAS=1 cargo test -p confiture-plugins`"
            );
        }
    }

    #[test]
    fn stage_names_are_unique_kebab_case_and_documented() {
        let mut names = std::collections::HashSet::new();
        for t in STAGES {
            assert!(names.insert(t.name()), "duplicate stage type {}", t.name());
            assert!(t.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{}", t.name());
            assert!(!t.summary().is_empty() && !t.summary().ends_with('.'), "{}", t.name());
            for o in t.outputs() {
                assert!(
                    o.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "output {o} of {} must be snake_case",
                    t.name()
                );
            }
        }
    }
}
