//! KDL text → a typed, validated [`Pipeline`], with every problem reported at once.
//!
//! ```kdl
//! pipeline "release"
//! vars { region "eu" }
//! database "prod" url="{{ env.PROD_DATABASE_URL }}"
//! database "scratch" ephemeral=#true
//! stage "build" uses="build" { env "test"; database "scratch" }
//! stage "check" uses="build" needs="build" continue-on-error=#true { … }
//! hook "policy" on="before-migration" wasm="plugins/policy.wasm"
//! ```
//! See docs/pipelines.md for the language and the diagnostic codes.

mod plan;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use miette::SourceSpan;

use crate::dag::Dag;
use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::hooks::{HookDecl, decode_hook};
use crate::kdl::decode::{self, Fields};
use crate::kdl::node::{self, Node, Text, Value};
use crate::project::{self, DatabaseSpec, Project};
use crate::stage::{ConfigureCx, Registry, Stage};
use crate::template::Templates;

/// Properties of a `stage` node that the engine handles; the rest belongs to the stage type.
const ENGINE_PROPS: &[&str] = &["uses", "needs", "continue-on-error"];

/// A loaded, validated pipeline whose stages are configured and ready to run.
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    /// The file it came from (or a synthetic name for one-stage command pipelines).
    pub source: SourceFile,
    pub project: Arc<Project>,
    pub vars: BTreeMap<String, String>,
    /// The vars as displayed: values that came from the environment as `***`.
    pub vars_shown: BTreeMap<String, String>,
    pub databases: Vec<DatabaseDecl>,
    pub stages: Vec<StageDecl>,
    pub hooks: Vec<HookDecl>,
    pub dag: Dag,
    pub(crate) templates: Arc<Templates>,
}

/// `database NAME url=… | ephemeral=#true [protected=#true]`.
#[derive(Clone, Debug)]
pub struct DatabaseDecl {
    pub name: String,
    pub spec: DatabaseSpec,
    /// Commands that drop, truncate or rewrite data refuse it.
    pub protected: bool,
    pub span: SourceSpan,
}

/// `stage NAME uses=TYPE needs=… { … }`.
#[derive(Clone)]
pub struct StageDecl {
    pub name: String,
    pub uses: String,
    pub needs: Vec<String>,
    pub continue_on_error: bool,
    pub stage: Arc<dyn Stage>,
    pub span: SourceSpan,
}

/// Inputs to loading besides the file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--set key=value`: overrides or adds `vars`.
    pub set: Vec<(String, String)>,
    /// The environment for `{{ env.X }}`; `None` means the process environment.
    pub env: Option<BTreeMap<String, String>>,
    /// The project; `None` means discover it from the pipeline file's directory upward.
    pub project: Option<Arc<Project>>,
}

/// Load a pipeline file.
pub fn load(path: &Path, registry: &Registry, options: &LoadOptions) -> Result<Pipeline, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error("pipeline::unreadable", (0..0).into(), format!("cannot read {}: {e}", path.display()))
                .with_help("pass the path of a .kdl pipeline file, e.g. `pipelines/release.kdl`"),
        )
    })?;
    let project = match &options.project {
        Some(p) => p.clone(),
        None => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Arc::new(Project::discover(dir)?)
        }
    };
    let source = SourceFile::new(project::display_path(path), text);
    load_source(source, project, registry, options)
}

/// Load a pipeline from text (the source's name is used in diagnostics).
pub fn load_source(
    source: SourceFile,
    project: Arc<Project>,
    registry: &Registry,
    options: &LoadOptions,
) -> Result<Pipeline, Diagnostics> {
    let mut d = Diagnostics::default();
    let result = load_inner(&source, project, registry, options, &mut d);
    match result {
        Some(p) if !d.has_errors() => Ok(p),
        _ => Err(d.finish(&source)),
    }
}

/// Build a pipeline from nodes made in code (the one-stage pipelines of `confiture build` etc.).
pub fn from_nodes(
    name: &str,
    nodes: Vec<Node>,
    project: Arc<Project>,
    registry: &Registry,
) -> Result<Pipeline, Diagnostics> {
    let source = SourceFile::new(format!("<{name}>"), "");
    let mut d = Diagnostics::default();
    let templates = Templates::from_process_env();
    let result = assemble(&source, nodes, templates, (BTreeMap::new(), BTreeMap::new()), project, registry, &mut d);
    match result {
        Some(p) if !d.has_errors() => Ok(p),
        _ => Err(d.finish(&source)),
    }
}

