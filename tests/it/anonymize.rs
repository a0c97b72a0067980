//! `confiture anonymize` against a real PostgreSQL, on a production-like shop
//! (tests/data/anonymize/shop.sql): determinism, keys, joins, uniqueness, column limits, the
//! coverage gate, the leak check, bad profiles, WASM strategies, and a run killed with SIGKILL.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Output, Project, assert_valid, fresh_name, query, scalar, server, url};

const KEY: &str = "a test key for the anonymize tests, long enough";
const ROWS: usize = 3000;

/// A template database holding the shop, made once per test binary.
fn template() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let name = fresh_name("shop_template");
        query(&server().to_secret_string(), &format!("CREATE DATABASE {name}"));
        let sql = include_str!("../data/anonymize/shop.sql").replace("__ROWS__", &ROWS.to_string());
        query(&url(&name), &sql);
        name
    })
}

/// A fresh copy of the shop.
fn shop(label: &str) -> String {
    let db = fresh_name(label);
    // Copying needs the template idle: retry while an earlier test's connection closes.
    for _ in 0..50 {
        let sql = format!("CREATE DATABASE {db} TEMPLATE {}", template());
        let info = server();
        let ok = crate::support::block_on(async move {
            let s = confiture_engine::pg::connect(&info, "confiture-tests").await.expect("connect");
            s.client().batch_execute(&sql).await.is_ok()
        });
        if ok {
            return db;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot copy the template");
}

const PROFILE: &str = r#"
anonymize "staging" {
    key env="CONFITURE_ANON_KEY"
    batch-size 400
    table "customers" {
        column "email" "email"
        column "first_name" "first-name" locale="mixed"
        column "last_name" "last-name"
        column "full_name" "person-name"
        column "phone" "phone"
        column "birth_date" "date-shift" days=30
        column "last_ip" "ip" keep-prefix=8
        column "profile" "json" { path "$.email" "email"; path "$.address.street" "street-address"; }
        column "nicknames" "username"
        column "avatar" "bytea"
        column "national_id" "national-id"
        column "notes" "keep" reason="support notes reviewed: no PII"
    }
    table "orders" {
        column "card_number" "credit-card" keep-last-four=#true
        column "shipping" "json" { path "$.to" "person-name"; path "$.contact.email" "email"; }
    }
    table "newsletter_signups" {
        column "email" "email"
    }
}
"#;

fn project(db: &str, profile: &str) -> Project {
    project_with_production(db, &format!("{db}_production"), profile)
}

/// `staging` is `db`; `production` (protected) is `production`.
fn project_with_production(db: &str, production: &str, profile: &str) -> Project {
    let p = Project::new();
    p.write(
        "confiture.kdl",
        &format!(
            "environment \"staging\" {{\n    database url=\"{}\"\n}}\nenvironment \"production\" {{\n    database url=\"{}\"\n    protected #true\n}}\n{profile}",
            url(db),
            url(production)
        ),
    );
    p
}

fn anonymize(p: &Project, args: &[&str]) -> Output {
    let mut all = vec!["anonymize"];
    all.extend_from_slice(args);
    crate::support::run(p.cmd(&all).env("CONFITURE_ANON_KEY", KEY))
}

/// Every table's rows, in key order, as one text: equal texts mean equal data.
fn dump(db: &str) -> String {
    let mut s = String::new();
    for (t, key) in [("customers", "id"), ("orders", "id"), ("newsletter_signups", "signed_up, email")] {
        let rows = query(&url(db), &format!("SELECT t::text FROM {t} t ORDER BY {key}"));
        for r in rows {
            s.push_str(r[0].as_deref().unwrap_or("NULL"));
            s.push('\n');
        }
    }
    s
}

fn count(db: &str, sql: &str) -> i64 {
    scalar(&url(db), sql).unwrap_or_default().parse().unwrap()
}

#[test]
fn a_run_masks_every_rule_and_keeps_joins_uniqueness_and_limits() {
    let db = shop("anon_run");
    let before_trigger = count(&db, "SELECT sum(updated_by_trigger) FROM customers");
    let originals = query(
        &url(&db),
        "SELECT email, phone, card_number FROM customers JOIN orders ON customer_id = customers.id ORDER BY orders.id LIMIT 50",
    );
    let p = project(&db, PROFILE);
    let out = anonymize(&p, &["run", "--env", "staging", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_valid("run-report.json", &report);
    assert_valid("stages/anonymize.json", &report["stages"][0]["outputs"]);
    let outputs = &report["stages"][0]["outputs"];
    // The report names every masked column with its strategy, uniqueness class and rows.
    let masked = outputs["masked_columns"].as_array().unwrap();
    let email = masked.iter().find(|c| c["table"] == "public.customers" && c["column"] == "email").unwrap();
    assert_eq!(email["strategy"], "email");
    assert_eq!(email["uniqueness"], "preserved");
    assert_eq!(email["rows"], ROWS as u64);
    let follows = masked.iter().find(|c| c["column"] == "customer_email").expect("the foreign key is followed");
    assert_eq!(follows["follows"], "public.customers.email");
    assert!(!out.all().contains(KEY));
    assert_eq!(outputs["key_fingerprint"].as_str().unwrap().len(), 16);

    // Every e-mail is masked, still unique, and orders still join their customer by it.
    assert_eq!(count(&db, "SELECT count(*) FROM customers WHERE email NOT LIKE '%@example.com'"), 0);
    assert_eq!(count(&db, "SELECT count(DISTINCT email) FROM customers"), ROWS as i64);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM orders o JOIN customers c ON c.email = o.customer_email AND c.id = o.customer_id"
        ),
        2 * ROWS as i64
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM newsletter_signups n JOIN customers c ON c.email = n.email"),
        (ROWS / 2) as i64,
        "the same value masks alike in two tables"
    );
    // Constraints are back and valid, triggers did not fire, nothing was left behind.
    for c in ["customers_email_key", "orders_customer_email_fkey", "customers_favourite_order_fkey"] {
        assert_eq!(
            scalar(&url(&db), &format!("SELECT convalidated::text FROM pg_constraint WHERE conname = '{c}'"))
                .as_deref(),
            Some("true"),
            "{c}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_customer_email'"), 1);
    assert_eq!(count(&db, "SELECT sum(updated_by_trigger) FROM customers"), before_trigger);
    assert_eq!(count(&db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'customers_bump' AND tgenabled = 'O'"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM confiture_anonymize_deferred"), 0);
    // NULL stays NULL; varchar(60) holds; formats are kept.
    assert_eq!(count(&db, "SELECT count(*) FROM customers WHERE phone IS NULL"), (ROWS / 7) as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM customers WHERE length(full_name) > 60"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM customers WHERE phone !~ '^\\+33 \\d \\d\\d \\d\\d \\d\\d \\d\\d$'"),
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM customers WHERE last_ip << '10.0.0.0/8'::inet"),
        ROWS as i64,
        "keep-prefix=8"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM customers WHERE notes IS NOT NULL AND notes NOT LIKE 'called about order %'"),
        0,
        "keep"
    );
    let after = query(
        &url(&db),
        "SELECT email, phone, card_number FROM customers JOIN orders ON customer_id = customers.id ORDER BY orders.id LIMIT 50",
    );
    for (a, b) in originals.iter().zip(&after) {
        assert_ne!(a[0], b[0]);
        if let (Some(x), Some(y)) = (&a[2], &b[2]) {
            assert_ne!(x, y);
            assert_eq!(x[x.len() - 4..], y[y.len() - 4..], "keep-last-four");
        }
    }
    // jsonb paths: masked inside, the rest kept.
    assert_eq!(count(&db, "SELECT count(*) FROM customers WHERE profile->>'email' NOT LIKE '%@example.com'"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM customers WHERE profile IS NOT NULL AND profile->'address'->>'city' <> 'Lyon'"
        ),
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM orders o JOIN customers c ON c.email = o.shipping->'contact'->>'email'"),
        2 * ROWS as i64,
        "json paths mask like columns"
    );
    // Arrays element by element.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM customers WHERE NOT (nicknames[1] LIKE 'user_%' AND nicknames[2] LIKE 'user_%')"
        ),
        0
    );
    // Running the same profile again changes nothing: nothing is masked twice.
    let snapshot = dump(&db);
    let again = anonymize(&p, &["run", "--env", "staging", "--format", "json"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.json()["stages"][0]["outputs"]["run"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "already-done")
    );
    assert_eq!(dump(&db), snapshot);
}

