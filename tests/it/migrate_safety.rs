//! Migrations that cannot go subtly wrong: no session state shared between migrations, no
//! INVALID index recorded as applied, the right exit code for every kind of failure.

use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use confiture_engine::pg::ConnInfo;

use crate::support::{Project, fresh_name, project_with_env, query, scalar, server, sha256_hex, url};

fn setup(label: &str) -> (Project, String) {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    (project_with_env(&db), db)
}

fn migration(p: &Project, id: &str, up: &str) {
    p.write(&format!("db/migrations/{id}.up.sql"), up);
}

fn applied(db: &str) -> Vec<String> {
    if scalar(&url(db), "SELECT to_regclass('confiture_migrations') IS NOT NULL").as_deref() != Some("t") {
        return Vec::new();
    }
    query(&url(db), "SELECT version FROM confiture_migrations ORDER BY version")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

/// A session on another thread, doing `sql` and then holding whatever it took until dropped.
struct Held {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn hold(info: ConnInfo, sql: &str) -> Held {
    let sql = sql.to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        crate::support::block_on(async move {
            let session = confiture_engine::pg::connect(&info, "lock-holder").await.expect("the holder connects");
            session.client().batch_execute(&sql).await.expect("the holder's statement runs");
            ready_tx.send(()).unwrap();
            while matches!(stop_rx.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    ready_rx.recv_timeout(Duration::from_secs(30)).expect("the holder is ready");
    Held { stop: Some(stop_tx), thread: Some(thread) }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The advisory lock key the runner takes for the default tracking table of `db`.
fn lock_key(db: &str) -> i64 {
    let hex = sha256_hex(format!("confiture:migrate:{db}:public.confiture_migrations").as_bytes());
    u64::from_str_radix(&hex[..16], 16).unwrap() as i64
}

fn as_role(db: &str, role: &str) -> ConnInfo {
    let mut info = server().with_dbname(db);
    info.set("user", role);
    info
}

#[test]
fn session_state_does_not_leak_from_one_migration_into_the_next() {
    let (p, db) = setup("leak");
    let role = fresh_name("limited");
    query(&server().to_secret_string(), &format!("CREATE ROLE {role} NOLOGIN"));
    // 001 changes the search path, the timeout and the role, and leaves them set.
    migration(
        &p,
        "001_settings",
        &format!(
            "CREATE SCHEMA elsewhere;\nGRANT INSERT ON confiture_migrations TO {role};\nSET search_path = elsewhere;\nSET \
             statement_timeout = '50ms';\nSET ROLE {role};\n"
        ),
    );
    // 002 would land in `elsewhere`, be refused for the role, and be cancelled by the timeout.
    migration(&p, "002_table", "CREATE TABLE t2 (id int);\nSELECT pg_sleep(0.3);\n");
    let rehearsal = p.run(&["migrate", "up", "--env", "dev", "--dry-run-execute"]);
    assert_eq!(rehearsal.code, 0, "the rehearsal resets between migrations too: {rehearsal:?}");
    let out = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(applied(&db), ["001", "002"]);
    let dsn = url(&db);
    assert_eq!(scalar(&dsn, "SELECT to_regclass('public.t2') IS NOT NULL").as_deref(), Some("t"));
    assert_eq!(scalar(&dsn, "SELECT tableowner FROM pg_tables WHERE tablename = 't2'").as_deref(), Some("postgres"));
}

#[test]
fn a_failed_concurrent_index_build_is_never_recorded_and_a_rerun_rebuilds_it() {
    let (p, db) = setup("cic");
    let dsn = url(&db);
    query(&dsn, "CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1), (2)");
    migration(
        &p,
        "001_unique",
        "-- confiture:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dup_v ON dup (v);\n",
    );
    let failed = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stderr.contains("INVALID (dup_v)"), "names the index: {}", failed.stderr);
    assert!(failed.stderr.contains("DROP INDEX CONCURRENTLY dup_v"), "says how to recover: {}", failed.stderr);
    assert!(applied(&db).is_empty());
    assert_eq!(
        scalar(&dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_v'::regclass").as_deref(),
        Some("f")
    );

    // The data is fixed; the rerun must not skip the INVALID leftover (IF NOT EXISTS would).
    query(&dsn, "DELETE FROM dup WHERE ctid = (SELECT max(ctid) FROM dup WHERE v = 1)");
    let rerun = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stderr.contains("dropping the INVALID index dup_v"), "{}", rerun.stderr);
    assert_eq!(applied(&db), ["001"]);
    assert_eq!(
        scalar(&dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_v'::regclass").as_deref(),
        Some("t")
    );
}

#[test]
fn the_lock_holder_is_named_even_when_it_is_another_role() {
    let db = fresh_name("roles");
    let (runner, holder) = (fresh_name("runner"), fresh_name("holder"));
    let admin = server().to_secret_string();
    query(&admin, &format!("CREATE ROLE {runner} LOGIN; CREATE ROLE {holder} LOGIN"));
    query(&admin, &format!("CREATE DATABASE {db} OWNER {runner}"));
    let p = Project::new();
    migration(&p, "001_a", "CREATE TABLE a (id int);\n");
    let _held = hold(as_role(&db, &holder), &format!("SELECT pg_advisory_lock({})", lock_key(&db)));
    let dsn = as_role(&db, &runner).to_secret_string();
    for mode in [&["migrate", "up"][..], &["migrate", "up", "--dry-run-execute"][..]] {
        let mut args = mode.to_vec();
        args.extend(["--database-url", &dsn, "--lock-timeout", "300ms"]);
        let out = p.run(&args);
        // Without pg_read_all_stats the runner sees little of the holder's session; it still
        // reports contention (exit 6), not a crash. A rehearsal waits for the lock too.
        assert_eq!(out.code, 6, "{mode:?}: {out:?}");
        assert!(out.stderr.contains("holds the lock") && out.stderr.contains("pid "), "{}", out.stderr);
    }
    assert!(applied(&db).is_empty());
}

#[test]
fn a_connection_lost_during_a_migration_exits_3() {
    let (p, db) = setup("lost");
    migration(&p, "001_slow", "SELECT pg_sleep(60);\n");
    let child =
        p.cmd(&["migrate", "up", "--env", "dev"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let find =
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(60)%'";
    let pid = loop {
        if let Some(pid) = scalar(&url(&db), find) {
            break pid;
        }
        assert!(Instant::now() < deadline, "the migration never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    query(&url(&db), &format!("SELECT pg_terminate_backend({pid})"));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(applied(&db).is_empty());
}

#[test]
fn timeouts_postgresql_cannot_take_are_refused_before_anything_runs() {
    let (p, db) = setup("i32");
    migration(&p, "001_a", "CREATE TABLE a (id int);\n");
    let out = p.run(&["migrate", "up", "--env", "dev", "--lock-timeout", "30days"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("longer than PostgreSQL allows"), "{}", out.stderr);
    assert!(applied(&db).is_empty());
    p.write("pipelines/p.kdl", "stage \"m\" uses=\"migrate\" {\n    env \"dev\"\n    statement-timeout \"25d\"\n}\n");
    let check = p.run(&["check", "pipelines/p.kdl"]);
    assert_eq!(check.code, 5, "refused by `check`, without a database: {check:?}");
    assert!(check.stderr.contains("p.kdl:3"), "{}", check.stderr);
}

#[test]
fn a_rerun_of_an_unnamed_concurrent_index_build_leaves_no_invalid_copy() {
    let (p, db) = setup("cic_unnamed");
    let dsn = url(&db);
    query(&dsn, "CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1)");
    migration(&p, "001_unique", "-- confiture:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY ON dup (v);\n");
    let failed = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stderr.contains("INVALID (dup_v_idx)"), "{}", failed.stderr);
    query(&dsn, "DELETE FROM dup WHERE ctid = (SELECT max(ctid) FROM dup)");
    // The rerun has to pick another name (dup_v_idx1); the INVALID dup_v_idx must not stay.
    let rerun = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    let indexes =
        query(&dsn, "SELECT indexrelid::regclass::text, indisvalid FROM pg_index WHERE indrelid = 'dup'::regclass");
    assert_eq!(indexes, vec![vec![Some("dup_v_idx1".to_string()), Some("t".to_string())]], "{}", rerun.stderr);
    assert_eq!(applied(&db), ["001"]);
}
