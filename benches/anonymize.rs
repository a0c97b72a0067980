//! `cargo bench --bench anonymize`: what masking costs.
//!
//! 1. Every built-in strategy on one core: values per second through the column masker (what
//!    both the in-place run and sync call), on 1,000,000 realistic values per strategy
//!    (`CONFITURE_BENCH_VALUES`).
//! 2. The `mask-email` WASM plugin against the built-in `email` strategy on the same values, both
//!    in batches of 1,024 (`CONFITURE_GUESTS_DIR`, default plugins/guests/dist).
//! 3. `confiture anonymize run` of a 1,000,000-row table × 3 columns (e-mail with a unique index,
//!    name, phone; `CONFITURE_BENCH_ROWS`) against the SQL floor on a copy of the same table:
//!    `UPDATE users SET email = md5(email) || '@example.com', full_name = md5(full_name), phone =
//!    md5(phone)`. On a throwaway server (fsync off, as confiture's ephemeral cluster), median of
//!    `CONFITURE_BENCH_RUNS` (default 3). `CONFITURE_BENCH_SKIP_DB=1` runs 1 and 2 only, `CONFITURE_BENCH_ONLY_DB=1` 3 only.

use std::path::PathBuf;
use std::time::Instant;

use confiture_plugins::anonymize::key::Keyring;
use confiture_plugins::anonymize::plan::masker_for;
use confiture_plugins::anonymize::strategy::{ColumnType, TypeClass};

fn column(class: TypeClass) -> ColumnType {
    ColumnType { class, display: class.as_str().into(), ..ColumnType::text() }
}

/// (strategy, params, column class, value i)
type Case = (&'static str, &'static [(&'static str, &'static str)], TypeClass, fn(usize) -> String);

const CASES: &[Case] = &[
    ("email", &[], TypeClass::Text, |i| format!("user{i}.{:x}@corp{}.example.com", i * 7919, i % 13)),
    ("email", &[("keep-domain", "true")], TypeClass::Text, |i| {
        format!("user{i}.{:x}@corp{}.example.com", i * 7919, i % 13)
    }),
    ("person-name", &[], TypeClass::Text, |i| format!("Alice{} Martin{}", i % 1000, i)),
    ("first-name", &[], TypeClass::Text, |i| format!("Alice{i}")),
    ("last-name", &[], TypeClass::Text, |i| format!("Martin{i}")),
    ("phone", &[], TypeClass::Text, |i| {
        format!("+33 6 {:02} {:02} {:02} {:02}", i % 100, i / 100 % 100, i / 10000 % 100, i * 7 % 100)
    }),
    ("phone", &[("unique", "true")], TypeClass::Text, |i| {
        format!("+33 6 {:02} {:02} {:02} {:02}", i % 100, i / 100 % 100, i / 10000 % 100, i * 7 % 100)
    }),
    ("hash", &[], TypeClass::Text, |i| format!("token-{i}-{}", i * 31)),
    ("username", &[], TypeClass::Text, |i| format!("user_{i}")),
    ("company", &[], TypeClass::Text, |i| format!("Company {i}")),
    ("street-address", &[], TypeClass::Text, |i| format!("{} Main Street", i % 999)),
    ("city", &[], TypeClass::Text, |i| format!("City{i}")),
    ("postcode", &[], TypeClass::Text, |i| format!("{:05}", i % 100000)),
    ("ip", &[("keep-prefix", "16")], TypeClass::Inet, |i| {
        format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)
    }),
    ("mac", &[], TypeClass::Mac, |i| format!("08:00:2b:{:02x}:{:02x}:{:02x}", i / 65536 % 256, i / 256 % 256, i % 256)),
    ("uuid", &[], TypeClass::Uuid, |i| format!("a0eebc99-9c0b-4ef8-bb6d-{:012x}", i)),
    ("credit-card", &[], TypeClass::Text, |i| format!("4{:014}{}", i, 0)),
    ("iban", &[], TypeClass::Text, |_| "GB82WEST12345698765432".to_string()),
    ("national-id", &[], TypeClass::Text, |i| format!("{:03}-{:02}-{:04}", i % 1000, i / 1000 % 100, i % 10000)),
    ("date-shift", &[], TypeClass::Date, |i| format!("{}-{:02}-{:02}", 1950 + i % 60, 1 + i % 12, 1 + i % 28)),
    ("numeric-noise", &[], TypeClass::Numeric, |i| format!("{}.{:02}", i % 10000, i % 100)),
    ("integer-range", &[("min", "18"), ("max", "99")], TypeClass::Integer, |i| (i % 100).to_string()),
    ("lorem", &[], TypeClass::Text, |i| format!("a note of some length about order {i}")),
    ("regex-replace", &[("pattern", "[0-9]")], TypeClass::Text, |i| format!("ref-{i}")),
    ("partial-mask", &[], TypeClass::Text, |i| format!("4111111111{i:06}")),
    ("choice", &[("values", "a,b,c")], TypeClass::Text, |i| i.to_string()),
    ("redact", &[], TypeClass::Text, |i| format!("secret{i}")),
    ("constant", &[("value", "x")], TypeClass::Text, |i| i.to_string()),
    ("null", &[], TypeClass::Text, |i| i.to_string()),
    ("keep", &[("reason", "bench")], TypeClass::Text, |i| i.to_string()),
    ("bytea", &[], TypeClass::Bytea, |i| format!("\\x{:08x}{:08x}", i, i * 7)),
];