fn load_inner(
    source: &SourceFile,
    project: Arc<Project>,
    registry: &Registry,
    options: &LoadOptions,
    d: &mut Diagnostics,
) -> Option<Pipeline> {
    let doc = match kdl::KdlDocument::parse_v2(&source.text) {
        Ok(doc) => doc,
        Err(_) => {
            // Report through the shared converter so syntax errors look the same everywhere.
            let templates = Templates::from_process_env();
            node::parse(source, &templates, d);
            return None;
        }
    };
    let env = options.env.clone().unwrap_or_else(|| std::env::vars().collect());

    // Pass 1: the pipeline's name and its vars, templated with env (and earlier vars) only.
    // `--set` values come first, so vars defined from other vars see them, and a var that is set
    // on the command line is not rendered from the file at all.
    let mut vars: BTreeMap<String, String> = options.set.iter().cloned().collect();
    let mut vars_shown = vars.clone();
    let mut templates = Templates::new(env.clone(), vars.clone(), None);
    let mut pipeline_name: Option<String> = None;
    for kdl_node in doc.nodes() {
        match kdl_node.name().value() {
            "vars" => {
                let children = kdl_node.children().map(|c| c.nodes()).unwrap_or(&[]);
                for child in children.iter().filter(|c| !options.set.iter().any(|(k, _)| k == c.name().value())) {
                    let var = node::convert_node(child, source, &templates, d);
                    if let Some((value, shown)) = decode_var(&var, d) {
                        vars.insert(var.name.clone(), value);
                        vars_shown.insert(var.name.clone(), shown);
                        templates.set_vars(&vars, &vars_shown);
                    }
                }
            }
            "pipeline" => {
                if let Some(first) = kdl_node.entries().iter().find(|e| e.name().is_none()) {
                    pipeline_name = first.value().as_string().map(str::to_string);
                }
            }
            _ => {}
        }
    }
    let name = pipeline_name.unwrap_or_else(|| {
        Path::new(&source.name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into())
    });
    let mut templates = Templates::new(env, vars.clone(), Some(&name));
    templates.set_vars(&vars, &vars_shown);

    // Pass 2: everything else, templated with env, vars and pipeline.
    let nodes = doc
        .nodes()
        .iter()
        .filter(|n| n.name().value() != "vars")
        .map(|n| node::convert_node(n, source, &templates, d))
        .collect();
    assemble(source, nodes, templates, (vars, vars_shown), project, registry, d)
}

/// A var's value, and how it is displayed (`***` where it came from the environment).
fn decode_var(n: &Node, d: &mut Diagnostics) -> Option<(String, String)> {
    let entry = decode::single_value(n, d)?;
    let value = match &entry.value {
        Value::Text(t) => {
            let value = decode::static_text(entry, d).unwrap_or_else(|| t.raw.clone());
            let shown = t.shown.clone().unwrap_or_else(|| value.clone());
            return Some((value, shown));
        }
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
    };
    Some((value.clone(), value))
}

struct RawStage<'a> {
    node: &'a Node,
    name: String,
    name_span: SourceSpan,
    uses: Option<(String, SourceSpan)>,
    needs: Vec<(String, SourceSpan)>,
    continue_on_error: bool,
}

