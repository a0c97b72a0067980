//! Fuzzing on stable Rust: the KDL pipeline loader, the connection-string parser (and redaction)
//! and the SQL statement splitter get mutated inputs for a bounded time, and must never panic.
//! Every failure is a diagnostic, an error value, or a clean parse.
//!
//! The harness is mutational with a cheap feedback signal instead of coverage: an input whose
//! outcome (diagnostic codes, error kind, statement classes) was not seen before joins the
//! corpus, so mutation drifts toward new behaviour. Seeds are the repository's own pipelines and
//! SQL plus a dictionary of tokens per target.
//!
//! - `CONFITURE_FUZZ_SECONDS` (default 2): time per target. `.ci/run` gives each 20 s; a long
//!   hunt is `CONFITURE_FUZZ_SECONDS=600 cargo test -p confiture-plugins --test fuzz --release`.
//! - `CONFITURE_FUZZ_SEED`: replay a run (the seed is printed when a target fails).
//! - A panicking input is written to `$CARGO_TARGET_TMPDIR/fuzz-crashes/` and printed; add it to
//!   `tests/fuzz/regressions/<target>/`, where every file is replayed on every run.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confiture_engine::diag::SourceFile;
use confiture_engine::pg::{ConnInfo, dsn};
use confiture_engine::pipeline::{self, LoadOptions};
use confiture_engine::project::Project;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// One fuzz target: what it is called, its seeds and dictionary, and what it runs.
struct Target {
    name: &'static str,
    seeds: Vec<String>,
    dictionary: &'static [&'static str],
    /// Runs one input; returns a signature of what happened (panics are the failures).
    run: fn(&str) -> String,
}

fn budget() -> Duration {
    let secs = std::env::var("CONFITURE_FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.0))
}

fn seed() -> u64 {
    std::env::var("CONFITURE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
    })
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, ext: &str, out: &mut Vec<String>) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.path().extension().is_some_and(|e| e == ext)
            && let Ok(text) = std::fs::read_to_string(entry.path())
        {
            out.push(text);
        }
    }
}

