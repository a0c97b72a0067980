//! Databases a run can reach: those the pipeline declares and those of project environments.
//! Ephemeral ones live in one throwaway cluster per run, started on first use. The run also
//! knows which databases are protected, so a stage about to drop, truncate or rewrite one can
//! refuse it however it was named.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::pg::ephemeral::{Cluster, ClusterOptions};
use crate::pg::{self, ConnInfo, PgError};
use crate::project::{DatabaseSpec, Environment};

/// The databases of one run. Dropping it stops the ephemeral cluster, if one was started.
pub struct Databases {
    declared: BTreeMap<String, DatabaseSpec>,
    protected: Vec<Protected>,
    cluster: OnceCell<Arc<Cluster>>,
    created: Mutex<HashSet<String>>,
}

/// A database marked `protected`: an environment's or a declared one.
#[derive(Clone, Debug)]
pub struct Protected {
    /// How to name it in a refusal: "environment `production`", "database `prod`".
    pub what: String,
    /// The name it is declared under in the pipeline (`None` for an environment).
    pub declared: Option<String>,
    pub spec: DatabaseSpec,
}

impl Databases {
    pub fn new(declared: BTreeMap<String, DatabaseSpec>) -> Self {
        Databases { declared, protected: Vec::new(), cluster: OnceCell::new(), created: Mutex::new(HashSet::new()) }
    }

    /// The same, knowing which databases are protected.
    pub fn with_protected(mut self, protected: Vec<Protected>) -> Self {
        self.protected = protected;
        self
    }

    /// The protected database `info` reaches, if any: same hosts, ports and database name as a
    /// protected environment's or declared database's connection string (ephemeral ones are
    /// refused by name only: nothing else can reach their private cluster).
    /// Whether the pipeline's database `name` is declared `protected=#true`.
    pub fn declared_protected(&self, name: &str) -> Option<&str> {
        self.protected.iter().find(|p| p.declared.as_deref() == Some(name)).map(|p| p.what.as_str())
    }

    pub fn protection_of(&self, info: &ConnInfo) -> Option<&str> {
        self.protected.iter().find_map(|p| match &p.spec {
            DatabaseSpec::Url(url) => {
                let theirs = ConnInfo::parse(url).and_then(ConnInfo::with_defaults).ok()?;
                theirs.same_database(info).then_some(p.what.as_str())
            }
            DatabaseSpec::Ephemeral => None,
        })
    }

    /// The run's ephemeral cluster, started on first call.
    pub async fn cluster(&self) -> Result<Arc<Cluster>, PgError> {
        self.cluster
            .get_or_try_init(|| async {
                tracing::info!("starting an ephemeral PostgreSQL");
                let cluster =
                    tokio::task::spawn_blocking(|| Cluster::start(&ClusterOptions::default())).await.map_err(
                        |e| PgError::Ephemeral(crate::pg::ephemeral::EphemeralError::Start { log: e.to_string() }),
                    )??;
                Ok(Arc::new(cluster))
            })
            .await
            .cloned()
    }

    /// Whether the ephemeral cluster was started.
    pub fn cluster_started(&self) -> bool {
        self.cluster.initialized()
    }

    /// A declared database; `create` makes an ephemeral one exist.
    pub async fn declared(&self, name: &str, create: bool) -> Result<ConnInfo, PgError> {
        let spec = self
            .declared
            .get(name)
            .cloned()
            .ok_or_else(|| PgError::Dsn(crate::pg::DsnError(format!("no database named `{name}` is declared"))))?;
        self.resolve(name, &spec, create).await
    }

    /// The database of a project environment (ephemeral ones are named after the environment).
    pub async fn environment(&self, env: &Environment, create: bool) -> Result<ConnInfo, PgError> {
        match &env.database {
            Some(spec) => self.resolve(&env.name, spec, create).await,
            None => Err(PgError::Dsn(crate::pg::DsnError(format!(
                "environment `{}` has no database; give it `database url=\"…\"` or `database ephemeral=#true` in {}",
                env.name,
                crate::project::display_path(&env.origin)
            )))),
        }
    }

    async fn resolve(&self, name: &str, spec: &DatabaseSpec, create: bool) -> Result<ConnInfo, PgError> {
        match spec {
            // An empty string would mean "libpq's defaults": some local database nobody named.
            DatabaseSpec::Url(url) if url.trim().is_empty() => Err(PgError::Dsn(crate::pg::DsnError(format!(
                "the connection string of `{name}` is empty (does its template read an unset environment variable?)"
            )))),
            DatabaseSpec::Url(url) => Ok(ConnInfo::parse(url)?.with_defaults()?),
            DatabaseSpec::Ephemeral => {
                let cluster = self.cluster().await?;
                let info = cluster.conninfo(name);
                if create {
                    let mut created = self.created.lock().await;
                    if !created.contains(name) {
                        create_database_if_missing(&cluster.conninfo("postgres"), name).await?;
                        created.insert(name.to_string());
                    }
                }
                Ok(info)
            }
        }
    }
}

/// `CREATE DATABASE name` unless it exists.
pub async fn create_database_if_missing(server: &ConnInfo, name: &str) -> Result<(), PgError> {
    let session = pg::connect(server, "confiture").await?;
    let exists = session.client().query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await?.is_some();
    if !exists {
        match session.client().batch_execute(&format!("CREATE DATABASE {}", pg::quote_ident(name))).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
