//! The worked example of docs/ARCHITECTURE.md, "Adding a stage": docs/examples/analyze.rs is a
//! whole stage (its adapter file and nothing else), registered beside the built-in ones with one
//! line, and it works end to end against a real PostgreSQL — settings decoded, `run --help`'s
//! list, its outputs derived from its typed struct, its own event with a hook on it.

#[path = "../../../docs/examples/analyze.rs"]
mod analyze;

use std::collections::BTreeMap;
use std::sync::Arc;

use confiture_engine::diag::SourceFile;
use confiture_engine::pg::testing::TestDb;
use confiture_engine::pipeline::{self, LoadOptions};
use confiture_engine::project::Project;
use confiture_engine::report::StageStatus;
use confiture_engine::run::{self, RunOptions};
use confiture_engine::stage::{Registry, StageType};

#[tokio::test]
async fn a_stage_is_one_file_and_one_registry_line() {
    // The one registry line: the built-in stages and the new one.
    let types: Vec<&'static dyn StageType> =
        confiture_plugins::STAGES.iter().copied().chain([&analyze::Analyze as &dyn StageType]).collect();
    let registry = Registry::new(&types);
    assert_eq!(analyze::Analyze.outputs(), ["ms"], "outputs come from the typed struct");

    let db = TestDb::new("adding_a_stage").await;
    let session = db.connect().await;
    session
        .client()
        .batch_execute(
            "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500);
             CREATE TABLE seen (event text)",
        )
        .await
        .unwrap();
    let text = format!(
        r#"pipeline "stats"
database "staging" url="{url}"
stage "stats" uses="analyze" {{ database "staging"; }}
hook "record" on="analyzed" database="staging" sql="INSERT INTO seen VALUES ('analyzed')"
"#,
        url = db.info.to_secret_string()
    );
    let options =
        LoadOptions { set: Vec::new(), env: Some(BTreeMap::new()), project: Some(Arc::new(Project::default())) };
    let pipeline =
        pipeline::load_source(SourceFile::new("stats.kdl", text), Arc::new(Project::default()), &registry, &options)
            .unwrap_or_else(|d| panic!("{d:?}"));
    let databases = Arc::new(pipeline.runtime_databases());
    let report = run::execute(&pipeline, databases, &RunOptions::default()).await;
    let stage = &report.stages[0];
    assert_eq!(stage.status, StageStatus::Succeeded, "{:?}", stage.error);
    assert!(stage.outputs.contains_key("ms"), "{:?}", stage.outputs);
    assert_eq!(report.hooks.len(), 1, "the hook on the stage's own event ran: {:?}", report.hooks);

    // It did its work: the table has statistics now, and the hook saw the event.
    let tuples: f32 =
        session.client().query_one("SELECT reltuples FROM pg_class WHERE relname = 't'", &[]).await.unwrap().get(0);
    assert_eq!(tuples, 500.0);
    let seen: i64 = session.client().query_one("SELECT count(*) FROM seen", &[]).await.unwrap().get(0);
    assert_eq!(seen, 1);
}
