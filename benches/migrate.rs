//! `cargo bench --bench migrate`: `confiture migrate up` of 200 migrations (each `CREATE TABLE` +
//! `CREATE INDEX`) against the SQL floor — the same files run by psql in one session, one
//! transaction per file — on the same server, into a fresh database each run.
//!
//! Set `CONFITURE_BENCH_PYCONFITURE` to the `confiture` executable of the Python Confiture
//! (`python3 -m venv .venv && .venv/bin/pip install fraiseql-confiture`) to time it on the same
//! files. `CONFITURE_BENCH_RUNS` (default 5), `CONFITURE_BENCH_MIGRATIONS` (default 200),
//! `CONFITURE_BENCH_FAST=1` (fsync off) and `CONFITURE_EPHEMERAL_DIR` as for the build benchmark.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use confiture_engine::pg::ephemeral::{Cluster, ClusterOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn timed(what: &str, cmd: &mut Command) -> Duration {
    let t0 = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let elapsed = t0.elapsed();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn min(v: &[Duration]) -> f64 {
    v.iter().map(Duration::as_secs_f64).fold(f64::INFINITY, f64::min)
}

fn write_migrations(dir: &Path, n: usize) -> std::io::Result<()> {
    let migrations = dir.join("db/migrations");
    std::fs::create_dir_all(&migrations)?;
    for i in 1..=n {
        let stem = format!("{:014}_table_{i:03}", 20260101000000u64 + i as u64);
        std::fs::write(
            migrations.join(format!("{stem}.up.sql")),
            format!(
                "CREATE TABLE t{i:03} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    name text NOT NULL,\n    \
                 created_at timestamptz NOT NULL DEFAULT now()\n);\nCREATE INDEX t{i:03}_created_at_idx ON t{i:03} (created_at);\n"
            ),
        )?;
        std::fs::write(migrations.join(format!("{stem}.down.sql")), format!("DROP TABLE t{i:03};\n"))?;
    }
    Ok(())
}

fn main() {
    let runs = env_usize("CONFITURE_BENCH_RUNS", 5);
    let n = env_usize("CONFITURE_BENCH_MIGRATIONS", 200);
    let fast = std::env::var_os("CONFITURE_BENCH_FAST").is_some();
    let python = std::env::var_os("CONFITURE_BENCH_PYCONFITURE");
    let confiture = env!("CARGO_BIN_EXE_confiture");

    let dir = tempfile::tempdir().expect("a temp dir");
    write_migrations(dir.path(), n).expect("write migrations");
    // The floor: one psql session, one transaction per file.
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("db/migrations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".up.sql"))
        .collect();
    files.sort();
    let driver = dir.path().join("floor.sql");
    let script: String = files.iter().map(|f| format!("BEGIN;\n\\i {}\nCOMMIT;\n", f.display())).collect();
    std::fs::write(&driver, script).unwrap();

    let settings = if fast {
        Vec::new()
    } else {
        [("fsync", "on"), ("synchronous_commit", "on"), ("full_page_writes", "on")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let cluster = Cluster::start(&ClusterOptions { settings, hba_lines: Vec::new() }).expect("start PostgreSQL");
    let server = cluster.conninfo("postgres");
    let (host, port) = (server.get("host").unwrap().to_string(), server.get("port").unwrap().to_string());
    let bindir = confiture_engine::pg::ephemeral::find_bindir().expect("PostgreSQL binaries");
    let pg_tool = |tool: &str| {
        let mut c = Command::new(bindir.join(tool));
        c.args(["-h", &host, "-p", &port, "-U", "postgres"]);
        c
    };
    let dsn = |db: &str| server.with_dbname(db).to_secret_string();

    let (mut floor, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let db = format!("floor_{i}");
        timed("createdb", pg_tool("createdb").arg(&db));
        floor.push(timed(
            "psql",
            pg_tool("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db, "-f"]).arg(&driver),
        ));

        let db = format!("confiture_{i}");
        timed("createdb", pg_tool("createdb").arg(&db));
        ours.push(timed(
            "confiture migrate up",
            Command::new(confiture).current_dir(dir.path()).args(["migrate", "up", "-q", "--database-url", &dsn(&db)]),
        ));

        if let Some(py) = &python {
            let db = format!("python_{i}");
            timed("createdb", pg_tool("createdb").arg(&db));
            let url = format!("postgresql://postgres@/{db}?host={host}&port={port}");
            theirs.push(timed(
                "Python confiture migrate up",
                Command::new(py).current_dir(dir.path()).args([
                    "migrate",
                    "up",
                    "--no-config",
                    "--database-url",
                    &url,
                    "--migrations-dir",
                    "db/migrations",
                ]),
            ));
        }
    }

    println!(
        "\n{n} migrations (CREATE TABLE + CREATE INDEX each); PostgreSQL {} ({}) in {}; {runs} runs each\n",
        cluster.version(),
        if fast { "fsync off" } else { "fsync on" },
        cluster.dir().parent().map(|p| p.display().to_string()).unwrap_or_default()
    );
    println!("| what | median | min |\n|---|---:|---:|");
    println!(
        "| psql, one session, one transaction per file (the floor) | {:.3} s | {:.3} s |",
        median(&floor),
        min(&floor)
    );
    println!("| confiture migrate up | {:.3} s | {:.3} s |", median(&ours), min(&ours));
    if !theirs.is_empty() {
        println!("| Python Confiture migrate up | {:.3} s | {:.3} s |", median(&theirs), min(&theirs));
    }
    println!(
        "\nconfiture / floor = {:.3}; overhead per migration = {:.2} ms (median over the floor, incl. process start)",
        median(&ours) / median(&floor),
        (median(&ours) - median(&floor)) * 1000.0 / n as f64
    );
    if !theirs.is_empty() {
        println!("Python Confiture / floor = {:.3}", median(&theirs) / median(&floor));
    }
}
