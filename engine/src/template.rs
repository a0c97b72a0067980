//! Templating of pipeline and project values with minijinja.
//!
//! Every string value in a `.kdl` file may contain `{{ … }}`. The context has `env` (the process
//! environment), `vars` (the pipeline's `vars { }` block, overridden by `--set key=value`),
//! `pipeline.name`, and `stages.NAME.outputs.KEY` (outputs of stages that already ran). Undefined
//! values are errors (strict mode), except through `default(…)` or `is defined`.
//!
//! A value that refers to `stages` cannot be rendered when the file is loaded; it is *deferred* and
//! rendered right before the stage that uses it runs. It is still rendered once at load time with
//! placeholders, so a typo in `env.X` inside it is found by `confiture check`.
//!
//! Values read from the environment may be secrets. Every template is also rendered for display
//! with each environment variable standing in as `***` (and each var as it displays): that is what
//! `plan`, reports and error messages show.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use minijinja::{Environment, UndefinedBehavior, Value};

/// A reference from a template to an output of another stage: `stages.STAGE.outputs.OUTPUT`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageRef {
    pub stage: String,
    /// `None` when the template goes through `stages.STAGE` in a way we cannot follow statically.
    pub output: Option<String>,
}

/// Why a template could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    pub message: String,
    /// The byte range in the template text that failed, when minijinja knows it.
    pub range: Option<Range<usize>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateErrorKind {
    Syntax,
    /// An undefined variable; carries the expression, e.g. `env.DATABASE_URL`.
    Undefined(String),
    Other,
}

impl TemplateError {
    /// A one-line help for this error.
    pub fn help(&self) -> String {
        match &self.kind {
            TemplateErrorKind::Syntax => {
                "templates use minijinja syntax, e.g. `{{ env.DATABASE_URL }}` or `{{ vars.name | default(\"x\") }}`"
                    .into()
            }
            TemplateErrorKind::Undefined(expr) => undefined_help(expr),
            TemplateErrorKind::Other => "check the expression between `{{` and `}}`".into(),
        }
    }
}

fn undefined_help(expr: &str) -> String {
    let mut parts = expr.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some("env"), Some(name)) => {
            format!("set the environment variable {name}, or give a fallback: `{{{{ env.{name} | default(\"…\") }}}}`")
        }
        (Some("vars"), Some(name)) => {
            format!("declare `{name}` in the `vars {{ }}` block or pass `--set {name}=VALUE`")
        }
        (Some("stages"), _) => {
            "stage outputs are written `stages.STAGE.outputs.NAME`; see `confiture plan` for each stage's outputs"
                .into()
        }
        _ => "the template context has `env`, `vars`, `pipeline` and `stages`".into(),
    }
}

/// The result of looking at a template without rendering it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Whether the string contains template syntax at all.
    pub is_template: bool,
    pub stage_refs: Vec<StageRef>,
}

impl Analysis {
    /// A deferred template must wait for stage outputs.
    pub fn is_deferred(&self) -> bool {
        !self.stage_refs.is_empty()
    }
}

/// A renderer with a fixed base context (`env`, `vars`, `pipeline`).
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    base: BTreeMap<String, Value>,
    /// The same context with every environment variable's value replaced by `***`.
    masked: BTreeMap<String, Value>,
}

/// What an environment variable's value looks like in displayed renderings.
pub const MASK: &str = "***";

impl Templates {
    /// A renderer whose context holds the process environment only.
    pub fn from_process_env() -> Self {
        Templates::new(std::env::vars().collect(), BTreeMap::new(), None)
    }

    pub fn new(env_vars: BTreeMap<String, String>, vars: BTreeMap<String, String>, pipeline: Option<&str>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Nothing we render is HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let mut base = BTreeMap::new();
        base.insert("env".to_string(), to_value(&env_vars));
        base.insert("vars".to_string(), to_value(&vars));
        if let Some(name) = pipeline {
            base.insert("pipeline".to_string(), to_value(BTreeMap::from([("name", name)])));
        }
        let mut masked = base.clone();
        let masked_env: BTreeMap<&String, &str> = env_vars.keys().map(|k| (k, MASK)).collect();
        masked.insert("env".to_string(), to_value(&masked_env));
        Templates { env, base, masked }
    }

    /// Replace the `vars` of the context (used while the `vars` block itself is rendered), with
    /// how each is displayed (`***` where it came from the environment).
    pub fn set_vars(&mut self, vars: &BTreeMap<String, String>, shown: &BTreeMap<String, String>) {
        self.base.insert("vars".to_string(), to_value(vars));
        self.masked.insert("vars".to_string(), to_value(shown));
    }

    /// Render `raw` for display: environment variables read as `***`. `None` when that is the same
    /// as the real rendering (nothing secret in it) or when it cannot be rendered.
    pub fn render_shown(&self, raw: &str, stages: Option<&Value>) -> Option<String> {
        if !looks_like_template(raw) {
            return None;
        }
        let mut ctx = self.masked.clone();
        if let Some(stages) = stages {
            ctx.insert("stages".to_string(), stages.clone());
        }
        let shown = self.env.render_str(raw, to_value(&ctx)).ok()?;
        let real = self.render(raw, stages).ok()?;
        (shown != real).then_some(shown)
    }

