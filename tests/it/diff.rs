//! `confiture diff`, `drift`, `migrate generate` and the `diff` stage, against the test server.

use crate::support::{Project, assert_valid, fresh_name, project_with_env, query, scalar, server, url};

const USERS: &str =
    "CREATE TABLE users (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    email text NOT NULL\n);\n";
const ORDERS: &str = "CREATE TABLE orders (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    user_id bigint NOT NULL REFERENCES users (id),\n    total numeric(12, 2) NOT NULL DEFAULT 0\n);\nCREATE INDEX orders_user_id ON orders (user_id);\n";

/// A project whose `dev` environment is a fresh database (created, empty) with db/schema files.
fn setup(label: &str) -> (Project, String) {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    let p = project_with_env(&db);
    p.write("db/schema/10_users.sql", USERS);
    p.write("db/schema/20_orders.sql", ORDERS);
    (p, db)
}

fn dev_url() -> String {
    server().to_secret_string()
}

#[test]
fn diff_prints_sql_that_makes_the_database_match_and_check_gates_on_it() {
    let (p, db) = setup("diff_sql");
    query(&url(&db), USERS);
    query(&url(&db), "INSERT INTO users (email) VALUES ('a@b.c'); CREATE TABLE legacy (id int);");
    let from = url(&db);
    let check = p.run(&["diff", "--from", &from, "--to", "schema", "--check", "--dev-url", &dev_url()]);
    assert_eq!(check.code, 7, "they differ: {check:?}");

    let out = p.run(&["diff", "--from", &from, "--to", "schema", "--dev-url", &dev_url()]);
    assert_eq!(out.code, 0, "differences are not a failure without --check: {out:?}");
    assert!(out.stdout.contains("CREATE TABLE public.orders ("), "{}", out.stdout);
    assert!(out.stdout.contains("-- hazard deletes-data: drops table public.legacy"), "{}", out.stdout);
    assert!(out.stderr.contains("difference"), "a summary on stderr: {}", out.stderr);
    assert!(!out.all().contains(&server().get("password").unwrap_or("no-password-set").to_string()));
    // The script applies as it is, and afterwards there is nothing left to do.
    query(&url(&db), &out.stdout);
    let again = p.run(&["diff", "--from", &from, "--to", "schema", "--check", "--dev-url", &dev_url()]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.stdout.trim(), "");
    assert_eq!(scalar(&url(&db), "SELECT email FROM users").as_deref(), Some("a@b.c"), "rows survive");
}

