//! The project: `confiture.kdl` at its root (found from a directory upward) and its environments.
//!
//! ```kdl
//! environment "development" {
//!     database url="{{ env.DATABASE_URL | default('postgresql://localhost/shop_dev') }}"
//!     schema "db/schema" exclude="**/*.draft.sql"
//!     seeds "db/seeds/common" "db/seeds/development"
//! }
//! environment "test" { database ephemeral=#true }
//! environment "production" {
//!     database url="{{ env.PROD_DATABASE_URL }}"
//!     protected #true        // nothing may drop, truncate or rewrite it
//! }
//! ```
//!
//! Projects made for the Python Confiture keep working: `db/environments/NAME.yaml`
//! (`database_url`, `include_dirs`, `exclude_dirs`) is read when confiture.kdl has no environment
//! of that name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::kdl::decode::{self, Fields};
use crate::kdl::node::{self, Node, Value};
use crate::template::Templates;

pub const PROJECT_FILE: &str = "confiture.kdl";
const YAML_DIR: &str = "db/environments";

/// A project: its root directory and environments.
#[derive(Clone, Debug, Default)]
pub struct Project {
    pub root: PathBuf,
    /// The confiture.kdl that was read, if any.
    pub file: Option<PathBuf>,
    pub name: Option<String>,
    environments: BTreeMap<String, Environment>,
    /// Settings for stage types, by type (`lint { … }` in confiture.kdl): defaults every stage of
    /// that type starts from.
    defaults: BTreeMap<String, Node>,
    /// Named blocks for stage types (`anonymize "staging" { … }`: a profile), by type and name.
    named: BTreeMap<(String, String), Node>,
    /// confiture.kdl, for diagnostics about `defaults`.
    pub source: Option<SourceFile>,
}

/// Where an environment's database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseSpec {
    /// A connection string (already templated).
    Url(String),
    /// A database in the run's throwaway cluster.
    Ephemeral,
}

impl std::fmt::Debug for DatabaseSpec {
    /// The URL redacted: a spec's `Debug` must never print its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseSpec::Url(url) => f.debug_tuple("Url").field(&crate::redact::redact(url)).finish(),
            DatabaseSpec::Ephemeral => f.write_str("Ephemeral"),
        }
    }
}

/// A directory of SQL files, with glob filters relative to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirSpec {
    /// Relative to the project root (or absolute).
    pub path: PathBuf,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub recursive: bool,
}

impl DirSpec {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DirSpec { path: path.into(), include: Vec::new(), exclude: Vec::new(), recursive: true }
    }
}

/// A named environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    pub database: Option<DatabaseSpec>,
    /// `protected #true`: commands that drop, truncate or rewrite data refuse this database.
    pub protected: bool,
    /// Schema directories, in order.
    pub schema: Vec<DirSpec>,
    /// Seed directories, in order (missing ones are skipped).
    pub seeds: Vec<DirSpec>,
    /// The file that declared it.
    pub origin: PathBuf,
}

/// Why an environment is not available.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("no environment named `{0}`")]
    Unknown(String),
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
}

impl Project {
    /// Find the project root from `start` upward: the first directory with a confiture.kdl, or
    /// else with a `db/environments` directory (a Python Confiture project). Without either, the
    /// root is `start` and there are no environments.
    pub fn discover(start: &Path) -> Result<Project, Diagnostics> {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        for dir in start.ancestors() {
            if dir.join(PROJECT_FILE).is_file() || dir.join(YAML_DIR).is_dir() {
                return Project::load(dir);
            }
        }
        Ok(Project { root: start, ..Project::default() })
    }

    /// A project at `root` with no confiture.kdl (no environments).
    pub fn at(root: impl Into<PathBuf>) -> Project {
        Project { root: root.into(), ..Project::default() }
    }

