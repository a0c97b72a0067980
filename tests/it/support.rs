//! Helpers: run the binary, make throwaway projects, query the test server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use confiture_engine::pg::ConnInfo;

/// What a run of the binary printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// Everything printed, for "never shows X" checks.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The binary, with a quiet, colourless, predictable environment.
pub fn confiture() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confiture"));
    cmd.env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("CONFITURE_DATABASE_URL")
        .env_remove("CONFITURE_ENV")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the confiture binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A throwaway project directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Project { dir: tempfile::tempdir().expect("a temp dir") }
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    /// The binary, run in the project directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = confiture();
        cmd.current_dir(self.dir.path()).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// The shared test server's `postgres` database.
pub fn server() -> ConnInfo {
    confiture_engine::pg::testing::server()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database name nobody uses yet on the test server.
pub fn fresh_name(label: &str) -> String {
    format!("it_{}_{}_{}", std::process::id(), label, COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A connection string (with secrets, for handing to the binary) for database `name`.
pub fn url(name: &str) -> String {
    server().with_dbname(name).to_secret_string()
}

/// Run a query; rows of text values (NULL as None).
pub fn query(dsn: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let info = ConnInfo::parse(dsn).and_then(ConnInfo::with_defaults).unwrap();
    block_on(async move {
        let session = confiture_engine::pg::connect(&info, "confiture-tests").await.expect("connect");
        let messages = session.client().simple_query(sql).await.expect("query");
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// The single value of a one-row, one-column query.
pub fn scalar(dsn: &str, sql: &str) -> Option<String> {
    query(dsn, sql).into_iter().next().and_then(|r| r.into_iter().next()).flatten()
}

/// Whether database `name` exists on the test server.
pub fn database_exists(name: &str) -> bool {
    let sql = format!("SELECT count(*) FROM pg_database WHERE datname = '{}'", name.replace('\'', "''"));
    scalar(&server().to_secret_string(), &sql).as_deref() == Some("1")
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Validate a JSON value against a schema file in `schemas/`.
pub fn assert_valid(schema_file: &str, value: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(schema_file);
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{schema_file}: {errors:#?}\n{value:#}");
}

/// A project whose `dev` environment builds into database `db` on the test server.
pub fn project_with_env(db: &str) -> Project {
    let p = Project::new();
    p.write(
        "confiture.kdl",
        &format!(
            "environment \"dev\" {{\n    database url=\"{}\"\n}}\n",
            url(db).replace('\\', "\\\\").replace('"', "\\\"")
        ),
    );
    p
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use openssl::sha::sha256;
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
