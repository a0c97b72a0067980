//! The files a lint run reads: paths (files, directories, `-` for stdin) in a fixed order, with
//! excludes, each a migration, schema file or other by its path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use confiture_engine::ExitCode;
use confiture_engine::stage::StageError;
use globset::{Glob, GlobSet, GlobSetBuilder};

use super::{FileKind, Input};

/// The files to lint, in order: each path in turn (`-`: standard input); directories in natural
/// path order, without `exclude`d files. `optional`: paths that do not exist are skipped (the
/// default paths), else an error.
pub fn read_inputs(
    root: &Path,
    paths: &[String],
    exclude: &[String],
    kind: Option<FileKind>,
    optional: bool,
) -> Result<Vec<Input>, StageError> {
    let exclude = glob_set(exclude)?;
    let mut inputs = Vec::new();
    // Relative to the project root with `/`, or the path as given when outside it.
    let shown = |p: &Path| match p.strip_prefix(root) {
        Ok(rel) => rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
        Err(_) => p.display().to_string(),
    };
    let read = |path: &Path| -> Result<String, StageError> {
        let bytes = std::fs::read(path)
            .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read {}: {e}", shown(path))))?;
        String::from_utf8(bytes)
            .map_err(|_| StageError::new(ExitCode::Config, format!("{} is not valid UTF-8", shown(path))))
    };
    for p in paths {
        if p == "-" {
            let text = std::io::read_to_string(std::io::stdin())
                .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read standard input: {e}")))?;
            inputs.push(Input { name: "<stdin>".into(), text, kind: kind.unwrap_or(FileKind::Other) });
            continue;
        }
        let path = if Path::new(p).is_absolute() { PathBuf::from(p) } else { root.join(p) };
        if path.is_file() {
            let name = shown(&path);
            if exclude.is_match(&name) {
                continue;
            }
            inputs.push(Input { kind: kind.unwrap_or_else(|| FileKind::of(&name)), text: read(&path)?, name });
        } else if path.is_dir() {
            // Path order, except that a migration's .up.sql comes before its .down.sql: a down
            // undoes what its up (and earlier ones) created.
            let key = |name: &std::ffi::OsStr| name.to_string_lossy().replace(".down.sql", ".~down.sql");
            let walker = walkdir::WalkDir::new(&path)
                .follow_links(true)
                .sort_by(move |a, b| crate::build::natural_cmp(&key(a.file_name()), &key(b.file_name())));
            for entry in
                walker.into_iter().filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
            {
                let entry = entry
                    .map_err(|e| StageError::new(ExitCode::Config, format!("cannot read {}: {e}", shown(&path))))?;
                let name = shown(entry.path());
                if !entry.file_type().is_file() || !name.ends_with(".sql") || exclude.is_match(&name) {
                    continue;
                }
                inputs.push(Input {
                    kind: kind.unwrap_or_else(|| FileKind::of(&name)),
                    text: read(entry.path())?,
                    name,
                });
            }
        } else if !optional {
            return Err(StageError::new(ExitCode::Config, format!("{p}: no such file or directory")));
        }
    }
    Ok(ups_before_downs(inputs))
}

/// A `.down.sql` listed before its `.up.sql` (as `git diff --name-only` lists them) moves right
/// after it: a down is judged knowing what its up created.
fn ups_before_downs(inputs: Vec<Input>) -> Vec<Input> {
    let names: std::collections::HashSet<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let mut deferred: BTreeMap<String, Input> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        if let Some(stem) = input.name.strip_suffix(".down.sql") {
            let up = format!("{stem}.up.sql");
            if names.contains(&up) && !seen.contains(&up) {
                deferred.insert(up, input);
                continue;
            }
        }
        seen.insert(input.name.clone());
        let down = deferred.remove(&input.name);
        out.push(input);
        out.extend(down);
    }
    out.extend(deferred.into_values());
    out
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, StageError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| StageError::new(ExitCode::Config, format!("invalid glob `{p}`: {e}")))?);
    }
    b.build().map_err(|e| StageError::new(ExitCode::Config, e.to_string()))
}