    /// Whether `raw` is a template, and which stage outputs it needs.
    pub fn analyze(&self, raw: &str) -> Result<Analysis, TemplateError> {
        if !looks_like_template(raw) {
            return Ok(Analysis::default());
        }
        let template = self.env.template_from_str(raw).map_err(convert_error)?;
        let mut refs = BTreeSet::new();
        for var in template.undeclared_variables(true) {
            let mut parts = var.split('.');
            if parts.next() != Some("stages") {
                continue;
            }
            match (parts.next(), parts.next(), parts.next()) {
                (Some(stage), Some("outputs"), output) => {
                    refs.insert(StageRef { stage: stage.into(), output: output.map(Into::into) });
                }
                (Some(stage), _, _) => {
                    refs.insert(StageRef { stage: stage.into(), output: None });
                }
                (None, _, _) => {
                    refs.insert(StageRef { stage: String::new(), output: None });
                }
            }
        }
        Ok(Analysis { is_template: true, stage_refs: refs.into_iter().collect() })
    }

    /// Render `raw` with the base context plus `stages` (a map of stage name → `{outputs: {…}}`).
    pub fn render(&self, raw: &str, stages: Option<&Value>) -> Result<String, TemplateError> {
        if !looks_like_template(raw) {
            return Ok(raw.to_string());
        }
        let mut ctx = self.base.clone();
        if let Some(stages) = stages {
            ctx.insert("stages".to_string(), stages.clone());
        }
        self.env.render_str(raw, to_value(&ctx)).map_err(convert_error_in(raw))
    }

    /// Render with placeholder values standing in for the stage outputs `refs` names, to find
    /// problems in the rest of a deferred template before anything runs.
    pub fn render_with_placeholders(&self, raw: &str, refs: &[StageRef]) -> Result<String, TemplateError> {
        let mut stages: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, String>>> = BTreeMap::new();
        for r in refs {
            let outputs = stages.entry(&r.stage).or_default().entry("outputs").or_default();
            if let Some(output) = &r.output {
                outputs.insert(output, format!("<stages.{}.outputs.{output}>", r.stage));
            }
        }
        self.render(raw, Some(&to_value(&stages)))
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

fn looks_like_template(raw: &str) -> bool {
    raw.contains("{{") || raw.contains("{%") || raw.contains("{#")
}

fn convert_error(err: minijinja::Error) -> TemplateError {
    let kind = match err.kind() {
        minijinja::ErrorKind::SyntaxError => TemplateErrorKind::Syntax,
        minijinja::ErrorKind::UndefinedError => TemplateErrorKind::Undefined(String::new()),
        _ => TemplateErrorKind::Other,
    };
    let message = err.detail().map(str::to_string).unwrap_or_else(|| err.kind().to_string());
    TemplateError { kind, message, range: err.range() }
}

fn convert_error_in(raw: &str) -> impl Fn(minijinja::Error) -> TemplateError + '_ {
    move |err| {
        let mut e = convert_error(err);
        if let TemplateErrorKind::Undefined(expr) = &mut e.kind {
            if let Some(text) = e.range.clone().and_then(|r| raw.get(r)) {
                *expr = text.trim().to_string();
                e.message = format!("undefined value `{}`", expr);
            } else {
                e.message = "undefined value".into();
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        Templates::new(
            BTreeMap::from([("HOME".to_string(), "/home/me".to_string())]),
            BTreeMap::from([("region".to_string(), "eu".to_string())]),
            Some("release"),
        )
    }

    #[test]
    fn renders_and_reports() {
        let t = templates();
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("{{ env.HOME }}/x", Ok("/home/me/x")),
            ("{{ vars.region }}-{{ pipeline.name }}", Ok("eu-release")),
            ("{{ env.NOPE | default('fallback') }}", Ok("fallback")),
            ("{{ env.NOPE }}", Err("undefined value `env.NOPE`")),
            ("{{ vars.nope }}", Err("undefined value `vars.nope`")),
            ("{{ oops", Err("syntax")),
        ];
        for (raw, expected) in cases {
            let got = t.render(raw, None);
            match (expected, got) {
                (Ok(want), Ok(got)) => assert_eq!(&got, want, "{raw}"),
                (Err(want), Err(got)) => {
                    let text = format!("{:?} {}", got.kind, got.message).to_lowercase();
                    assert!(text.contains(&want.to_lowercase()), "{raw}: {text}")
                }
                (want, got) => panic!("{raw}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn finds_stage_references() {
        let t = templates();
        let a = t.analyze("{{ stages.build.outputs.database }} {{ env.HOME }}").unwrap();
        assert_eq!(a.stage_refs, vec![StageRef { stage: "build".into(), output: Some("database".into()) }]);
        assert!(a.is_deferred());
        assert!(!t.analyze("{{ env.HOME }}").unwrap().is_deferred());
        let rendered = t.render_with_placeholders("db={{ stages.build.outputs.database }}", &a.stage_refs).unwrap();
        assert_eq!(rendered, "db=<stages.build.outputs.database>");
        let err = t.render_with_placeholders("{{ stages.build.outputs.database }}{{ env.NOPE }}", &a.stage_refs);
        assert!(matches!(err.unwrap_err().kind, TemplateErrorKind::Undefined(_)));
    }
}
