//! `confiture migrate schema-to-schema --strategy fdw` between two real databases, with a
//! changed schema on NEW (a renamed column, a computed column, a split table, a dropped column, a
//! widened type), a write load that logs every committed write, a real PgBouncer in front of the
//! application, SIGKILL during copy and catch-up, verify, and rollback after the switch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Output, Project, fresh_name, query, scalar, server, url};

const OLD_SCHEMA: &str = include_str!("../data/cutover/old.sql");

const NEW_SCHEMA: &str = include_str!("../data/cutover/new.sql");

const MAPPING: &str = include_str!("../data/cutover/mapping.kdl");

fn database(label: &str) -> String {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    db
}

fn old_db(label: &str, rows: usize) -> String {
    let db = database(label);
    query(&url(&db), &OLD_SCHEMA.replace("__ROWS__", &rows.to_string()));
    db
}

/// `old` and `new` environments, NEW's schema in db/schema, the mapping in db/cutover.kdl.
fn project(old: &str, new: &str) -> Project {
    let p = Project::new();
    p.write(
        "confiture.kdl",
        &format!(
            "environment \"old\" {{\n    database url=\"{}\"\n    protected #true\n}}\nenvironment \"new\" {{\n    database url=\"{}\"\n}}\n",
            url(old),
            url(new)
        ),
    );
    p.write("db/schema/01_tables.sql", NEW_SCHEMA);
    p.write("db/cutover.kdl", MAPPING);
    p
}

fn cutover_cmd(p: &Project, args: &[&str]) -> Command {
    let mut all = vec![
        "migrate",
        "schema-to-schema",
        "--strategy",
        "fdw",
        "--from",
        "old",
        "--to",
        "new",
        "--mapping",
        "db/cutover.kdl",
    ];
    all.extend_from_slice(args);
    p.cmd(&all)
}

fn cutover(p: &Project, args: &[&str]) -> Output {
    crate::support::run(&mut cutover_cmd(p, args))
}

/// A PgBouncer on a loopback port in front of database `db`, started for one test.
struct Bouncer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Bouncer {
    fn config(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.ini")
    }

    fn admin(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/pgbouncer?sslmode=disable", self.port)
    }

