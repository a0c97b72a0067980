//! confiture's built-in stages: libraries (`build/`, `catalog/`, `diff/`, `lint/`, `migrate/`)
//! and, in `stages/`, one thin adapter per stage type that decodes its KDL and calls them,
//! listed once in [`STAGES`] (docs/ARCHITECTURE.md, "Adding a stage").

pub mod anonymize;
pub mod build;
pub mod catalog;
pub mod diff;
pub mod fdw;
pub mod lint;
pub mod migrate;
pub mod stages;
pub mod sync;

use confiture_engine::stage::Registry;

pub use stages::STAGES;

/// A doc comment (as `declare_rule!` and `declare_strategy!` capture it) as Markdown: the
/// doc-comment indentation removed.
pub(crate) fn doc_markdown(doc: &str) -> String {
    let mut out = String::new();
    for line in doc.lines() {
        out.push_str(line.strip_prefix(' ').unwrap_or(line));
        out.push('\n');
    }
    out.trim().to_string() + "\n"
}

/// Check that a generated file is current, or write it with `CONFITURE_UPDATE_DOCS` set
/// (docs/rules/, docs/strategies/).
#[cfg(test)]
pub(crate) fn check_generated(path: &std::path::Path, want: &str) {
    if std::env::var_os("CONFITURE_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a file in a directory")).unwrap();
        std::fs::write(path, want).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(path).unwrap_or_default(),
        want,
        "{} is stale: run `CONFITURE_UPDATE_DOCS=1 cargo test -p confiture-plugins`",
        path.display()
    );
}

/// Diagnostics of a file a stage reads (a profile, a mapping) as the stage's error: exit 5, every
/// diagnostic attached to the outputs, so that each is shown with its file and line.
pub(crate) fn problems(
    d: confiture_engine::diag::Diagnostics,
    subject: &str,
    outcome: &str,
) -> confiture_engine::stage::StageError {
    let n = d.len();
    let mut outputs = confiture_engine::stage::Outputs::default();
    for diag in d {
        outputs.attach(diag);
    }
    confiture_engine::stage::StageError::new(
        confiture_engine::ExitCode::Config,
        format!("{subject} has {n} problem{}: {outcome}", if n == 1 { "" } else { "s" }),
    )
    .with_outputs(outputs)
}

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

    /// Stage adapters share code through libraries, never through each other
    /// (docs/ARCHITECTURE.md): a change to one stage cannot reach into another.
    #[test]
    fn no_stage_adapter_imports_another() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stages");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "mod.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                assert!(
                    !line.contains("crate::stages::") && !line.contains("super::"),
                    "src/stages/{name}:{}: a stage adapter imports another stage; move what they share into a library: {line}",
                    n + 1
                );
            }
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
