//! A throwaway PostgreSQL cluster built from the machine's server binaries.
//!
//! `initdb` into a private temporary directory, then `postgres` listening on a free loopback port
//! (password authentication) and on a socket in that directory (trust; the directory is 0700).
//! Durability is off (`fsync`, `synchronous_commit`, `full_page_writes`): nothing here outlives the
//! process. As root, both run as the unprivileged `postgres` user (PostgreSQL refuses root).
//!
//! The server is removed when the [`Cluster`] is dropped (normal exit, Ctrl-C, unwinding panic). If
//! the process dies without unwinding, the server gets SIGQUIT from the kernel
//! (`PR_SET_PDEATHSIG`) and the next cluster start removes the stale directory.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};

use super::dsn::ConnInfo;

const DIR_PREFIX: &str = "confiture-pg-";
const SUPERUSER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EphemeralError {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and postgres on PATH, in `pg_config \
         --bindir` and in /usr/lib/postgresql/*/bin)\n  help: install PostgreSQL's server package (Debian/Ubuntu: \
         `apt-get install postgresql`, Fedora: `dnf install postgresql-server`, macOS: `brew install postgresql`), \
         set CONFITURE_PG_BINDIR to the directory holding initdb and postgres, or set DATABASE_URL to use an \
         existing server"
    )]
    NoBinaries,
    #[error(
        "running as root, and PostgreSQL refuses to run as root: no unprivileged user `{0}` to run it as\n  \
         help: create the user (`useradd --system {0}`), set CONFITURE_EPHEMERAL_USER to another user, or set \
         DATABASE_URL to use an existing server"
    )]
    NoUser(String),
    #[error("cannot prepare the ephemeral cluster directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("initdb failed ({status}):\n{output}")]
    Initdb { status: String, output: String },
    #[error("the ephemeral PostgreSQL server did not start:\n{log}")]
    Start { log: String },
}

/// Extra settings for a cluster (tests use them to turn on TLS).
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// `-c name=value` settings for the server.
    pub settings: Vec<(String, String)>,
    /// Lines appended to pg_hba.conf before the server starts.
    pub hba_lines: Vec<String>,
}

/// A running throwaway cluster. Dropping it stops the server and removes its files.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    password: String,
    version: String,
    keeper: Mutex<Option<Keeper>>,
}

struct Keeper {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("dir", &self.dir).field("port", &self.port).finish()
    }
}

impl Cluster {
    /// Start a cluster (blocking: initdb takes a second or two; call from `spawn_blocking`).
    pub fn start(options: &ClusterOptions) -> Result<Cluster, EphemeralError> {
        let started = Instant::now();
        let bindir = find_bindir().ok_or(EphemeralError::NoBinaries)?;
        let run_as = run_as_user()?;
        let base = base_dir();
        sweep_stale(&base, run_as.as_ref());
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)?
            .keep();
        let result = Self::start_in(&dir, &bindir, run_as.as_ref(), options);
        match result {
            Ok(cluster) => {
                tracing::info!(
                    "ephemeral PostgreSQL {} ready in {:.1}s ({}, port {})",
                    cluster.version,
                    started.elapsed().as_secs_f64(),
                    dir.display(),
                    cluster.port
                );
                Ok(cluster)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn start_in(
        dir: &Path,
        bindir: &Path,
        run_as: Option<&User>,
        options: &ClusterOptions,
    ) -> Result<Cluster, EphemeralError> {
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string())?;
        let password = random_hex(24)?;
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, &password)?;
        if let Some(user) = run_as {
            chown_tree(dir, user)?;
        }
        let data = dir.join("data");
        let mut initdb = Command::new(bindir.join("initdb"));
        initdb
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .stdin(Stdio::null());
        minimal_env(&mut initdb);
        as_user(&mut initdb, run_as);
        let output = initdb.output()?;
        std::fs::remove_file(&pwfile)?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(EphemeralError::Initdb { status: output.status.to_string(), output: text });
        }
        if !options.hba_lines.is_empty() {
            let hba = data.join("pg_hba.conf");
            let mut content = options.hba_lines.join("\n");
            content.push('\n');
            content.push_str(&std::fs::read_to_string(&hba)?);
            std::fs::write(&hba, content)?;
        }
        let version = std::fs::read_to_string(data.join("PG_VERSION"))?.trim().to_string();

        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port()?;
            let log_path = dir.join("server.log");
            let mut cmd = Command::new(bindir.join("postgres"));
            cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string()).arg("-k").arg(dir);
            let mut settings: Vec<(String, String)> = [
                ("listen_addresses", "127.0.0.1"),
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
                ("max_connections", "200"),
                ("unix_socket_permissions", "0700"),
                ("logging_collector", "off"),
                ("log_min_messages", "warning"),
                ("max_wal_size", "512MB"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            settings.extend(options.settings.iter().cloned());
            for (k, v) in &settings {
                cmd.arg("-c").arg(format!("{k}={v}"));
            }
            let log = std::fs::File::create(&log_path)?;
            if let Some(user) = run_as {
                nix::unistd::chown(&log_path, Some(user.uid), Some(user.gid)).map_err(std::io::Error::from)?;
            }
            cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
            minimal_env(&mut cmd);
            as_user(&mut cmd, run_as);
            // Its own process group: a terminal's Ctrl-C goes to confiture, which cancels cleanly
            // and then stops the server, instead of the server dying under running stages.
            cmd.process_group(0);
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Some(Signal::SIGQUIT)).map_err(std::io::Error::from));
            }
            let keeper = spawn_keeper(cmd)?;
            match wait_ready(&data, &keeper.1, Duration::from_secs(60)) {
                Ok(()) => {
                    return Ok(Cluster {
                        dir: dir.to_path_buf(),
                        port,
                        password,
                        version,
                        keeper: Mutex::new(Some(keeper.0)),
                    });
                }
                Err(()) => {
                    let k = keeper.0;
                    let _ = k.stop.send(());
                    let _ = k.thread.join();
                    // The keeper only stops the server; the files stay for the log and a retry.
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let _ = std::fs::remove_file(data.join("postmaster.pid"));
                    if !last_log.contains("could not bind") && !last_log.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        Err(EphemeralError::Start { log: last_log })
    }

    /// Connection parameters for a database over the private socket (no password needed).
    pub fn conninfo(&self, dbname: &str) -> ConnInfo {
        let mut info = ConnInfo::parse("").expect("an empty connection string parses");
        info.set("host", self.dir.to_string_lossy())
            .set("port", self.port.to_string())
            .set("user", SUPERUSER)
            .set("dbname", dbname)
            .set("sslmode", "disable");
        info
    }

    /// Connection parameters over TCP on 127.0.0.1, with the generated password.
    pub fn tcp_conninfo(&self, dbname: &str) -> ConnInfo {
        let mut info = ConnInfo::parse("").expect("an empty connection string parses");
        info.set("host", "127.0.0.1")
            .set("port", self.port.to_string())
            .set("user", SUPERUSER)
            .set("password", &self.password)
            .set("dbname", dbname);
        info
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's major version (from PG_VERSION).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log so far (for error messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stop the server and remove its files. Idempotent; also done on drop.
    pub fn shutdown(&self) {
        let keeper = match self.keeper.lock() {
            Ok(mut k) => k.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(k) = keeper {
            let _ = k.stop.send(());
            let _ = k.thread.join();
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                tracing::warn!("could not remove {}: {e}", self.dir.display());
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The keeper thread owns the server process for its whole life: PR_SET_PDEATHSIG fires when the
/// *thread* that forked the child exits, so the fork must happen on a thread that lives exactly as
/// long as the cluster.
fn spawn_keeper(mut cmd: Command) -> Result<(Keeper, mpsc::Receiver<()>), EphemeralError> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<std::io::Result<u32>>();
    let (exited_tx, exited_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name("confiture-pg-keeper".into()).spawn(move || {
        let mut child = match cmd.spawn() {
            Ok(child) => {
                let _ = started_tx.send(Ok(child.id()));
                child
            }
            Err(e) => {
                let _ = started_tx.send(Err(e));
                return;
            }
        };
        loop {
            match stop_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(_)) = child.try_wait() {
                        let _ = exited_tx.send(());
                        let _ = stop_rx.recv();
                        return;
                    }
                }
            }
        }
        stop_child(&mut child);
    })?;
    match started_rx.recv() {
        Ok(Ok(_pid)) => Ok((Keeper { stop: stop_tx, thread }, exited_rx)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(EphemeralError::Io(e))
        }
        Err(_) => Err(EphemeralError::Start { log: "the keeper thread ended unexpectedly".into() }),
    }
}

/// Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL.
fn stop_child(child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    for (signal, wait) in [(Signal::SIGINT, 10_000), (Signal::SIGQUIT, 3_000), (Signal::SIGKILL, 3_000)] {
        if kill(pid, signal).is_err() {
            break;
        }
        let deadline = Instant::now() + Duration::from_millis(wait);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.wait();
}

/// Wait until postmaster.pid says "ready", or the server exits.
fn wait_ready(data: &Path, exited: &mpsc::Receiver<()>, timeout: Duration) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    let pidfile = data.join("postmaster.pid");
    while Instant::now() < deadline {
        if exited.try_recv().is_ok() {
            return Err(());
        }
        if let Ok(content) = std::fs::read_to_string(&pidfile)
            && content.lines().nth(7).map(str::trim) == Some("ready")
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(())
}

/// Where cluster directories go: `CONFITURE_EPHEMERAL_DIR`, else `/dev/shm` when it has at least
/// 1 GiB free (a RAM file system: a schema build creates thousands of files, which some disks make
/// slow, and nothing here needs to survive), else the temp directory.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONFITURE_EPHEMERAL_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let roomy =
        nix::sys::statvfs::statvfs(shm).map(|s| s.blocks_available() * s.fragment_size() >= 1 << 30).unwrap_or(false);
    let writable = nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK).is_ok();
    if roomy && writable { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// The server and initdb get only what they need, never confiture's environment: that may hold
/// `PGPASSWORD`, cloud credentials or tokens, which the `postgres` user could read from
/// `/proc/PID/environ` (and SQL as a superuser, through `pg_read_file`).
fn minimal_env(cmd: &mut Command) {
    cmd.env_clear().env("LC_ALL", "C").env("PATH", "/usr/local/bin:/usr/bin:/bin");
    if let Some(tz) = std::env::var_os("TZ") {
        cmd.env("TZ", tz);
    }
}

fn as_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        cmd.env("HOME", &user.dir).env("USER", &user.name);
    }
}

fn run_as_user() -> Result<Option<User>, EphemeralError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let name = std::env::var("CONFITURE_EPHEMERAL_USER").unwrap_or_else(|_| "postgres".into());
    match User::from_name(&name) {
        Ok(Some(user)) if !user.uid.is_root() => Ok(Some(user)),
        _ => Err(EphemeralError::NoUser(name)),
    }
}

fn chown_tree(dir: &Path, user: &User) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(std::io::Error::other)?;
        nix::unistd::chown(entry.path(), Some(user.uid), Some(user.gid)).map_err(std::io::Error::from)?;
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where `initdb` and `postgres` live: CONFITURE_PG_BINDIR, PATH, `pg_config --bindir`, then the
/// newest /usr/lib/postgresql/*/bin.
pub fn find_bindir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("CONFITURE_PG_BINDIR").map(PathBuf::from) {
        return has_both(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                let real = std::fs::canonicalize(&initdb).ok().and_then(|p| p.parent().map(Path::to_path_buf));
                for candidate in real.into_iter().chain([dir.clone()]) {
                    if has_both(&candidate) {
                        return Some(candidate);
                    }
                }
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_both(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| has_both(p))
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// Remove directories of earlier clusters whose owning process is gone (after SIGKILL, say).
/// Only directories owned by us (or by the user we run the server as) are touched, and a server
/// is only signalled if its command line names that very data directory.
fn sweep_stale(base: &Path, run_as: Option<&User>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let owners = [Some(nix::unistd::geteuid().as_raw()), run_as.map(|u| u.uid.as_raw())];
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&dir) else { continue };
        if !meta.is_dir() || !owners.contains(&Some(meta.uid())) {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join("owner.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok());
        let Some(owner) = owner else { continue };
        if process_alive(owner) {
            continue;
        }
        let data = dir.join("data");
        let postmaster = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if let Some(pid) = postmaster.filter(|p| serves(*p, &data)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        }
        tracing::debug!("removing stale ephemeral cluster {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Whether process `pid` is a postgres server for `data` (its command line says `-D data`).
fn serves(pid: i32, data: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let data = data.as_os_str().as_encoded_bytes();
    args.windows(2).any(|w| w[0] == b"-D" && w[1] == data)
}

fn process_alive(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}
