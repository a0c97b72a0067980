//! `confiture lint`: exit codes, formats (text, JSON, SARIF, JUnit), configuration, suppression,
//! stdin, and table sizes from a live database.

use std::io::Write;
use std::process::Stdio;

use crate::support::{Project, assert_valid, fresh_name, query, server, url};

fn project() -> Project {
    let p = Project::new();
    p.write("confiture.kdl", "")
        .write("db/schema/10_tables.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n")
        .write("db/migrations/001_index.up.sql", "SET lock_timeout = '5s';\nSET statement_timeout = '1min';\nCREATE INDEX users_email_idx ON users (email);\n");
    p
}

#[test]
fn findings_show_a_code_frame_rule_and_help_and_exit_by_severity() {
    let p = project();
    let out = p.run(&["lint"]);
    assert_eq!(out.code, 0, "warnings alone pass: {out:?}");
    assert!(out.stdout.contains("lint::require-concurrent-index-creation"), "{}", out.stdout);
    assert!(out.stdout.contains("db/migrations/001_index.up.sql:3:"), "{}", out.stdout);
    assert!(out.stdout.contains("SHARE lock on users"), "{}", out.stdout);
    assert!(out.stdout.contains("help: use CREATE INDEX CONCURRENTLY"), "{}", out.stdout);
    assert!(out.stdout.contains("1 warning"), "{}", out.stdout);

    assert_eq!(p.run(&["lint", "--deny-warnings"]).code, 1);
    assert_eq!(p.run(&["lint", "--rule", "require-concurrent-index-creation=error"]).code, 1);
    let off = p.run(&["lint", "--rule", "require-concurrent-index-creation=off", "--deny-warnings"]);
    assert_eq!(off.code, 0, "{off:?}");
    let bad = p.run(&["lint", "--rule", "no-such-rule=error"]);
    assert_eq!(bad.code, 5, "{bad:?}");
    assert!(bad.stderr.contains("no lint rule named `no-such-rule`"), "{}", bad.stderr);
}

#[test]
fn unparseable_files_exit_5_with_their_location() {
    let p = project();
    p.write("db/migrations/002_typo.up.sql", "ALTER TABLE users\n  ADD COLUMN bio text,,;\n");
    let out = p.run(&["lint", "--format", "json"]);
    assert_eq!(out.code, 5, "{out:?}");
    let v = out.json();
    let f = v["stages"][0]["outputs"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "syntax-error")
        .cloned()
        .unwrap();
    assert_eq!((f["file"].as_str().unwrap(), f["line"].as_u64().unwrap()), ("db/migrations/002_typo.up.sql", 2));
    // The other files were still linted.
    assert!(
        v["stages"][0]["outputs"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "require-concurrent-index-creation")
    );
}

#[test]
fn json_sarif_and_junit_are_valid() {
    let p = project();
    p.write("db/migrations/002_drop.up.sql", "SET lock_timeout = '1s';\nTRUNCATE users CASCADE;\n");
    let json = p.run(&["lint", "--format", "json"]);
    assert_eq!(json.code, 1, "truncate-cascade is an error: {json:?}");
    let v = json.json();
    assert_valid("run-report.json", &v);
    assert_valid("stages/lint.json", &v["stages"][0]["outputs"]);
    assert_eq!(v["stages"][0]["outputs"]["counts"]["error"], 1);

    let sarif = p.run(&["lint", "--format", "sarif"]);
    assert_eq!(sarif.code, 1);
    let s: serde_json::Value = serde_json::from_str(&sarif.stdout).unwrap();
    let schema_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-2.1.0-rtm.5.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&s).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "SARIF 2.1.0: {errors:#?}");
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "truncate-cascade" && r["level"] == "error"));
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "db/migrations/001_index.up.sql"
    );

    assert_eq!(s["runs"][0]["invocations"][0]["executionSuccessful"], true, "findings are a successful run");
    // A run that could not check everything says so, so code scanning does not close alerts.
    let missing = p.run(&["lint", "no/such/file.sql", "--format", "sarif"]);
    assert_eq!(missing.code, 5, "{missing:?}");
    let m: serde_json::Value = serde_json::from_str(&missing.stdout).unwrap();
    assert!(validator.iter_errors(&m).next().is_none(), "SARIF 2.1.0");
    assert_eq!(m["runs"][0]["invocations"][0]["executionSuccessful"], false);
    let note = m["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"].as_str().unwrap();
    assert!(note.contains("no such file"), "{note}");

    let junit = p.run(&["lint", "--format", "junit"]);
    assert_eq!(junit.code, 1);
    let xml = roxmltree::Document::parse(&junit.stdout).expect("well-formed XML");
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    let files = v["stages"][0]["outputs"]["files"].as_array().unwrap();
    assert_eq!(suites.len(), files.len(), "a suite per file: {}", junit.stdout);
    let cases: Vec<_> = root.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    let findings = v["stages"][0]["outputs"]["findings"].as_array().unwrap();
    let clean =
        suites.iter().filter(|s| s.attribute("failures") == Some("0") && s.attribute("tests") == Some("1")).count();
    assert!(cases.len() >= findings.len() && cases.len() <= findings.len() + clean, "{}", junit.stdout);
    assert_eq!(root.attribute("tests"), Some(cases.len().to_string().as_str()));
    let failures: Vec<_> = root.descendants().filter(|n| n.has_tag_name("failure")).collect();
    assert_eq!(failures.len(), 1, "{}", junit.stdout);
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(failures[0].attribute("type"), Some("truncate-cascade"));
    let failed_suite = failures[0].ancestors().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(failed_suite.attribute("name"), Some("db/migrations/002_drop.up.sql"));
    assert_eq!(failed_suite.attribute("failures"), Some("1"));
}

