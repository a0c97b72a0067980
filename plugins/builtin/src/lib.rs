//! confiture's built-in stages. Each lives in `stages/<name>.rs` and is listed once in [`STAGES`].

pub mod stages;

use confiture_engine::stage::{Registry, StageType};

/// Every built-in stage type. Adding one: write `stages/<name>.rs`, add it here, add an example
/// pipeline under `pipelines/` and a test.
pub static STAGES: &[&dyn StageType] = &[&stages::build::Build];

/// The registry of built-in stages.
pub fn registry() -> Registry {
    Registry::new(STAGES)
}

#[cfg(test)]
mod tests {
    use super::*;

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
