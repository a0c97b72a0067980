//! `confiture sync` between two real PostgreSQL databases, on a production-like generator
//! (tests/data/sync/prod.sql): an exact copy, a masked copy with the leak check, a run killed
//! with SIGKILL and resumed, a subset, a schema mismatch, and the refusals.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Output, Project, assert_valid, fresh_name, query, scalar, server, url};

const KEY: &str = "a test key for the sync tests, long enough!";

fn template(rows: usize) -> String {
    static SMALL: OnceLock<String> = OnceLock::new();
    static LARGE: OnceLock<String> = OnceLock::new();
    let cell = if rows <= 2000 { &SMALL } else { &LARGE };
    cell.get_or_init(|| {
        let name = fresh_name("sync_template");
        query(&server().to_secret_string(), &format!("CREATE DATABASE {name}"));
        query(&url(&name), &include_str!("../data/sync/prod.sql").replace("__ROWS__", &rows.to_string()));
        name
    })
    .clone()
}

/// A fresh copy of the generated database.
fn source(label: &str, rows: usize) -> String {
    let db = fresh_name(label);
    let t = template(rows);
    for _ in 0..50 {
        let sql = format!("CREATE DATABASE {db} TEMPLATE {t}");
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

fn empty(label: &str) -> String {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    db
}

const PROFILE: &str = r#"
anonymize "staging" {
    key env="CONFITURE_ANON_KEY"
    table "users" {
        column "email" "email"
        column "name" "person-name"
        column "phone" "phone"
        column "profile" "json" { path "$.contact.email" "email"; }
    }
}
"#;

/// `production` is `src` (protected), `staging` is `dst`.
fn project(src: &str, dst: &str) -> Project {
    let p = Project::new();
    p.write(
        "confiture.kdl",
        &format!(
            "environment \"staging\" {{\n    database url=\"{}\"\n}}\nenvironment \"production\" {{\n    database url=\"{}\"\n    protected #true\n}}\n{PROFILE}",
            url(dst),
            url(src)
        ),
    );
    p
}

fn sync(p: &Project, args: &[&str]) -> Output {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    crate::support::run(p.cmd(&all).env("CONFITURE_ANON_KEY", KEY))
}

const TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("teams", "id"),
    ("orders", "id"),
    ("order_items", "order_id, line"),
    ("events", "at, user_id, kind, payload::text"),
    ("\"Back Office\".\"Notes\"", "\"Id\""),
];

/// Every table's rows in key order, as text: equal texts mean equal data.
fn dump(db: &str) -> String {
    let mut s = String::new();
    for (t, key) in TABLES {
        for r in query(&url(db), &format!("SELECT x::text FROM {t} x ORDER BY {key}")) {
            s.push_str(r[0].as_deref().unwrap_or("NULL"));
            s.push('\n');
        }
    }
    s
}

/// Foreign keys, confiture's own bookkeeping left out.
const FKS: &str =
    "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text NOT LIKE 'confiture%'";

fn one(db: &str, sql: &str) -> String {
    scalar(&url(db), sql).unwrap_or_default()
}

/// Nothing left half-done on the target: every constraint validated, no trigger disabled.
fn assert_clean(db: &str) {
    assert_eq!(one(db, "SELECT count(*) FROM pg_constraint WHERE NOT convalidated"), "0");
    assert_eq!(one(db, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'D'"), "0");
}

#[test]
fn an_exact_copy_equals_the_source_and_verifies() {
    let (src, dst) = (source("sync_exact_src", 2000), empty("sync_exact_dst"));
    let p = project(&src, &dst);
    let out = sync(
        &p,
        &[
            "--from",
            &url(&src),
            "--to",
            "staging",
            "--verify",
            "--range-rows",
            "300",
            "--jobs",
            "2",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_valid("run-report.json", &report);
    let o = &report["stages"][0]["outputs"];
    assert_valid("stages/sync.json", o);
    assert_eq!(o["schema"], "created");
    assert_eq!(o["consistency"], "snapshot");
    let users = o["tables"].as_array().unwrap().iter().find(|t| t["table"] == "public.users").unwrap();
    assert!(users["ranges"].as_u64().unwrap() > 1, "a large table is split: {users}");
    let checks = o["verify"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");
    // Unmasked tables copied whole are compared with the source read again in the snapshot.
    assert!(checks.iter().all(|c| c["source_checksum"] == c["checksum"]), "{checks:?}");
    assert_eq!(dump(&src), dump(&dst));
    assert_clean(&dst);
    // The trigger did not fire during the load; the sequences and identity carry on.
    assert_eq!(one(&src, "SELECT sum(touched) FROM users"), one(&dst, "SELECT sum(touched) FROM users"));
    assert_eq!(one(&src, "SELECT last_value FROM invoice_no"), one(&dst, "SELECT last_value FROM invoice_no"));
    assert_eq!(one(&dst, "SELECT nextval('users_id_seq')"), "2001");
    // The schema is the source's: indexes, keys, the view and the partitions are there.
    for (sql, want) in [
        ("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'orders'", "2"),
        ("SELECT count(*) FROM big_orders", &one(&src, "SELECT count(*) FROM big_orders")),
        ("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass", "3"),
        (FKS, &one(&src, FKS)),
    ] {
        assert_eq!(one(&dst, sql), want, "{sql}");
    }
    // A second sync into the same target: the schema exists now; only the copied tables are emptied.
    let again = sync(&p, &["--from", &url(&src), "--to", "staging", "--verify", "--format", "json"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["stages"][0]["outputs"]["schema"], "existing");
    assert_eq!(dump(&src), dump(&dst));
    assert_clean(&dst);
    // The source was only read.
    assert_eq!(one(&src, "SELECT to_regclass('public.confiture_sync') IS NULL"), "t");
}

#[test]
fn a_masked_copy_leaks_nothing_and_keeps_joins_and_uniqueness() {
    let (src, dst) = (source("sync_mask_src", 2000), empty("sync_mask_dst"));
    let p = project(&src, &dst);
    let out = sync(
        &p,
        &[
            "--from",
            &url(&src),
            "--to",
            "staging",
            "--anonymize",
            "staging",
            "--verify",
            "--range-rows",
            "500",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.all().contains(KEY));
    assert_eq!(one(&dst, "SELECT count(*) FROM users u JOIN orders o ON o.user_id = u.id"), "4000");
    assert_eq!(one(&dst, "SELECT count(DISTINCT email) FROM users"), "2000");
    assert_eq!(one(&dst, "SELECT count(*) FROM users d WHERE email LIKE 'user%'"), "0");
    assert_eq!(
        one(&dst, "SELECT count(*) FROM users WHERE name_upper <> upper(name)"),
        "0",
        "generated columns follow"
    );
    assert_eq!(
        one(&dst, "SELECT count(*) FROM users WHERE phone IS NULL"),
        one(&src, "SELECT count(*) FROM users WHERE phone IS NULL")
    );
    assert_clean(&dst);
    // The leak check: no original value of a masked column anywhere in the target.
    let leak = crate::support::run(
        p.cmd(&["anonymize", "verify", "--source", &url(&src), "--target", "staging", "--profile", "staging"])
            .env("CONFITURE_ANON_KEY", KEY),
    );
    assert_eq!(leak.code, 0, "{leak:?}");
    // Deterministic: the same key gives the same copy.
    let dst2 = empty("sync_mask_dst2");
    let again = sync(&p, &["--from", &url(&src), "--to", &url(&dst2), "--anonymize", "staging"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(dump(&dst), dump(&dst2));
}

#[test]
fn a_sync_killed_with_sigkill_resumes_to_the_same_result() {
    let src = source("sync_kill_src", 20000);
    let (killed, whole) = (empty("sync_kill_dst"), empty("sync_whole_dst"));
    let p = project(&src, &killed);
    let args = ["sync", "--from", &url(&src), "--to", "staging", "--range-rows", "400", "--jobs", "1"];
    let mut child = p.cmd(&args).spawn().unwrap();
    let started = Instant::now();
    loop {
        let ready = one(&killed, "SELECT to_regclass('public.confiture_sync') IS NOT NULL") == "t";
        if ready && one(&killed, "SELECT count(*) FROM confiture_sync").parse::<i64>().unwrap_or(0) >= 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the sync never got going");
        assert!(child.try_wait().unwrap().is_none(), "the sync finished before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert_eq!(one(&killed, "SELECT state FROM confiture_sync_runs"), "copying");
    // Without --resume, a new run is refused; with it, only what is missing is copied.
    let refused = sync(&p, &["--from", &url(&src), "--to", "staging"]);
    assert_eq!(refused.code, 5, "{refused:?}");
    let out = sync(&p, &["--from", &url(&src), "--to", "staging", "--resume", "--verify", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let o = &out.json()["stages"][0]["outputs"];
    assert_eq!(o["resumed"], true);
    assert_eq!(o["consistency"], "per-range");
    assert_eq!(sync(&project(&src, &whole), &["--from", &url(&src), "--to", "staging"]).code, 0);
    assert_eq!(dump(&killed), dump(&whole), "no row lost, none copied twice");
    assert_eq!(dump(&killed), dump(&src));
    assert_clean(&killed);
}

#[test]
fn a_subset_keeps_every_foreign_key_satisfied() {
    let (src, dst) = (source("sync_subset_src", 2000), empty("sync_subset_dst"));
    let p = project(&src, &dst);
    p.write(
        "pipelines/subset.kdl",
        &format!(
            "pipeline \"subset\"\nstage \"refresh\" uses=\"sync\" {{\n    from \"{}\"\n    to \"staging\"\n    subset {{\n      table \"public.users\" where=\"id % 50 = 0\"\n    }}\n}}\n",
            url(&src)
        ),
    );
    let out = crate::support::run(&mut p.cmd(&["run", "pipelines/subset.kdl", "--format", "json"]));
    assert_eq!(out.code, 0, "{out:?}");
    let o = &out.json()["stages"][0]["outputs"];
    let rows =
        |t: &str| o["tables"].as_array().unwrap().iter().find(|x| x["table"] == t).unwrap()["rows"].as_u64().unwrap();
    // Kept users pull in who referred them (a self-reference) and their teams' owners (a cycle).
    let kept = rows("public.users");
    assert!((40..2000).contains(&kept), "{kept}");
    assert!(rows("public.orders") < 4000 && rows("public.orders") > 0);
    // Every foreign key was added (and so validated) after the load.
    assert_eq!(one(&dst, FKS), one(&src, FKS));
    assert_eq!(
        one(&dst, "SELECT count(*) FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL"),
        "0"
    );
    assert_clean(&dst);
}

#[test]
fn a_schema_mismatch_is_reported_before_anything_is_written() {
    let (src, dst) = (source("sync_mismatch_src", 2000), empty("sync_mismatch_dst"));
    let p = project(&src, &dst);
    assert_eq!(sync(&p, &["--from", &url(&src), "--to", "staging"]).code, 0);
    query(&url(&dst), "ALTER TABLE orders ALTER COLUMN note TYPE int USING NULL; ALTER TABLE users DROP COLUMN phone");
    let before = dump(&dst);
    let out = sync(&p, &["--from", &url(&src), "--to", "staging"]);
    assert_eq!(out.code, 5, "{out:?}");
    let text = out.all();
    assert!(text.contains("public.orders.note: text in the source, integer in the target"), "{text}");
    assert!(text.contains("public.users.phone: missing in the target"), "{text}");
    assert_eq!(dump(&dst), before, "nothing was written");
}

#[test]
fn the_source_itself_and_a_protected_target_are_refused() {
    let src = source("sync_refuse_src", 2000);
    let other = empty("sync_refuse_dst");
    let p = project(&other, &src);
    let out = sync(&p, &["--from", &url(&src), "--to", "staging"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("into itself"), "{out:?}");
    let out = sync(&project(&src, &other), &["--from", &url(&other), "--to", "production"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("protected"), "{out:?}");
    assert_eq!(one(&src, "SELECT to_regclass('public.confiture_sync') IS NULL"), "t");
}

/// The number of tables in the database, confiture's own included.
const TABLE_COUNT: &str = "SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace::regnamespace::text \
                           NOT IN ('pg_catalog', 'information_schema', 'pg_toast')";

#[test]
fn bad_input_is_refused_before_the_target_is_touched() {
    let (src, dst) = (source("sync_bad_src", 2000), empty("sync_bad_dst"));
    let p = project(&src, &dst);
    // A column the source does not have.
    let out = sync(&p, &["--from", &url(&src), "--to", "staging", "--anonymize", "users.nosuch"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("users.nosuch: public.users has no column `nosuch`"), "{out:?}");
    assert_eq!(one(&dst, TABLE_COUNT), "0");
    // A subset condition that is not valid SQL fails in the source's snapshot, before the
    // target gets its schema or a run to resume.
    p.write(
        "pipelines/subset.kdl",
        &format!(
            "pipeline \"subset\"\nstage \"refresh\" uses=\"sync\" {{\n    from \"{}\"\n    to \"staging\"\n    subset {{\n      table \"public.users\" where=\"id %% = 2\"\n    }}\n}}\n",
            url(&src)
        ),
    );
    let out = crate::support::run(&mut p.cmd(&["run", "pipelines/subset.kdl"]));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.all().contains("subset: the condition on public.users fails in the source"), "{out:?}");
    assert!(out.all().contains("syntax error"), "{out:?}");
    assert_eq!(one(&dst, TABLE_COUNT), "0");
    // So the next run starts afresh, not refused as an unfinished one.
    assert_eq!(sync(&p, &["--from", &url(&src), "--to", "staging"]).code, 0);
    assert_eq!(dump(&dst), dump(&src));
}

#[test]
fn an_empty_source_is_refused_as_a_likely_mistake() {
    let (src, dst) = (empty("sync_none_src"), empty("sync_none_dst"));
    let p = project(&src, &dst);
    let out = sync(&p, &["--from", &url(&src), "--to", "staging", "--format", "json"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.json()["stages"][0]["error"]["message"].as_str().unwrap().contains("no table to copy"), "{out:?}");
    assert_eq!(one(&dst, TABLE_COUNT), "0", "the target is untouched");
}