#[test]
fn ignores_config_files_and_stdin() {
    let p = project();
    p.write(
        "db/migrations/001_index.up.sql",
        "SET lock_timeout = '5s';\nSET statement_timeout = '1min';\n-- confiture:ignore require-concurrent-index-creation users is tiny\nCREATE INDEX users_email_idx ON users (email);\n-- confiture:ignore drop-table nothing to drop here\nSELECT 1;\n",
    );
    let out = p.run(&["lint", "--format", "json"]);
    let findings: Vec<String> = out.json()["stages"][0]["outputs"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["rule"].as_str().unwrap(), f["line"]))
        .collect();
    assert_eq!(findings, ["unused-ignore:5"], "the used ignore suppresses; the unused one is reported");

    // Defaults in confiture.kdl; a pipeline stage overrides them.
    p.write("confiture.kdl", "lint {\n    rule \"unused-ignore\" severity=\"off\"\n    exclude \"db/schema/**\"\n}\n");
    let quiet = p.run(&["lint", "--format", "json"]);
    assert_eq!(quiet.json()["stages"][0]["outputs"]["counts"]["warning"], 0, "{}", quiet.stdout);
    assert_eq!(quiet.json()["stages"][0]["outputs"]["files"], serde_json::json!(["db/migrations/001_index.up.sql"]));
    // deny-warnings from confiture.kdl: the unused ignore (a warning) fails, in JUnit too.
    p.write("confiture.kdl", "lint {\n    deny-warnings #true\n}\n");
    let denied = p.run(&["lint", "--format", "junit"]);
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(denied.stdout.contains("<failure type=\"unused-ignore\""), "{}", denied.stdout);
    p.write("confiture.kdl", "lnit { }\n");
    let typo = p.run(&["lint"]);
    assert_eq!(typo.code, 5, "{typo:?}");
    assert!(typo.stderr.contains("did you mean `lint`?"), "{}", typo.stderr);

    // stdin, as a migration.
    p.write("confiture.kdl", "");
    let mut child = p
        .cmd(&["lint", "-", "--kind", "migration", "--format", "json"])
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"UPDATE users SET email = NULL;\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> =
        v["stages"][0]["outputs"]["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"update-without-where"), "{rules:?}");
    assert_eq!(v["stages"][0]["outputs"]["findings"][0]["file"], "<stdin>");
}

