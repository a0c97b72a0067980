//! Migration files: `{version}_{name}.up.sql` with an optional `{version}_{name}.down.sql`.
//!
//! A version is digits (`YYYYMMDDHHMMSS` from `migrate new`; legacy `001` works) and migrations are
//! ordered by its numeric value. Everything wrong with the directory is reported at once, before
//! anything runs: names that do not parse, two files with one version, a `.down.sql` without its
//! `.up.sql`, Python migrations. The checksum of a migration is the SHA-256 of its `.up.sql` bytes.

use std::path::{Path, PathBuf};

use confiture_engine::ExitCode;
use confiture_engine::project::Project;
use confiture_engine::stage::StageError;
use sha2::{Digest, Sha256};

/// One migration on disk.
#[derive(Clone, Debug)]
pub struct Migration {
    /// The digits as written in the file name.
    pub version: String,
    /// The version's numeric value (what orders migrations).
    pub number: u128,
    pub name: String,
    pub down: Option<PathBuf>,
    /// The `.up.sql` file relative to the project root, for messages.
    pub up_shown: String,
    pub down_shown: Option<String>,
    pub up_sql: Vec<u8>,
    /// SHA-256 of the `.up.sql` bytes, lowercase hex.
    pub checksum: String,
}

impl Migration {
    /// `VERSION_NAME`, how migrations are named in messages and events.
    pub fn id(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn checksum(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The numeric value of a version string (digits only), if it has one.
pub fn version_number(version: &str) -> Option<u128> {
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match version.trim_start_matches('0') {
        "" => Some(0),
        digits => digits.parse().ok(),
    }
}

enum Kind {
    Up,
    Down,
}

/// `(version, name, kind)` of a migration file name.
fn parse_name(file: &str) -> Option<(String, String, Kind)> {
    let (stem, kind) = if let Some(s) = file.strip_suffix(".up.sql") {
        (s, Kind::Up)
    } else {
        (file.strip_suffix(".down.sql")?, Kind::Down)
    };
    let (version, name) = stem.split_once('_')?;
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (version_number(version).is_some() && name_ok).then(|| (version.to_string(), name.to_string(), kind))
}

/// Read and check every migration in `dir`, ordered by version.
pub fn discover(project: &Project, dir: &Path) -> Result<Vec<Migration>, StageError> {
    let shown = |p: &Path| {
        p.strip_prefix(&project.root)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StageError::new(
                ExitCode::Config,
                format!("migrations directory {} does not exist (`confiture migrate new NAME` creates it)", shown(dir)),
            ));
        }
        Err(e) => return Err(StageError::new(ExitCode::Config, format!("cannot read {}: {e}", shown(dir)))),
    };
    let mut names: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();

    let mut problems: Vec<String> = Vec::new();
    let mut ups: Vec<(String, String, PathBuf)> = Vec::new();
    let mut downs: Vec<(String, String, PathBuf)> = Vec::new();
    for (file, path) in &names {
        if file.starts_with('.') {
            continue;
        }
        match parse_name(file) {
            Some((version, name, Kind::Up)) => ups.push((version, name, path.clone())),
            Some((version, name, Kind::Down)) => downs.push((version, name, path.clone())),
            None if file.ends_with(".verify.sql") => {
                tracing::debug!("{}: verify scripts are not run by confiture", shown(path));
            }
            None if file.ends_with(".yaml") || file.ends_with(".yml") => {
                tracing::warn!("{}: precondition files are not checked by confiture", shown(path));
            }
            None if file.ends_with(".py") => problems.push(format!(
                "{}: Python migrations cannot run here; rewrite it as {{version}}_{{name}}.up.sql",
                shown(path)
            )),
            None if file.ends_with(".sql") => problems.push(format!(
                "{}: not a migration name; expected {{version}}_{{name}}.up.sql or .down.sql, version in digits \
                 (e.g. 20260101120000_add_users.up.sql)",
                shown(path)
            )),
            None => tracing::debug!("ignoring {}", shown(path)),
        }
    }

    let mut migrations = Vec::new();
    for (version, name, up) in ups {
        let number = version_number(&version).expect("parse_name checked the version");
        let down = downs.iter().find(|(v, n, _)| *v == version && *n == name).map(|(_, _, p)| p.clone());
        let up_sql = match std::fs::read(&up) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{}: cannot read: {e}", shown(&up)));
                continue;
            }
        };
        migrations.push(Migration {
            checksum: checksum(&up_sql),
            up_shown: shown(&up),
            down_shown: down.as_deref().map(shown),
            version,
            number,
            name,
            down,
            up_sql,
        });
    }
    for (version, name, path) in &downs {
        if !migrations.iter().any(|m| &m.version == version && &m.name == name) {
            problems.push(format!("{}: a .down.sql without its {version}_{name}.up.sql", shown(path)));
        }
    }
    migrations.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.up_shown.cmp(&b.up_shown)));
    for pair in migrations.windows(2) {
        if pair[0].number == pair[1].number {
            problems.push(format!(
                "{} and {} have the same version; give one a new version (`confiture migrate new` uses a timestamp)",
                pair[0].up_shown, pair[1].up_shown
            ));
        }
    }
    if problems.is_empty() {
        Ok(migrations)
    } else {
        let mut err = StageError::new(
            ExitCode::Config,
            format!("{} in {}:\n  {}", plural(problems.len()), shown(dir), problems.join("\n  ")),
        );
        for (i, p) in problems.iter().enumerate() {
            err = err.with_field(&format!("problem_{}", i + 1), p.clone());
        }
        Err(err)
    }
}