    fn app(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=app sslmode=disable", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pgbouncer_binary() -> Option<PathBuf> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn start_pgbouncer(db: &str) -> Option<Bouncer> {
    let Some(bin) = pgbouncer_binary() else {
        eprintln!("SKIPPED: pgbouncer is not installed (Debian `pgbouncer`; .ci/run installs it)");
        assert!(std::env::var("CI").is_err(), "CI must not skip the PgBouncer test");
        return None;
    };
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ini = format!(
        "[databases]\napp = host={} port={} dbname={db}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
         unix_socket_dir =\nauth_type = trust\nauth_file = {}/users.txt\nadmin_users = postgres\npool_mode = transaction\n\
         max_client_conn = 200\ndefault_pool_size = 20\nlogfile = {}/pgbouncer.log\npidfile = {}/pgbouncer.pid\n\
         ignore_startup_parameters = extra_float_digits,options\nserver_reset_query =\n",
        s.get("host").unwrap(),
        s.get("port").unwrap_or("5432"),
        dir.path().display(),
        dir.path().display(),
        dir.path().display()
    );
    std::fs::write(dir.path().join("pgbouncer.ini"), ini).unwrap();
    std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg(dir.path().join("pgbouncer.ini")).stdout(Stdio::null()).stderr(Stdio::null());
    // PgBouncer refuses to run as root: as the test clusters do, run it as `postgres`.
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        let user =
            nix::unistd::User::from_name("postgres").unwrap().expect("a postgres user (as for the test cluster)");
        for entry in ["", "pgbouncer.ini", "users.txt"] {
            nix::unistd::chown(&dir.path().join(entry), Some(user.uid), Some(user.gid)).unwrap();
        }
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let child = cmd.spawn().expect("pgbouncer starts");
    let b = Bouncer { child, dir, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "pgbouncer did not start: {}",
        std::fs::read_to_string(b.dir.path().join("pgbouncer.log")).unwrap_or_default()
    );
}

/// What the load saw committed.
#[derive(Default, Debug)]
struct Log {
    /// Committed `balance + 1` per original user.
    increments: BTreeMap<i64, i64>,
    /// Users inserted (each with balance 1), and those of them deleted again.
    inserted: BTreeSet<i64>,
    deleted: BTreeSet<i64>,
    orders: i64,
    errors: Vec<String>,
    /// Every transaction's latency, with the time it ended.
    latencies: Vec<(Instant, Duration)>,
}

/// `tasks` writers on `conninfo` until `stop`; each owns the users with `id % tasks == task`.
fn load(
    conninfo: String,
    rows: i64,
    tasks: i64,
    tag: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Log> {
    std::thread::spawn(move || {
        crate::support::block_on(async move {
            let mut handles = Vec::new();
            for task in 0..tasks {
                let (conninfo, stop) = (conninfo.clone(), stop.clone());
                handles.push(tokio::spawn(async move { writer(&conninfo, rows, tag, task, &stop).await }));
            }
            let mut log = Log::default();
            for h in handles {
                let l = h.await.unwrap();
                for (k, v) in l.increments {
                    *log.increments.entry(k).or_default() += v;
                }
                log.inserted.extend(l.inserted);
                log.deleted.extend(l.deleted);
                log.orders += l.orders;
                log.errors.extend(l.errors);
                log.latencies.extend(l.latencies);
            }
            log
        })
    })
}

async fn writer(conninfo: &str, rows: i64, tag: &str, task: i64, stop: &AtomicBool) -> Log {
    let mut log = Log::default();
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await.expect("the load connects");
    tokio::spawn(conn);
    let mut n: i64 = 0;
    let mut mine: Vec<i64> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = 1 + (n * 7919 + task * 104_729) % rows;
        let started = Instant::now();
        let (sql, what) = match n % 10 {
            0..=5 => (
                format!("BEGIN; UPDATE users SET balance = balance + 1, first_name = 'F{n}' WHERE id = {key}; COMMIT"),
                0,
            ),
            6 | 7 => (
                format!(
                    "BEGIN; INSERT INTO users (email, first_name, last_name, balance) VALUES ('{tag}{task}_{n}@example.com', 'L', 'N', 1) RETURNING id; COMMIT"
                ),
                1,
            ),
            8 => (format!("BEGIN; INSERT INTO orders (user_id, amount) VALUES ({key}, 1.5); COMMIT"), 2),
            _ => match mine.pop() {
                Some(id) => (format!("BEGIN; DELETE FROM users WHERE id = {id}; COMMIT"), 3 + id * 10),
                None => continue,
            },
        };
        if n % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match client.simple_query(&sql).await {
            Ok(messages) => {
                log.latencies.push((Instant::now(), started.elapsed()));
                match what {
                    0 => *log.increments.entry(key).or_default() += 1,
                    1 => {
                        let id = messages
                            .iter()
                            .find_map(|m| match m {
                                tokio_postgres::SimpleQueryMessage::Row(r) => {
                                    r.get(0).map(|v| v.parse::<i64>().unwrap())
                                }
                                _ => None,
                            })
                            .unwrap();
                        log.inserted.insert(id);
                        mine.push(id);
                    }
                    2 => log.orders += 1,
                    w => {
                        log.deleted.insert((w - 3) / 10);
                    }
                }
            }
            Err(e) => {
                log.errors.push(format!("{e:?}"));
                let _ = client.simple_query("ROLLBACK").await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

/// NEW (or OLD after a rollback) holds exactly what the load committed.
fn assert_every_write(dsn: &str, rows: i64, initial_orders: i64, log: &Log) {
    let balances: BTreeMap<i64, i64> = query(dsn, &format!("SELECT id, balance FROM users WHERE id <= {rows}"))
        .into_iter()
        .map(|r| (r[0].as_ref().unwrap().parse().unwrap(), r[1].as_ref().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(balances.len() as i64, rows, "every original user is there");
    let mut wrong = Vec::new();
    for (id, b) in &balances {
        let expect = log.increments.get(id).copied().unwrap_or(0);
        if *b != expect {
            wrong.push(format!("user {id}: balance {b}, the load committed {expect} increments"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} users differ (lost or doubled writes): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    let present: BTreeSet<i64> = query(dsn, &format!("SELECT id FROM users WHERE id > {rows}"))
        .into_iter()
        .map(|r| r[0].as_ref().unwrap().parse().unwrap())
        .collect();
    let expected: BTreeSet<i64> = log.inserted.difference(&log.deleted).copied().collect();
    let extra: Vec<&i64> = present.difference(&expected).take(10).collect();
    let missing: Vec<&i64> = expected.difference(&present).take(10).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "inserted users: present exactly when inserted and not deleted; extra (deleted or never committed) {extra:?}, missing {missing:?} ({} present, {} expected)",
        present.len(),
        expected.len()
    );
    let orders: i64 = scalar(dsn, "SELECT count(*) FROM orders").unwrap().parse().unwrap();
    assert_eq!(orders, initial_orders + log.orders, "every committed order, once");
}

fn max_latency_around(log: &Log) -> Duration {
    log.latencies.iter().map(|(_, d)| *d).max().unwrap_or_default()
}

#[test]
fn cutover_under_write_load_through_pgbouncer_then_rollback() {
    let rows = 20_000i64;
    let old = old_db("cut_old", rows as usize);
    let new = database("cut_new");
    let p = project(&old, &new);
    let Some(b) = start_pgbouncer(&old) else { return };

    // The plan first: nothing is written.
    let plan = cutover(&p, &["--dry-run", "--format", "json"]);
    assert_eq!(plan.code, 5, "a dry run needs NEW's tables: {}", plan.all());
    assert!(plan.all().contains("NEW has no tables yet"), "{}", plan.all());

    let stop = Arc::new(AtomicBool::new(false));
    let writers = load(b.app(), rows, 4, "a", stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let mut cmd = cutover_cmd(
        &p,
        &[
            "--keep",
            "--format",
            "json",
            "--range-rows",
            "5000",
            "--pgbouncer-admin",
            &b.admin(),
            "--pgbouncer-database",
            "app",
            "--pgbouncer-config",
            b.config().to_str().unwrap(),
        ],
    );
    let out = crate::support::run(&mut cmd);
    // The load goes on through PgBouncer, now into NEW.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let log = writers.join().unwrap();
    assert_eq!(out.code, 0, "{}", out.all());
    let report = out.json();
    crate::support::assert_valid("run-report.json", &report);
    let outputs = &report["stages"][0]["outputs"];
    crate::support::assert_valid("stages/fdw-cutover.json", outputs);
    let phases: Vec<&str> =
        outputs["phases"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["plan", "setup", "capture", "copy", "catch-up", "verify", "cutover"], "{outputs:#}");
    assert!(outputs["cutover"]["pgbouncer"].as_bool().unwrap(), "{outputs:#}");
    assert!(
        log.errors.is_empty(),
        "the application saw errors through PgBouncer: {:?}",
        &log.errors[..log.errors.len().min(5)]
    );
    eprintln!(
        "cutover: freeze {} ms (confiture), longest write the load saw {:?}, {} writes committed",
        outputs["cutover"]["freeze_ms"],
        max_latency_around(&log),
        log.latencies.len()
    );
    let new_url = url(&new);
    assert_every_write(&new_url, rows, 2 * rows, &log);
    // The mapping: renamed, computed, split, dropped, widened.
    // (the load rewrites first_name, so the computed column is checked by its last name)
    assert_eq!(
        scalar(&new_url, "SELECT handle || '|' || (full_name LIKE 'F% Last3') FROM users WHERE id = 3").as_deref(),
        Some("nick3|true")
    );
    assert_eq!(scalar(&new_url, "SELECT bio FROM profiles WHERE user_id = 7").as_deref(), Some("bio 7"));
    assert_eq!(
        scalar(&new_url, "SELECT count(*) FROM profiles WHERE user_id <= 20000").as_deref(),
        Some(rows.to_string().as_str())
    );
    // NEW's identity is past OLD's values: the inserts after the switch did not collide.
    assert!(log.inserted.iter().max().copied().unwrap_or(0) > rows);
    // OLD refuses writes to the migrated tables, with a clear error; reads go on.
    let direct = crate::support::block_on(async {
        let s = confiture_engine::pg::connect(&server().with_dbname(&old), "t").await.unwrap();
        s.client().batch_execute("UPDATE users SET balance = 0 WHERE id = 1").await.unwrap_err()
    });
    let message = confiture_engine::pg::describe(&direct);
    assert!(message.contains("was migrated to"), "{message}");
    assert_eq!(scalar(&url(&old), "SELECT count(*) > 0 FROM users").as_deref(), Some("t"));
    // Status: switched, rollback possible.
    let status = cutover(&p, &["status"]);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(status.stdout.contains("switched to NEW"), "{}", status.stdout);

    // Rollback after the switch: the writes made on NEW go back to OLD.
    let stop = Arc::new(AtomicBool::new(false));
    let writers = load(b.app(), rows, 2, "b", stop.clone());
    std::thread::sleep(Duration::from_millis(800));
    let mut cmd = cutover_cmd(
        &p,
        &[
            "rollback",
            "--format",
            "json",
            "--pgbouncer-admin",
            &b.admin(),
            "--pgbouncer-database",
            "app",
            "--pgbouncer-config",
            b.config().to_str().unwrap(),
        ],
    );
    let back = crate::support::run(&mut cmd);
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    let log2 = writers.join().unwrap();
    assert_eq!(back.code, 0, "{}", back.all());
    eprintln!("rollback: {:#}", back.json()["stages"][0]["outputs"]["catch_up"]);
    assert!(log2.errors.is_empty(), "errors during the rollback: {:?}", &log2.errors[..log2.errors.len().min(5)]);
    // OLD has every write: those before the switch, those made on NEW, those after the rollback.
    let mut all = log;
    for (k, v) in log2.increments {
        *all.increments.entry(k).or_default() += v;
    }
    all.inserted.extend(log2.inserted);
    all.deleted.extend(log2.deleted);
    all.orders += log2.orders;
    let old_url = url(&old);
    assert_every_write(&old_url, rows, 2 * rows, &all);
    // OLD takes writes again and carries nothing of the cutover.
    query(&old_url, "UPDATE users SET nick = 'back' WHERE id = 1");
    assert_eq!(
        scalar(&old_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'confiture_capture'").as_deref(),
        Some("0")
    );
    assert_eq!(
        scalar(&old_url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    assert_eq!(scalar(&new_url, "SELECT count(*) FROM pg_foreign_server").as_deref(), Some("0"));
}

/// Wait until `sql` on `dsn` returns true.
fn wait_for(dsn: &str, sql: &str, what: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if query(dsn, sql).first().and_then(|r| r[0].clone()).as_deref() == Some("t") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn sigkill(child: &mut Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = child.wait();
}

#[test]
fn killed_copy_and_catch_up_resume_and_lose_nothing() {
    let rows = 200_000i64;
    let old = old_db("cutk_old", rows as usize);
    let new = database("cutk_new");
    let p = project(&old, &new);
    let new_url = url(&new);
    let old_url = url(&old);

    for phase in ["setup", "capture"] {
        let out = cutover(&p, &[phase]);
        assert_eq!(out.code, 0, "{phase}: {}", out.all());
    }
    // Writes go on directly on OLD through copy and catch-up.
    let stop = Arc::new(AtomicBool::new(false));
    let s = server();
    let direct =
        format!("host={} port={} user=postgres dbname={old}", s.get("host").unwrap(), s.get("port").unwrap_or("5432"));
    let writers = load(direct, rows, 2, "k", stop.clone());

    // SIGKILL in the middle of the copy.
    let mut child = cutover_cmd(&p, &["copy", "--jobs", "1", "--range-rows", "20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        &new_url,
        "SELECT to_regclass('confiture_cutover.ranges') IS NOT NULL AND (SELECT count(*) FILTER (WHERE done) >= 2 FROM confiture_cutover.ranges)",
        "two copied ranges",
    );
    sigkill(&mut child);
    let partial: i64 =
        scalar(&new_url, "SELECT count(*) FILTER (WHERE done) FROM confiture_cutover.ranges").unwrap().parse().unwrap();
    let total: i64 = scalar(&new_url, "SELECT count(*) FROM confiture_cutover.ranges").unwrap().parse().unwrap();
    assert!(partial < total, "the kill came before the end ({partial}/{total})");
    let out = cutover(&p, &["copy", "--format", "json"]);
    assert_eq!(out.code, 0, "resumed copy: {}", out.all());
    let copy = &out.json()["stages"][0]["outputs"]["copy"];
    assert!(copy["ranges_resumed"].as_u64().unwrap() >= 2, "{copy:#}");

    // Many changes waiting, then SIGKILL in the middle of catch-up.
    query(&old_url, "UPDATE users SET last_name = last_name || '!' WHERE id % 4 = 0");
    let mut child = cutover_cmd(&p, &["catch-up", "--batch", "2000", "--max-lag", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&new_url, "SELECT replayed >= 4000 FROM confiture_cutover.runs", "two catch-up batches");
    sigkill(&mut child);
    let out = cutover(&p, &["catch-up", "--format", "json"]);
    assert_eq!(out.code, 0, "resumed catch-up: {}", out.all());

    stop.store(true, Ordering::SeqCst);
    let log = writers.join().unwrap();
    assert!(log.errors.is_empty(), "{:?}", &log.errors[..log.errors.len().min(5)]);
    let out = cutover(&p, &["verify", "--format", "json"]);
    assert_eq!(out.code, 0, "verify after resumes: {}", out.all());
    let out = cutover(&p, &["cutover"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_every_write(&new_url, rows, 2 * rows, &log);
    assert_eq!(
        scalar(&new_url, "SELECT count(*) FROM users WHERE id <= 200000 AND id % 4 = 0 AND full_name NOT LIKE '%!'")
            .as_deref(),
        Some("0"),
        "the computed column follows the replayed changes"
    );
    // Cleanup removes everything on both sides, and OLD takes writes again.
    let out = cutover(&p, &["cleanup"]);
    assert_eq!(out.code, 0, "{}", out.all());
    query(&old_url, "UPDATE users SET nick = 'after' WHERE id = 1");
    assert_eq!(
        scalar(&old_url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    assert_eq!(
        scalar(&new_url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    assert_eq!(scalar(&new_url, "SELECT count(*) FROM pg_foreign_server").as_deref(), Some("0"));
}

#[test]
fn the_plan_refuses_what_would_lose_data_and_verify_finds_a_changed_row() {
    let old = old_db("cutp_old", 3000);
    let new = database("cutp_new");
    query(&url(&old), "CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x')");
    query(
        &url(&new),
        &format!("{NEW_SCHEMA} ALTER TABLE users ADD COLUMN tier text NOT NULL; CREATE TABLE nokey (a int, b text);"),
    );
    let p = project(&old, &new);
    p.write("db/cutover.kdl", "table \"public.users\" {\n    column \"handle\" from=\"nick\"\n    column \"full_name\" from=\"no_such_column\"\n}\n");
    let out = cutover(&p, &["--dry-run"]);
    assert_eq!(out.code, 5, "{}", out.all());
    let all = out.all();
    for expected in [
        "users.tier is NOT NULL with no default",
        "OLD column public.users.legacy reaches no NEW column",
        "OLD column public.users.bio reaches no NEW column",
        "no_such_column",
        "OLD table public.nokey has no primary key",
        "NEW table public.nokey has no primary key",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
    assert!(!all.contains("password"), "{all}");
    assert_eq!(
        scalar(&url(&old), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    assert_eq!(
        scalar(&url(&new), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'confiture%'").as_deref(),
        Some("0")
    );

    // A malformed mapping: exit 5, each problem with its file and line; a missing one too.
    p.write(
        "db/cutover.kdl",
        "table \"public.users\" {\n    column \"handle\" from=\"nick\"\n}\ntabel \"public.orders\"\n",
    );
    let out = cutover(&p, &["--dry-run"]);
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(
        out.all().contains("unknown mapping entry `tabel`") && out.all().contains("cutover.kdl:4"),
        "{}",
        out.all()
    );
    std::fs::remove_file(p.file("db/cutover.kdl")).unwrap();
    let out = cutover(&p, &["--dry-run"]);
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.all().contains("cannot read the mapping"), "{}", out.all());

    // A plan that works; dry run prints it; then copy, break one row on NEW, verify says where.
    query(&url(&old), "DROP TABLE nokey");
    query(&url(&new), "DROP TABLE nokey; ALTER TABLE users DROP COLUMN tier");
    p.write("db/cutover.kdl", MAPPING);
    let out = cutover(&p, &["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("full_name ← first_name || ' ' || last_name"), "{}", out.stdout);
    assert!(out.stdout.contains("public.users → public.profiles"), "{}", out.stdout);
    assert!(out.stdout.contains("drops public.users.legacy"), "{}", out.stdout);
    // OLD's password goes into the user mapping and nowhere else (trust ignores it here).
    let mut with_password = server().with_dbname(&old);
    with_password.set("password", "s3cr3t-Value");
    p.write(
        "confiture.kdl",
        &format!(
            "environment \"old\" {{\n    database url=\"{}\"\n}}\nenvironment \"new\" {{\n    database url=\"{}\"\n}}\n",
            with_password.to_secret_string().replace('"', "\\\""),
            url(&new)
        ),
    );
    for phase in ["setup", "capture", "copy"] {
        let out = cutover(&p, &[phase, "--format", "json", "-v"]);
        assert_eq!(out.code, 0, "{phase}: {}", out.all());
        assert!(!out.all().contains("s3cr3t-Value"), "{phase} printed the password:\n{}", out.all());
    }
    assert_eq!(
        scalar(&url(&new), "SELECT count(*) FROM pg_user_mappings WHERE 'password=s3cr3t-Value' = ANY (umoptions)")
            .as_deref(),
        Some("1")
    );
    query(&url(&new), "UPDATE users SET handle = 'tampered' WHERE id = 2345");
    let out = cutover(&p, &["verify", "--format", "json"]);
    assert_eq!(out.code, 7, "{}", out.all());
    let checks = out.json()["stages"][0]["outputs"]["verify"].clone();
    let users = checks.as_array().unwrap().iter().find(|c| c["table"] == "public.users").unwrap();
    assert_eq!(users["ok"], false);
    let diff = users["differences"][0].as_str().unwrap();
    let (lo, hi) = diff.trim_start_matches("id ").split_once(':').unwrap().0.split_once("..").unwrap();
    let (lo, hi): (i64, i64) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(lo <= 2345 && 2345 < hi && hi - lo <= 1000, "{diff}");
    assert!(checks.as_array().unwrap().iter().filter(|c| c["table"] != "public.users").all(|c| c["ok"] == true));
    // Rollback before the switch: OLD is as before.
    let out = cutover(&p, &["rollback"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        scalar(&url(&old), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    assert_eq!(
        scalar(&url(&old), "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
}

#[test]
fn the_cutover_event_runs_hooks_and_a_refusing_hook_undoes_the_switch() {
    let old = old_db("cuth_old", 3000);
    let new = database("cuth_new");
    let p = project(&old, &new);
    let pipeline = |hook: &str| {
        format!(
            "database \"newdb\" url=\"{}\"\nstage \"move\" uses=\"fdw-cutover\" {{\n    from \"old\"\n    to \"new\"\n    mapping \"db/cutover.kdl\"\n    keep #true\n}}\n{hook}\n",
            url(&new)
        )
    };
    // A hook that refuses: the switch is undone, OLD takes writes, NEW has no reverse capture.
    p.write("deny.kdl", &pipeline("hook \"window\" on=\"cutover\" command=\"false\""));
    let out = p.run(&["run", "deny.kdl"]);
    assert_ne!(out.code, 0, "{}", out.all());
    query(&url(&old), "UPDATE users SET nick = 'still writable' WHERE id = 1");
    assert_eq!(
        scalar(&url(&new), "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    assert_eq!(scalar(&url(&new), "SELECT switched_at IS NULL FROM confiture_cutover.runs").as_deref(), Some("t"));
    // A hook on NEW runs inside the freeze; the run goes on where it stopped.
    p.write(
        "ok.kdl",
        &pipeline(
            "hook \"mark\" on=\"cutover\" database=\"newdb\" sql=\"CREATE TABLE switched AS SELECT now() AS at\"",
        ),
    );
    let out = p.run(&["run", "ok.kdl", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(scalar(&url(&new), "SELECT count(*) FROM switched").as_deref(), Some("1"));
    let phases: Vec<String> = out.json()["stages"][0]["outputs"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p["phase"].as_str().unwrap(), p["result"].as_str().unwrap()))
        .collect();
    assert!(
        phases.contains(&"setup skipped".to_string()) && phases.contains(&"cutover done".to_string()),
        "{phases:?}"
    );
    assert_eq!(scalar(&url(&new), "SELECT bio FROM profiles WHERE user_id = 1").as_deref(), Some("bio 1"));
    assert_eq!(scalar(&url(&new), "SELECT handle FROM users WHERE id = 1").as_deref(), Some("still writable"));
}

/// Hold `LOCK TABLE users IN ROW EXCLUSIVE MODE` (what a writer holds) on `db` for `hold`.
fn hold_writer_lock(db: &str, hold: Duration) -> std::thread::JoinHandle<()> {
    let info = server().with_dbname(db);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        crate::support::block_on(async move {
            let s = confiture_engine::pg::connect(&info, "a long writer").await.unwrap();
            s.client().batch_execute("BEGIN; LOCK TABLE users IN ROW EXCLUSIVE MODE").await.unwrap();
            tx.send(()).unwrap();
            tokio::time::sleep(hold).await;
            s.client().batch_execute("COMMIT").await.unwrap();
        })
    });
    rx.recv().unwrap();
    h
}

#[test]
fn the_freeze_retries_while_a_writer_holds_the_table_and_gives_up_cleanly() {
    let old = old_db("cutl_old", 2000);
    let new = database("cutl_new");
    let p = project(&old, &new);
    for phase in ["setup", "capture", "copy"] {
        let out = cutover(&p, &[phase]);
        assert_eq!(out.code, 0, "{phase}: {}", out.all());
    }
    // Held longer than every attempt: exit 6, nothing switched, OLD still takes writes.
    let writer = hold_writer_lock(&old, Duration::from_secs(3));
    let out = cutover(&p, &["cutover", "--lock-timeout", "100ms", "--lock-attempts", "3"]);
    writer.join().unwrap();
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(out.all().contains("could not freeze writes"), "{}", out.all());
    query(&url(&old), "UPDATE users SET nick = 'not switched' WHERE id = 1");
    assert_eq!(
        scalar(&url(&new), "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    // Held for a while: the freeze waits it out with retries, then switches.
    let writer = hold_writer_lock(&old, Duration::from_millis(1200));
    let out = cutover(&p, &["cutover", "--lock-timeout", "200ms", "--lock-attempts", "20", "--format", "json"]);
    writer.join().unwrap();
    assert_eq!(out.code, 0, "{}", out.all());
    let attempts = out.json()["stages"][0]["outputs"]["cutover"]["lock_attempts"].as_u64().unwrap();
    assert!(attempts > 1, "the first attempts met the writer's lock: {attempts}");
    assert_eq!(scalar(&url(&new), "SELECT handle FROM users WHERE id = 1").as_deref(), Some("not switched"));
}

#[test]
fn a_renamed_table_moves_with_every_phase_and_cleanup() {
    let old = database("cutr_old");
    let new = database("cutr_new");
    query(
        &url(&old),
        "CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g",
    );
    let p = Project::new();
    p.write(
        "confiture.kdl",
        &format!("environment \"old\" {{\n    database url=\"{}\"\n}}\nenvironment \"new\" {{\n    database url=\"{}\"\n}}\n", url(&old), url(&new)),
    );
    p.write(
        "db/schema/01.sql",
        "CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, price numeric NOT NULL DEFAULT 0);",
    );
    p.write(
        "db/cutover.kdl",
        "table \"public.items\" to=\"public.products\" {\n    column \"name\" from=\"label\"\n}\n",
    );
    let out = cutover(&p, &["--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let phases: Vec<String> = out.json()["stages"][0]["outputs"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(phases, ["plan", "setup", "capture", "copy", "catch-up", "verify", "cutover", "cleanup"]);
    assert_eq!(
        scalar(&url(&new), "SELECT count(*) || ' ' || min(name) || ' ' || sum(price) FROM products").as_deref(),
        Some("500 item 1 0")
    );
    // After cleanup: OLD takes writes again and carries nothing of the migration.
    query(&url(&old), "INSERT INTO items VALUES (501, 'after')");
    assert_eq!(
        scalar(&url(&old), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'confiture%'").as_deref(),
        Some("0")
    );
    let status = cutover(&p, &["status"]);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(status.stdout.contains("no cutover run in progress"), "{}", status.stdout);
}
