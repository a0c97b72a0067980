//! The diff engine against psqldef's test corpus (tests/sqldef/, MIT, see its README and LICENSE).
//!
//! For each case: build `current` into one database and `desired` into another, introspect both,
//! plan the diff, apply it to the first, and require the re-introspected model to equal the
//! desired one and a second diff to be empty. Then the same from `desired` back to `current`.
//! Judged by outcome, never by comparing SQL text with sqldef's.
//!
//! Cases that need what this server or confiture lacks are skipped and counted: expected errors,
//! sqldef-only options (`config`, `user`), the pgvector flavor, newer PostgreSQL versions, and
//! inputs this server does not accept. Known failures are listed in tests/sqldef/known-failures.txt;
//! the test fails on a new failure and on a listed case that now passes (so the list only shrinks).
//! `CONFITURE_UPDATE_KNOWN_FAILURES=1` rewrites the list; `CONFITURE_SQLDEF_CASE=substring` runs
//! only matching cases and prints their plans.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use confiture_engine::pg::{self, Session, quote_ident, testing};
use confiture_plugins::catalog::{self, Model};
use confiture_plugins::diff;
use futures::StreamExt;

#[derive(serde::Deserialize, Default, Clone)]
struct Case {
    #[serde(default)]
    current: String,
    #[serde(default)]
    desired: String,
    error: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    user: Option<String>,
    flavor: Option<String>,
    config: Option<serde_norway::Value>,
    #[serde(default)]
    managed_roles: Vec<String>,
}

enum Outcome {
    Pass,
    Skip(String),
    Fail(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqldef_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sqldef");
    let mut cases: Vec<(String, Case)> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yml")) {
        let stem = f.file_stem().unwrap().to_string_lossy().trim_start_matches("tests_").to_string();
        let map: BTreeMap<String, Case> = serde_norway::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        cases.extend(map.into_iter().map(|(name, case)| (format!("{stem}/{name}"), case)));
    }
    let only = std::env::var("CONFITURE_SQLDEF_CASE").ok();
    if let Some(o) = &only {
        cases.retain(|(n, _)| n.contains(o.as_str()));
    }

    let server = testing::server();
    let admin = pg::connect(&server, "sqldef-corpus").await.unwrap();
    let version: i32 =
        admin.client().query_one("SELECT current_setting('server_version_num')::int", &[]).await.unwrap().get(0);
    // Roles are cluster-wide: create the ones cases grant to, and log-in users cases run as.
    let roles: BTreeSet<&String> = cases.iter().flat_map(|(_, c)| &c.managed_roles).collect();
    let users: BTreeSet<&String> = cases.iter().filter_map(|(_, c)| c.user.as_ref()).collect();
    for (r, login) in roles.into_iter().map(|r| (r, "")).chain(users.into_iter().map(|u| (u, " LOGIN"))) {
        admin
            .client()
            .batch_execute(&format!(
                "DO $$ BEGIN CREATE ROLE {}{login}; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
                quote_ident(r)
            ))
            .await
            .unwrap();
    }

