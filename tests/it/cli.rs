//! The command line: help, check, plan, graph, init, exit codes, logging and colour.

use crate::support::{Project, assert_valid, confiture, run};

const PIPELINE: &str = r#"
pipeline "shipit" {
    description "a test pipeline"
}
vars { env "dev" }
database "prod" url="postgresql://app:hunter2@db.example.com/shop"
database "scratch" ephemeral=#true
stage "one" uses="build" { env "{{ vars.env }}"; database "scratch"; }
stage "two" uses="build" { env "dev"; database "scratch"; schema-only #true; }
stage "three" uses="build" needs="one" continue-on-error=#true {
    env "dev"
    database "scratch"
    output "out/{{ stages.one.outputs.hash }}.sql"
}
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("confiture.kdl", "environment \"dev\" { database ephemeral=#true; }\n")
        .write("db/schema/a.sql", "CREATE TABLE a (id int);\n")
        .write("pipelines/ship.kdl", PIPELINE);
    p
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let top = run(confiture().arg("--help"));
    assert_eq!(top.code, 0);
    assert!(top.stdout.contains("Examples:") && top.stdout.contains("confiture run pipelines/release.kdl"));
    assert!(top.stdout.contains("130  interrupted"), "long help lists exit codes:\n{}", top.stdout);
    for sub in ["run", "check", "plan", "graph", "init", "build"] {
        let out = run(confiture().args([sub, "--help"]));
        assert_eq!(out.code, 0, "{sub}");
        assert!(out.stdout.contains("Examples:"), "`confiture {sub} --help` has examples:\n{}", out.stdout);
    }
    insta::assert_snapshot!("build_help", run(confiture().args(["build", "--help"])).stdout);
}

#[test]
fn usage_errors_exit_5_not_2() {
    let out = run(confiture().args(["run"]));
    assert_eq!(out.code, 5, "{out:?}");
    let out = run(confiture().args(["check", "x.kdl", "--set", "novalue"]));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("expected KEY=VALUE"), "{}", out.stderr);
    assert_eq!(run(confiture().arg("--version")).code, 0);
}

#[test]
fn check_reports_valid_and_invalid_pipelines() {
    let p = project();
    let ok = p.run(&["check", "pipelines/ship.kdl"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("ok — pipeline `shipit`, 3 stages, 2 databases"), "{}", ok.stdout);

    p.write(
        "pipelines/bad.kdl",
        "pipeline \"bad\"\nstage \"a\" uses=\"biuld\" {}\nstage \"b\" uses=\"build\" needs=\"zz\" { env \"nope\"; }\n",
    );
    let bad = p.run(&["check", "pipelines/bad.kdl"]);
    assert_eq!(bad.code, 5, "{bad:?}");
    assert!(bad.stderr.contains("pipelines/bad.kdl:2:"), "{}", bad.stderr);
    assert!(bad.stderr.contains("did you mean `build`?"), "{}", bad.stderr);
    assert!(bad.stderr.contains("3 problems in pipelines/bad.kdl"), "{}", bad.stderr);

    let json = p.run(&["check", "pipelines/bad.kdl", "--format", "json"]);
    assert_eq!(json.code, 5);
    let v = json.json();
    assert_valid("check.json", &v);
    assert_eq!(v["valid"], false);
    let codes: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["pipeline::unknown-stage-type", "pipeline::unknown-dependency", "pipeline::unknown-environment"]
    );
    assert_eq!(v["diagnostics"][0]["location"]["line"], 2);

    let missing = p.run(&["check", "pipelines/nope.kdl"]);
    assert_eq!(missing.code, 5);
    assert!(missing.stderr.contains("cannot read pipelines/nope.kdl"), "{}", missing.stderr);
}

