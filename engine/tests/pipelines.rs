//! The pipeline language: every problem reported at once (snapshots of the rendered diagnostics),
//! and the executor's ordering, concurrency, failure and cancellation behaviour.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use confiture_engine::diag::{Diagnostics, SourceFile};
use confiture_engine::pipeline::{self, LoadOptions, Pipeline};
use confiture_engine::project::Project;
use confiture_engine::report::{RunReport, RunStatus, StageStatus};
use confiture_engine::resources::Databases;
use confiture_engine::run::{RunOptions, execute};

fn options() -> LoadOptions {
    LoadOptions {
        set: Vec::new(),
        env: Some(BTreeMap::from([("HOME".to_string(), "/home/test".to_string())])),
        project: Some(Arc::new(Project::default())),
    }
}

fn load_text(name: &str, text: &str) -> Result<Pipeline, Diagnostics> {
    load_with(name, text, &options())
}

fn load_with(name: &str, text: &str, opts: &LoadOptions) -> Result<Pipeline, Diagnostics> {
    pipeline::load_source(SourceFile::new(name, text), Arc::new(Project::default()), &support::registry(), opts)
}

fn render(d: &Diagnostics) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    confiture_engine::diag::render_all(d, &handler)
}

#[test]
fn invalid_pipelines_report_every_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipelines/invalid");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(paths.len() >= 10, "expected the invalid pipeline corpus");
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let err = match load_text(&name, &text) {
            Ok(_) => panic!("{name} should not load"),
            Err(d) => d,
        };
        // Each file states the codes it must produce in its first line: `// expect: a b c`.
        let expected: Vec<&str> =
            text.lines().next().unwrap().trim_start_matches("// expect:").split_whitespace().collect();
        let got: Vec<String> = err.iter().map(|d| d.code.to_string()).collect();
        assert_eq!(got, expected, "{name}: codes differ");
        assert!(err.iter().all(|d| d.help.is_some()), "{name}: every diagnostic has a help line");
        insta::assert_snapshot!(name.trim_end_matches(".kdl"), render(&err));
    }
}

#[test]
fn set_skips_rendering_the_value_it_replaces() {
    let text = "pipeline \"t\"\nvars { url \"{{ env.SURELY_UNSET_VARIABLE_X }}\" }\nstage \"a\" uses=\"echo\" { message \"{{ vars.url }}\"; }\n";
    assert!(load_text("t.kdl", text).is_err(), "without --set the undefined env var is an error");
    let mut opts = options();
    opts.set = vec![("url".into(), "given".into())];
    let p = load_with("t.kdl", text, &opts).unwrap();
    assert_eq!(p.stages[0].stage.settings()["message"], "given");
}

#[test]
fn diagnostics_serialize_with_locations() {
    let err = load_text("p.kdl", "pipeline \"p\"\nstage \"a\" uses=\"nope\"\n").unwrap_err();
    let json = serde_json::to_value(err.iter().map(|d| d.to_json()).collect::<Vec<_>>()).unwrap();
    assert_eq!(json[0]["code"], "pipeline::unknown-stage-type");
    assert_eq!(json[0]["location"]["file"], "p.kdl");
    assert_eq!(json[0]["location"]["line"], 2);
    assert_eq!(json[0]["location"]["column"], 11);
}

#[test]
fn templates_use_env_vars_and_set() {
    let text = r#"
pipeline "t"
vars { who "world"; greeting "hello {{ vars.who }}" }
stage "a" uses="echo" { message "{{ vars.greeting }} from {{ env.HOME }} in {{ pipeline.name }}" }
"#;
    let mut opts = options();
    opts.set = vec![("who".into(), "you".into())];
    let p = load_with("t.kdl", text, &opts).unwrap();
    // --set overrides a var before the block is rendered: vars built from it see the new value.
    assert_eq!(p.vars["who"], "you");
    // What runs sees the environment; what is shown (plan) has `***` for it.
    assert_eq!(p.stages[0].stage.settings()["message"], "hello you from *** in t");
    let report = run(&p, 1);
    assert_eq!(report.stages[0].outputs["message"], "hello you from /home/test in t");
}

fn run(p: &Pipeline, jobs: usize) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let databases = Arc::new(Databases::new(p.database_specs()));
        execute(p, databases, &RunOptions { jobs, ..RunOptions::default() }).await
    })
}