fn strategies() {
    let n: usize = std::env::var("CONFITURE_BENCH_VALUES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let keys = Keyring::from_secret("benchmark key, not a secret").expect("long enough");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!("## 1. strategies, one core, {n} values each (batches of 1,024)\n");
    println!("| strategy | params | ns/value | values/s |\n|---|---|---|---|");
    let mut email_ns = 0.0;
    for (name, params, class, make) in CASES {
        let m = masker_for(name, params, column(*class), &keys, &root).unwrap_or_else(|e| panic!("{name}: {e}"));
        let values: Vec<String> = (0..n).map(make).collect();
        let refs: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
        // Warm up, then time.
        std::hint::black_box(m.apply_batch(&refs[..1024.min(n)]).expect("masks"));
        let t = Instant::now();
        for chunk in refs.chunks(1024) {
            std::hint::black_box(m.apply_batch(std::hint::black_box(chunk)).expect("masks"));
        }
        let ns = t.elapsed().as_secs_f64() / n as f64 * 1e9;
        if *name == "email" && params.is_empty() {
            email_ns = ns;
        }
        let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("| {name} | {} | {ns:.0} | {:.2} M |", p.join(" "), 1e3 / ns);
    }

    let dir = std::env::var_os("CONFITURE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/guests/dist"));
    let plugin = dir.join("mask_email.wasm");
    let emails: Vec<String> = (0..n).map(CASES[1].3).collect();
    let wasm_ns = std::thread::spawn(move || {
        let keys = Keyring::from_secret("benchmark key, not a secret").expect("long enough");
        let m = masker_for("wasm", &[("plugin", &plugin.display().to_string())], column(TypeClass::Text), &keys, &root)
            .expect("the plugin loads");
        let builtin =
            masker_for("email", &[("keep-domain", "true")], column(TypeClass::Text), &keys, &root).expect("email");
        let refs: Vec<Option<&str>> = emails.iter().map(|v| Some(v.as_str())).collect();
        std::hint::black_box(m.apply_batch(&refs[..1024]).expect("masks"));
        let t = Instant::now();
        for chunk in refs.chunks(1024) {
            std::hint::black_box(m.apply_batch(chunk).expect("masks"));
        }
        let wasm = t.elapsed().as_secs_f64() / emails.len() as f64 * 1e9;
        let t = Instant::now();
        for chunk in refs.chunks(1024) {
            std::hint::black_box(builtin.apply_batch(chunk).expect("masks"));
        }
        (wasm, t.elapsed().as_secs_f64() / emails.len() as f64 * 1e9)
    })
    .join()
    .expect("bench thread");
    println!("\n## 2. mask-email (WASM) vs the built-in email strategy (keep-domain), same values\n");
    println!("| | ns/value | values/s |\n|---|---|---|");
    println!("| built-in email keep-domain=#true | {:.0} | {:.2} M |", wasm_ns.1, 1e3 / wasm_ns.1);
    println!("| mask-email.wasm | {:.0} | {:.2} M |", wasm_ns.0, 1e3 / wasm_ns.0);
    println!(
        "\nWASM throughput = {:.0} % of built-in (target ≥ 50 %); built-in email (default) {:.0} ns",
        wasm_ns.1 / wasm_ns.0 * 100.0,
        email_ns
    );
}