#[test]
fn plan_shows_waves_and_resolved_settings_without_passwords() {
    let p = project();
    let out = p.run(&["plan", "pipelines/ship.kdl", "--set", "env=dev"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.all().contains("hunter2"), "a password was printed:\n{}", out.stdout);
    assert!(out.stdout.contains("postgresql://app:***@db.example.com/shop"), "{}", out.stdout);
    assert!(out.stdout.contains("wave 1 (concurrently):"), "{}", out.stdout);
    assert!(out.stdout.contains("three (build) after one, continues on error"), "{}", out.stdout);

    let json = p.run(&["plan", "pipelines/ship.kdl", "--format", "json"]);
    let v = json.json();
    assert_valid("plan.json", &v);
    assert_eq!(v["waves"], serde_json::json!([["one", "two"], ["three"]]));
    // A value waiting for a stage output is shown as written.
    assert_eq!(v["stages"][2]["settings"]["output"], "out/{{ stages.one.outputs.hash }}.sql");
    assert_eq!(v["stages"][1]["settings"]["schema_only"], true);
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let p = project();
    let dot = p.run(&["graph", "pipelines/ship.kdl"]);
    assert_eq!(dot.code, 0);
    insta::assert_snapshot!("graph_dot", dot.stdout);
    let mermaid = p.run(&["graph", "pipelines/ship.kdl", "--format", "mermaid"]);
    insta::assert_snapshot!("graph_mermaid", mermaid.stdout);
    let json = p.run(&["graph", "pipelines/ship.kdl", "--format", "json"]).json();
    assert_valid("graph.json", &json);
    assert_eq!(json["edges"], serde_json::json!([{"from": "one", "to": "three"}]));
}

#[test]
fn exit_codes_are_documented() {
    let doc =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/exit-codes.md")).unwrap();
    for code in confiture_engine::ExitCode::ALL {
        let row = format!("| {} |", code.code());
        assert!(doc.contains(&row), "docs/exit-codes.md has no row for {}", code.code());
    }
}

#[test]
fn logging_goes_to_stderr_and_respects_no_color() {
    let p = project();
    let quiet = p.run(&["check", "pipelines/ship.kdl"]);
    assert!(!quiet.stderr.contains("INFO"), "{}", quiet.stderr);

    let mut cmd = p.cmd(&["-vv", "check", "pipelines/nope.kdl"]);
    cmd.env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
    let coloured = run(&mut cmd);
    assert!(coloured.stderr.contains('\u{1b}'), "CLICOLOR_FORCE colours stderr: {:?}", coloured.stderr);
    let mut cmd = p.cmd(&["-vv", "check", "pipelines/nope.kdl"]);
    cmd.env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
    let plain = run(&mut cmd);
    assert!(!plain.stderr.contains('\u{1b}'), "NO_COLOR wins: {:?}", plain.stderr);
}

#[test]
fn init_scaffolds_a_project_whose_pipeline_runs() {
    let p = Project::new();
    let out = p.run(&["init", "shop"]);
    assert_eq!(out.code, 0, "{out:?}");
    for f in [
        "shop/confiture.kdl",
        "shop/pipelines/release.kdl",
        "shop/db/schema/00_common/.gitkeep",
        "shop/db/schema/10_tables/.gitkeep",
        "shop/db/schema/20_views/.gitkeep",
        "shop/db/seeds/common/.gitkeep",
        "shop/db/seeds/development/.gitkeep",
        "shop/db/seeds/test/.gitkeep",
        "shop/db/migrations/.gitkeep",
    ] {
        assert!(p.file(f).is_file(), "{f} missing");
    }
    p.write("shop/db/schema/10_tables/users.sql", "CREATE TABLE users (id bigint PRIMARY KEY);\n");
    // The schema has a table no migration creates: the drift gate stops the release.
    let mut cmd = p.cmd(&["run", "pipelines/release.kdl", "--format", "json"]);
    cmd.current_dir(p.file("shop"));
    let drifted = run(&mut cmd);
    assert_eq!(drifted.code, 7, "{drifted:?}");
    let generate = run(p.cmd(&["migrate", "generate", "--name", "users"]).current_dir(p.file("shop")));
    assert_eq!(generate.code, 0, "{generate:?}");
    let mut cmd = p.cmd(&["run", "pipelines/release.kdl", "--format", "json"]);
    cmd.current_dir(p.file("shop"));
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    let stage = |name: &str| v["stages"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
    let mut linted: Vec<String> =
        serde_json::from_value(stage("lint")["outputs"]["files"].clone()).expect("a list of files");
    linted.sort();
    assert_eq!(linted.len(), 3, "the generated migration pair and the schema file: {linted:?}");
    assert!(linted.contains(&"db/schema/10_tables/users.sql".to_string()), "{linted:?}");
    assert_eq!(stage("drift")["outputs"]["changed"], false);
    assert_eq!(stage("build")["outputs"]["files"], 1);

    let again = p.run(&["init", "shop", "--format", "json"]);
    let v = again.json();
    assert_valid("init.json", &v);
    assert!(v["files"].as_array().unwrap().iter().all(|f| f["created"] == false), "init never overwrites");
}

/// `confiture … | head`: a reader that stops early ends the command quietly, with the status a
/// shell shows for a pipe cut short (141), not a panic.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let mut child = confiture()
        .args(["lint", "--list-rules"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