fn assemble(
    source: &SourceFile,
    nodes: Vec<Node>,
    templates: Templates,
    (vars, vars_shown): (BTreeMap<String, String>, BTreeMap<String, String>),
    project: Arc<Project>,
    registry: &Registry,
    d: &mut Diagnostics,
) -> Option<Pipeline> {
    let mut name = None;
    let mut description = None;
    let mut databases: Vec<DatabaseDecl> = Vec::new();
    let mut raw_stages: Vec<RawStage<'_>> = Vec::new();
    let mut hook_nodes = Vec::new();
    for n in &nodes {
        match n.name.as_str() {
            "pipeline" => {
                if name.is_some() {
                    d.push(
                        Diagnostic::error("pipeline::duplicate-node", n.name_span, "`pipeline` is given twice")
                            .with_label("again here")
                            .with_help("a file holds one pipeline"),
                    );
                }
                let mut f = Fields::new(n, "`pipeline`");
                name = f.required_arg(0, "the pipeline's name", d).and_then(|e| decode::static_text(e, d));
                description = f.child_value("description", d).and_then(|e| decode::static_text(e, d));
                f.finish(d);
            }
            "vars" => {}
            "database" => {
                if let Some(db) = decode_database(n, d) {
                    if let Some(prev) = databases.iter().find(|p| p.name == db.name) {
                        d.push(duplicate("database", &db.name, db.span, prev.span));
                    } else {
                        databases.push(db);
                    }
                }
            }
            "stage" => {
                if let Some(raw) = decode_stage_header(n, d) {
                    if let Some(prev) = raw_stages.iter().find(|p| p.name == raw.name) {
                        d.push(duplicate("stage", &raw.name, raw.name_span, prev.name_span));
                    } else {
                        raw_stages.push(raw);
                    }
                }
            }
            "hook" => hook_nodes.push(n),
            other => d.push(
                Diagnostic::error("pipeline::unknown-node", n.name_span, format!("unknown node `{other}`"))
                    .with_label("not a pipeline node")
                    .with_help(decode::one_of(
                        "top-level nodes",
                        &["pipeline", "vars", "database", "stage", "hook"],
                        other,
                    )),
            ),
        }
    }
    let name = name.unwrap_or_else(|| {
        Path::new(&source.name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into())
    });

    // The graph.
    let index: HashMap<&str, usize> = raw_stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let stage_names: Vec<&str> = raw_stages.iter().map(|s| s.name.as_str()).collect();
    let mut needs_idx = vec![Vec::new(); raw_stages.len()];
    for (i, s) in raw_stages.iter().enumerate() {
        for (dep, span) in &s.needs {
            match index.get(dep.as_str()) {
                Some(&j) => needs_idx[i].push(j),
                None => d.push(
                    Diagnostic::error(
                        "pipeline::unknown-dependency",
                        *span,
                        format!("stage `{}` needs `{dep}`, which does not exist", s.name),
                    )
                    .with_label("no such stage")
                    .with_help(decode::one_of("known stages", &stage_names, dep)),
                ),
            }
        }
    }
    let dag = Dag::new(&needs_idx);
    for cycle in dag.cycles() {
        let names: Vec<&str> = cycle.iter().map(|&i| raw_stages[i].name.as_str()).collect();
        let first = &raw_stages[cycle[0]];
        let span = first.needs.first().map_or(first.name_span, |(_, s)| *s);
        let message = if names.len() == 1 {
            format!("stage `{}` needs itself", names[0])
        } else {
            format!(
                "dependency cycle between stages {}",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )
        };
        d.push(
            Diagnostic::error("pipeline::cycle", span, message)
                .with_label("part of the cycle")
                .with_help("remove one of the `needs` on the cycle so the stages can run in an order"),
        );
    }

    // Defaults in confiture.kdl must name stage types.
    d.extend(project.check_defaults(&registry.names()));

    // Configure each stage.
    let database_names: Vec<String> = databases.iter().map(|db| db.name.clone()).collect();
    let mut stages = Vec::new();
    for (i, raw) in raw_stages.iter().enumerate() {
        let Some((uses, uses_span)) = &raw.uses else { continue };
        let Some(stage_type) = registry.get(uses) else {
            d.push(
                Diagnostic::error("pipeline::unknown-stage-type", *uses_span, format!("unknown stage type `{uses}`"))
                    .with_label("not a stage type")
                    .with_help(decode::one_of("known stage types", &registry.names(), uses)),
            );
            continue;
        };
        check_stage_refs(raw.node, i, &raw_stages, &dag, registry, d);
        let body = stage_body(raw.node);
        let cx = ConfigureCx { stage: &raw.name, project: &project, databases: &database_names };
        if let Some(stage) = stage_type.configure(&body, &cx, d) {
            stages.push(StageDecl {
                name: raw.name.clone(),
                uses: uses.clone(),
                needs: raw.needs.iter().map(|(n, _)| n.clone()).collect(),
                continue_on_error: raw.continue_on_error,
                stage,
                span: raw.node.span,
            });
        }
    }

    // Hooks attach to the engine's events and to those the stage types declare.
    let mut events: Vec<&str> = crate::event::ENGINE_EVENTS.iter().map(|e| e.name()).collect();
    for t in registry.iter() {
        events.extend(t.events().iter().map(|e| e.name()).filter(|e| !events.contains(e)).collect::<Vec<_>>());
    }
    let mut hooks: Vec<HookDecl> = Vec::new();
    let mut hook_spans: HashMap<String, SourceSpan> = HashMap::new();
    for n in &hook_nodes {
        let Some(hook) = decode_hook(n, &events, &stage_names, &database_names, d) else { continue };
        let span = n.args.first().map_or(n.name_span, |a| a.span);
        if let Some(prev) = hook_spans.insert(hook.name.clone(), span) {
            d.push(duplicate("hook", &hook.name, span, prev));
        }
        hooks.push(hook);
    }

    if d.has_errors() || stages.len() != raw_stages.len() {
        return None;
    }
    Some(Pipeline {
        name,
        description,
        source: source.clone(),
        project,
        vars,
        vars_shown,
        databases,
        stages,
        hooks,
        dag,
        templates: Arc::new(templates),
    })
}

