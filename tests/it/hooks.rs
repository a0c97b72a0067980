//! Lifecycle hooks from a pipeline: wasm, command and sql hooks allow, warn, deny and fail.

use std::path::PathBuf;

use crate::support::{Project, assert_valid, fresh_name, query, scalar, server, url};

fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("CONFITURE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/guests/dist"));
    dir.join(format!("{name}.wasm"))
}

/// A project with a `prod` database (fresh, on the test server) and two migrations: one creates
/// `users`, the next drops it.
fn setup(label: &str) -> (Project, String) {
    let db = fresh_name(label);
    query(&server().to_secret_string(), &format!("CREATE DATABASE {db}"));
    let p = Project::new();
    p.write("confiture.kdl", "");
    p.write("db/migrations/001_users.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n");
    p.write("db/migrations/001_users.down.sql", "DROP TABLE users;\n");
    p.write("db/migrations/002_drop_users.up.sql", "DROP TABLE users;\n");
    p.write("db/migrations/002_drop_users.down.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n");
    (p, db)
}

fn pipeline(p: &Project, db: &str, hooks: &str) {
    p.write(
        "release.kdl",
        &format!(
            "database \"prod\" url=\"{}\"\nstage \"apply\" uses=\"migrate\" {{\n    database \"prod\"\n}}\n{hooks}",
            url(db).replace('"', "\\\"")
        ),
    );
}