fn plural(n: usize) -> String {
    if n == 1 { "1 problem".into() } else { format!("{n} problems") }
}

/// A file name for a new migration: `{YYYYMMDDHHMMSS}_{name}` (UTC), the name in snake_case.
pub fn new_stem(name: &str, now: std::time::SystemTime) -> Option<String> {
    let mut clean = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            clean.push(c.to_ascii_lowercase());
        } else if !clean.ends_with('_') {
            clean.push('_');
        }
    }
    let clean = clean.trim_matches('_');
    if clean.is_empty() {
        return None;
    }
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    Some(format!("{digits}_{clean}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = dir.path().join("db/migrations").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let project = Project::at(dir.path());
        (dir, project)
    }

    #[test]
    fn discovers_in_numeric_order_with_checksums() {
        let (dir, p) = project(&[
            ("10_c.up.sql", "SELECT 3;"),
            ("002_b.up.sql", "SELECT 2;"),
            ("002_b.down.sql", "SELECT -2;"),
            ("1_a.up.sql", "SELECT 1;"),
            ("README.md", "notes"),
            ("002_b.verify.sql", "SELECT 1;"),
        ]);
        let m = discover(&p, &dir.path().join("db/migrations")).unwrap();
        let ids: Vec<String> = m.iter().map(Migration::id).collect();
        assert_eq!(ids, ["1_a", "002_b", "10_c"]);
        assert_eq!(m[1].down_shown.as_deref(), Some("db/migrations/002_b.down.sql"));
        assert!(m[0].down.is_none());
        assert_eq!(m[0].checksum, checksum(b"SELECT 1;"));
        // SHA-256 of the bytes, as e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  - prints it.
        assert_eq!(m[0].checksum, "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a");
    }

    #[test]
    fn reports_every_problem_before_anything_runs() {
        let (dir, p) = project(&[
            ("001_a.up.sql", ""),
            ("1_b.up.sql", ""),
            ("003_gone.down.sql", ""),
            ("add_users.up.sql", ""),
            ("004_x.sql", ""),
            ("005_py.py", ""),
            ("6_ok.up.sql", ""),
        ]);
        let err = discover(&p, &dir.path().join("db/migrations")).unwrap_err();
        assert_eq!(err.exit, ExitCode::Config);
        for want in [
            "5 problems",
            "db/migrations/001_a.up.sql and db/migrations/1_b.up.sql have the same version",
            "db/migrations/003_gone.down.sql: a .down.sql without its 003_gone.up.sql",
            "db/migrations/add_users.up.sql: not a migration name",
            "db/migrations/004_x.sql: not a migration name",
            "db/migrations/005_py.py: Python migrations cannot run here",
        ] {
            assert!(err.message.contains(want), "missing `{want}` in:\n{}", err.message);
        }
    }

    #[test]
    fn new_names_are_timestamped_snake_case() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
        assert_eq!(new_stem("Add users' bio!", t).as_deref(), Some("20260921141320_add_users_bio"));
        assert_eq!(new_stem("  --  ", t), None);
        assert_eq!(version_number("0001"), Some(1));
        assert_eq!(version_number("000"), Some(0));
        assert_eq!(version_number("1a"), None);
        assert_eq!(version_number(&"9".repeat(40)), None, "too long for a number is not a version");
    }
}
