//! A destructive command never guesses its target: environments without a database, the
//! DATABASE_URL fallback, databases that libpq would name after the user, protected environments.

use crate::support::{Project, database_exists, fresh_name, query, server, url};

/// A database on the test server holding one table, so "still there" is checkable.
fn precious(label: &str) -> String {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    query(&url(&db), "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)");
    db
}

fn intact(db: &str) -> bool {
    database_exists(db) && query(&url(db), "SELECT count(*) FROM keep_me")[0][0].as_deref() == Some("1")
}

fn with_schema(p: &Project) -> &Project {
    p.write("db/schema/a.sql", "CREATE TABLE a (id int);\n")
}

#[test]
fn an_environment_without_a_database_never_falls_back_to_database_url() {
    let db = precious("nofallback");
    let p = Project::new();
    p.write("confiture.kdl", "environment \"test\" {\n    schema \"db/schema\"\n}\n");
    with_schema(&p);
    for var in ["DATABASE_URL", "CONFITURE_DATABASE_URL"] {
        let out = crate::support::run(p.cmd(&["build", "--env", "test", "--drop-existing"]).env(var, url(&db)));
        assert_eq!(out.code, 5, "{var}: {out:?}");
        assert!(out.stderr.contains("environment `test` has no database"), "{}", out.stderr);
        assert!(out.stderr.contains("confiture.kdl"), "says where to declare one: {}", out.stderr);
        assert!(intact(&db), "{var} must not be used when --env names an environment");
    }
    // The same for migrate.
    let out = crate::support::run(p.cmd(&["migrate", "up", "--env", "test"]).env("DATABASE_URL", url(&db)));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("environment `test` has no database"), "{}", out.stderr);
}

#[test]
fn the_fallback_applies_without_flags_and_is_announced() {
    let db = fresh_name("fallback");
    let p = Project::new();
    with_schema(&p);
    let dsn = server().with_dbname(&db);
    let mut with_password = dsn.clone();
    with_password.set("password", "fallback-hunter2");
    let out = crate::support::run(p.cmd(&["build"]).env("DATABASE_URL", with_password.to_secret_string()));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(database_exists(&db));
    // At the default log level, not only with -v; redacted.
    assert!(out.stderr.contains("from DATABASE_URL"), "{}", out.stderr);
    assert!(out.stderr.contains(&db), "{}", out.stderr);
    assert!(!out.all().contains("fallback-hunter2"), "{}", out.all());
}

#[test]
fn an_explicit_database_url_wins_over_the_environment() {
    let env_db = fresh_name("envdb");
    let flag_db = fresh_name("flagdb");
    let p = crate::support::project_with_env(&env_db);
    with_schema(&p);
    let out = p.run(&["build", "--env", "dev", "--database-url", &url(&flag_db)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(database_exists(&flag_db), "--database-url is the target");
    assert!(!database_exists(&env_db), "the environment's database is not touched");
    let help = p.run(&["build", "--help"]);
    assert!(help.stdout.contains("--database-url if given, else the database"), "{}", help.stdout);
}

#[test]
fn drop_existing_needs_a_database_name_in_the_connection_string() {
    // A role whose name is also a database it owns: libpq's default for a DSN without a database.
    let name = fresh_name("app");
    let admin = server().to_secret_string();
    query(&admin, &format!("CREATE ROLE {name} LOGIN CREATEDB"));
    query(&admin, &format!("CREATE DATABASE {name} OWNER {name}"));
    query(&url(&name), "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)");
    let mut no_db = server().without("dbname");
    no_db.set("user", name.clone());
    let p = Project::new();
    with_schema(&p);
    let out = p.run(&["build", "--database-url", &no_db.to_secret_string(), "--drop-existing"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("does not name a database"), "{}", out.stderr);
    assert!(intact(&name), "the user-named database must survive");
}

fn protected_project(db: &str) -> Project {
    let p = Project::new();
    p.write(
        "confiture.kdl",
        &format!(
            "environment \"production\" {{\n    database url=\"{}\"\n    protected #true\n}}\nenvironment \"dev\" {{\n    \
             database ephemeral=#true\n}}\n",
            url(db).replace('\\', "\\\\").replace('"', "\\\"")
        ),
    );
    with_schema(&p);
    p
}

#[test]
fn a_protected_environment_is_never_dropped_however_it_is_named() {
    let db = precious("protected");
    let p = protected_project(&db);
    let by_env = p.run(&["build", "--env", "production", "--drop-existing"]);
    assert_eq!(by_env.code, 5, "{by_env:?}");
    assert!(by_env.stderr.contains("environment `production` is protected"), "{}", by_env.stderr);
    assert!(intact(&db));

    // The same database spelt as a URL, with another environment's files.
    let info = server().with_dbname(&db);
    let spelt = format!(
        "postgresql://{}@/{db}?host={}&port={}",
        info.get("user").unwrap(),
        info.get("host").unwrap(),
        info.get("port").unwrap()
    );
    let by_url = p.run(&["build", "--env", "dev", "--database-url", &spelt, "--drop-existing"]);
    assert_eq!(by_url.code, 5, "{by_url:?}");
    assert!(by_url.stderr.contains("environment `production`, which is protected"), "{}", by_url.stderr);
    assert!(intact(&db));

    // A pipeline's own database marked protected.
    p.write(
        "pipelines/wipe.kdl",
        &format!(
            "database \"prod\" url=\"{}\" protected=#true\nstage \"b\" uses=\"build\" {{ env \"dev\"; database \"prod\"; \
             drop-existing #true; }}\n",
            url(&db).replace('\\', "\\\\").replace('"', "\\\"")
        ),
    );
    let pipeline = p.run(&["run", "pipelines/wipe.kdl"]);
    assert_eq!(pipeline.code, 5, "{pipeline:?}");
    assert!(pipeline.stderr.contains("database `prod`"), "{}", pipeline.stderr);
    assert!(intact(&db));

    // Not destructive: migrations still apply to a protected environment.
    p.write("db/migrations/1_add.up.sql", "CREATE TABLE added (id int);\n");
    let up = p.run(&["migrate", "up", "--env", "production"]);
    assert_eq!(up.code, 0, "{up:?}");
}

#[test]
fn the_scaffold_protects_production() {
    let p = Project::new();
    assert_eq!(p.run(&["init"]).code, 0);
    let kdl = std::fs::read_to_string(p.file("confiture.kdl")).unwrap();
    assert!(kdl.contains("environment \"production\""), "{kdl}");
    let out = p.run(&["build", "--env", "production", "--drop-existing"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("protected"), "{}", out.stderr);
}