fn main() {
    if std::env::var_os("CONFITURE_BENCH_ONLY_DB").is_none() {
        strategies();
    }
    if std::env::var_os("CONFITURE_BENCH_SKIP_DB").is_none() {
        in_place();
    }
}

fn in_place() {
    use confiture_engine::pg::ephemeral::{Cluster, ClusterOptions};
    let rows: usize = std::env::var("CONFITURE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = std::env::var("CONFITURE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let settings =
        [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off"), ("max_wal_size", "4GB")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let cluster = Cluster::start(&ClusterOptions { settings, hba_lines: Vec::new() }).expect("start PostgreSQL");
    let base = cluster.conninfo("postgres");
    let exec = |db: &str, sql: &str| {
        let info = base.with_dbname(db);
        let sql = sql.to_string();
        rt.block_on(async move {
            let s = confiture_engine::pg::connect(&info, "bench").await.expect("connect");
            s.client().batch_execute(&sql).await.expect("sql");
        })
    };
    exec("postgres", "CREATE DATABASE users_template");
    exec(
        "users_template",
        &format!(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, full_name text, phone text);
             INSERT INTO users SELECT i, 'user' || i || '.' || substr(md5(i::text), 1, 6) || '@corp.example',
                    'Alice' || (i % 1000) || ' Martin' || i,
                    '+33 6 ' || lpad((i % 100)::text, 2, '0') || ' ' || lpad((i / 100 % 100)::text, 2, '0') || ' '
                    || lpad((i / 10000 % 100)::text, 2, '0') || ' ' || lpad((i * 7 % 100)::text, 2, '0')
             FROM generate_series(1, {rows}) i"
        ),
    );
    exec("users_template", "VACUUM ANALYZE users");
    let project = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        project.path().join("confiture.kdl"),
        format!(
            "environment \"bench\" {{\n    database url=\"{}\"\n}}\nanonymize \"bench\" {{\n    key env=\"CONFITURE_ANON_KEY\"\n    table \"users\" {{\n        column \"email\" \"email\"\n        column \"full_name\" \"person-name\"\n        column \"phone\" \"phone\"\n    }}\n}}\n",
            base.with_dbname("users_bench").to_secret_string().replace('"', "\\\"")
        ),
    )
    .expect("write confiture.kdl");
    let mut floor = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..runs {
        exec("postgres", "DROP DATABASE IF EXISTS users_bench");
        exec("postgres", "CREATE DATABASE users_bench TEMPLATE users_template");
        let t = Instant::now();
        exec(
            "users_bench",
            "UPDATE users SET email = md5(email) || '@example.com', full_name = md5(full_name), phone = md5(phone)",
        );
        floor.push(t.elapsed().as_secs_f64());
        exec("postgres", "DROP DATABASE users_bench");
        exec("postgres", "CREATE DATABASE users_bench TEMPLATE users_template");
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_confiture"))
            .args(["anonymize", "run", "--env", "bench", "--quiet"])
            .current_dir(project.path())
            .env("CONFITURE_ANON_KEY", "benchmark key, not a secret")
            .output()
            .expect("confiture runs");
        ours.push(t.elapsed().as_secs_f64());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The masked table is whole and still unique.
    let info = base.with_dbname("users_bench");
    let (distinct, masked): (i64, i64) = rt.block_on(async move {
        let s = confiture_engine::pg::connect(&info, "bench").await.expect("connect");
        let r = s
            .client()
            .query_one(
                "SELECT count(DISTINCT email), count(*) FILTER (WHERE email LIKE '%@example.com') FROM users",
                &[],
            )
            .await
            .expect("count");
        (r.get(0), r.get(1))
    });
    assert_eq!((distinct, masked), (rows as i64, rows as i64), "every e-mail masked, all distinct");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (f, o) = (median(&mut floor), median(&mut ours));
    println!("\n## 3. in place, {rows} rows × 3 columns (median of {runs})\n");
    println!("| | seconds | rows/s |\n|---|---|---|");
    println!("| SQL floor: UPDATE … md5(…) | {f:.2} | {:.0} |", rows as f64 / f);
    println!("| confiture anonymize run | {o:.2} | {:.0} |", rows as f64 / o);
    println!("\nconfiture / floor = {:.2}× (target ≤ 1.5×); {distinct} distinct e-mails after masking", o / f);
}