fn regressions(target: &str) -> Vec<(PathBuf, String)> {
    let dir = manifest().join("tests/fuzz/regressions").join(target);
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let bytes = std::fs::read(e.path()).ok()?;
                    Some((e.path(), String::from_utf8_lossy(&bytes).into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn mutate(rng: &mut Rng, input: &str, corpus: &[String], dictionary: &[&str]) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(9) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.insert(at, rng.next() as u8),
            2 | 3 => {
                let token = dictionary[rng.below(dictionary.len())];
                bytes.splice(at..at, token.bytes());
            }
            4 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            5 if !bytes.is_empty() => {
                let start = rng.below(bytes.len());
                let end = (start + 1 + rng.below(32)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(at..at, piece);
            }
            6 if !corpus.is_empty() => {
                let other = corpus[rng.below(corpus.len())].as_bytes();
                let start = rng.below(other.len());
                let end = (start + rng.below(64)).min(other.len());
                bytes.splice(at..at, other[start..end].iter().copied());
            }
            7 => bytes.truncate(at),
            _ => {
                let weird = ["\u{0}", "\u{feff}", "é", "日本", "🔑", "\r\n", "\\", "\"", "'", "$$", "{{", "}}"];
                bytes.splice(at..at, weird[rng.below(weird.len())].bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Save a failing input where the message says; returns the path.
fn save(target: &str, input: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let digest: u64 = input.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{target}-{digest:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// How long one input may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// Watch the input being run: one that takes longer than [`HANG`] is saved and the process exits
/// failing (a hang cannot be unwound).
fn watchdog(target: &'static str, current: Arc<std::sync::Mutex<Option<(Instant, String)>>>, seed: u64) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let guard = current.lock().unwrap_or_else(|e| e.into_inner());
            match &*guard {
                Some((since, input)) if since.elapsed() > HANG => {
                    let path = save(target, input);
                    eprintln!(
                        "fuzz target `{target}` spent over {HANG:?} on one input (CONFITURE_FUZZ_SEED={seed}); saved to {}:\n{input:?}",
                        path.display()
                    );
                    std::process::exit(101);
                }
                None if Arc::strong_count(&current) == 1 => return,
                _ => {}
            }
        }
    });
}

fn crash(target: &str, input: &str, seed: u64) -> ! {
    let path = save(target, input);
    panic!(
        "fuzz target `{target}` panicked (CONFITURE_FUZZ_SEED={seed}); input saved to {} — add it to \
         plugins/builtin/tests/fuzz/regressions/{target}/:\n{input:?}",
        path.display()
    );
}

fn fuzz(t: Target) {
    let started = Instant::now();
    let seed = seed();
    for (path, input) in regressions(t.name) {
        if catch_unwind(AssertUnwindSafe(|| (t.run)(&input))).is_err() {
            panic!("regression {} panics again", path.display());
        }
    }
    let mut rng = Rng(seed);
    let mut corpus = t.seeds.clone();
    let mut seen: HashSet<String> = HashSet::new();
    for input in &t.seeds {
        match catch_unwind(AssertUnwindSafe(|| (t.run)(input))) {
            Ok(signature) => {
                seen.insert(signature);
            }
            Err(_) => crash(t.name, input, seed),
        }
    }
    let (budget, mut runs) = (budget(), 0u64);
    let current = Arc::new(std::sync::Mutex::new(None));
    watchdog(t.name, current.clone(), seed);
    while started.elapsed() < budget {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus, t.dictionary);
        runs += 1;
        *current.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), input.clone()));
        let outcome = catch_unwind(AssertUnwindSafe(|| (t.run)(&input)));
        *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match outcome {
            Ok(signature) => {
                if seen.insert(signature) && input.len() < 64 * 1024 && corpus.len() < 4096 {
                    corpus.push(input);
                }
            }
            Err(_) => crash(t.name, &input, seed),
        }
    }
    eprintln!(
        "fuzz {}: {runs} inputs in {:.1}s, {} outcomes seen, corpus {} (seed {seed})",
        t.name,
        started.elapsed().as_secs_f64(),
        seen.len(),
        corpus.len()
    );
}

fn run_pipeline(text: &str) -> String {
    let options = LoadOptions {
        set: vec![("region".into(), "eu".into())],
        env: Some([("HOME".to_string(), "/home/fuzz".to_string())].into_iter().collect()),
        project: Some(Arc::new(Project::default())),
    };
    let source = SourceFile::new("fuzz.kdl", text);
    match pipeline::load_source(source, Arc::new(Project::default()), &confiture_plugins::registry(), &options) {
        Ok(p) => {
            // Everything a loaded pipeline offers without a database must work too.
            let plan = confiture_engine::report::PlanReport::of(&p);
            let _ = serde_json::to_string(&plan).expect("a plan serializes");
            let _ = format!("{p:?}");
            format!("ok {} stages {} hooks", p.stages.len(), p.hooks.len())
        }
        Err(d) => {
            let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
            let _ = confiture_engine::diag::render_all(&d, &handler);
            let mut codes: Vec<String> = d.iter().map(|x| x.code.to_string()).collect();
            codes.sort();
            codes.dedup();
            codes.join(",")
        }
    }
}

fn run_dsn(text: &str) -> String {
    let masked = dsn::mask(text);
    assert_eq!(masked.len(), text.len(), "mask keeps byte offsets");
    let _ = dsn::redact(text);
    match ConnInfo::parse(text) {
        Ok(info) => {
            let shown = info.to_string();
            // The password may appear as part of something else (`6432`, the port); it must not
            // appear once more than it does when there is no password at all.
            if let Some(pw) = info.get("password").filter(|p| p.chars().count() >= 4) {
                let without = info.clone().without("password").to_string();
                assert!(
                    shown.matches(pw).count() <= without.matches(pw).count(),
                    "Display shows the password: {shown}"
                );
            }
            let _ = info.to_secret_string();
            let _ = info.to_config();
            let _ = format!("{info:?}");
            let reparsed = ConnInfo::parse(&info.to_secret_string());
            format!("ok {} {}", info.names_database(), reparsed.is_ok())
        }
        Err(e) => e.to_string().split(['(', ':']).nth(1).unwrap_or("").trim().chars().take(30).collect(),
    }
}

fn run_sql(text: &str) -> String {
    match confiture_engine::sql::parse(text) {
        Ok(statements) => {
            let mut kinds = Vec::new();
            for (s, _) in &statements {
                assert!(s.offset + s.len <= text.len(), "a statement ends inside the text");
                let _ = s.text(text);
                kinds.push(format!("{:?}{}", s.kind, s.index_build.is_some()));
            }
            kinds.sort();
            kinds.dedup();
            kinds.join(",")
        }
        Err(e) => {
            if let Some(o) = e.offset {
                assert!(o <= text.len(), "an error offset past the end");
            }
            let _ = e.help(text);
            "error".to_string()
        }
    }
}

const KDL_WORDS: &[&str] = &[
    "stage ",
    "\"build\" ",
    "uses=\"build\" ",
    "uses=\"migrate\" ",
    "uses=\"lint\" ",
    "uses=\"diff\" ",
    "uses=\"hooks\" ",
    "needs=\"a\" ",
    "{ ",
    "} ",
    "; ",
    "\n",
    "database ",
    "ephemeral=#true ",
    "url=\"postgresql://u:p@h/db\" ",
    "protected=#true ",
    "hook ",
    "on=\"before-stage\" ",
    "command=\"true\" ",
    "wasm=\"x.wasm\" ",
    "sql=\"SELECT 1\" ",
    "vars ",
    "pipeline ",
    "#true ",
    "#false ",
    "#null ",
    "1h ",
    "\"5s\" ",
    "\"30d\" ",
    "-1 ",
    "1e999 ",
    "{{ env.HOME }}",
    "{{ vars.region }}",
    "{{ stages.a.outputs.url }}",
    "{{ nope }}",
    "{% if %}",
    "r#\"",
    "\"#",
    "/* ",
    " */",
    "// ",
    "/-",
    "mode \"dry-run-execute\" ",
    "lock-timeout \"5s\" ",
    "from \"env:x\" ",
    "to \"schema\" ",
    "param \"k\" \"v\" ",
    "env \"K\" \"V\" ",
    "timeout \"1s\" ",
    "fuel 1 ",
    "memory \"1GiB\" ",
    "continue-on-error=#true ",
];

const DSN_WORDS: &[&str] = &[
    "postgresql://",
    "postgres://",
    "u",
    ":",
    "@",
    "/",
    "?",
    "&",
    "=",
    "%",
    "%2F",
    "%40",
    "%zz",
    "[",
    "]",
    "::1",
    ",",
    "host=",
    "port=",
    "dbname=",
    "user=",
    "password=",
    "'",
    "\\",
    " ",
    "sslmode=",
    "verify-full",
    "sslrootcert=system",
    "hostaddr=",
    "999999",
    "-1",
    "target_session_attrs=",
    "channel_binding=",
    "options=-c x=y",
    "ssl=true",
];

const SQL_WORDS: &[&str] = &[
    "CREATE TABLE t (id int);",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
    "REINDEX (CONCURRENTLY) TABLE t;",
    "REINDEX INDEX CONCURRENTLY i;",
    "BEGIN;",
    "COMMIT;",
    "$$",
    "$x$",
    "E'\\''",
    "'",
    "\"",
    "--",
    "/*",
    "*/",
    ";",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
    "ALTER TYPE e ADD VALUE 'x';",
    "VACUUM;",
    "CREATE DATABASE d;",
    "ALTER TABLE t DETACH PARTITION p CONCURRENTLY;",
    "\\i file.sql",
    "COPY t FROM STDIN;",
    "SELECT 1",
    "DO $$ BEGIN END $$;",
    "U&'\\0041'",
    "B'101'",
    "X'ff'",
    "1e",
    "::",
    "(",
    ")",
];

#[test]
fn the_pipeline_loader_never_panics() {
    let mut seeds = Vec::new();
    files(&manifest().join("../../pipelines"), "kdl", &mut seeds);
    files(&manifest().join("../../engine/tests/pipelines"), "kdl", &mut seeds);
    files(&manifest().join("../../engine/scaffold"), "kdl", &mut seeds);
    seeds.push(String::new());
    fuzz(Target { name: "kdl", seeds, dictionary: KDL_WORDS, run: run_pipeline });
}

#[test]
fn the_dsn_parser_never_panics() {
    let seeds = [
        "postgresql://alice:s3cr%40t@db.example.com:6432/shop?sslmode=verify-full&application_name=x",
        "postgresql://[::1]:5433/x",
        "postgresql://a:1,b:2/x",
        "postgresql:///app?host=/tmp",
        "host = /tmp  user='o\\'brien' password='a b' dbname=x",
        "postgresql://u:pa/ss@h/db",
        "u:secret@h/db",
        "",
    ];
    fuzz(Target { name: "dsn", seeds: seeds.map(String::from).to_vec(), dictionary: DSN_WORDS, run: run_dsn });
}

#[test]
fn the_sql_splitter_never_panics() {
    let mut seeds = Vec::new();
    files(&manifest().join("../../pipelines/db"), "sql", &mut seeds);
    seeds.push("-- header\nCREATE TABLE a (id int);\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\nSELECT ';'".into());
    seeds.push(String::new());
    fuzz(Target { name: "sql", seeds, dictionary: SQL_WORDS, run: run_sql });
}
