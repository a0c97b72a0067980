//! The ephemeral cluster: unprivileged, private, and gone after exit, Ctrl-C, panic or SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use confiture_engine::pg::ephemeral::{Cluster, ClusterOptions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Project, block_on, confiture, query};

fn alive(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The cluster directories under `base`.
fn clusters(base: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(base)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("confiture-pg-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Postmaster pid, port and socket directory of a running cluster directory.
fn postmaster(dir: &Path) -> Option<(i32, String, String)> {
    let pidfile = std::fs::read_to_string(dir.join("data/postmaster.pid")).ok()?;
    let lines: Vec<&str> = pidfile.lines().collect();
    if lines.get(7).map(|s| s.trim()) != Some("ready") {
        return None;
    }
    Some((lines[0].trim().parse().ok()?, lines[3].trim().to_string(), lines[4].trim().to_string()))
}

#[test]
fn a_cluster_is_unprivileged_private_fast_and_removed_on_drop() {
    let cluster = Cluster::start(&ClusterOptions::default()).expect("start");
    let dir = cluster.dir().to_path_buf();
    let (pid, _, _) = postmaster(&dir).expect("running");
    assert_eq!(dir.parent(), Some(confiture_engine::pg::ephemeral::base_dir().as_path()));
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(|u| u.split_whitespace().next().unwrap().to_string()))
        .unwrap();
    assert_ne!(uid, "0", "the server never runs as root");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "the socket directory is private");
    let dsn = cluster.conninfo("postgres").to_secret_string();
    assert_eq!(crate::support::scalar(&dsn, "SHOW fsync").as_deref(), Some("off"));
    assert_eq!(crate::support::scalar(&dsn, "SHOW listen_addresses").as_deref(), Some("127.0.0.1"));
    // Over TCP a password is required.
    let mut no_password = cluster.tcp_conninfo("postgres");
    no_password.set("password", "wrong");
    assert!(block_on(confiture_engine::pg::connect(&no_password, "t")).is_err());
    drop(cluster);
    assert!(!dir.exists(), "the directory is removed");
    assert!(!alive(pid), "the server is stopped");
}

#[test]
fn a_panic_still_removes_the_cluster() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let cluster = Cluster::start(&ClusterOptions::default()).expect("start");
        tx.send((cluster.dir().to_path_buf(), postmaster(cluster.dir()).unwrap().0)).unwrap();
        panic!("boom");
    })
    .join();
    assert!(result.is_err());
    let (dir, pid) = rx.recv().unwrap();
    assert!(!dir.exists());
    assert!(!alive(pid));
}

fn slow_project(base: &Path) -> Project {
    let p = Project::new();
    p.write("confiture.kdl", "environment \"test\" { database ephemeral=#true; }\n")
        .write("db/schema/slow.sql", "CREATE TABLE t (id int);\nSELECT pg_sleep(60);\n");
    std::fs::create_dir_all(base).unwrap();
    p
}

/// Start `confiture build --env test` on the slow schema and wait until it is inside pg_sleep.
fn start_slow_build(p: &Project, base: &Path) -> (std::process::Child, PathBuf, i32) {
    let child = p
        .cmd(&["build", "--env", "test"])
        .env("CONFITURE_EPHEMERAL_DIR", base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut found = None;
    wait_until("the build runs pg_sleep", Duration::from_secs(60), || {
        let Some(dir) = clusters(base).into_iter().next() else { return false };
        let Some((pid, port, socket)) = postmaster(&dir) else { return false };
        let dsn = format!("host={socket} port={port} user=postgres dbname=postgres sslmode=disable");
        let sleeping = query(
            &dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'",
        );
        found = Some((dir, pid));
        sleeping[0][0].as_deref() == Some("1")
    });
    let (dir, pid) = found.unwrap();
    (child, dir, pid)
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "confiture did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_removes_the_cluster() {
    let base = tempfile::tempdir().unwrap();
    let p = slow_project(base.path());
    let (mut child, dir, pid) = start_slow_build(&p, base.path());
    let t0 = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, 130);
    assert!(t0.elapsed() < Duration::from_secs(30), "cancelled, not waited out");
    assert!(!dir.exists(), "cluster directory removed");
    assert!(!alive(pid), "server stopped");
}

#[test]
fn after_sigkill_the_server_dies_and_the_next_run_sweeps_its_files() {
    let base = tempfile::tempdir().unwrap();
    let p = slow_project(base.path());
    let (mut child, dir, pid) = start_slow_build(&p, base.path());
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = child.wait();
    wait_until("the orphaned server exits", Duration::from_secs(20), || !alive(pid));
    assert!(dir.exists(), "nothing could clean up after SIGKILL");
    // The next cluster start in the same place removes the stale directory.
    p.write("db/schema/slow.sql", "CREATE TABLE t (id int);\n");
    let out = crate::support::run(p.cmd(&["build", "--env", "test"]).env("CONFITURE_EPHEMERAL_DIR", base.path()));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!dir.exists(), "stale cluster directory swept");
    assert!(clusters(base.path()).is_empty());
}

#[test]
fn missing_binaries_say_what_to_install() {
    let p = Project::new();
    p.write("confiture.kdl", "environment \"test\" { database ephemeral=#true; }\n")
        .write("db/schema/a.sql", "SELECT 1;\n");
    let out = crate::support::run(p.cmd(&["build", "--env", "test"]).env("CONFITURE_PG_BINDIR", "/nonexistent"));
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("apt-get install postgresql") && out.stderr.contains("DATABASE_URL"), "{}", out.stderr);
    let _ = confiture;
}

#[test]
fn a_server_that_does_not_start_shows_its_log() {
    let settings = vec![("shared_buffers".to_string(), "plenty".to_string())];
    let err = Cluster::start(&ClusterOptions { settings, hba_lines: Vec::new() }).expect_err("an invalid setting");
    let text = err.to_string();
    assert!(text.contains("invalid value for parameter \"shared_buffers\""), "the server's own message: {text}");
}

#[test]
fn the_server_does_not_inherit_confiture_s_environment() {
    // The build runs as the cluster's superuser and reads the backend's own environment: a
    // secret from confiture's environment there would fail it (exit 4), a clean one lets it pass.
    let p = Project::new();
    // The backend's own /proc/self/environ is overwritten by its process title; the postmaster's
    // is what every backend inherited.
    p.write("confiture.kdl", "environment \"test\" { database ephemeral=#true; }\n").write(
        "db/schema/check_env.sql",
        r"DO $$
DECLARE
  env bytea := pg_read_binary_file('/proc/' || split_part(pg_read_file('postmaster.pid'), E'\n', 1) || '/environ');
BEGIN
  IF position(convert_to('LC_ALL=C', 'UTF8') in env) = 0 THEN
    RAISE EXCEPTION 'cannot read the server environment';
  END IF;
  IF position(convert_to('canary-7f3a', 'UTF8') in env) > 0 THEN
    RAISE EXCEPTION 'the server inherited a secret';
  END IF;
END
$$;
",
    );
    let out = crate::support::run(
        p.cmd(&["build", "--env", "test"])
            .env("PGPASSWORD", "canary-7f3a-pgpassword")
            .env("AWS_SECRET_ACCESS_KEY", "canary-7f3a-aws"),
    );
    assert_eq!(out.code, 0, "{out:?}");
}