    /// Load the project rooted at `root`.
    pub fn load(root: &Path) -> Result<Project, Diagnostics> {
        let mut project = Project { root: root.to_path_buf(), ..Project::default() };
        let file = root.join(PROJECT_FILE);
        if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Diagnostics::from(Diagnostic::error(
                    "project::unreadable",
                    (0..0).into(),
                    format!("cannot read {}: {e}", file.display()),
                ))
            })?;
            let source = SourceFile::new(display_path(&file), text);
            let mut d = Diagnostics::default();
            let templates = Templates::from_process_env();
            if let Some(nodes) = node::parse(&source, &templates, &mut d) {
                decode_project(&nodes, &mut project, &file, &mut d);
            }
            if d.has_errors() {
                return Err(d.finish(&source));
            }
            project.file = Some(file);
            project.source = Some(source);
        }
        Ok(project)
    }

    /// The defaults confiture.kdl gives for a stage type (`lint { … }`).
    pub fn stage_defaults(&self, stage_type: &str) -> Option<&Node> {
        self.defaults.get(stage_type)
    }

    /// A named block for a stage type (`anonymize "staging" { … }`).
    pub fn named_block(&self, stage_type: &str, name: &str) -> Option<&Node> {
        self.named.get(&(stage_type.to_string(), name.to_string()))
    }

    /// The names of a stage type's named blocks.
    pub fn named_blocks(&self, stage_type: &str) -> Vec<&str> {
        self.named.keys().filter(|(t, _)| t == stage_type).map(|(_, n)| n.as_str()).collect()
    }

    /// Every top-level node of confiture.kdl that is neither an environment nor a stage type.
    pub fn check_defaults(&self, stage_types: &[&str]) -> Diagnostics {
        let mut d = Diagnostics::default();
        let Some(source) = &self.source else { return d };
        let mut known = vec!["project", "environment"];
        known.extend_from_slice(stage_types);
        let named = self.named.iter().map(|((t, _), n)| (t, n));
        for (name, n) in self.defaults.iter().chain(named) {
            if !stage_types.contains(&name.as_str()) {
                d.push(
                    Diagnostic::error(
                        "pipeline::unknown-node",
                        n.name_span,
                        format!("unknown node `{name}` in confiture.kdl"),
                    )
                    .with_label("not known here")
                    .with_help(decode::one_of(
                        "nodes allowed in confiture.kdl (stage types give defaults)",
                        &known,
                        name,
                    ))
                    .with_source(source),
                );
            }
        }
        d
    }

    /// An environment: from confiture.kdl, else from `db/environments/NAME.yaml`.
    pub fn environment(&self, name: &str) -> Result<Environment, EnvironmentError> {
        if let Some(env) = self.environments.get(name) {
            return Ok(env.clone());
        }
        let yaml = self.root.join(YAML_DIR).join(format!("{name}.yaml"));
        let yml = yaml.with_extension("yml");
        for path in [yaml, yml] {
            if path.is_file() {
                return load_yaml_environment(name, &path, &self.root);
            }
        }
        Err(EnvironmentError::Unknown(name.to_string()))
    }

    /// The environments marked `protected`, from confiture.kdl and db/environments/*.yaml
    /// (unreadable YAML files are skipped here; using them reports the error).
    pub fn protected_environments(&self) -> Vec<Environment> {
        self.environment_names().iter().filter_map(|n| self.environment(n).ok()).filter(|e| e.protected).collect()
    }

    /// Every environment name, from confiture.kdl and db/environments/*.yaml.
    pub fn environment_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.environments.keys().cloned().collect();
        if let Ok(entries) = std::fs::read_dir(self.root.join(YAML_DIR)) {
            for entry in entries.flatten() {
                let path = entry.path();
                if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// A path relative to the project root (absolute paths stay as they are).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.root.join(path) }
    }
}

/// A path as shown to users: relative to the working directory when it is below it.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let shown = cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()).unwrap_or(path);
    shown.display().to_string()
}