fn duplicate(what: &str, name: &str, span: SourceSpan, first: SourceSpan) -> Diagnostic {
    Diagnostic::error("pipeline::duplicate-name", span, format!("{what} `{name}` is declared twice"))
        .with_label("declared again here")
        .with_also(first, "first declared here")
        .with_help(format!("give each {what} a distinct name"))
}

fn decode_database(n: &Node, d: &mut Diagnostics) -> Option<DatabaseDecl> {
    let name_entry = n.args.first();
    let name = match name_entry {
        Some(e) => decode::static_text(e, d),
        None => {
            d.push(
                Diagnostic::error("pipeline::missing-argument", n.name_span, "`database` needs a name")
                    .with_label("unnamed database")
                    .with_help("e.g. `database \"prod\" url=\"{{ env.PROD_DATABASE_URL }}\"`"),
            );
            None
        }
    };
    // The rest of the node is the same as an environment's `database`, plus `protected`.
    let mut spec_node = n.clone();
    if !spec_node.args.is_empty() {
        spec_node.args.remove(0);
    }
    let protected = match spec_node.props.iter().position(|p| p.key == "protected") {
        Some(i) => decode::boolean(&spec_node.props.remove(i).value, d).unwrap_or(false),
        None => false,
    };
    let spec = project::decode_database_spec(&spec_node, d)?;
    if let DatabaseSpec::Url(url) = &spec
        && let Err(e) = crate::pg::ConnInfo::parse(url)
    {
        let span = n.props.iter().find(|p| p.key == "url").map_or(n.span, |p| p.value.span);
        d.push(
            Diagnostic::error("pipeline::invalid-dsn", span, e.to_string())
                .with_label("invalid connection string")
                .with_help("write a postgresql:// URL or libpq key=value pairs"),
        );
    }
    Some(DatabaseDecl { name: name?, spec, protected, span: name_entry.map_or(n.span, |e| e.span) })
}

fn decode_stage_header<'a>(n: &'a Node, d: &mut Diagnostics) -> Option<RawStage<'a>> {
    let mut f = Fields::new(n, "`stage`");
    let name_entry = f.required_arg(0, "a name", d);
    let name = name_entry.and_then(|e| decode::static_text(e, d));
    let uses = match f.prop("uses", d) {
        Some(e) => decode::static_text(e, d).map(|u| (u, e.span)),
        None => {
            d.push(
                Diagnostic::error("pipeline::missing-property", n.name_span, "a stage needs `uses=TYPE`")
                    .with_label("no stage type")
                    .with_help("e.g. `stage \"build\" uses=\"build\" { … }`; `confiture run --help` lists the types"),
            );
            None
        }
    };
    let mut needs = Vec::new();
    if let Some(e) = f.prop("needs", d)
        && let Some(dep) = decode::static_text(e, d)
    {
        needs.push((dep, e.span));
    }
    for child in n.children.iter().filter(|c| c.name == "needs") {
        for e in &child.args {
            if let Some(dep) = decode::static_text(e, d) {
                needs.push((dep, e.span));
            }
        }
        if child.args.is_empty() {
            d.push(
                Diagnostic::error("pipeline::missing-argument", child.name_span, "`needs` lists at least one stage")
                    .with_label("empty")
                    .with_help("e.g. `needs \"lint\" \"build\"`"),
            );
        }
    }
    let continue_on_error = f.prop("continue-on-error", d).and_then(|e| decode::boolean(e, d)).unwrap_or(false);
    // Children and other properties belong to the stage type; it reports unknown ones itself.
    Some(RawStage {
        node: n,
        name: name?,
        name_span: name_entry.map_or(n.name_span, |e| e.span),
        uses,
        needs,
        continue_on_error,
    })
}

