//! The `build` stage and `confiture build`, against the test server.

use crate::support::{Project, assert_valid, database_exists, fresh_name, project_with_env, query, scalar, url};

/// A schema whose order matters: 10_orders.sql needs 2_customers.sql (natural order, not
/// lexicographic), and 20_views needs both.
fn write_schema(p: &Project, tag: &str) {
    p.write("db/schema/00_common/1_types.sql", &format!("-- {tag}\nCREATE TYPE status AS ENUM ('new', 'done');\n"))
        .write("db/schema/10_tables/2_customers.sql", "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n")
        .write(
            "db/schema/10_tables/10_orders.sql",
            "CREATE TABLE orders (\n    id bigint PRIMARY KEY,\n    customer_id bigint REFERENCES customers (id),\n    status status NOT NULL DEFAULT 'new'\n);\n",
        )
        .write("db/schema/20_views/open_orders.sql", "CREATE VIEW open_orders AS\n  SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id\n  WHERE o.status = 'new';\n")
        .write("db/seeds/common/1_customers.sql", "INSERT INTO customers VALUES (1, 'common');\n")
        .write("db/seeds/dev/1_orders.sql", "INSERT INTO orders (id, customer_id) VALUES (1, 1);\n")
        .write("db/seeds/other/1_ignored.sql", "this is not even SQL;\n");
}