#[test]
fn masking_is_deterministic_across_runs_and_processes_and_another_key_gives_other_values() {
    let (a, b, c) = (shop("anon_det_a"), shop("anon_det_b"), shop("anon_det_c"));
    assert_eq!(anonymize(&project(&a, PROFILE), &["run", "--env", "staging"]).code, 0);
    assert_eq!(anonymize(&project(&b, PROFILE), &["run", "--env", "staging"]).code, 0);
    assert_eq!(dump(&a), dump(&b), "the same key and data give the same result in another process");
    let other = crate::support::run(
        project(&c, PROFILE)
            .cmd(&["anonymize", "run", "--env", "staging"])
            .env("CONFITURE_ANON_KEY", "another key, just as long as the first"),
    );
    assert_eq!(other.code, 0, "{other:?}");
    let emails_a: Vec<String> =
        query(&url(&a), "SELECT email FROM customers ORDER BY id").into_iter().map(|r| r[0].clone().unwrap()).collect();
    let emails_c: Vec<String> =
        query(&url(&c), "SELECT email FROM customers ORDER BY id").into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert!(emails_a.iter().zip(&emails_c).all(|(x, y)| x != y), "another key gives unrelated output");
}

#[test]
fn a_run_killed_with_sigkill_resumes_and_masks_every_row_exactly_once() {
    let (killed, whole) = (shop("anon_kill"), shop("anon_whole"));
    let profile = PROFILE.replace("batch-size 400", "batch-size 50");
    let p = project(&killed, &profile);
    let mut child = p.cmd(&["anonymize", "run", "--env", "staging"]).env("CONFITURE_ANON_KEY", KEY).spawn().unwrap();
    // Wait until some batches are committed, then kill it in the middle.
    let started = Instant::now();
    loop {
        let exists = scalar(&url(&killed), "SELECT to_regclass('public.confiture_anonymize_progress') IS NOT NULL");
        let done = if exists.as_deref() == Some("t") {
            scalar(&url(&killed), "SELECT rows FROM confiture_anonymize_progress WHERE table_name = 'public.customers'")
                .unwrap_or_default()
        } else {
            String::new()
        };
        if done.parse::<i64>().unwrap_or(0) >= 500 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the run never got going");
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let partial = count(&killed, "SELECT count(*) FROM customers WHERE email LIKE '%@example.com'");
    assert!(partial > 0 && partial < ROWS as i64, "killed in the middle: {partial} rows masked");
    // Resume, and compare with a run that was never interrupted.
    let out = anonymize(&p, &["run", "--env", "staging", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let tables = out.json()["stages"][0]["outputs"]["run"]["tables"].clone();
    assert!(tables.as_array().unwrap().iter().any(|t| t["status"] == "resumed"), "{tables}");
    assert_eq!(anonymize(&project(&whole, &profile), &["run", "--env", "staging"]).code, 0);
    assert_eq!(dump(&killed), dump(&whole), "every row masked exactly once");
}

#[test]
fn the_coverage_gate_fails_on_an_unmasked_pii_column() {
    let db = shop("anon_gate");
    let without_phone = PROFILE.replace("        column \"phone\" \"phone\"\n", "");
    let p = project(&db, &without_phone);
    let out = anonymize(&p, &["check", "--env", "staging", "--format", "json"]);
    assert_eq!(out.code, 7, "{out:?}");
    let outputs = &out.json()["stages"][0]["outputs"];
    let uncovered: Vec<String> = outputs["uncovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}.{}", f["table"].as_str().unwrap(), f["column"].as_str().unwrap()))
        .collect();
    assert_eq!(uncovered, vec!["public.customers.phone"]);
    // With the rule, the gate passes (customer_email is covered through its foreign key).
    let out = anonymize(&project(&db, PROFILE), &["check", "--env", "staging"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Nothing was written by either.
    assert_eq!(count(&db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'confiture_anonymize%'"), 0);
    // The scan's profile is ready to use: it passes the gate on the same database.
    let scan = anonymize(&p, &["scan", "--env", "staging", "--sample", "50"]);
    assert_eq!(scan.code, 0, "{scan:?}");
    assert!(scan.stdout.contains("column \"email\" \"email\""), "{}", scan.stdout);
    let scanned = project(&db, &scan.stdout);
    let check = anonymize(&scanned, &["check", "--env", "staging", "--profile", "staging"]);
    assert_eq!(check.code, 0, "{check:?}");
}

#[test]
fn the_leak_check_finds_a_value_planted_in_jsonb_and_passes_a_clean_run() {
    let (source, target) = (shop("anon_leak_src"), shop("anon_leak_dst"));
    let p = project(&target, PROFILE);
    assert_eq!(anonymize(&p, &["run", "--env", "staging"]).code, 0);
    let verify =
        |p: &Project| anonymize(p, &["verify", "--source", &url(&source), "--target", "staging", "--format", "json"]);
    let clean = verify(&p);
    assert_eq!(clean.code, 0, "{clean:?}");
    let v = &clean.json()["stages"][0]["outputs"]["verify"];
    assert!(v["originals"].as_u64().unwrap() > ROWS as u64, "{v}");
    // Plant one original address deep inside a document of another table.
    let original = scalar(&url(&source), "SELECT email FROM customers WHERE id = 42").unwrap();
    query(
        &url(&target),
        &format!(
            "UPDATE orders SET shipping = jsonb_set(shipping, '{{lines,0}}', to_jsonb('gift for ' || '{original}' || ' from the team')) WHERE id = 7"
        ),
    );
    let leak = verify(&p);
    assert_eq!(leak.code, 7, "{leak:?}");
    let leaks = leak.json()["stages"][0]["outputs"]["verify"]["leaks"].clone();
    assert_eq!(leaks.as_array().unwrap().len(), 1, "{leaks}");
    assert_eq!(leaks[0]["found_in"], "public.orders.shipping");
    assert_eq!(leaks[0]["from"], "public.customers.email");
    assert_eq!(leaks[0]["values"], 1);
    assert!(!leak.all().contains(&original), "the leaked value itself is never printed");
}

#[test]
fn bad_profiles_fail_before_anything_is_touched_with_every_problem_at_once() {
    let db = shop("anon_bad");
    let bad = r#"
anonymize "staging" {
    table "customers" {
        column "email" "emial"
        column "id" "email"
        column "nope" "hash"
        column "phone" "phone" { path "$.x" "email"; }
    }
    table "no_such_table" {
        column "x" "hash"
    }
}
"#;
    let p = project(&db, bad);
    let out = anonymize(&p, &["run", "--env", "staging"]);
    assert_eq!(out.code, 5, "{out:?}");
    let all = out.all();
    for needle in [
        "no strategy named `emial`",
        "did you mean `email`",
        "`email` does not take bigint values",
        "has no column `nope`",
        "paths apply to json and jsonb columns",
        "no table `public.no_such_table`",
        "has no key",
        "confiture.kdl:",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'confiture_anonymize%'"),
        0,
        "nothing touched"
    );
}

#[test]
fn keys_unique_columns_and_protected_environments_are_checked_before_any_write() {
    let (db, prod) = (shop("anon_refuse"), shop("anon_refuse_prod"));
    // No key in the environment: exit 5, nothing printed about it but the variable's name.
    let p = project_with_production(&db, &prod, PROFILE);
    let out = crate::support::run(p.cmd(&["anonymize", "run", "--env", "staging"]).env_remove("CONFITURE_ANON_KEY"));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("CONFITURE_ANON_KEY"), "{}", out.all());
    // A lossy strategy on a unique column is refused, naming the index.
    let lossy = PROFILE.replace(
        "column \"email\" \"email\"\n        column \"first_name\"",
        "column \"email\" \"person-name\"\n        column \"first_name\"",
    );
    let out = anonymize(&project(&db, &lossy), &["run", "--env", "staging"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("customers_email_key"), "{}", out.all());
    // A protected environment is never rewritten.
    let out = anonymize(&p, &["run", "--env", "production"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("protected"), "{}", out.all());
    for d in [&db, &prod] {
        assert_eq!(count(d, "SELECT count(*) FROM customers WHERE email LIKE '%@example.com'"), 0);
        assert_eq!(count(d, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'confiture_anonymize%'"), 0);
    }
    // Preview reads it only when asked.
    let out = anonymize(&p, &["preview", "--env", "production", "--profile", "staging", "--table", "customers"]);
    assert_eq!(out.code, 5, "{out:?}");
    let out = anonymize(
        &p,
        &[
            "preview",
            "--env",
            "production",
            "--profile",
            "staging",
            "--table",
            "customers",
            "--limit",
            "3",
            "--allow-protected",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let preview = &out.json()["stages"][0]["outputs"]["preview"];
    assert_eq!(preview["rows"].as_array().unwrap().len(), 3);
    assert_eq!(preview["columns"][0], "email");
    assert_ne!(preview["rows"][0][0][0], preview["rows"][0][0][1]);
}

#[test]
fn python_confiture_profiles_are_read_with_a_warning_where_they_were_weak() {
    let db = shop("anon_yaml");
    let p = project(&db, "");
    p.write(
        "db/anonymization/staging.yaml",
        "name: staging\nglobal_seed: 1234\nstrategies:\n  mail:\n    type: email\n    config:\n      keep_domain: true\n\
         tables:\n  customers:\n    rules:\n      - column: email\n        strategy: mail\n      - column: national_id\n        strategy: sha256\n",
    );
    let out =
        anonymize(&p, &["run", "--env", "staging", "--profile", "db/anonymization/staging.yaml", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("unsalted"), "{}", out.stderr);
    assert!(out.stderr.contains("global_seed"), "{}", out.stderr);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM customers WHERE email NOT LIKE '%@corp.example' AND email NOT LIKE '%@gmail.com' AND email NOT LIKE '%@mail.fr'"
        ),
        0,
        "keep_domain carried over"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM customers WHERE national_id ~ '^\\d{9}$'"), 0, "hashed");
    // The sync form: {table: [{column, strategy, seed}]}.
    let db2 = shop("anon_yaml_sync");
    let p2 = project(&db2, "");
    p2.write("sync.yaml", "customers:\n  - column: phone\n    strategy: phone\n    seed: 7\n");
    let out = anonymize(&p2, &["run", "--env", "staging", "--profile", "sync.yaml"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(count(&db2, "SELECT count(*) FROM customers c WHERE phone = '+33 6 01 07 13 17' AND id = 1"), 0);
}

fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("CONFITURE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/guests/dist"));
    dir.join(format!("{name}.wasm"))
}

#[test]
fn a_wasm_strategy_gets_a_derived_key_and_gives_its_documented_results() {
    let (a, b) = (shop("anon_wasm_a"), shop("anon_wasm_b"));
    let plugin = guest("mask_email");
    let profile = format!(
        "anonymize \"staging\" {{\n    key env=\"CONFITURE_ANON_KEY\"\n    table \"newsletter_signups\" {{\n        column \"email\" \"wasm\" plugin=\"{}\"\n    }}\n}}\n",
        plugin.display()
    );
    let out = anonymize(&project(&a, &profile), &["run", "--env", "staging"]);
    assert_eq!(out.code, 0, "{out:?}");
    // mask-email's documented shape: u_<12 hex>@<the original domain>.
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM newsletter_signups WHERE email !~ '^u_[0-9a-f]{12}@(gmail\\.com|corp\\.example|mail\\.fr)$'"
        ),
        0
    );
    assert_eq!(count(&a, "SELECT count(DISTINCT email) FROM newsletter_signups"), (ROWS / 2) as i64);
    // Deterministic with the derived key; another profile key gives other values.
    let out = anonymize(&project(&b, &profile), &["run", "--env", "staging"]);
    assert_eq!(out.code, 0, "{out:?}");
    let q = "SELECT string_agg(email, ',' ORDER BY signed_up, email) FROM (SELECT email, signed_up FROM newsletter_signups) x";
    assert_eq!(scalar(&url(&a), q), scalar(&url(&b), q));
    // The plugin's declared uniqueness (not-guaranteed) is checked like a built-in's.
    let unique = profile.replace("newsletter_signups", "customers");
    let out = anonymize(&project(&b, &unique), &["run", "--env", "staging", "--dry-run"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("customers_email_key"), "{}", out.all());
}

#[test]
fn a_compliance_pipeline_gates_masks_and_checks_for_leaks_with_hooks_on_every_table() {
    let (source, db) = (shop("anon_pipe_src"), shop("anon_pipe"));
    let p = project(&db, PROFILE);
    p.write(
        "mask.kdl",
        &format!(
            "pipeline \"mask\"\ndatabase \"staging\" url=\"{}\"\ndatabase \"original\" url=\"{}\"\n\
             stage \"gate\" uses=\"anonymize\" {{ database \"staging\"; profile \"staging\"; mode \"check\"; }}\n\
             stage \"mask\" uses=\"anonymize\" needs=\"gate\" {{ database \"staging\"; profile \"staging\"; }}\n\
             stage \"leaks\" uses=\"anonymize\" needs=\"mask\" {{ database \"staging\"; profile \"staging\"; mode \"verify\"; source \"original\"; }}\n\
             hook \"log\" on=\"after-anonymize-table\" command=\"echo $CONFITURE_TABLE $CONFITURE_ROWS >> tables.txt\"\n",
            url(&db),
            url(&source)
        ),
    );
    assert_eq!(p.run(&["check", "mask.kdl"]).code, 0);
    let out = crate::support::run(p.cmd(&["run", "mask.kdl", "--format", "json"]).env("CONFITURE_ANON_KEY", KEY));
    assert_eq!(out.code, 0, "{out:?}");
    assert_valid("run-report.json", &out.json());
    let log = std::fs::read_to_string(p.file("tables.txt")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec![
            format!("public.customers {ROWS}"),
            format!("public.newsletter_signups {}", ROWS / 2),
            format!("public.orders {}", 2 * ROWS)
        ]
    );
}

#[test]
fn partitions_without_keys_quoted_names_and_always_triggers_are_masked_once_and_quietly() {
    let db = fresh_name("anon_odd");
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    query(
        &url(&db),
        "CREATE SCHEMA \"Sales\";
         CREATE TABLE \"Sales\".\"Client Book\" (\"Region\" text, \"No\" int, \"E-mail\" text NOT NULL,
             PRIMARY KEY (\"Region\", \"No\"), UNIQUE (\"E-mail\"));
         INSERT INTO \"Sales\".\"Client Book\" SELECT CASE WHEN i % 2 = 0 THEN 'north' ELSE 'South' END, i, 'p' || i || '@x.org'
             FROM generate_series(1, 900) i;
         CREATE TABLE events (at date NOT NULL, email text) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE INDEX events_email ON events (email);
         INSERT INTO events SELECT date '2024-06-01' + (i % 400), 'e' || i || '@y.org' FROM generate_series(1, 1200) i;
         CREATE TABLE audit (what text);
         CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (OLD.email); RETURN NEW; END $$;
         CREATE TRIGGER events_audit BEFORE UPDATE ON events_2024 FOR EACH ROW EXECUTE FUNCTION audit();
         ALTER TABLE events_2024 ENABLE ALWAYS TRIGGER events_audit;",
    );
    let profile = "anonymize \"odd\" {\n    key env=\"CONFITURE_ANON_KEY\"\n    batch-size 100\n    \
                   table \"Sales.Client Book\" { column \"E-mail\" \"email\"; }\n    table \"events\" { column \"email\" \"email\"; }\n}\n";
    let p = project(&db, profile);
    let out = anonymize(&p, &["run", "--env", "staging"]);
    assert_eq!(out.code, 0, "{out:?}");
    let book = "SELECT count(*) FROM \"Sales\".\"Client Book\" WHERE \"E-mail\" LIKE '%@example.com'";
    assert_eq!(count(&db, book), 900);
    assert_eq!(count(&db, "SELECT count(DISTINCT \"E-mail\") FROM \"Sales\".\"Client Book\""), 900);
    // Every row of every partition masked once: the same as masking each original value.
    assert_eq!(count(&db, "SELECT count(DISTINCT email) FROM events WHERE email LIKE '%@example.com'"), 1200);
    assert_eq!(count(&db, "SELECT count(*) FROM audit"), 0, "an ENABLE ALWAYS trigger did not fire");
    assert_eq!(
        count(&db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'events_audit' AND tgenabled = 'A'"),
        1,
        "and it is ALWAYS again"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'events%email%' AND i.indisvalid"
        ),
        3,
        "the partitioned index is back on the parent and both partitions"
    );
    // Another profile over the same tables is refused: it would mask masked values.
    let other = project(&db, &profile.replace("\"odd\"", "\"other\""));
    let out = anonymize(&other, &["run", "--env", "staging"]);
    assert_eq!(out.code, 5, "{out:?}");
}
