//! `cargo bench --bench build`: the build stage on a generated 1,000-table schema, side by side with
//! `psql --single-transaction -f` of the same SQL, on the same server.
//!
//! Measured, end to end as a user runs them (process start included), each `CONFITURE_BENCH_RUNS`
//! times (default 5) into a fresh database:
//! - psql: `psql -X -q --single-transaction -v ON_ERROR_STOP=1 -f all.sql` into a database made
//!   by `createdb` (timed without and with the createdb);
//! - cold: `confiture build` of a schema the server has no template for (includes keeping the
//!   template), and with `--no-cache`;
//! - warm: `confiture build --drop-existing` of an unchanged schema (from the template cache).
//!
//! The server is an ephemeral cluster (in `CONFITURE_EPHEMERAL_DIR`, default /dev/shm when roomy)
//! with PostgreSQL's default durability (fsync on), or with `CONFITURE_BENCH_FAST=1` confiture's
//! ephemeral settings (fsync off). `CONFITURE_BENCH_TABLES` changes the size. Results print as a
//! Markdown table.

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

struct Stats {
    name: String,
    runs: Vec<Duration>,
}

impl Stats {
    fn median(&self) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(Duration::as_secs_f64).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }
    fn min(&self) -> f64 {
        self.runs.iter().map(Duration::as_secs_f64).fold(f64::INFINITY, f64::min)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runs = env_usize("CONFITURE_BENCH_RUNS", 5);
    let tables = env_usize("CONFITURE_BENCH_TABLES", 1000);
    let fast = std::env::var_os("CONFITURE_BENCH_FAST").is_some();
    let confiture = env!("CARGO_BIN_EXE_confiture");

    let dir = tempfile::tempdir().expect("a temp dir");
    let options = schema_gen::Options { tables, views: tables / 10, ..Default::default() };
    let files = schema_gen::write(dir.path(), &options).expect("generate the schema");
    let settings = if fast {
        Vec::new()
    } else {
        [
            ("fsync", "on"),
            ("synchronous_commit", "on"),
            ("full_page_writes", "on"),
            ("wal_level", "replica"),
            ("max_wal_senders", "10"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let cluster = Cluster::start(&ClusterOptions { settings, hba_lines: Vec::new() }).expect("start PostgreSQL");
    let server = cluster.conninfo("postgres");
    let (host, port) = (server.get("host").unwrap().to_string(), server.get("port").unwrap().to_string());
    let dsn = |db: &str| server.with_dbname(db).to_secret_string();
    let bindir = confiture_engine::pg::ephemeral::find_bindir().expect("PostgreSQL binaries");
    let pg_tool = |tool: &str| {
        let mut c = Command::new(bindir.join(tool));
        c.args(["-h", &host, "-p", &port, "-U", "postgres"]);
        c
    };
    let build = |db: &str, extra: &[&str]| {
        let mut c = Command::new(confiture);
        c.current_dir(dir.path()).args(["build", "-q", "--database-url", &dsn(db)]).args(extra);
        c
    };

    // The SQL psql runs: exactly what confiture runs, concatenated (file markers are comments).
    let sql = dir.path().join("all.sql");
    timed("write all.sql", &mut build("prepare", &["--no-cache", "--output", sql.to_str().unwrap()]));
    let statements = std::fs::read_to_string(&sql).unwrap().matches(';').count();

    // Interleaved, so drift in the machine's speed affects every variant alike.
    let mut psql = Stats { name: "psql --single-transaction -f".into(), runs: Vec::new() };
    let mut psql_createdb = Stats { name: "createdb + psql --single-transaction -f".into(), runs: Vec::new() };
    let mut cold = Stats { name: "confiture build, cold (keeps a template)".into(), runs: Vec::new() };
    let mut no_cache = Stats { name: "confiture build --no-cache".into(), runs: Vec::new() };
    for i in 0..runs {
        let db = format!("psql_{i}");
        let created = timed("createdb", pg_tool("createdb").arg(&db));
        let ran = timed(
            "psql",
            pg_tool("psql")
                .args(["-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-d", &db, "-f"])
                .arg(&sql),
        );
        psql.runs.push(ran);
        psql_createdb.runs.push(created + ran);
        // A different schema each time (one comment differs), so there is no template yet.
        std::fs::write(dir.path().join("db/schema/00_common/99_run.sql"), format!("-- cold run {i}\n")).unwrap();
        cold.runs.push(timed("cold build", &mut build(&format!("cold_{i}"), &[])));
        no_cache.runs.push(timed("build --no-cache", &mut build(&format!("nocache_{i}"), &["--no-cache"])));
    }
    let mut results = vec![psql, psql_createdb, cold, no_cache];

    let mut warm = Stats { name: "confiture build, warm (template cache)".into(), runs: Vec::new() };
    timed("first build", &mut build("warm", &[]));
    for _ in 0..runs {
        warm.runs.push(timed("warm build", &mut build("warm", &["--drop-existing"])));
    }
    results.push(warm);

    println!(
        "\n{} tables, {} views, {files} files, ~{statements} statements; PostgreSQL {} ({}) in {}; {runs} runs each\n",
        tables,
        tables / 10,
        cluster.version(),
        if fast { "fsync off: confiture's ephemeral settings" } else { "fsync on" },
        cluster.dir().parent().map(|p| p.display().to_string()).unwrap_or_default(),
    );
    println!("| what | median | min |\n|---|---:|---:|");
    for r in &results {
        println!("| {} | {:.2} s | {:.2} s |", r.name, r.median(), r.min());
    }
    let base = results[0].median();
    println!(
        "\ncold / psql = {:.3}, --no-cache / psql = {:.3}, warm = {:.2} s",
        results[2].median() / base,
        results[3].median() / base,
        results[4].median()
    );
}