    let verbose = only.is_some();
    let results: Vec<(String, Outcome)> = futures::stream::iter(cases.into_iter().enumerate())
        .map(|(i, (name, case))| {
            let server = server.clone();
            async move {
                let outcome = run_case(&server, i, &case, version, verbose).await;
                (name, outcome)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;

    let mut results = results;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let known_path = dir.join("known-failures.txt");
    let known: BTreeSet<String> = std::fs::read_to_string(&known_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let (mut passed, mut failed) = (0, BTreeMap::new());
    for (name, outcome) in &results {
        match outcome {
            Outcome::Pass => passed += 1,
            Outcome::Skip(why) => *skipped.entry(why.clone()).or_default() += 1,
            Outcome::Fail(why) => {
                failed.insert(name.clone(), why.clone());
            }
        }
    }
    let applicable = passed + failed.len();
    eprintln!(
        "sqldef corpus: {passed}/{applicable} applicable cases pass ({:.1} %), {} skipped: {skipped:?}",
        100.0 * passed as f64 / applicable.max(1) as f64,
        skipped.values().sum::<usize>()
    );
    if only.is_some() {
        for (name, why) in &failed {
            eprintln!("FAIL {name}: {why}");
        }
        return;
    }
    if std::env::var_os("CONFITURE_UPDATE_KNOWN_FAILURES").is_some() {
        let mut text = String::from(
            "# sqldef corpus cases the diff engine fails today (tests/sqldef.rs). This list may only shrink.\n",
        );
        for (name, why) in &failed {
            let why = why.lines().next().unwrap_or_default();
            text.push_str(&format!("{name}\n# ^ {}\n", &why[..why.len().min(160)]));
        }
        std::fs::write(&known_path, text).unwrap();
        return;
    }
    // The corpus must actually run: a broken harness skipping everything would pass otherwise.
    assert!(applicable >= 750, "only {applicable} cases were applicable; skipped: {skipped:?}");
    let new: Vec<String> =
        failed.iter().filter(|(n, _)| !known.contains(*n)).map(|(n, w)| format!("{n}: {w}")).collect();
    let fixed: Vec<&String> = known.iter().filter(|n| !failed.contains_key(*n)).collect();
    assert!(new.is_empty(), "{} new failures:\n{}", new.len(), new.join("\n\n"));
    assert!(fixed.is_empty(), "these cases pass now; remove them from tests/sqldef/known-failures.txt: {fixed:?}");
}

async fn run_case(server: &pg::ConnInfo, i: usize, case: &Case, version: i32, verbose: bool) -> Outcome {
    if case.error.is_some() {
        return Outcome::Skip("expects an error".into());
    }
    if case.config.is_some() {
        return Outcome::Skip("sqldef-only option".into());
    }
    if case.flavor.as_deref() == Some("pgvector") {
        return Outcome::Skip("pgvector".into());
    }
    let num = |v: &str| {
        let mut it = v.split('.').map(|p| p.parse::<i32>().unwrap_or(0));
        it.next().unwrap_or(0) * 10000 + it.next().unwrap_or(0)
    };
    if case.min_version.as_deref().is_some_and(|v| num(v) > version) {
        return Outcome::Skip("newer PostgreSQL".into());
    }
    if case.max_version.as_deref().is_some_and(|v| num(v) < version) {
        return Outcome::Skip("older PostgreSQL".into());
    }
    let admin = pg::connect(server, "sqldef-corpus").await.unwrap();
    let (a, b) = (format!("sqldef_{i}_a"), format!("sqldef_{i}_b"));
    for db in [&a, &b] {
        admin.client().batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
        admin.client().batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    }
    let mut as_user = server.clone();
    if let Some(user) = &case.user {
        // The case runs as a user whose own schema comes first in its search_path.
        for db in [&a, &b] {
            let s = pg::connect(&server.with_dbname(db), "sqldef-corpus").await.unwrap();
            s.client().batch_execute(&format!("CREATE SCHEMA {0} AUTHORIZATION {0}", quote_ident(user))).await.unwrap();
        }
        as_user.set("user", user.as_str());
    }
    let outcome = compare(&as_user, &a, &b, case, verbose).await;
    for db in [&a, &b] {
        let _ = admin.client().batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    }
    outcome
}

async fn compare(server: &pg::ConnInfo, a: &str, b: &str, case: &Case, verbose: bool) -> Outcome {
    let sa = pg::connect(&server.with_dbname(a), "sqldef-corpus").await.unwrap();
    let sb = pg::connect(&server.with_dbname(b), "sqldef-corpus").await.unwrap();
    for (s, sql) in [(&sa, &case.current), (&sb, &case.desired)] {
        // One statement at a time, as psql runs a file: some cannot run in a transaction block.
        let statements = match confiture_engine::sql::split(sql) {
            Ok(s) => s,
            Err(e) => return Outcome::Skip(format!("input PostgreSQL rejects ({})", e.message)),
        };
        for st in statements {
            if let Err(e) = s.client().batch_execute(st.text(sql)).await {
                return Outcome::Skip(format!(
                    "input PostgreSQL rejects ({})",
                    pg::describe(&e).lines().next().unwrap_or("")
                ));
            }
        }
    }
    let (ma, mb) = match (catalog::introspect(&sa).await, catalog::introspect(&sb).await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Outcome::Fail(format!("introspection: {e}")),
    };
    // up: current → desired, applied to the current database
    if let Err(e) = converge(&sa, &ma, &mb, "up", verbose).await {
        return Outcome::Fail(e);
    }
    // down: desired → current, applied to the desired database
    if let Err(e) = converge(&sb, &mb, &ma, "down", verbose).await {
        return Outcome::Fail(e);
    }
    Outcome::Pass
}

async fn converge(session: &Session, from: &Model, to: &Model, direction: &str, verbose: bool) -> Result<(), String> {
    let plan = diff::plan(from, to).map_err(|e| format!("{direction}: {e}"))?;
    let sql = plan.to_sql();
    if verbose {
        eprintln!("--- {direction} plan:\n{sql}\n---");
    }
    session.client().batch_execute(&sql).await.map_err(|e| format!("{direction}: {}\n{sql}", pg::describe(&e)))?;
    let after = catalog::introspect(session).await.map_err(|e| e.to_string())?;
    if &after != to {
        let mut out = format!("{direction}: not converged\n");
        let keys: BTreeSet<_> = after.objects.keys().chain(to.objects.keys()).collect();
        for k in keys {
            let (x, y) = (after.objects.get(k), to.objects.get(k));
            if x != y {
                out.push_str(&format!("  {k}:\n    have {}\n    want {}\n", json(x), json(y)));
            }
        }
        out.push_str(&sql);
        return Err(out);
    }
    let again = diff::plan(&after, to).map_err(|e| e.to_string())?;
    if !again.is_empty() {
        return Err(format!("{direction}: second diff not empty:\n{}", again.to_sql()));
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: T) -> String {
    serde_json::to_string(&v).unwrap_or_default()
}