/// The stage node as its type sees it: without the name argument, engine properties and `needs`.
fn stage_body(n: &Node) -> Node {
    let mut body = n.clone();
    body.args.clear();
    body.props.retain(|p| !ENGINE_PROPS.contains(&p.key.as_str()));
    body.children.retain(|c| c.name != "needs");
    body
}

/// Check `{{ stages.X.outputs.Y }}` in a stage's settings: X exists, runs before, and has output Y.
fn check_stage_refs(n: &Node, me: usize, stages: &[RawStage<'_>], dag: &Dag, registry: &Registry, d: &mut Diagnostics) {
    let mut texts: Vec<&Text> = Vec::new();
    collect_texts(n, &mut texts);
    for t in texts {
        for r in &t.stage_refs {
            let Some(j) = stages.iter().position(|s| s.name == r.stage) else {
                let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
                d.push(
                    Diagnostic::error(
                        "template::unknown-stage",
                        t.span,
                        format!("`stages.{}` names no stage", r.stage),
                    )
                    .with_label("no such stage")
                    .with_help(decode::one_of("known stages", &names, &r.stage)),
                );
                continue;
            };
            if !dag.is_ancestor(j, me) {
                d.push(
                    Diagnostic::error(
                        "template::not-a-dependency",
                        t.span,
                        format!(
                            "stage `{}` uses outputs of `{}`, which may not have run yet",
                            stages[me].name, r.stage
                        ),
                    )
                    .with_label("output of a stage that is not a dependency")
                    .with_help(format!("add `needs=\"{}\"` to stage `{}`", r.stage, stages[me].name)),
                );
                continue;
            }
            let outputs = stages[j].uses.as_ref().and_then(|(u, _)| registry.get(u)).map(|t| t.outputs());
            match (&r.output, outputs) {
                (Some(out), Some(known)) if !known.contains(out) => d.push(
                    Diagnostic::error(
                        "template::unknown-output",
                        t.span,
                        format!("stage `{}` has no output `{out}`", r.stage),
                    )
                    .with_label("unknown output")
                    .with_help(decode::one_of(
                        "its outputs",
                        &known.iter().map(String::as_str).collect::<Vec<_>>(),
                        out,
                    )),
                ),
                _ => {}
            }
        }
    }
}

fn collect_texts<'a>(n: &'a Node, out: &mut Vec<&'a Text>) {
    for e in n.args.iter().chain(n.props.iter().map(|p| &p.value)) {
        if let Value::Text(t) = &e.value {
            out.push(t);
        }
    }
    for c in &n.children {
        collect_texts(c, out);
    }
}

impl Pipeline {
    /// Stage indices grouped into waves that can run concurrently.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        self.dag.waves().expect("a loaded pipeline has no cycles")
    }

    /// The declared databases as the runtime needs them.
    pub fn database_specs(&self) -> BTreeMap<String, DatabaseSpec> {
        self.databases.iter().map(|d| (d.name.clone(), d.spec.clone())).collect()
    }

    /// The databases of a run: those declared here, knowing which of them (and which project
    /// environments) are protected.
    pub fn runtime_databases(&self) -> crate::resources::Databases {
        let mut protected: Vec<crate::resources::Protected> = self
            .databases
            .iter()
            .filter(|d| d.protected)
            .map(|d| crate::resources::Protected {
                what: format!("database `{}`", d.name),
                declared: Some(d.name.clone()),
                spec: d.spec.clone(),
            })
            .collect();
        protected.extend(self.project.protected_environments().into_iter().filter_map(|e| {
            Some(crate::resources::Protected {
                what: format!("environment `{}`", e.name),
                declared: None,
                spec: e.database?,
            })
        }));
        crate::resources::Databases::new(self.database_specs()).with_protected(protected)
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("file", &self.source.name)
            .field("stages", &self.stages.iter().map(|s| (&s.name, &s.uses)).collect::<Vec<_>>())
            .field("databases", &self.databases)
            .field("hooks", &self.hooks)
            .finish()
    }
}