#[test]
fn builds_in_natural_order_with_seeds_and_reports() {
    let db = fresh_name("order");
    let p = project_with_env(&db);
    write_schema(&p, "order");
    let out = p.run(&["build", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_valid("run-report.json", &v);
    let outputs = &v["stages"][0]["outputs"];
    assert_eq!(outputs["database"], db.as_str());
    assert_eq!(outputs["files"], 6);
    assert_eq!(outputs["statements"], 6);
    assert_eq!(outputs["cache_hit"], false);
    assert_eq!(outputs["hash"].as_str().unwrap().len(), 64);
    let dsn = url(&db);
    assert_eq!(scalar(&dsn, "SELECT count(*) FROM open_orders").as_deref(), Some("1"));
    assert_eq!(scalar(&dsn, "SELECT name FROM customers").as_deref(), Some("common"));
}

#[test]
fn schema_only_skips_seeds() {
    let db = fresh_name("schema_only");
    let p = project_with_env(&db);
    write_schema(&p, "schema_only");
    let out = p.run(&["build", "--env", "dev", "--schema-only", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["stages"][0]["outputs"]["files"], 4);
    assert_eq!(scalar(&url(&db), "SELECT count(*) FROM customers").as_deref(), Some("0"));
}

#[test]
fn a_failing_statement_names_file_line_and_column_and_leaves_nothing() {
    let db = fresh_name("fails");
    let p = project_with_env(&db);
    write_schema(&p, "fails");
    p.write(
        "db/schema/20_views/broken.sql",
        "-- a view over a table that is not there\nCREATE VIEW broken AS\n  SELECT id FROM custmers;\n",
    );
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("relation \"custmers\" does not exist"), "{}", out.stderr);
    assert!(out.stderr.contains("db/schema/20_views/broken.sql:3:18"), "{}", out.stderr);
    assert!(!database_exists(&db), "the failed build must drop the database it created");

    let json = p.run(&["build", "--env", "dev", "--format", "json"]);
    let v = json.json();
    assert_valid("run-report.json", &v);
    let err = &v["stages"][0]["error"];
    assert_eq!(err["code"], "postgres::42P01");
    assert_eq!(err["exit_code"], 4);
    assert_eq!(err["location"], serde_json::json!({"file": "db/schema/20_views/broken.sql", "line": 3, "column": 18}));
    assert_eq!(err["fields"]["sqlstate"], "42P01");
}

#[test]
fn filling_an_existing_empty_database_rolls_back_on_failure() {
    let db = fresh_name("fill");
    let p = project_with_env(&db);
    write_schema(&p, "fill");
    query(&crate::support::server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    p.write("db/seeds/dev/2_bad.sql", "INSERT INTO orders (id, customer_id) VALUES (2, 999);\n");
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("violates foreign key constraint"), "{}", out.stderr);
    assert!(out.stderr.contains("db/seeds/dev/2_bad.sql:1:1"), "{}", out.stderr);
    assert!(database_exists(&db), "an existing database is kept");
    let tables = scalar(&url(&db), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(tables.as_deref(), Some("0"), "the transaction left nothing behind");
}

#[test]
fn syntax_errors_are_found_before_the_database_is_touched() {
    let db = fresh_name("syntax");
    let p = project_with_env(&db);
    write_schema(&p, "syntax");
    p.write("db/schema/10_tables/3_typo.sql", "CREATE TABLE ok (id int);\n\nCREAT TABLE typo (id int);\n");
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("syntax error at or near \"CREAT\""), "{}", out.stderr);
    assert!(out.stderr.contains("db/schema/10_tables/3_typo.sql:3:1"), "{}", out.stderr);
    assert!(!database_exists(&db));
}

#[test]
fn errors_inside_function_bodies_point_into_the_body() {
    let db = fresh_name("plpgsql");
    let p = project_with_env(&db);
    p.write(
        "db/schema/f.sql",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN nosuchvar + 1;\nEND;\n$$;\nSELECT f();\n",
    );
    let out = p.run(&["build", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 4, "{out:?}");
    let err = &out.json()["stages"][0]["error"];
    assert_eq!(err["location"]["file"], "db/schema/f.sql");
    assert!(err["message"].as_str().unwrap().contains("nosuchvar"), "{err}");
}

#[test]
fn unchanged_schema_comes_from_the_template_cache() {
    let db = fresh_name("cache");
    let p = project_with_env(&db);
    write_schema(&p, &db);
    let first = p.run(&["build", "--env", "dev", "--format", "json"]);
    assert_eq!(first.code, 0, "{first:?}");
    let hash = first.json()["stages"][0]["outputs"]["hash"].as_str().unwrap().to_string();
    assert_eq!(first.json()["stages"][0]["outputs"]["cache_hit"], false);
    let template = format!("confiture_tpl_{}", &hash[..16]);
    assert!(database_exists(&template), "a template is kept after a build");

    let second = p.run(&["build", "--env", "dev", "--drop-existing", "--format", "json"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(second.json()["stages"][0]["outputs"]["cache_hit"], true);
    assert_eq!(second.json()["stages"][0]["outputs"]["hash"], hash.as_str());
    assert_eq!(scalar(&url(&db), "SELECT count(*) FROM open_orders").as_deref(), Some("1"), "seeds come along");

    p.write("db/schema/20_views/more.sql", "CREATE VIEW more AS SELECT 1 AS one;\n");
    let changed = p.run(&["build", "--env", "dev", "--drop-existing", "--format", "json"]);
    assert_eq!(changed.json()["stages"][0]["outputs"]["cache_hit"], false, "a changed file misses the cache");

    let bypass = p.run(&["build", "--env", "dev", "--drop-existing", "--no-cache", "--format", "json"]);
    assert_eq!(bypass.json()["stages"][0]["outputs"]["cache_hit"], false);
}

#[test]
fn a_non_empty_database_needs_drop_existing() {
    let db = fresh_name("nonempty");
    let p = project_with_env(&db);
    write_schema(&p, "nonempty");
    query(&crate::support::server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    query(&url(&db), "CREATE TABLE precious (id int)");
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("is not empty") && out.stderr.contains("table public.precious"), "{}", out.stderr);
    assert_eq!(scalar(&url(&db), "SELECT count(*) FROM precious").as_deref(), Some("0"), "left untouched");
    let out = p.run(&["build", "--env", "dev", "--drop-existing"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(scalar(&url(&db), "SELECT to_regclass('precious') IS NULL").as_deref(), Some("t"));
}

#[test]
fn concurrent_index_builds_run_after_the_transaction() {
    let db = fresh_name("concurrently");
    let p = project_with_env(&db);
    p.write(
        "db/schema/t.sql",
        "CREATE TABLE t (id int, email text);\nCREATE INDEX CONCURRENTLY t_email ON t (email);\nVACUUM t;\n",
    );
    let out = p.run(&["build", "--env", "dev", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["stages"][0]["outputs"]["statements"], 3);
    let valid = scalar(&url(&db), "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_email'::regclass");
    assert_eq!(valid.as_deref(), Some("t"));

    // Into an existing database, the build cannot undo them: refused before anything runs.
    let db2 = fresh_name("concurrently_fill");
    let p2 = project_with_env(&db2);
    p2.write("db/schema/t.sql", "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n");
    query(&crate::support::server().to_secret_string(), &format!("CREATE DATABASE {db2}"));
    let out = p2.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("cannot run in a transaction"), "{}", out.stderr);
    assert_eq!(scalar(&url(&db2), "SELECT to_regclass('t') IS NULL").as_deref(), Some("t"));
}

#[test]
fn transaction_control_and_cluster_commands_are_refused() {
    for (body, what) in [
        ("CREATE TABLE a (id int);\nCOMMIT;\n", "transaction control"),
        ("CREATE DATABASE other;\n", "CREATE DATABASE"),
    ] {
        let db = fresh_name("refused");
        let p = project_with_env(&db);
        p.write("db/schema/a.sql", body);
        let out = p.run(&["build", "--env", "dev"]);
        assert_eq!(out.code, 4, "{out:?}");
        assert!(out.stderr.contains(what) && out.stderr.contains("is not allowed"), "{}", out.stderr);
        assert!(!database_exists(&db));
    }
}

#[test]
fn output_writes_the_sql_with_file_markers() {
    let db = fresh_name("output");
    let p = project_with_env(&db);
    write_schema(&p, "output");
    let out = p.run(&["build", "--env", "dev", "--output", "build/all.sql"]);
    assert_eq!(out.code, 0, "{out:?}");
    let sql = std::fs::read_to_string(p.file("build/all.sql")).unwrap();
    let markers: Vec<&str> = sql.lines().filter(|l| l.starts_with("-- confiture:file ")).collect();
    assert_eq!(
        markers,
        [
            "-- confiture:file db/schema/00_common/1_types.sql",
            "-- confiture:file db/schema/10_tables/2_customers.sql",
            "-- confiture:file db/schema/10_tables/10_orders.sql",
            "-- confiture:file db/schema/20_views/open_orders.sql",
            "-- confiture:file db/seeds/common/1_customers.sql",
            "-- confiture:file db/seeds/dev/1_orders.sql",
        ]
    );
}

#[test]
fn the_hash_does_not_depend_on_where_the_project_is() {
    let hashes: Vec<String> = (0..2)
        .map(|i| {
            let db = fresh_name(&format!("hash{i}"));
            let p = project_with_env(&db);
            write_schema(&p, "same");
            let out = p.run(&["build", "--env", "dev", "--schema-only", "--no-cache", "--format", "json"]);
            assert_eq!(out.code, 0, "{out:?}");
            out.json()["stages"][0]["outputs"]["hash"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(hashes[0], hashes[1]);
}

#[test]
fn python_confiture_yaml_environments_work() {
    let db = fresh_name("yaml");
    let p = Project::new();
    write_schema(&p, "yaml");
    p.write("db/schema/99_legacy/old.sql", "this would fail;\n").write(
        "db/environments/local.yaml",
        &format!(
            "name: local\ndatabase_url: \"{}\"\ninclude_dirs:\n  - db/schema\nexclude_dirs:\n  - db/schema/99_legacy\n",
            url(&db)
        ),
    );
    let out = p.run(&["build", "--env", "local", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["stages"][0]["outputs"]["files"], 5, "4 schema files and the common seed");
}

#[test]
fn stage_outputs_feed_later_stages() {
    let p = Project::new();
    write_schema(&p, "outputs");
    p.write("confiture.kdl", "environment \"dev\" { database ephemeral=#true; }\n").write(
        "pipelines/two.kdl",
        r#"
pipeline "two"
database "scratch" ephemeral=#true
stage "first" uses="build" { env "dev"; database "scratch"; }
stage "second" uses="build" needs="first" {
    env "dev"
    database "{{ stages.first.outputs.url }}"
    drop-existing #true
    output "out/{{ stages.first.outputs.hash }}.sql"
}
"#,
    );
    let out = p.run(&["run", "pipelines/two.kdl", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let hash = v["stages"][0]["outputs"]["hash"].as_str().unwrap();
    assert!(p.file(&format!("out/{hash}.sql")).is_file(), "the second stage rendered the first one's hash");
    assert_eq!(v["stages"][1]["outputs"]["cache_hit"], true, "same files, same server: from the template");
}

#[test]
fn old_templates_are_pruned_per_target() {
    let db = fresh_name("prune");
    let p = project_with_env(&db);
    for i in 0..5 {
        p.write("db/schema/a.sql", &format!("CREATE TABLE a{i} (id int);\n"));
        let out = p.run(&["build", "--env", "dev", "--drop-existing"]);
        assert_eq!(out.code, 0, "{out:?}");
    }
    let sql = format!(
        "SELECT count(*) FROM pg_database WHERE datistemplate AND shobj_description(oid, 'pg_database') LIKE '%\"target\":\"{db}\"%'"
    );
    assert_eq!(scalar(&crate::support::server().to_secret_string(), &sql).as_deref(), Some("3"));
}

#[test]
fn a_planted_template_with_the_right_name_is_not_trusted() {
    let db = fresh_name("planted");
    let p = project_with_env(&db);
    write_schema(&p, &db);
    let first = p.run(&["build", "--env", "dev", "--no-cache", "--format", "json"]);
    let hash = first.json()["stages"][0]["outputs"]["hash"].as_str().unwrap().to_string();
    let name = format!("confiture_tpl_{}", &hash[..16]);
    let server = crate::support::server().to_secret_string();
    query(&server, &format!("CREATE DATABASE {name}"));
    query(&url(&name), "CREATE TABLE planted (id int)");
    query(&server, &format!("ALTER DATABASE {name} WITH IS_TEMPLATE true"));
    let out = p.run(&["build", "--env", "dev", "--drop-existing", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["stages"][0]["outputs"]["cache_hit"], false);
    assert_eq!(scalar(&url(&db), "SELECT to_regclass('planted') IS NULL").as_deref(), Some("t"));
}

#[test]
fn hostile_names_and_bad_bytes_get_clear_errors() {
    // A database name that needs quoting is created, filled and reported as it is.
    let name = format!("we\"ird {}", fresh_name("db"));
    let server = crate::support::server();
    let p = Project::new();
    p.write("db/schema/a.sql", "CREATE TABLE a (id int);\n");
    let dsn = server.with_dbname(&name).to_secret_string();
    let out = p.run(&["build", "--database-url", &dsn, "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["stages"][0]["outputs"]["database"], name.as_str());
    assert!(database_exists(&name));

    // A file that is not UTF-8 stops the build before the server is touched.
    let db = fresh_name("latin1");
    let p = project_with_env(&db);
    std::fs::create_dir_all(p.file("db/schema")).unwrap();
    std::fs::write(p.file("db/schema/latin1.sql"), b"COMMENT ON SCHEMA public IS 'caf\xe9';\n").unwrap();
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("db/schema/latin1.sql is not valid UTF-8"), "{}", out.stderr);
    assert!(!database_exists(&db));

    // A NUL byte is reported with its position, not a crash.
    std::fs::write(p.file("db/schema/latin1.sql"), b"SELECT 1;\nSELECT '\0';\n").unwrap();
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("NUL byte") && out.stderr.contains("latin1.sql:2:"), "{}", out.stderr);
}

#[test]
fn a_deferred_constraint_failing_at_commit_exits_4_naming_it() {
    let db = fresh_name("deferred");
    let p = project_with_env(&db);
    p.write("db/schema/1_parent.sql", "CREATE TABLE parent (id int PRIMARY KEY);\n").write(
        "db/schema/2_child.sql",
        "-- children\nCREATE TABLE child (\n    id int,\n    parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED\n);\n",
    );
    p.write("db/seeds/common/1_orphan.sql", "INSERT INTO child VALUES (1, 99);\n");
    let out = p.run(&["build", "--env", "dev"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("child_parent_id_fkey"), "names the constraint: {}", out.stderr);
    assert!(out.stderr.contains("db/schema/2_child.sql:2:1"), "points at the table: {}", out.stderr);
    assert!(!database_exists(&db), "nothing is left behind");
}

#[test]
fn a_cache_hit_keeps_database_settings_grants_and_comment() {
    let db = fresh_name("dblevel");
    let reader = fresh_name("reader");
    query(&crate::support::server().to_secret_string(), &format!("CREATE ROLE {reader} NOLOGIN"));
    let p = project_with_env(&db);
    p.write(
        "db/schema/1_app.sql",
        "CREATE SCHEMA app;\nCREATE TABLE app.t (id int);\nCREATE TEXT SEARCH CONFIGURATION app.shop (COPY = simple);\n",
    )
    .write(
        "db/schema/2_database.sql",
        &format!(
            "DO $$\nBEGIN\n  EXECUTE format('ALTER DATABASE %I SET search_path = app, \"$user\", public', current_database());\n  \
             EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '5s');\n  \
             EXECUTE format('ALTER ROLE {reader} IN DATABASE %I SET work_mem = %L', current_database(), '8MB');\n  \
             EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());\n  \
             EXECUTE format('GRANT CONNECT ON DATABASE %I TO {reader}', current_database());\n  \
             EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), 'the shop''s data');\n  \
             EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 40', current_database());\n  \
             EXECUTE format('ALTER DATABASE %I SET default_text_search_config = %L', current_database(), 'app.shop');\n  \
             EXECUTE format('ALTER DATABASE %I OWNER TO {reader}', current_database());\nEND\n$$;\n"
        ),
    );
    let facts = || {
        let admin = crate::support::server().to_secret_string();
        query(
            &admin,
            &format!(
                "SELECT (SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ';'), ' | ' \
                 ORDER BY r.rolname NULLS FIRST)
                         FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid),
                        regexp_replace(d.datacl::text, '/[a-z_0-9]+', '', 'g'),
                        shobj_description(d.oid, 'pg_database'), d.datconnlimit, pg_get_userbyid(d.datdba)
                 FROM pg_database d WHERE d.datname = '{db}'"
            ),
        )
    };
    let miss = p.run(&["build", "--env", "dev", "--format", "json"]);
    assert_eq!(miss.code, 0, "{miss:?}");
    assert_eq!(miss.json()["stages"][0]["outputs"]["cache_hit"], false);
    let built = facts();
    assert!(built[0][0].as_deref().unwrap_or("").contains("search_path=app"), "{built:?}");
    let hit = p.run(&["build", "--env", "dev", "--drop-existing", "--format", "json"]);
    assert_eq!(hit.code, 0, "{hit:?}");
    assert_eq!(hit.json()["stages"][0]["outputs"]["cache_hit"], true);
    assert_eq!(facts(), built, "a cache hit gives the same database as a miss");
}

#[test]
fn a_template_that_cannot_be_replayed_falls_back_to_building_from_the_files() {
    let db = fresh_name("fallback_tpl");
    let p = project_with_env(&db);
    write_schema(&p, &db);
    let first = p.run(&["build", "--env", "dev", "--format", "json"]);
    assert_eq!(first.code, 0, "{first:?}");
    let hash = first.json()["stages"][0]["outputs"]["hash"].as_str().unwrap().to_string();
    let template = format!("confiture_tpl_{}", &hash[..16]);
    // A template whose recorded database settings no longer apply.
    let admin = crate::support::server().to_secret_string();
    let note = scalar(
        &admin,
        &format!("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{template}'"),
    )
    .unwrap();
    let mut note: serde_json::Value = serde_json::from_str(&note).unwrap();
    note["database"]["settings"] = serde_json::json!([[null, "work_mem=not a size"]]);
    query(&admin, &format!("COMMENT ON DATABASE {template} IS '{}'", note.to_string().replace('\'', "''")));
    let second = p.run(&["build", "--env", "dev", "--drop-existing", "--format", "json"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(second.json()["stages"][0]["outputs"]["cache_hit"], false, "built from the files");
    assert!(second.stderr.contains("could not be used"), "{}", second.stderr);
    assert_eq!(scalar(&url(&db), "SELECT count(*) FROM open_orders").as_deref(), Some("1"));
    // A fresh template was kept, and the next build uses it.
    let third = p.run(&["build", "--env", "dev", "--drop-existing", "--format", "json"]);
    assert_eq!(third.json()["stages"][0]["outputs"]["cache_hit"], true, "{third:?}");
}
