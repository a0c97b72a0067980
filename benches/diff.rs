//! `cargo bench --bench diff`: introspect two 1,000-table databases and plan the diff between
//! them — the generated schema and a mutated copy (schema-gen's `mutate`, 5 % of tables changed,
//! tables added, views dropped) — with `confiture diff --from DSN --to DSN --format json`, the
//! whole command timed (process start, connections, both catalog reads, planning, output).
//! `CONFITURE_BENCH_RUNS` (default 7), `CONFITURE_BENCH_TABLES` (default 1000),
//! `CONFITURE_BENCH_MUTATE` (percent, default 5). With `CONFITURE_BENCH_MIGRA` set to migra's
//! executable (`pip install migra "psycopg[binary]"`), migra runs on the same two databases,
//! interleaved, for comparison.

use std::process::Command;
use std::time::{Duration, Instant};

use confiture_engine::pg::{self, testing};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

/// Build the generated schema into a new database `name` on the test server; its URL.
async fn build(name: &str, options: &schema_gen::Options) -> String {
    let server = testing::server();
    let admin = pg::connect(&server, "bench").await.unwrap();
    admin.client().batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    admin.client().batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let info = server.with_dbname(name);
    let s = pg::connect(&info, "bench").await.unwrap();
    let mut files: Vec<(String, String)> =
        schema_gen::files(options).into_iter().filter(|(p, _)| p.ends_with(".sql")).collect();
    files.sort();
    let sql: String = files.into_iter().map(|(_, text)| text + "\n").collect();
    s.client().batch_execute(&sql).await.unwrap();
    info.to_secret_string()
}

fn main() {
    let runs = env_usize("CONFITURE_BENCH_RUNS", 7);
    let tables = env_usize("CONFITURE_BENCH_TABLES", 1000);
    let mutate = env_usize("CONFITURE_BENCH_MUTATE", 5);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let base = schema_gen::Options { tables, views: tables / 10, ..Default::default() };
    let changed = schema_gen::Options { mutate, ..base.clone() };
    let (a, b) = rt.block_on(async { (build("bench_diff_a", &base).await, build("bench_diff_b", &changed).await) });
    let objects = |url: &str| {
        rt.block_on(async {
            let info = pg::ConnInfo::parse(url).unwrap().with_defaults().unwrap();
            let s = pg::connect(&info, "bench").await.unwrap();
            confiture_plugins::catalog::introspect(&s).await.unwrap().objects.len()
        })
    };
    println!(
        "diff: {tables} tables vs a copy with {mutate} % of them changed ({} and {} objects)",
        objects(&a),
        objects(&b)
    );

    let confiture = env!("CARGO_BIN_EXE_confiture");
    let migra = std::env::var_os("CONFITURE_BENCH_MIGRA");
    let sqlalchemy = |url: &str| {
        let i = pg::ConnInfo::parse(url).unwrap().with_defaults().unwrap();
        let mut u = format!(
            "postgresql://{}@/{}?host={}&port={}",
            i.get("user").unwrap_or("postgres"),
            i.dbname().unwrap_or("postgres"),
            i.get("host").unwrap_or("localhost"),
            i.get("port").unwrap_or("5432")
        );
        if let Some(pw) = i.get("password") {
            u.push_str(&format!("&password={pw}"));
        }
        u
    };
    let mut wall = Vec::new();
    let mut migra_wall = Vec::new();
    let mut migra_lines = 0;
    let mut last = serde_json::Value::Null;
    for _ in 0..runs {
        if let Some(m) = &migra {
            let t0 = Instant::now();
            let out =
                Command::new(m).args(["--unsafe", &sqlalchemy(&a), &sqlalchemy(&b)]).output().expect("migra runs");
            migra_wall.push(t0.elapsed());
            assert!(matches!(out.status.code(), Some(0 | 2)), "{}", String::from_utf8_lossy(&out.stderr));
            migra_lines = String::from_utf8_lossy(&out.stdout).matches(";\n").count();
        }
        let t0 = Instant::now();
        let out = Command::new(confiture)
            .args(["diff", "--from", &a, "--to", &b, "--format", "json"])
            .env("NO_COLOR", "1")
            .output()
            .expect("confiture runs");
        wall.push(t0.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        last = serde_json::from_slice(&out.stdout).expect("JSON");
    }
    let t = &last["timings_ms"];
    println!(
        "  confiture diff (whole command, median of {runs}): {:.3} s   [last run: read from {} ms, read to {} ms, plan {} ms]",
        median(wall.clone()),
        t["from"],
        t["to"],
        t["plan"]
    );
    if !migra_wall.is_empty() {
        println!(
            "  migra (same databases, median of {runs}):          {:.3} s   ({migra_lines} statements)   confiture / migra: {:.2}",
            median(migra_wall.clone()),
            median(wall.clone()) / median(migra_wall)
        );
    }
    println!(
        "  {} differences, {} statements, {} with hazards",
        last["changes"].as_array().map_or(0, Vec::len),
        last["statements"],
        last["hazardous"]
    );
}
