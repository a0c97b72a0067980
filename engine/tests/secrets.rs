//! Secrets never reach output: `Debug` of every type that holds a connection string or a value
//! from the environment, and `plan`'s view of hooks and vars.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use confiture_engine::diag::SourceFile;
use confiture_engine::pg::ConnInfo;
use confiture_engine::pipeline::{self, LoadOptions};
use confiture_engine::project::{DatabaseSpec, Project};
use confiture_engine::report::PlanReport;
use confiture_engine::stage::{Outputs, StageError};

const SECRET: &str = "s3cr%t-Hunter2";

#[test]
fn debug_output_never_shows_a_password() {
    let url = "postgresql://app:s3cr%25t-Hunter2@db.example.com/shop";
    let info = ConnInfo::parse(url).unwrap();
    let mut outputs = Outputs::default();
    outputs.set_dsn("url", &info);
    let error = StageError::new(confiture_engine::ExitCode::Failure, "x").with_outputs(outputs.clone());
    let shown = [
        format!("{info:?}"),
        format!("{:?}", DatabaseSpec::Url(url.into())),
        format!("{outputs:?}"),
        format!("{error:?}"),
    ];
    for s in shown {
        assert!(!s.contains(SECRET) && !s.contains("s3cr%25t"), "{s}");
    }
}

#[test]
fn values_from_the_environment_are_masked_in_plan_and_debug() {
    let text = r#"
vars { token "{{ env.API_TOKEN }}" }
database "prod" url="postgresql://app:{{ env.DB_PASSWORD }}@db.example.com/shop" protected=#true
stage "one" uses="echo" { message "{{ env.TARGET_URL }}"; }
hook "notify" on="after-stage" command="curl -H 'Authorization: {{ env.API_TOKEN }}' https://ci.example.com" {
    env "TOKEN" "{{ vars.token }}"
}
"#;
    let env = BTreeMap::from([
        ("API_TOKEN".to_string(), SECRET.to_string()),
        ("DB_PASSWORD".to_string(), SECRET.to_string()),
        ("TARGET_URL".to_string(), format!("postgresql://u:{SECRET}@h/db")),
    ]);
    let opts = LoadOptions { set: Vec::new(), env: Some(env), project: Some(Arc::new(Project::default())) };
    let p = pipeline::load_source(
        SourceFile::new("p.kdl", text),
        Arc::new(Project::default()),
        &support::registry(),
        &opts,
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    // The values themselves are there for the run.
    assert_eq!(p.vars["token"], SECRET);
    let plan = serde_json::to_string(&PlanReport::of(&p)).unwrap();
    assert!(!plan.contains(SECRET), "{plan}");
    assert!(plan.contains("curl -H 'Authorization: ***' https://ci.example.com"), "{plan}");
    assert!(plan.contains(r#""token":"***""#), "{plan}");
    let debug = format!("{p:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    // What the hook prints is masked with the values its settings read from the environment.
    assert_eq!(p.hooks[0].secrets, vec![SECRET.to_string()]);
}
