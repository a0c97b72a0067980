//! Test support: one ephemeral cluster per test binary, a fresh database per test.
//!
//! Set `CONFITURE_TEST_DATABASE_URL` to run the tests against an existing server instead (each test
//! still creates its own database there, so the role needs CREATEDB).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ephemeral::{Cluster, ClusterOptions};
use super::{ConnInfo, quote_ident};

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

extern "C" fn stop_shared_cluster() {
    if let Some(cluster) = CLUSTER.get() {
        cluster.shutdown();
    }
}

/// The server every test of this binary uses: connection parameters for its `postgres` database.
pub fn server() -> ConnInfo {
    if let Ok(url) = std::env::var("CONFITURE_TEST_DATABASE_URL") {
        return ConnInfo::parse(&url).and_then(ConnInfo::with_defaults).expect("CONFITURE_TEST_DATABASE_URL parses");
    }
    CLUSTER
        .get_or_init(|| {
            let cluster = Cluster::start(&ClusterOptions::default()).expect("the test cluster starts");
            // Statics are not dropped; stop the server when the test binary exits.
            // SAFETY: registering a plain extern "C" function has no preconditions.
            unsafe { libc::atexit(stop_shared_cluster) };
            cluster
        })
        .conninfo("postgres")
}

/// A database created for one test. It is dropped with the cluster at exit.
pub struct TestDb {
    pub name: String,
    pub info: ConnInfo,
}

impl TestDb {
    /// Create a fresh, empty database named after `label` (e.g. the test's name).
    pub async fn new(label: &str) -> TestDb {
        let server = server();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let clean: String =
            label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        let name = format!("t_{}_{}_{n}", std::process::id(), &clean[..clean.len().min(40)]);
        let session = super::connect(&server, "confiture-tests").await.expect("connect to the test server");
        session
            .client()
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .expect("create the test database");
        TestDb { info: server.with_dbname(&name), name }
    }

    /// Connect to this database.
    pub async fn connect(&self) -> super::Session {
        super::connect(&self.info, "confiture-tests").await.expect("connect to the test database")
    }
}
