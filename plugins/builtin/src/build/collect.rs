//! Which files a build runs, in which order, and the schema hash.
//!
//! Order: each schema directory in the order the environment lists them, then each seed
//! directory. Within a directory, files sort by their relative path component by component, runs
//! of digits compared as numbers (`2_users.sql` before `10_orders.sql`, `00_common/` before
//! `10_tables/`). Hidden files and directories (`.name`) are skipped.
//!
//! Hash: SHA-256 over `confiture-build-v1\n`, then for each file in order its project-relative
//! path (with `/`), a NUL byte, its length as 8 big-endian bytes, and its bytes. The same files give
//! the same hash on every machine.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use confiture_engine::ExitCode;
use confiture_engine::project::{DirSpec, Project};
use confiture_engine::stage::StageError;
use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};

/// Whether a file is part of the schema or a seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Schema,
    Seed,
}

/// A SQL file to run.
#[derive(Clone, Debug)]
pub struct SqlFile {
    pub path: PathBuf,
    /// Relative to the project root, with `/` separators (used in messages and the hash).
    pub relative: String,
    pub role: Role,
    pub bytes: Vec<u8>,
}

/// Collect the files of `schema` (required to exist) and `seeds` (skipped when missing).
pub fn collect(project: &Project, schema: &[DirSpec], seeds: &[DirSpec]) -> Result<Vec<SqlFile>, StageError> {
    let mut files = Vec::new();
    for spec in schema {
        let dir = project.resolve(&spec.path);
        if !dir.is_dir() {
            return Err(StageError::new(
                ExitCode::Config,
                format!("schema directory {} does not exist", dir.display()),
            )
            .with_field("path", dir.display().to_string()));
        }
        files.extend(collect_dir(project, spec, &dir, Role::Schema)?);
    }
    for spec in seeds {
        let dir = project.resolve(&spec.path);
        if dir.is_dir() {
            files.extend(collect_dir(project, spec, &dir, Role::Seed)?);
        } else {
            tracing::debug!("no seed directory {}", dir.display());
        }
    }
    Ok(files)
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, StageError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| StageError::new(ExitCode::Config, format!("invalid glob `{p}`: {e}")))?;
        b.add(glob);
    }
    b.build().map_err(|e| StageError::new(ExitCode::Config, e.to_string()))
}

fn collect_dir(project: &Project, spec: &DirSpec, dir: &Path, role: Role) -> Result<Vec<SqlFile>, StageError> {
    let include = if spec.include.is_empty() { glob_set(&["**/*.sql".to_string()])? } else { glob_set(&spec.include)? };
    let exclude = glob_set(&spec.exclude)?;
    let mut walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by(|a, b| natural_cmp(&a.file_name().to_string_lossy(), &b.file_name().to_string_lossy()));
    if !spec.recursive {
        walker = walker.max_depth(1);
    }
    let mut out = Vec::new();
    let entries =
        walker.into_iter().filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in entries {
        let entry =
            entry.map_err(|e| StageError::new(ExitCode::Build, format!("cannot read {}: {e}", dir.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel_to_dir = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        if !include.is_match(rel_to_dir) || exclude.is_match(rel_to_dir) {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .map_err(|e| StageError::new(ExitCode::Build, format!("cannot read {}: {e}", entry.path().display())))?;
        let relative = relative_name(project, entry.path());
        out.push(SqlFile { path: entry.path().to_path_buf(), relative, role, bytes });
    }
    Ok(out)
}

fn relative_name(project: &Project, path: &Path) -> String {
    let rel = path.strip_prefix(&project.root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Compare names with runs of ASCII digits compared as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)).then_with(|| da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

/// The schema hash of `files` (see the module docs for the exact definition).
pub fn schema_hash(files: &[SqlFile]) -> String {
    let mut h = Sha256::new();
    h.update(b"confiture-build-v1\n");
    for f in files {
        h.update(f.relative.as_bytes());
        h.update([0u8]);
        h.update((f.bytes.len() as u64).to_be_bytes());
        h.update(&f.bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut names = vec!["10_b.sql", "2_a.sql", "00_common", "1_x.sql", "01_y.sql", "a10", "a9", "B", "a"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, vec!["00_common", "1_x.sql", "01_y.sql", "2_a.sql", "10_b.sql", "B", "a", "a9", "a10"]);
    }

    #[test]
    fn hash_depends_on_paths_content_and_order() {
        let f = |rel: &str, body: &str| SqlFile {
            path: PathBuf::from(rel),
            relative: rel.into(),
            role: Role::Schema,
            bytes: body.as_bytes().to_vec(),
        };
        let base = schema_hash(&[f("a.sql", "x"), f("b.sql", "y")]);
        assert_eq!(base.len(), 64);
        assert_eq!(base, schema_hash(&[f("a.sql", "x"), f("b.sql", "y")]));
        assert_ne!(base, schema_hash(&[f("b.sql", "y"), f("a.sql", "x")]));
        assert_ne!(base, schema_hash(&[f("a.sql", "x"), f("c.sql", "y")]));
        assert_ne!(base, schema_hash(&[f("a.sql", "x "), f("b.sql", "y")]));
        // Moving a byte across the file boundary changes the hash too.
        assert_ne!(schema_hash(&[f("a.sql", "xy"), f("b.sql", "")]), schema_hash(&[f("a.sql", "x"), f("b.sql", "y")]));
        // Pinned: the definition is documented and must not drift.
        assert_eq!(
            schema_hash(&[f("db/schema/a.sql", "CREATE TABLE a ();\n")]),
            "66fe00ace3f42764794ec58dd2b5a9ffb16b0ab85232bcc58ae32976a85439b7"
        );
    }
}