#[test]
fn json_output_follows_its_schema_and_never_shows_a_password() {
    let (p, db) = setup("diff_json");
    query(&url(&db), USERS);
    let from = url(&db);
    let out =
        p.run(&["diff", "--from", &from, "--to", "schema", "--format", "json", "--down", "--dev-url", &dev_url()]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_valid("stages/diff.json", &v);
    assert_eq!(v["changed"], true);
    let objects: Vec<&str> = v["changes"].as_array().unwrap().iter().map(|c| c["object"].as_str().unwrap()).collect();
    assert!(objects.contains(&"table public.orders"), "{objects:?}");
    assert!(objects.contains(&"constraint orders_user_id_fkey on public.orders"), "{objects:?}");
    assert!(v["down_sql"].as_str().unwrap().contains("DROP TABLE public.orders"), "{v}");
    if let Some(pw) = server().get("password") {
        assert!(!out.all().contains(pw), "the password leaked");
    }
}

#[test]
fn down_prints_the_way_back_and_ddl_sources_build_on_an_ephemeral_server() {
    let p = Project::new();
    p.write("old/schema.sql", USERS);
    p.write("new/a.sql", USERS);
    p.write("new/b.sql", ORDERS);
    // No --dev-url: both sides are built on a throwaway PostgreSQL.
    let up = p.run(&["diff", "--from", "old", "--to", "new"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stdout.contains("CREATE TABLE public.orders"), "{}", up.stdout);
    let down = p.run(&["diff", "--from", "old/schema.sql", "--to", "new", "--down"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert!(down.stdout.contains("DROP TABLE public.orders"), "{}", down.stdout);
    assert!(!down.stdout.contains("CREATE TABLE"), "{}", down.stdout);
}

#[test]
fn roles_the_files_grant_to_exist_on_the_throwaway_server() {
    let p = Project::new();
    let role = format!("reporting_{}", std::process::id());
    p.write("a/users.sql", USERS);
    p.write(
        "b/users.sql",
        &format!(
            "{USERS}GRANT SELECT ON users TO {role};\nALTER TABLE users ENABLE ROW LEVEL SECURITY;\n\
             CREATE POLICY mine ON users FOR SELECT TO {role} USING (true);\n"
        ),
    );
    let out = p.run(&["diff", "--from", "a", "--to", "b"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&format!("GRANT SELECT ON TABLE public.users TO {role}")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("CREATE POLICY mine ON public.users FOR SELECT TO {role}")), "{}", out.stdout);
}

#[test]
fn a_ddl_source_that_does_not_build_names_file_and_line() {
    let p = Project::new();
    p.write("a/ok.sql", USERS);
    p.write("b/broken.sql", "CREATE TABLE t (id int);\nCREATE INDEX ON t (missing);\n");
    let out = p.run(&["diff", "--from", "a", "--to", "b", "--dev-url", &dev_url()]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("broken.sql:2:"), "{}", out.stderr);
    assert!(out.stderr.contains("missing"), "{}", out.stderr);
}

#[test]
fn an_unknown_source_is_a_usage_error_with_help() {
    let p = Project::new();
    p.write("confiture.kdl", "");
    let out = p.run(&["diff", "--from", "nowhere", "--to", "schema"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("`nowhere` is not"), "{}", out.stderr);
    assert!(out.stderr.contains("env:NAME"), "the help lists the forms: {}", out.stderr);
}

#[test]
fn drift_reports_what_differs_and_exits_7() {
    let (p, db) = setup("drift");
    let build = p.run(&["build", "--env", "dev"]);
    assert_eq!(build.code, 0, "{build:?}");
    let clean = p.run(&["drift", "--env", "dev", "--dev-url", &dev_url()]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.stdout.contains("no drift"), "{}", clean.stdout);

    query(
        &url(&db),
        "ALTER TABLE users ADD COLUMN nickname text; DROP INDEX orders_user_id; ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);",
    );
    let out = p.run(&["drift", "--env", "dev", "--dev-url", &dev_url()]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stdout.contains("- column public.users.nickname"), "{}", out.stdout);
    assert!(out.stdout.contains("+ index public.orders_user_id"), "{}", out.stdout);
    assert!(out.stdout.contains("~ column public.orders.total"), "{}", out.stdout);
    assert!(out.stdout.contains("numeric(14,2) → numeric(12,2)"), "{}", out.stdout);
    assert!(out.stdout.contains("3 differences"), "{}", out.stdout);

    let excluded = p.run(&["drift", "--env", "dev", "--dev-url", &dev_url(), "--exclude", "public.users"]);
    assert_eq!(excluded.code, 7, "{excluded:?}");
    assert!(!excluded.stdout.contains("nickname"), "{}", excluded.stdout);
    assert!(excluded.stdout.contains("2 differences"), "{}", excluded.stdout);

    let json = p.run(&["drift", "--env", "dev", "--dev-url", &dev_url(), "--format", "json"]);
    assert_eq!(json.code, 7, "{json:?}");
    let v = json.json();
    assert_valid("stages/diff.json", &v);
    assert_eq!(v["changes"].as_array().unwrap().len(), 3);
}

#[test]
fn migrate_generate_writes_a_pair_that_migrates_up_and_down() {
    let (p, db) = setup("generate");
    p.write("db/migrations/20260101000000_users.up.sql", USERS);
    p.write("db/migrations/20260101000000_users.down.sql", "DROP TABLE users;\n");
    let out = p.run(&["migrate", "generate", "--name", "add orders", "--dev-url", &dev_url()]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut files: Vec<String> = std::fs::read_dir(p.file("db/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("add_orders"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("_add_orders.down.sql") && files[1].ends_with("_add_orders.up.sql"), "{files:?}");
    let up = std::fs::read_to_string(p.file(&format!("db/migrations/{}", files[1]))).unwrap();
    assert!(up.contains("CREATE TABLE public.orders"), "{up}");
    assert!(out.stdout.contains("created db/migrations/"), "{}", out.stdout);

    // The pair works: up, then the database matches the schema; down removes it again.
    let up_run = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(up_run.code, 0, "{up_run:?}");
    let drift = p.run(&["drift", "--env", "dev", "--dev-url", &dev_url()]);
    assert_eq!(drift.code, 0, "{drift:?}");
    let down = p.run(&["migrate", "down", "--env", "dev"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(scalar(&url(&db), "SELECT to_regclass('public.orders') IS NULL").as_deref(), Some("t"));

    // Nothing to do: nothing written.
    let again = p.run(&["migrate", "generate", "--name", "nothing", "--dev-url", &dev_url()]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("no changes"), "{}", again.stdout);
    assert_eq!(std::fs::read_dir(p.file("db/migrations")).unwrap().count(), 4);
}

#[test]
fn the_diff_stage_fails_a_pipeline_on_change_with_exit_7() {
    let (p, db) = setup("stage");
    query(&url(&db), USERS);
    p.write(
        "gate.kdl",
        &format!(
            "database \"live\" url=\"{}\"\nstage \"gate\" uses=\"diff\" {{\n    from \"live\"\n    to \"schema\"\n    dev-url \"{}\"\n    fail-on-change #true\n    output \"out/gate.sql\"\n}}\n",
            url(&db).replace('"', "\\\""),
            dev_url().replace('"', "\\\"")
        ),
    );
    let out = p.run(&["run", "gate.kdl", "--format", "json"]);
    assert_eq!(out.code, 7, "{out:?}");
    let v = out.json();
    assert_valid("run-report.json", &v);
    let outputs = &v["stages"][0]["outputs"];
    assert_valid("stages/diff.json", outputs);
    assert_eq!(outputs["changed"], true);
    let written = std::fs::read_to_string(p.file("out/gate.sql")).unwrap();
    assert!(written.contains("CREATE TABLE public.orders"), "{written}");
    let plan = p.run(&["plan", "gate.kdl"]);
    assert_eq!(plan.code, 0, "{plan:?}");
}

#[test]
fn migrate_generate_concurrently_builds_indexes_on_existing_tables_in_a_second_migration() {
    let (p, db) = setup("generate_concurrently");
    p.write("db/migrations/20260101000000_users.up.sql", USERS);
    p.write("db/migrations/20260101000000_users.down.sql", "DROP TABLE users;\n");
    // The schema adds an index on the existing table, and a new table with its own index.
    p.write("db/schema/10_users.sql", &format!("{USERS}CREATE INDEX users_email ON users (lower(email));\n"));
    let out = p.run(&["migrate", "generate", "--name", "orders", "--concurrently", "--dev-url", &dev_url()]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut files: Vec<String> = std::fs::read_dir(p.file("db/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_orders"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    let read = |suffix: &str| {
        let f = files.iter().find(|f| f.ends_with(suffix)).unwrap_or_else(|| panic!("no {suffix} in {files:?}"));
        std::fs::read_to_string(p.file(&format!("db/migrations/{f}"))).unwrap()
    };
    let first = read("_orders.up.sql");
    assert!(first.contains("CREATE TABLE public.orders"), "{first}");
    assert!(first.contains("CREATE INDEX orders_user_id ON public.orders"), "new table, same transaction: {first}");
    assert!(!first.contains("users_email"), "{first}");
    let second = read("_orders_indexes.up.sql");
    assert!(second.starts_with("-- confiture:no-transaction\n"), "{second}");
    assert!(second.contains("CREATE INDEX CONCURRENTLY users_email ON public.users"), "{second}");
    assert!(read("_orders_indexes.down.sql").contains("DROP INDEX CONCURRENTLY public.users_email"));

    let lint = p.run(&["lint", "db/migrations"]);
    assert!(!lint.stdout.contains("require-concurrent-index-creation"), "{}", lint.stdout);
    let up = p.run(&["migrate", "up", "--env", "dev"]);
    assert_eq!(up.code, 0, "{up:?}");
    let drift = p.run(&["drift", "--env", "dev", "--dev-url", &dev_url()]);
    assert_eq!(drift.code, 0, "{drift:?}");
    let down = p.run(&["migrate", "down", "--env", "dev", "--steps", "2"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(scalar(&url(&db), "SELECT to_regclass('public.users_email') IS NULL").as_deref(), Some("t"));
}