#[test]
fn a_database_gives_lock_findings_real_sizes() {
    let db = fresh_name("lint_sizes");
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    query(
        &url(&db),
        "CREATE TABLE big (id bigint PRIMARY KEY, v text); INSERT INTO big SELECT g, 'x' FROM generate_series(1, 5000) g; ANALYZE big; CREATE TABLE empty (id bigint PRIMARY KEY)",
    );
    let p = Project::new();
    p.write("confiture.kdl", "").write(
        "db/migrations/001.up.sql",
        "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nCREATE INDEX big_v ON big (v);\nCREATE INDEX empty_id ON empty (id);\nCREATE INDEX gone_x ON not_there_yet (x);\n",
    );
    let out = p.run(&["lint", "--database", &url(&db), "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["stages"][0]["outputs"]["database_sizes"], true);
    let f: Vec<(String, String)> = v["stages"][0]["outputs"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["severity"].as_str().unwrap().to_string(), f["message"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(f.len(), 2, "a table that does not exist yet is new: {f:#?}");
    assert_eq!(f[0].0, "warning");
    assert!(f[0].1.contains("big (~5.0k rows,") && f[0].1.contains("in the database)"), "{}", f[0].1);
    assert_eq!(f[1].0, "info", "an empty table is only informational");
    assert!(f[1].1.contains("empty (empty in the database)"), "{}", f[1].1);
}

/// With `--database`, the catalog decides: partitioned tables are summed over their partitions,
/// existing indexes serve foreign keys, column types say whether a change rewrites, an index
/// names its table — and a table created earlier in the same file stays new.
#[test]
fn the_database_knows_partitions_indexes_and_types() {
    let db = fresh_name("lint_catalog");
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    query(
        &url(&db),
        "CREATE TABLE logs (id bigint, at date NOT NULL, msg text) PARTITION BY RANGE (at);
         CREATE TABLE logs_2024 PARTITION OF logs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         INSERT INTO logs SELECT g, '2024-06-01', 'm' FROM generate_series(1, 3000) g; ANALYZE logs_2024;
         CREATE TABLE logs_2025 PARTITION OF logs FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE customers (id bigint PRIMARY KEY);
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, name varchar(10), qty int);
         CREATE INDEX orders_customer_id_idx ON orders (customer_id);
         INSERT INTO orders SELECT g, g, 'n', 1 FROM generate_series(1, 3000) g;
         CREATE TABLE carts (id bigint PRIMARY KEY, ref bigint);
         CREATE INDEX carts_ref_idx ON carts (ref) WHERE ref IS NOT NULL;
         CREATE TABLE widgets (id bigint PRIMARY KEY, name text);
         INSERT INTO widgets SELECT g, 'w' FROM generate_series(1, 3000) g; ANALYZE orders, widgets;",
    );
    let p = Project::new();
    p.write("confiture.kdl", "migrate {\n    lock-timeout \"5s\"\n    statement-timeout \"5min\"\n}\n").write(
        "db/migrations/001.up.sql",
        "CREATE INDEX logs_msg_idx ON logs (msg);
CREATE INDEX logs_at_idx ON ONLY logs (at);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE carts ADD CONSTRAINT carts_ref_fk FOREIGN KEY (ref) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders ALTER COLUMN name TYPE varchar(40);
ALTER TABLE orders ALTER COLUMN qty TYPE text;
REINDEX INDEX orders_customer_id_idx;
CREATE TABLE widgets (id bigint PRIMARY KEY, name text);
CREATE INDEX widgets_name_idx ON widgets (name);
",
    );
    let out = p.run(&["lint", "--database", &url(&db), "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let f: Vec<(String, String, String)> = v["stages"][0]["outputs"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !matches!(f["rule"].as_str(), Some("require-primary-key" | "prefer-text-over-varchar")))
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("rule"), s("message"), s("help"))
        })
        .collect();
    let rules: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        rules,
        ["require-concurrent-index-creation", "column-type-change", "reindex-without-concurrently"],
        "timeouts come from confiture.kdl, ON ONLY builds nothing, the FK has its index, varchar widens, widgets is new: {f:#?}"
    );
    assert!(f[0].1.contains("logs (~3.0k rows,"), "partitions are summed: {}", f[0].1);
    assert!(f[0].2.contains("ON ONLY logs"), "a partitioned table cannot be indexed concurrently: {}", f[0].2);
    assert!(f[1].1.contains("orders.qty (~3.0k rows,") && f[1].1.contains("from integer to text"), "{}", f[1].1);
    assert!(f[2].1.contains("blocks writes to orders (~3.0k rows,"), "{}", f[2].1);
}

/// With `--database`: unqualified names resolve through the search path; `CREATE TABLE IF NOT
/// EXISTS` of a table the database has creates nothing; a renamed table is still the table it
/// was; dropping an index locks its table.
#[test]
fn the_database_resolves_names_like_postgresql() {
    let db = fresh_name("lint_names");
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    query(
        &url(&db),
        "CREATE SCHEMA app;
         CREATE TABLE app.events (id bigint PRIMARY KEY, user_id bigint, kind text);
         INSERT INTO app.events SELECT g, g, 'k' FROM generate_series(1, 2000) g;
         CREATE TABLE customers (id bigint PRIMARY KEY, email text);
         INSERT INTO customers SELECT g, 'e' FROM generate_series(1, 2000) g;
         CREATE TABLE orders (id bigint PRIMARY KEY, status text);
         CREATE INDEX orders_status_idx ON orders (status);
         INSERT INTO orders SELECT g, 's' FROM generate_series(1, 2000) g;
         ANALYZE app.events, customers, orders;",
    );
    let p = Project::new();
    p.write("confiture.kdl", "")
        .write(
            "db/migrations/001.up.sql",
            "SET search_path = app, public;\nALTER TABLE events ADD COLUMN c int NOT NULL;\n",
        )
        .write(
            "db/migrations/002.up.sql",
            "CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY, email text);\nCREATE INDEX customers_email_idx ON customers (email);\n",
        )
        .write(
            "db/migrations/003.up.sql",
            "ALTER TABLE orders RENAME TO orders_old;\nALTER TABLE orders_old ADD COLUMN z int NOT NULL;\n",
        )
        .write("db/migrations/004.up.sql", "DROP INDEX orders_status_idx;\n");
    let out = p.run(&["lint", "--database", &url(&db), "--format", "json"]);
    let v = out.json();
    let mut got: Vec<String> = v["stages"][0]["outputs"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            format!(
                "{}:{} {}",
                f["file"].as_str().unwrap().trim_start_matches("db/migrations/"),
                f["line"],
                f["rule"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "001.up.sql:2 adding-not-null-column-without-default",
            "001.up.sql:2 require-lock-timeout",
            "002.up.sql:2 require-concurrent-index-creation",
            "002.up.sql:2 require-lock-timeout",
            "003.up.sql:1 rename-table",
            "003.up.sql:1 require-lock-timeout",
            "003.up.sql:2 adding-not-null-column-without-default",
            "004.up.sql:1 require-concurrent-index-deletion",
            "004.up.sql:1 require-lock-timeout",
        ],
        "{}",
        out.stdout
    );
    let text = v["stages"][0]["outputs"]["findings"].to_string();
    assert!(text.contains("app.events") || text.contains("events (~2.0k rows"), "{text}");
    assert!(text.contains("lock on orders (~2.0k rows"), "DROP INDEX names its table: {text}");
}

/// `git diff --name-only | xargs confiture lint` lists a down before its up; the down is still
/// judged after its up.
#[test]
fn a_down_listed_before_its_up_is_judged_after_it() {
    let p = Project::new();
    p.write("confiture.kdl", "")
        .write("db/migrations/007_w.up.sql", "CREATE TABLE widgets (id bigint PRIMARY KEY);\n")
        .write("db/migrations/007_w.down.sql", "DROP TABLE widgets;\n");
    let out = p.run(&["lint", "db/migrations/007_w.down.sql", "db/migrations/007_w.up.sql", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(
        v["stages"][0]["outputs"]["files"],
        serde_json::json!(["db/migrations/007_w.up.sql", "db/migrations/007_w.down.sql"])
    );
    assert_eq!(v["stages"][0]["outputs"]["counts"]["warning"], 0, "{}", out.stdout);
}

#[test]
fn the_rule_catalogue_explains_itself() {
    let list = crate::support::run(crate::support::confiture().args(["lint", "--list-rules", "--format", "json"]));
    assert_eq!(list.code, 0);
    let rules = list.json();
    assert!(rules.as_array().unwrap().len() >= 46);
    let explain = crate::support::run(crate::support::confiture().args(["lint", "--explain", "set-not-null"]));
    assert_eq!(explain.code, 0);
    for heading in ["## What it does", "## Why is this bad?", "## Example", "## Use instead"] {
        assert!(explain.stdout.contains(heading), "{}", explain.stdout);
    }
    let unknown = crate::support::run(crate::support::confiture().args(["lint", "--explain", "set-not-nul"]));
    assert_eq!(unknown.code, 5);
    assert!(unknown.stderr.contains("did you mean `set-not-null`?"), "{}", unknown.stderr);
}

#[test]
fn a_lint_stage_in_a_pipeline() {
    let p = project();
    p.write(
        "pipelines/ci.kdl",
        "pipeline \"ci\"\nstage \"lint\" uses=\"lint\" {\n    paths \"db/migrations\"\n    rule \"require-concurrent-index-creation\" severity=\"error\"\n}\n",
    );
    let out = p.run(&["run", "pipelines/ci.kdl"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("lint::require-concurrent-index-creation") && out.stdout.contains("1 error"),
        "{}",
        out.stdout
    );
    let _ = fresh_name;
}

#[test]
fn deeply_nested_sql_is_linted_or_refused_never_a_crash() {
    // 100 levels of ARRAY[…] overflowed a thread's stack (found while fuzzing the splitter).
    let nest = |n: usize| format!("CREATE VIEW v AS SELECT {}1{};\n", "ARRAY[".repeat(n), "]".repeat(n));
    let p = crate::support::Project::new();
    p.write("ok.sql", &nest(200))
        .write("union.sql", &format!("CREATE VIEW u AS {};\n", vec!["SELECT 1 AS one"; 400].join(" UNION ALL ")))
        .write("deep.sql", &nest(20_000));
    for file in ["ok.sql", "union.sql"] {
        let out = p.run(&["lint", file]);
        assert!(out.code == 0 || out.code == 1, "{file}: {out:?}");
    }
    let deep = p.run(&["lint", "deep.sql"]);
    assert_eq!(deep.code, 5, "too deep is a syntax error: {deep:?}");
}
