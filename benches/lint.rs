//! `cargo bench --bench lint`: `confiture lint` on the generated 1,000-table schema, side by side
//! with squawk (`pip install squawk-cli`; set `CONFITURE_BENCH_SQUAWK` to its executable) on the
//! same files: wall time (human output and JSON output) and findings per rule.
//! `CONFITURE_BENCH_RUNS` (default 7) and `CONFITURE_BENCH_TABLES` (default 1000).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Run `cmd` (exit codes 0–1 are findings, not failures); its wall time and stdout.
fn timed(cmd: &mut Command) -> (Duration, String) {
    let t0 = Instant::now();
    let out = cmd.output().expect("the command runs");
    let elapsed = t0.elapsed();
    assert!(matches!(out.status.code(), Some(0..=3)), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (elapsed, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.extension().is_some_and(|e| e == "sql") {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

fn main() {
    let runs = env_usize("CONFITURE_BENCH_RUNS", 7);
    let tables = env_usize("CONFITURE_BENCH_TABLES", 1000);
    let squawk = std::env::var_os("CONFITURE_BENCH_SQUAWK");
    let confiture = env!("CARGO_BIN_EXE_confiture");
    let dir = tempfile::tempdir().expect("a temp dir");
    let options = schema_gen::Options { tables, views: tables / 10, ..Default::default() };
    schema_gen::write(dir.path(), &options).expect("generate the schema");
    let files = files_under(&dir.path().join("db/schema"));

    let ours = |json: bool| {
        let mut c = Command::new(confiture);
        c.current_dir(dir.path()).env("NO_COLOR", "1").args(["lint", "db/schema"]);
        if json {
            c.args(["--format", "json"]);
        }
        c
    };
    let theirs = |json: bool| {
        let mut c = Command::new(squawk.as_ref().expect("checked"));
        c.current_dir(dir.path()).env("NO_COLOR", "1").args(&files);
        if json {
            c.args(["--reporter", "json"]);
        }
        c
    };

    let mut rows = Vec::new();
    for json in [false, true] {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..runs {
            a.push(timed(&mut ours(json)).0);
            if squawk.is_some() {
                b.push(timed(&mut theirs(json)).0);
            }
        }
        rows.push((if json { "JSON" } else { "human" }, median(a), (!b.is_empty()).then(|| median(b))));
    }

    // Findings per rule.
    let (_, ours_json) = timed(&mut ours(true));
    let v: serde_json::Value = serde_json::from_str(&ours_json).expect("confiture's JSON");
    let mut ours_rules: BTreeMap<String, usize> = BTreeMap::new();
    for f in v["stages"][0]["outputs"]["findings"].as_array().unwrap() {
        *ours_rules.entry(f["rule"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let mut theirs_rules: BTreeMap<String, usize> = BTreeMap::new();
    if squawk.is_some() {
        let (_, out) = timed(&mut theirs(true));
        let v: serde_json::Value = serde_json::from_str(&out).expect("squawk's JSON");
        for f in v.as_array().unwrap() {
            *theirs_rules.entry(f["rule_name"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }

    println!("\n{tables} tables, {} views, {} files; {runs} runs each, medians\n", tables / 10, files.len());
    println!("| output | confiture lint | squawk | confiture / squawk |\n|---|---:|---:|---:|");
    for (what, a, b) in &rows {
        match b {
            Some(b) => println!("| {what} | {a:.3} s | {b:.3} s | {:.2} |", a / b),
            None => println!("| {what} | {a:.3} s | – | – |"),
        }
    }
    println!("\nconfiture findings ({}):", ours_rules.values().sum::<usize>());
    for (r, n) in &ours_rules {
        println!("  {n:>6}  {r}");
    }
    if squawk.is_some() {
        println!("squawk findings ({}):", theirs_rules.values().sum::<usize>());
        for (r, n) in &theirs_rules {
            println!("  {n:>6}  {r}");
        }
    }
}