fn decode_project(nodes: &[Node], project: &mut Project, file: &Path, d: &mut Diagnostics) {
    for n in nodes {
        match n.name.as_str() {
            "project" => {
                let mut f = Fields::new(n, "`project`");
                if let Some(e) = f.required_arg(0, "the project's name", d) {
                    project.name = decode::static_text(e, d);
                }
                f.finish(d);
            }
            "environment" => {
                if let Some(env) = decode_environment(n, file, d) {
                    if project.environments.contains_key(&env.name) {
                        d.push(
                            Diagnostic::error(
                                "pipeline::duplicate-name",
                                n.args.first().map_or(n.name_span, |a| a.span),
                                format!("environment `{}` is declared twice", env.name),
                            )
                            .with_label("declared again")
                            .with_help("give each environment a distinct name"),
                        );
                    }
                    project.environments.insert(env.name.clone(), env);
                }
            }
            // A named block for a stage type (a profile); checked like defaults.
            other if matches!(n.args.first().map(|a| &a.value), Some(Value::Text(_))) => {
                let name = n.args.first().and_then(|a| decode::static_text(a, d)).unwrap_or_default();
                if project.named.insert((other.to_string(), name.clone()), n.clone()).is_some() {
                    d.push(
                        Diagnostic::error(
                            "pipeline::duplicate-name",
                            n.args[0].span,
                            format!("`{other} \"{name}\"` is declared twice"),
                        )
                        .with_label("declared again")
                        .with_help(format!("give each `{other}` block a distinct name")),
                    );
                }
            }
            // Defaults for a stage type; checked against the registry by `check_defaults`.
            other => {
                if project.defaults.insert(other.to_string(), n.clone()).is_some() {
                    d.push(
                        Diagnostic::error("pipeline::duplicate-node", n.name_span, format!("`{other}` is given twice"))
                            .with_label("again here")
                            .with_help(format!("keep one `{other}` block")),
                    );
                }
            }
        }
    }
}

fn decode_environment(n: &Node, file: &Path, d: &mut Diagnostics) -> Option<Environment> {
    let mut f = Fields::new(n, "`environment`");
    let name = f.required_arg(0, "the environment's name", d).and_then(|e| decode::static_text(e, d));
    let database = f.child("database", d).and_then(|db| decode_database_spec(db, d));
    let protected = f.setting_bool("protected", d).unwrap_or(false);
    let mut schema = Vec::new();
    for s in f.children("schema") {
        schema.extend(decode_dirs(s, d));
    }
    let seeds_nodes = f.children("seeds");
    let mut seeds = Vec::new();
    for s in &seeds_nodes {
        seeds.extend(decode_dirs(s, d));
    }
    f.finish(d);
    let name = name?;
    if schema.is_empty() {
        schema.push(DirSpec::new("db/schema"));
    }
    if seeds_nodes.is_empty() {
        seeds = vec![DirSpec::new("db/seeds/common"), DirSpec::new(format!("db/seeds/{name}"))];
    }
    Some(Environment { name, database, protected, schema, seeds, origin: file.to_path_buf() })
}

/// `database url="…"` or `database ephemeral=#true` (also `database "url"`).
pub fn decode_database_spec(n: &Node, d: &mut Diagnostics) -> Option<DatabaseSpec> {
    let mut f = Fields::new(n, "`database`");
    let arg = f.arg(0);
    let url = f.prop("url", d);
    let ephemeral = f.prop("ephemeral", d).and_then(|e| decode::boolean(e, d));
    f.finish(d);
    match (arg.or(url), ephemeral) {
        (Some(u), None | Some(false)) => decode::static_text(u, d).map(DatabaseSpec::Url),
        (None, Some(true)) => Some(DatabaseSpec::Ephemeral),
        (Some(_), Some(true)) => {
            d.push(
                Diagnostic::error(
                    "pipeline::conflicting-settings",
                    n.name_span,
                    "a database is either `url=` or `ephemeral=#true`, not both",
                )
                .with_label("both given")
                .with_help("keep one of them"),
            );
            None
        }
        (None, _) => {
            d.push(
                Diagnostic::error(
                    "pipeline::missing-property",
                    n.name_span,
                    "a database needs `url=\"…\"` or `ephemeral=#true`",
                )
                .with_label("no location")
                .with_help("e.g. `database url=\"{{ env.DATABASE_URL }}\"` or `database ephemeral=#true`"),
            );
            None
        }
    }
}