fn times(r: &RunReport, name: &str) -> (std::time::SystemTime, std::time::SystemTime) {
    let s = r.stages.iter().find(|s| s.name == name).unwrap();
    let parse = |t: &Option<String>| humantime::parse_rfc3339(t.as_deref().unwrap()).unwrap();
    (parse(&s.started_at), parse(&s.finished_at))
}

#[test]
fn independent_stages_overlap_and_dependents_wait() {
    let p = load_text(
        "dag.kdl",
        r#"
pipeline "dag"
stage "a" uses="sleep" { ms 300; }
stage "b" uses="sleep" { ms 300; }
stage "c" uses="echo" needs="a" { message "after a: {{ stages.a.outputs.slept_ms }}" }
stage "d" uses="sleep" { ms 10; needs "b" "c"; }
"#,
    )
    .unwrap();
    let r = run(&p, 4);
    assert_eq!(r.status, RunStatus::Succeeded, "{r:#?}");
    let (a0, a1) = times(&r, "a");
    let (b0, b1) = times(&r, "b");
    let (c0, _) = times(&r, "c");
    let (d0, _) = times(&r, "d");
    // a and b have no path between them: their intervals overlap.
    assert!(a0 < b1 && b0 < a1, "a {a0:?}..{a1:?} and b {b0:?}..{b1:?} should overlap");
    // c needs a, d needs b and c: each starts after what it needs has finished.
    assert!(c0 >= a1, "c started before a finished");
    assert!(d0 >= b1, "d started before b finished");
    assert_eq!(r.stages[2].outputs["message"], "after a: 300");
}

#[test]
fn jobs_one_runs_stages_one_at_a_time() {
    let p = load_text(
        "serial.kdl",
        "pipeline \"s\"\nstage \"a\" uses=\"sleep\" { ms 100; }\nstage \"b\" uses=\"sleep\" { ms 100; }\n",
    )
    .unwrap();
    let r = run(&p, 1);
    let (a0, a1) = times(&r, "a");
    let (b0, b1) = times(&r, "b");
    assert!(b0 >= a1 || a0 >= b1, "with --jobs 1 the stages must not overlap");
}

#[test]
fn failure_cancels_running_stages_and_skips_the_rest() {
    let p = load_text(
        "fail.kdl",
        r#"
pipeline "f"
stage "boom" uses="sleep" { ms 50; fail #true; }
stage "slow" uses="sleep" { ms 10000; }
stage "after" uses="sleep" needs="boom" { ms 1; }
"#,
    )
    .unwrap();
    let r = run(&p, 4);
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.exit_code, 4, "the failing stage's exit code is the run's");
    let status: Vec<StageStatus> = r.stages.iter().map(|s| s.status).collect();
    assert_eq!(status, vec![StageStatus::Failed, StageStatus::Cancelled, StageStatus::Skipped]);
    assert_eq!(r.stages[2].skipped_because.as_deref(), Some("stage `boom` failed"));
}

#[test]
fn continue_on_error_lets_dependents_run() {
    let p = load_text(
        "coe.kdl",
        r#"
pipeline "c"
stage "flaky" uses="sleep" continue-on-error=#true { ms 1; fail #true; }
stage "after" uses="sleep" needs="flaky" { ms 1; }
"#,
    )
    .unwrap();
    let r = run(&p, 2);
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.stages[0].status, StageStatus::Failed);
    assert_eq!(r.stages[1].status, StageStatus::Succeeded);
}

#[test]
fn cancellation_stops_running_stages() {
    let p = load_text("cancel.kdl", "pipeline \"c\"\nstage \"long\" uses=\"sleep\" { ms 60000; }\n").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let r = rt.block_on(async {
        let options = RunOptions::default();
        let cancel = options.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            cancel.cancel();
        });
        execute(&p, Arc::new(Databases::new(BTreeMap::new())), &options).await
    });
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.exit_code, 130);
    assert_eq!(r.stages[0].status, StageStatus::Cancelled);
}

#[test]
fn run_report_schema_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    for (file, schema) in confiture_engine::report::schemas() {
        let path = dir.join(file);
        let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if std::env::var_os("CONFITURE_UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            have, want,
            "schemas/{file} is stale: run `CONFITURE_UPDATE_SCHEMAS=1 cargo test -p confiture-engine`"
        );
    }
}

#[test]
fn reports_validate_against_their_schema() {
    let p = load_text("ok.kdl", "pipeline \"ok\"\nstage \"a\" uses=\"echo\" { message \"hi\"; }\n").unwrap();
    let report = serde_json::to_value(run(&p, 1)).unwrap();
    let schema = serde_json::to_value(schemars::schema_for!(RunReport)).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