#[test]
fn a_wasm_hook_denies_a_migration_that_drops_a_protected_table() {
    let (p, db) = setup("hook_deny");
    pipeline(
        &p,
        &db,
        &format!(
            "hook \"no-drops\" on=\"before-migration\" wasm=\"{}\" {{\n    param \"table\" \"users\"\n}}\n",
            guest("deny_drop").display()
        ),
    );
    let out = p.run(&["run", "release.kdl", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let v = out.json();
    assert_valid("run-report.json", &v);
    let error = v["stages"][0]["error"]["message"].as_str().unwrap();
    assert!(error.contains("hook `no-drops` denied migration 002_drop_users"), "{error}");
    assert!(error.contains("drops table users, which is protected"), "{error}");
    let hooks = v["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert_eq!((hooks[0]["migration"].as_str(), hooks[0]["outcome"].as_str()), (Some("001_users"), Some("allowed")));
    assert_eq!(
        (hooks[1]["migration"].as_str(), hooks[1]["outcome"].as_str()),
        (Some("002_drop_users"), Some("denied"))
    );
    // The first migration ran; the denied one did not.
    assert_eq!(scalar(&url(&db), "SELECT to_regclass('public.users') IS NOT NULL").as_deref(), Some("t"));
    assert_eq!(scalar(&url(&db), "SELECT count(*) FROM confiture_migrations").as_deref(), Some("1"));
}

#[test]
fn a_wasm_hook_of_the_wrong_world_is_refused_by_name() {
    let (p, db) = setup("hook_world");
    pipeline(&p, &db, &format!("hook \"oops\" on=\"before-migration\" wasm=\"{}\"\n", guest("mask_email").display()));
    let out = p.run(&["run", "release.kdl"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is an anonymizer, not a hook"), "{}", out.stderr);
}

#[test]
fn command_hooks_get_an_explicit_environment_and_their_exit_status_decides() {
    let (p, db) = setup("hook_command");
    p.write("db/migrations/002_drop_users.up.sql", "SELECT 1;\n");
    pipeline(
        &p,
        &db,
        "hook \"env\" on=\"before-stage\" command=\"env > hook-env.txt; cat > /dev/null\" {\n    env \"TEAM\" \"payments\"\n}\n\
         hook \"careful\" on=\"after-migration\" command=\"echo 'warn: it is Friday'\"\n\
         hook \"flaky\" on=\"after-stage\" command=\"exit 3\" on-error=\"continue\" timeout=\"5s\"\n\
         hook \"done\" on=\"pipeline-finished\" command=\"echo $CONFITURE_STATUS $CONFITURE_FAILED_STAGES > done.txt\"\n",
    );
    // `exit 3` is a deny, not a failure: it stops the release.
    let out = p.run(&["run", "release.kdl", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let v = out.json();
    let outcomes: Vec<(&str, &str)> = v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["hook"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("env", "allowed"), ("careful", "warned"), ("careful", "warned"), ("flaky", "denied"), ("done", "allowed")]
    );
    assert_eq!(std::fs::read_to_string(p.file("done.txt")).unwrap().trim(), "failed apply");
    assert_eq!(v["hooks"][1]["message"], "it is Friday");
    let env = std::fs::read_to_string(p.file("hook-env.txt")).unwrap();
    assert!(env.contains("CONFITURE_EVENT=before-stage"), "{env}");
    assert!(env.contains("CONFITURE_STAGE=apply"), "{env}");
    assert!(env.contains("TEAM=payments"), "{env}");
    assert!(!env.contains("HOME="), "only what the hook declares (and PATH): {env}");
    assert!(!env.contains("postgres"), "no connection strings: {env}");
}

#[test]
fn an_sql_hook_runs_on_its_database_and_a_failing_one_can_continue() {
    let (p, db) = setup("hook_sql");
    p.write("db/migrations/002_drop_users.up.sql", "SELECT 1;\n");
    pipeline(
        &p,
        &db,
        "hook \"audit\" on=\"after-stage\" database=\"prod\" sql=\"CREATE TABLE release_log AS SELECT now() AS at\"\n\
         hook \"broken\" on=\"after-stage\" database=\"prod\" sql=\"SELECT * FROM nowhere\" on-error=\"continue\"\n",
    );
    let out = p.run(&["run", "release.kdl", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["hooks"][0]["outcome"], "allowed");
    assert_eq!(v["hooks"][1]["outcome"], "failed-continued");
    assert!(v["hooks"][1]["message"].as_str().unwrap().contains("nowhere"), "{v}");
    assert_eq!(scalar(&url(&db), "SELECT count(*) FROM release_log").as_deref(), Some("1"));
}

#[test]
fn a_hooks_stage_is_a_checkpoint_where_a_deny_stops_the_pipeline() {
    let (p, db) = setup("hook_stage");
    p.write(
        "release.kdl",
        &format!(
            "database \"prod\" url=\"{}\"\nstage \"approval\" uses=\"hooks\" {{ description \"a human says yes\"; }}\n\
             stage \"apply\" uses=\"migrate\" needs=\"approval\" {{ database \"prod\"; }}\n\
             hook \"approve\" on=\"before-stage\" stage=\"approval\" command=\"echo 'not approved' >&2; exit 1\"\n",
            url(&db).replace('"', "\\\"")
        ),
    );
    let out = p.run(&["run", "release.kdl", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let v = out.json();
    assert!(
        v["stages"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hook `approve` denied stage `approval`: not approved"),
        "{v}"
    );
    assert_eq!(v["stages"][1]["status"], "skipped");
    assert_eq!(scalar(&url(&db), "SELECT to_regclass('public.users') IS NULL").as_deref(), Some("t"), "nothing ran");
}

#[test]
fn a_wasm_hook_that_waits_without_computing_is_stopped_by_its_timeout() {
    let (p, db) = setup("hook_nap");
    pipeline(
        &p,
        &db,
        &format!("hook \"nap\" on=\"before-stage\" wasm=\"{}\" timeout=\"1s\"\n", guest("nap").display()),
    );
    // A hang would never return from here; the process exits without waiting for the abandoned call.
    let out = p.run(&["run", "release.kdl"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("did not answer within its timeout (1s)"), "{}", out.stderr);
}

#[test]
fn a_command_hook_that_never_stops_writing_is_cut_off_not_buffered() {
    // A verbose hook is read to its end: 1 MiB of output, then success.
    let (p, db) = setup("hook_verbose");
    pipeline(&p, &db, "hook \"verbose\" on=\"before-stage\" command=\"head -c 1048576 /dev/zero; echo\"\n");
    let out = p.run(&["run", "release.kdl"]);
    assert_eq!(out.code, 0, "{out:?}");
    let (p, db) = setup("hook_yes");
    pipeline(&p, &db, "hook \"chatty\" on=\"before-stage\" command=\"yes\" timeout=\"30s\"\n");
    let out = p.run(&["run", "release.kdl"]);
    assert_eq!(out.code, 1, "{out:?}");
    // Stopped at the cap (its pipe closed, `yes` dies of SIGPIPE), not at the timeout.
    assert!(out.stderr.contains("wrote more than 16 MiB to stdout"), "{}", out.stderr);
    assert!(!out.stderr.contains("did not finish"), "{}", out.stderr);
}

#[test]
fn a_wasm_hook_that_computes_forever_is_stopped_at_its_deadline() {
    let (p, db) = setup("hook_fill");
    // A hook (WebAssembly text) that fills 64 MiB again and again.
    let text = include_str!("../../engine/tests/wat/hook.wat.tpl").replace("{{PRELUDE}}", "").replace(
        "{{ON_EVENT}}",
        "(drop (memory.grow (i32.const 1024))) (loop $again (memory.fill (i32.const 0) (i32.const 0) (i32.const \
         67108864)) (br $again))",
    );
    std::fs::write(p.file("fill.wasm"), wat::parse_str(&text).unwrap()).unwrap();
    pipeline(
        &p,
        &db,
        "hook \"fill\" on=\"before-stage\" wasm=\"fill.wasm\" timeout=\"1s\" fuel=1000000000000000 memory=\"128MiB\"\n",
    );
    let out = p.run(&["run", "release.kdl"]);
    assert_eq!(out.code, 1, "{out:?}");
    // The guest itself was interrupted (so its thread ended), not merely abandoned by the host.
    assert!(out.stderr.contains("ran past its time limit (1s per call)"), "{}", out.stderr);
}

#[test]
fn what_a_hook_prints_does_not_show_values_from_the_environment() {
    let (p, db) = setup("hook_echo");
    pipeline(
        &p,
        &db,
        "hook \"loud\" on=\"before-stage\" command=\"echo calling https://ci.example.com/?token={{ env.HOOK_TOKEN }} >&2; exit 1\"\n",
    );
    let out =
        crate::support::run(p.cmd(&["-v", "run", "release.kdl", "--format", "json"]).env("HOOK_TOKEN", "tok-9f8e7d6c"));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.all().contains("tok-9f8e7d6c"), "{}", out.all());
    assert!(out.all().contains("token=***"), "the deny reason is kept, masked: {}", out.all());
}
