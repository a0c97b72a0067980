//! `confiture migrate` against the test server: exactly once, never half, and honest reports.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Project, assert_valid, fresh_name, project_with_env, query, scalar, server, url};

/// A project whose `dev` environment is a fresh, existing database.
fn setup(label: &str) -> (Project, String) {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    (project_with_env(&db), db)
}

fn migration(p: &Project, id: &str, up: &str, down: Option<&str>) {
    p.write(&format!("db/migrations/{id}.up.sql"), up);
    if let Some(down) = down {
        p.write(&format!("db/migrations/{id}.down.sql"), down);
    }
}

fn applied(db: &str) -> Vec<String> {
    query(&url(db), "SELECT version FROM confiture_migrations ORDER BY version::numeric")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

/// The state of each migration in a migrate report.
fn states(out: &crate::support::Output) -> Vec<String> {
    out.json()["stages"][0]["outputs"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect()
}

fn table_exists(db: &str, table: &str) -> bool {
    scalar(&url(db), &format!("SELECT to_regclass('{table}') IS NOT NULL")).as_deref() == Some("t")
}

fn three(p: &Project) {
    migration(p, "001_users", "CREATE TABLE users (id bigint PRIMARY KEY);\n", Some("DROP TABLE users;\n"));
    migration(
        p,
        "002_orders",
        "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\nCREATE INDEX ON orders (user_id);\n",
        Some("DROP TABLE orders;\n"),
    );
    migration(p, "003_notes", "CREATE TABLE notes (id bigint);\n", Some("DROP TABLE notes;\n"));
}

#[test]
fn up_applies_each_pending_migration_once_and_reports_it() {
    let (p, db) = setup("up");
    three(&p);
    let status = p.run(&["migrate", "status", "--env", "dev"]);
    assert_eq!(status.code, 2, "no tracking table yet: {status:?}");
    let out = p.run(&["migrate", "up", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_valid("run-report.json", &v);
    assert_valid("stages/migrate.json", &v["stages"][0]["outputs"]);
    let o = &v["stages"][0]["outputs"];
    assert_eq!(o["current"], "003");
    assert_eq!(o["counts"]["ran"], 3);
    assert_eq!(states(&out), ["ran", "ran", "ran"]);
    assert_eq!(applied(&db), ["001", "002", "003"]);
    let row = query(
        &url(&db),
        "SELECT name, checksum, applied_by, confiture_version, execution_ms >= 0, baseline FROM confiture_migrations WHERE version = '001'",
    );
    let checksum = crate::support::sha256_hex(b"CREATE TABLE users (id bigint PRIMARY KEY);\n");
    assert_eq!(row[0][0].as_deref(), Some("users"));
    assert_eq!(row[0][1].as_deref(), Some(checksum.as_str()), "the checksum is SHA-256 of the .up.sql bytes");
    assert_eq!(row[0][2].as_deref(), Some("postgres"));
    assert_eq!(row[0][3].as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(row[0][4].as_deref(), Some("t"));
    assert_eq!(row[0][5].as_deref(), Some("f"));

    let again = p.run(&["migrate", "up", "--env", "dev", "--format", "json"]);
    assert_eq!(again.code, 0);
    assert_eq!(again.json()["stages"][0]["outputs"]["counts"]["ran"], 0, "nothing runs twice");
    assert_eq!(p.run(&["migrate", "status", "--env", "dev"]).code, 0, "up to date");
    let current = p.run(&["migrate", "current", "--env", "dev"]);
    assert_eq!((current.code, current.stdout.as_str()), (0, "003\n"));
    migration(&p, "004_more", "CREATE TABLE more (id int);\n", None);
    let pending = p.run(&["migrate", "status", "--env", "dev"]);
    assert_eq!(pending.code, 1, "pending migrations: {pending:?}");
    assert!(pending.stdout.contains("004  more") && pending.stdout.contains("pending"), "{}", pending.stdout);
}

#[test]
fn eight_concurrent_runners_apply_every_migration_exactly_once() {
    let (p, db) = setup("concurrent");
    migration(&p, "001_log", "CREATE TABLE runs (migration int);\nINSERT INTO runs VALUES (1);\n", None);
    for i in 2..=6 {
        migration(
            &p,
            &format!("00{i}_step"),
            &format!("SELECT pg_sleep(0.05);\nINSERT INTO runs VALUES ({i});\n"),
            None,
        );
    }
    let children: Vec<_> = (0..8)
        .map(|_| {
            p.cmd(&["migrate", "up", "--env", "dev", "--lock-timeout", "60s", "-q"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(applied(&db).len(), 6);
    let runs = query(&url(&db), "SELECT migration, count(*) FROM runs GROUP BY migration ORDER BY migration");
    assert_eq!(runs.len(), 6);
    assert!(runs.iter().all(|r| r[1].as_deref() == Some("1")), "each migration ran once: {runs:?}");
}

#[test]
fn a_runner_killed_mid_migration_leaves_nothing_recorded() {
    let (p, db) = setup("killed");
    migration(&p, "001_first", "CREATE TABLE first (id int);\n", None);
    migration(&p, "002_slow", "CREATE TABLE slow (id int);\nSELECT pg_sleep(3);\n", None);
    let mut child =
        p.cmd(&["migrate", "up", "--env", "dev", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sleeping = scalar(
            &url(&db),
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'confiture migrate up' AND query LIKE 'SELECT pg_sleep%'",
        );
        if sleeping.as_deref() == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "the slow migration never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = child.wait();
    // The orphaned backend finishes its sleep, finds its client gone, and rolls back.
    let out = p.run(&["migrate", "up", "--env", "dev", "--lock-timeout", "30s", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let ran: Vec<&str> = v["stages"][0]["outputs"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] == "ran")
        .map(|m| m["version"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["002"], "the killed migration was not recorded, so it runs now");
    assert_eq!(applied(&db), ["001", "002"]);
}

#[test]
fn a_failing_second_of_three_leaves_exactly_the_first() {
    let (p, db) = setup("second_fails");
    migration(&p, "001_ok", "CREATE TABLE ok (id int);\n", None);
    migration(&p, "002_bad", "CREATE TABLE half (id int);\n\nINSERT INTO nowhere VALUES (1);\n", None);
    migration(&p, "003_later", "CREATE TABLE later (id int);\n", None);
    let out = p.run(&["migrate", "up", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let v = out.json();
    let err = &v["stages"][0]["error"];
    assert_eq!(err["location"], serde_json::json!({"file": "db/migrations/002_bad.up.sql", "line": 3, "column": 13}));
    assert!(err["message"].as_str().unwrap().contains("relation \"nowhere\" does not exist"), "{err}");
    assert_eq!(states(&out), ["ran", "failed", "not-run"]);
    assert_eq!(applied(&db), ["001"]);
    assert!(table_exists(&db, "ok") && !table_exists(&db, "half") && !table_exists(&db, "later"));
    let text = p.run(&["migrate", "up", "--env", "dev"]);
    assert!(text.stderr.contains("db/migrations/002_bad.up.sql:3:13"), "{}", text.stderr);
}

#[test]
fn edited_applied_files_are_reported_by_verify_and_up() {
    let (p, db) = setup("edited");
    three(&p);
    assert_eq!(p.run(&["migrate", "up", "--env", "dev"]).code, 0);
    assert_eq!(p.run(&["migrate", "verify", "--env", "dev"]).code, 0);
    p.write("db/migrations/002_orders.up.sql", "CREATE TABLE orders (id bigint PRIMARY KEY);\n");
    migration(&p, "004_new", "CREATE TABLE new (id int);\n", None);
    let verify = p.run(&["migrate", "verify", "--env", "dev"]);
    assert_eq!(verify.code, 7, "{verify:?}");
    assert!(verify.stderr.contains("db/migrations/002_orders.up.sql"), "{}", verify.stderr);
    let up = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(up.code, 7, "{up:?}");
    assert!(up.stderr.contains("002_orders.up.sql") && up.stderr.contains("Nothing ran"), "{}", up.stderr);
    assert!(!table_exists(&db, "new"));
    std::fs::remove_file(p.file("db/migrations/003_notes.up.sql")).unwrap();
    std::fs::remove_file(p.file("db/migrations/003_notes.down.sql")).unwrap();
    let status = p.run(&["migrate", "status", "--env", "dev", "--format", "json"]);
    assert_eq!(status.code, 7);
    assert_eq!(states(&status), ["applied", "modified", "missing-from-disk", "pending"]);
}

#[test]
fn baseline_then_up_runs_only_later_files() {
    let (p, db) = setup("baseline");
    three(&p);
    query(&url(&db), "CREATE TABLE users (id bigint PRIMARY KEY)");
    let out = p.run(&["migrate", "baseline", "--through", "001", "--env", "dev"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(applied(&db), ["001"]);
    let up = p.run(&["migrate", "up", "--env", "dev", "--format", "json"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(up.json()["stages"][0]["outputs"]["counts"]["ran"], 2);
    assert_eq!(
        scalar(&url(&db), "SELECT baseline FROM confiture_migrations WHERE version = '001'").as_deref(),
        Some("t")
    );
    let bad = p.run(&["migrate", "baseline", "--through", "999", "--env", "dev"]);
    assert_eq!(bad.code, 5, "{bad:?}");
}

#[test]
fn down_to_is_atomic_and_needs_every_down_file() {
    let (p, db) = setup("down");
    three(&p);
    assert_eq!(p.run(&["migrate", "up", "--env", "dev"]).code, 0);
    // 002's down fails (it drops a table that 003's down still needs): nothing is rolled back.
    p.write("db/migrations/002_orders.down.sql", "DROP TABLE orders;\nDROP TABLE no_such_table;\n");
    let out = p.run(&["migrate", "down", "--to", "001", "--env", "dev"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no_such_table") && out.stderr.contains("nothing was rolled back"), "{}", out.stderr);
    assert_eq!(applied(&db), ["001", "002", "003"]);
    assert!(table_exists(&db, "notes") && table_exists(&db, "orders"), "003's down was rolled back with the rest");

    p.write("db/migrations/002_orders.down.sql", "DROP TABLE orders;\n");
    std::fs::remove_file(p.file("db/migrations/003_notes.down.sql")).unwrap();
    let missing = p.run(&["migrate", "down", "--to", "001", "--env", "dev"]);
    assert_eq!(missing.code, 8, "{missing:?}");
    assert!(missing.stderr.contains("003_notes.up.sql has no .down.sql"), "{}", missing.stderr);
    assert_eq!(applied(&db), ["001", "002", "003"]);

    p.write("db/migrations/003_notes.down.sql", "DROP TABLE notes;\n");
    let ok = p.run(&["migrate", "down", "--to", "001", "--env", "dev", "--format", "json"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(applied(&db), ["001"]);
    assert!(!table_exists(&db, "orders") && !table_exists(&db, "notes") && table_exists(&db, "users"));
    assert_eq!(ok.json()["stages"][0]["outputs"]["current"], "001");
    let one = p.run(&["migrate", "down", "--env", "dev"]);
    assert_eq!(one.code, 0, "{one:?}");
    assert!(applied(&db).is_empty());
}

#[test]
fn concurrently_runs_outside_a_transaction_and_commit_is_refused() {
    let (p, db) = setup("concurrently");
    migration(&p, "001_t", "CREATE TABLE t (id int, email text);\n", None);
    migration(&p, "002_idx", "CREATE INDEX CONCURRENTLY t_email ON t (email);\n", None);
    let out = p.run(&["migrate", "up", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["stages"][0]["outputs"]["migrations"][1]["transactional"], false);
    assert_eq!(
        scalar(&url(&db), "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_email'::regclass").as_deref(),
        Some("t")
    );
    assert_eq!(applied(&db), ["001", "002"]);

    migration(&p, "003_ok", "CREATE TABLE fine (id int);\n", None);
    migration(&p, "004_commit", "CREATE TABLE x (id int);\nCOMMIT;\n", None);
    let refused = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(refused.stderr.contains("db/migrations/004_commit.up.sql:2: transaction control"), "{}", refused.stderr);
    assert!(!table_exists(&db, "fine"), "refused before anything ran");
}

#[test]
fn bad_file_names_are_reported_before_anything_runs() {
    let (p, db) = setup("names");
    migration(&p, "001_a", "CREATE TABLE a (id int);\n", None);
    migration(&p, "1_b", "CREATE TABLE b (id int);\n", None);
    p.write("db/migrations/002_c.down.sql", "SELECT 1;\n").write("db/migrations/notes.up.sql", "SELECT 1;\n");
    let out = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(out.code, 5, "{out:?}");
    for want in [
        "001_a.up.sql and db/migrations/1_b.up.sql have the same version",
        "002_c.down.sql: a .down.sql without",
        "notes.up.sql: not a migration name",
    ] {
        assert!(out.stderr.contains(want), "missing `{want}`:\n{}", out.stderr);
    }
    assert!(!table_exists(&db, "a"));
}

#[test]
fn a_held_lock_makes_a_second_runner_exit_6_naming_the_holder() {
    let (p, db) = setup("lock");
    migration(&p, "001_slow", "SELECT pg_sleep(4);\n", None);
    let mut first =
        p.cmd(&["migrate", "up", "--env", "dev", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(
        &url(&db),
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'",
    )
    .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "the first runner never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = p.run(&["migrate", "up", "--env", "dev", "--lock-timeout", "200ms"]);
    assert_eq!(second.code, 6, "{second:?}");
    assert!(
        second.stderr.contains("holds the lock") && second.stderr.contains("(confiture migrate up)"),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
}

#[test]
fn dry_runs_change_nothing() {
    let (p, db) = setup("dry");
    three(&p);
    assert_eq!(p.run(&["migrate", "up", "--env", "dev", "--target", "001"]).code, 0);
    let out = p.run(&["migrate", "up", "--dry-run", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let m = &out.json()["stages"][0]["outputs"]["migrations"];
    assert_eq!(m[1]["state"], "would-run");
    // orders is created in the same migration, so only users is locked.
    assert_eq!(
        m[1]["statements"][0]["locks"],
        serde_json::json!([{"relation": "users", "mode": "SHARE ROW EXCLUSIVE"}])
    );
    assert_eq!(m[1]["statements"][1]["locks"], serde_json::json!([]));
    assert_eq!(applied(&db), ["001"]);

    migration(&p, "004_broken", "INSERT INTO nowhere VALUES (1);\n", None);
    let rehearsal = p.run(&["migrate", "up", "--dry-run-execute", "--env", "dev", "--format", "json"]);
    assert_eq!(rehearsal.code, 7, "{rehearsal:?}");
    assert_eq!(states(&rehearsal), ["applied", "rehearsed", "rehearsed", "failed"]);
    assert_eq!(applied(&db), ["001"], "the rehearsal rolled back");
    assert!(!table_exists(&db, "orders"));

    // Preflight on a scratch database (here: empty, so everything is pending there).
    let (_, scratch) = setup("scratch");
    let pre = p.run(&["migrate", "preflight", "--against", &url(&scratch), "--format", "json"]);
    assert_eq!(pre.code, 7, "{pre:?}");
    assert_eq!(pre.json()["stages"][0]["outputs"]["counts"]["failed"], 1);
    assert!(!table_exists(&scratch, "users") && !table_exists(&scratch, "confiture_migrations"));
}

#[test]
fn python_confiture_projects_work() {
    let db = fresh_name("python");
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    let p = Project::new();
    p.write(
        "db/environments/local.yaml",
        &format!("name: local\ndatabase_url: \"{}\"\ninclude_dirs:\n  - db/schema\n", url(&db)),
    );
    migration(&p, "20260101120000_create_users", "CREATE TABLE users (id bigint);\n", Some("DROP TABLE users;\n"));
    migration(
        &p,
        "20260101120100_add_email",
        "ALTER TABLE users ADD COLUMN email text;\n",
        Some("ALTER TABLE users DROP COLUMN email;\n"),
    );
    p.write(
        "db/migrations/20260101120100_add_email.yaml",
        "up_preconditions:\n  - type: TableExists\n    table: users\n",
    )
    .write("db/migrations/20260101120100_add_email.verify.sql", "SELECT email FROM users LIMIT 0;\n");
    let out = p.run(&["migrate", "up", "--env", "local"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("precondition files are not checked"), "{}", out.stderr);
    assert_eq!(applied(&db), ["20260101120000", "20260101120100"]);
}

#[test]
fn migrate_new_writes_an_empty_timestamped_pair() {
    let p = Project::new();
    p.write("confiture.kdl", "");
    let out = p.run(&["migrate", "new", "Add user bio", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_valid("migrate-new.json", &v);
    let up = v["up"].as_str().unwrap();
    assert!(up.starts_with("db/migrations/") && up.ends_with("_add_user_bio.up.sql"), "{up}");
    assert_eq!(v["version"].as_str().unwrap().len(), 14);
    assert!(p.file(up).is_file() && p.file(v["down"].as_str().unwrap()).is_file());
}

#[test]
fn database_fallbacks_and_a_custom_tracking_table() {
    let (_, db) = setup("fallback");
    let p = Project::new();
    migration(&p, "001_a", "CREATE TABLE a (id int);\n", None);
    // CONFITURE_DATABASE_URL wins over DATABASE_URL; the choice is logged without the password.
    let with_password = format!("{} password=hunter2", url(&db));
    let mut cmd = p.cmd(&["-v", "migrate", "up", "--tracking-table", "ops.migrations"]);
    cmd.env("CONFITURE_DATABASE_URL", &with_password).env("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere");
    let out = crate::support::run(&mut cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("from CONFITURE_DATABASE_URL"), "{}", out.stderr);
    assert!(!out.all().contains("hunter2"), "{}", out.all());
    assert!(table_exists(&db, "ops.migrations") && !table_exists(&db, "confiture_migrations"));
    let mut cmd = p.cmd(&["migrate", "status", "--tracking-table", "ops.migrations"]);
    cmd.env("DATABASE_URL", url(&db));
    assert_eq!(crate::support::run(&mut cmd).code, 0);
    // An empty tracking table is not a missing one. (The table named once, in confiture.kdl.)
    query(&url(&db), "DELETE FROM ops.migrations");
    p.write("confiture.kdl", "migrate {\n    tracking-table \"ops.migrations\"\n}\n");
    let mut cmd = p.cmd(&["migrate", "status"]);
    cmd.env("DATABASE_URL", url(&db));
    assert_eq!(crate::support::run(&mut cmd).code, 1, "pending, not 'no table'");
    p.write("confiture.kdl", "migrate {\n    tracking-tabel \"ops.migrations\"\n}\n");
    let mut cmd = p.cmd(&["migrate", "status"]);
    cmd.env("DATABASE_URL", url(&db));
    let typo = crate::support::run(&mut cmd);
    assert_eq!(typo.code, 5, "{typo:?}");
    assert!(typo.stderr.contains("confiture.kdl"), "{}", typo.stderr);
}

#[test]
fn steps_directives_timeouts_and_events() {
    let (p, db) = setup("knobs");
    migration(&p, "001_a", "CREATE TABLE a (id int);\n", Some("DROP TABLE a;\n"));
    migration(
        &p,
        "002_b",
        "-- confiture:no-transaction\nCREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n",
        Some("DROP TABLE b;\n"),
    );
    migration(&p, "003_c", "CREATE TABLE c (id int);\n", Some("DROP TABLE c;\n"));
    let out = p.run(&["migrate", "up", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let m = &out.json()["stages"][0]["outputs"]["migrations"];
    assert_eq!((m[0]["transactional"].clone(), m[1]["transactional"].clone()), (true.into(), false.into()));
    // Lifecycle events reach the progress lines on stderr.
    for id in ["001_a", "002_b", "003_c"] {
        assert!(out.stderr.contains(&format!("✓ migrate: {id} (")), "{}", out.stderr);
    }
    let down = p.run(&["migrate", "down", "--steps", "2", "--env", "dev"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(applied(&db), ["001"]);

    migration(
        &p,
        "002_b",
        "-- confiture:no-transaction\nCREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n",
        Some("DROP TABLE b;\n"),
    );
    std::fs::remove_file(p.file("db/migrations/003_c.up.sql")).unwrap();
    std::fs::remove_file(p.file("db/migrations/003_c.down.sql")).unwrap();
    migration(&p, "003_slow", "SELECT pg_sleep(5);\n", None);
    let timed_out = p.run(&["migrate", "up", "--env", "dev", "--statement-timeout", "300ms"]);
    assert_eq!(timed_out.code, 1, "{timed_out:?}");
    assert!(timed_out.stderr.contains("statement timeout"), "{}", timed_out.stderr);
    assert_eq!(applied(&db), ["001", "002"]);
}

#[test]
fn lock_timeout_bounds_waiting_for_table_locks() {
    let (p, db) = setup("lock_timeout");
    migration(&p, "001_t", "CREATE TABLE t (id int);\n", None);
    assert_eq!(p.run(&["migrate", "up", "--env", "dev"]).code, 0);
    migration(&p, "002_alter", "ALTER TABLE t ADD COLUMN x int;\n", None);
    // Another session holds a lock on t while the migration wants ACCESS EXCLUSIVE.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let dsn = url(&db);
    let holder = std::thread::spawn(move || {
        crate::support::block_on(async move {
            let info = confiture_engine::pg::ConnInfo::parse(&dsn).unwrap();
            let s = confiture_engine::pg::connect(&info, "holder").await.unwrap();
            s.client().batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE").await.unwrap();
            ready_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || done_rx.recv()).await.unwrap().ok();
        })
    });
    ready_rx.recv().unwrap();
    let t0 = Instant::now();
    let out = p.run(&["migrate", "up", "--env", "dev", "--lock-timeout", "300ms"]);
    // The same from confiture.kdl's `migrate { … }` defaults, for every migrate command and stage.
    let kdl = std::fs::read_to_string(p.file("confiture.kdl")).unwrap();
    p.write("confiture.kdl", &format!("{kdl}migrate {{\n    lock-timeout \"300ms\"\n}}\n"));
    let from_kdl = p.run(&["migrate", "up", "--env", "dev"]);
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    // A lock not obtained within lock_timeout (55P03) is lock contention: exit 6.
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("lock timeout"), "{}", out.stderr);
    assert_eq!(from_kdl.code, 6, "{from_kdl:?}");
    assert!(from_kdl.stderr.contains("lock timeout"), "{}", from_kdl.stderr);
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(applied(&db), ["001"]);
}

#[test]
fn ctrl_c_rolls_back_the_running_migration() {
    let (p, db) = setup("ctrl_c");
    migration(&p, "001_first", "CREATE TABLE first (id int);\n", None);
    migration(&p, "002_slow", "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n", None);
    let mut child =
        p.cmd(&["migrate", "up", "--env", "dev", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(
        &url(&db),
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'",
    )
    .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "the slow migration never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(t0.elapsed() < Duration::from_secs(20), "cancelled, not waited out");
    assert_eq!(applied(&db), ["001"]);
    assert!(!table_exists(&db, "slow"));
}

#[test]
fn commands_that_need_the_table_exit_2_without_it() {
    let (p, _) = setup("no_table");
    three(&p);
    for cmd in ["status", "verify", "current", "down"] {
        let out = p.run(&["migrate", cmd, "--env", "dev"]);
        assert_eq!(out.code, 2, "{cmd}: {out:?}");
    }
}

#[test]
fn preflight_reports_every_failure() {
    let (p, _) = setup("preflight_many");
    migration(&p, "001_a", "INSERT INTO nowhere VALUES (1);\n", None);
    migration(&p, "002_b", "CREATE TABLE fine (id int);\n", None);
    migration(&p, "003_c", "SELECT 1/0;\n", None);
    let (_, scratch) = setup("preflight_scratch");
    let out = p.run(&["migrate", "preflight", "--against", &url(&scratch), "--format", "json"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(states(&out), ["failed", "rehearsed", "failed"]);
    assert!(out.stderr.contains("2 migrations failed in the rehearsal"), "{}", out.stderr);
}
