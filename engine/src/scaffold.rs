//! `confiture init`: the files of a new project. Existing files are never overwritten.

use std::path::{Path, PathBuf};

const CONFITURE_KDL: &str = include_str!("../scaffold/confiture.kdl");
const RELEASE_KDL: &str = include_str!("../scaffold/release.kdl");

/// The directories a project has; empty ones get a `.gitkeep` so git keeps them.
const DIRS: &[&str] = &[
    "db/schema/00_common",
    "db/schema/10_tables",
    "db/schema/20_views",
    "db/seeds/common",
    "db/seeds/development",
    "db/seeds/test",
    "db/migrations",
    "pipelines",
];

/// What `init` did with one path.
#[derive(Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Created {
    pub path: PathBuf,
    /// `false` when the file already existed and was kept.
    pub created: bool,
}

/// Create the project skeleton in `dir`, named `name` (used in the default database URL).
pub fn init(dir: &Path, name: &str) -> std::io::Result<Vec<Created>> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let ctx = minijinja::context! { name => name };
    let render = |template: &str| env.render_str(template, &ctx).map_err(std::io::Error::other);
    let mut out = Vec::new();
    std::fs::create_dir_all(dir)?;
    for d in DIRS {
        let path = dir.join(d);
        std::fs::create_dir_all(&path)?;
        if d != &"pipelines" {
            out.push(write_new(&path.join(".gitkeep"), "")?);
        }
    }
    out.push(write_new(&dir.join(crate::project::PROJECT_FILE), &render(CONFITURE_KDL)?)?);
    out.push(write_new(&dir.join("pipelines/release.kdl"), &render(RELEASE_KDL)?)?);
    Ok(out)
}

fn write_new(path: &Path, content: &str) -> std::io::Result<Created> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, content.as_bytes())?;
            Ok(Created { path: path.to_path_buf(), created: true })
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(Created { path: path.to_path_buf(), created: false })
        }
        Err(e) => Err(e),
    }
}

/// A project name from a directory name: lowercase letters, digits and underscores.
pub fn project_name(dir: &Path) -> String {
    let raw = std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into());
    let mut name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "app_");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffold_is_complete_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let first = init(dir.path(), "shop").unwrap();
        assert!(first.iter().all(|c| c.created));
        let kdl = std::fs::read_to_string(dir.path().join("confiture.kdl")).unwrap();
        assert!(kdl.contains("project \"shop\""), "{kdl}");
        assert!(kdl.contains("{{ env.DATABASE_URL | default('postgresql://localhost/shop_development') }}"), "{kdl}");
        let release = std::fs::read_to_string(dir.path().join("pipelines/release.kdl")).unwrap();
        assert!(release.contains("url=\"{{ env.PROD_DATABASE_URL }}\""), "{release}");
        std::fs::write(dir.path().join("pipelines/release.kdl"), "mine").unwrap();
        let second = init(dir.path(), "shop").unwrap();
        assert!(second.iter().all(|c| !c.created));
        assert_eq!(std::fs::read_to_string(dir.path().join("pipelines/release.kdl")).unwrap(), "mine");
        assert_eq!(project_name(Path::new("/x/My-Shop")), "my_shop");
        assert_eq!(project_name(Path::new("/x/9lives")), "app_9lives");
    }
}
