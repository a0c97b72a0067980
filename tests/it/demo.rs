//! The demo: every example pipeline loads, and the README's first command works.

use std::path::Path;

use crate::support::{assert_valid, confiture, run};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_example_pipeline_checks() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "kdl") && path.file_name().is_some_and(|f| f != "confiture.kdl") {
            let out = run(confiture().current_dir(root()).arg("check").arg(&path));
            assert_eq!(out.code, 0, "{}: {out:?}", path.display());
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn the_demo_release_pipeline_runs() {
    let out = run(confiture().current_dir(root()).args(["run", "pipelines/release.kdl", "--format", "json"]));
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_valid("run-report.json", &v);
    assert_eq!(v["status"], "succeeded");
    let names: Vec<&str> = v["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lint", "build", "rehearse", "apply", "verify", "drift"]);
    // Every stage's outputs are what its type declares: valid against its schema, and every
    // output named by `outputs()` (the schema's properties) present.
    for s in v["stages"].as_array().unwrap() {
        let uses = s["uses"].as_str().unwrap();
        assert_valid(&format!("stages/{uses}.json"), &s["outputs"]);
        let t = confiture_plugins::registry().get(uses).unwrap();
        let mut declared = t.outputs();
        let mut got: Vec<String> = s["outputs"].as_object().unwrap().keys().cloned().collect();
        declared.sort();
        got.sort();
        assert_eq!(got, declared, "stage {} ({uses}): outputs differ from its type's", s["name"]);
    }
    let lint = &v["stages"][0]["outputs"];
    assert_valid("stages/lint.json", lint);
    assert_eq!(lint["counts"]["error"], 0, "the demo's SQL is lint-clean: {lint}");
    assert_eq!(lint["counts"]["warning"], 0, "the demo's SQL is lint-clean: {lint}");
    assert_eq!(lint["files"].as_array().unwrap().len(), 12);
    let build = &v["stages"][1]["outputs"];
    assert_eq!(build["files"], 8);
    assert!(build["statements"].as_u64().unwrap() > 30);
    let apply = &v["stages"][3]["outputs"];
    assert_eq!(apply["counts"]["ran"], 3, "every demo migration applies from an empty database");
    assert_eq!(apply["current"], "20261120000000");
    assert_eq!(v["stages"][4]["status"], "succeeded");
    let drift = &v["stages"][5]["outputs"];
    assert_valid("stages/diff.json", drift);
    assert_eq!(drift["changed"], false, "the migrations produce exactly db/schema: {drift}");
    let hooks = v["hooks"].as_array().expect("the policy hook ran");
    assert_eq!(hooks.len(), 3, "once per migration applied: {hooks:?}");
    assert!(hooks.iter().all(|h| h["hook"] == "protect-customer-data" && h["outcome"] == "allowed"), "{hooks:?}");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme.split("```sh").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> =
        block.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    assert_eq!(commands.len(), 2, "the README starts with two commands: {commands:?}");
    assert!(commands[0].contains("run pipelines/release.kdl"), "{commands:?}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim().starts_with(commands[1])), ".ci/run must run `{}`", commands[1]);
}