/// `schema "dir" "dir2" include="glob" exclude="glob" { include "a" "b"; exclude "c" }`.
fn decode_dirs(n: &Node, d: &mut Diagnostics) -> Vec<DirSpec> {
    let mut f = Fields::new(n, format!("`{}`", n.name));
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    if let Some(t) = f.prop("include", d).and_then(|e| decode::static_text(e, d)) {
        include.push(t);
    }
    if let Some(t) = f.prop("exclude", d).and_then(|e| decode::static_text(e, d)) {
        exclude.push(t);
    }
    let recursive = f.prop("recursive", d).and_then(|e| decode::boolean(e, d)).unwrap_or(true);
    for c in f.children("include") {
        include.extend(c.args.iter().filter_map(|e| decode::static_text(e, d)));
    }
    for c in f.children("exclude") {
        exclude.extend(c.args.iter().filter_map(|e| decode::static_text(e, d)));
    }
    let args = f.rest_args(0);
    if args.is_empty() {
        d.push(
            Diagnostic::error(
                "pipeline::missing-argument",
                n.name_span,
                format!("`{}` needs at least one directory", n.name),
            )
            .with_label("no directory")
            .with_help(format!("e.g. `{} \"db/{}\"`", n.name, n.name)),
        );
    }
    let dirs = args
        .iter()
        .filter_map(|e| match &e.value {
            Value::Text(_) => decode::static_text(e, d),
            _ => decode::text(e, d).map(|t| t.raw.clone()),
        })
        .map(|p| DirSpec { path: PathBuf::from(p), include: include.clone(), exclude: exclude.clone(), recursive })
        .collect();
    f.finish(d);
    for pattern in include.iter().chain(&exclude) {
        if let Err(e) = globset::Glob::new(pattern) {
            d.push(
                Diagnostic::error("pipeline::invalid-glob", n.span, format!("invalid glob `{pattern}`: {e}"))
                    .with_label("in here")
                    .with_help("globs use `*`, `**`, `?` and `[abc]`, relative to the directory"),
            );
        }
    }
    dirs
}

#[derive(Deserialize)]
struct YamlEnvironment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    database_url: Option<String>,
    #[serde(default)]
    include_dirs: Vec<YamlDir>,
    #[serde(default)]
    exclude_dirs: Vec<String>,
    #[serde(default)]
    protected: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum YamlDir {
    Path(String),
    Detailed {
        path: String,
        #[serde(default)]
        include: Vec<String>,
        #[serde(default)]
        exclude: Vec<String>,
        #[serde(default = "yes")]
        recursive: bool,
    },
}

fn yes() -> bool {
    true
}

fn load_yaml_environment(name: &str, path: &Path, root: &Path) -> Result<Environment, EnvironmentError> {
    let err = |message: String| EnvironmentError::Yaml { path: PathBuf::from(display_path(path)), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let parsed: YamlEnvironment = serde_norway::from_str(&text).map_err(|e| err(e.to_string()))?;
    let _ = parsed.name;
    let excluded: Vec<PathBuf> = parsed.exclude_dirs.iter().map(|p| root.join(p)).collect();
    let mut schema = Vec::new();
    for dir in parsed.include_dirs {
        let mut spec = match dir {
            YamlDir::Path(p) => DirSpec::new(p),
            YamlDir::Detailed { path, include, exclude, recursive } => {
                DirSpec { path: PathBuf::from(path), include, exclude, recursive }
            }
        };
        // Python Confiture's exclude_dirs are directories anywhere under the includes.
        for ex in &excluded {
            if let Ok(rel) = ex.strip_prefix(root.join(&spec.path)) {
                spec.exclude.push(format!("{}/**", rel.display()));
            }
        }
        schema.push(spec);
    }
    if schema.is_empty() {
        schema.push(DirSpec::new("db/schema"));
    }
    let database = match parsed.database_url {
        Some(url) => {
            let rendered = Templates::from_process_env().render(&url, None).map_err(|e| err(e.message))?;
            Some(DatabaseSpec::Url(expand_env(&rendered)))
        }
        None => None,
    };
    Ok(Environment {
        name: name.to_string(),
        database,
        protected: parsed.protected,
        schema,
        seeds: vec![DirSpec::new("db/seeds/common"), DirSpec::new(format!("db/seeds/{name}"))],
        origin: path.to_path_buf(),
    })
}

/// `${VAR}` expansion, as Python Confiture's YAML files use it.
fn expand_env(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                let var = &rest[start + 2..start + 2 + end];
                out.push_str(&std::env::var(var).unwrap_or_default());
                rest = &rest[start + 3 + end..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
