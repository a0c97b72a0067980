//! Profiles: what to mask, declared once — `anonymize "NAME" { … }` in confiture.kdl (or in a
//! `.kdl` file of its own), or a Python Confiture profile in YAML, read unchanged.
//!
//! ```kdl
//! anonymize "staging" {
//!     key env="CONFITURE_ANON_KEY"       // or: key "{{ env.CONFITURE_ANON_KEY }}"; or deterministic #false
//!     key-scope "strategy"               // or "column": the same value masks differently per column
//!     batch-size 10000                   // rows per committed batch of an in-place run
//!     table "public.users" {
//!         column "email" "email"
//!         column "phone" "phone" keep-country=#true
//!         column "profile" "json" { path "$.email" "email"; path "$.address.street" "street-address" }
//!         column "status" "choice" { values "a" "b" "c" }
//!         column "nickname" "wasm" plugin="plugins/mask_email.wasm" { param "keep-domain" "true" }
//!         column "notes" "keep" reason="free text reviewed: no PII"
//!     }
//! }
//! ```
//!
//! Decoding checks only the shape; [`super::plan`] checks the rules against the strategies and
//! the database, all problems at once, before any data is touched.

use std::path::Path;

use confiture_engine::diag::{Diagnostic, Diagnostics, SourceFile};
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::{Node, Value};
use confiture_engine::project::Project;
use miette::SourceSpan;
use serde::Deserialize;

/// The default environment variable holding the key of a YAML profile.
pub const KEY_ENV: &str = "CONFITURE_ANON_KEY";

/// A profile, decoded but not yet checked against a database.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    /// The file it was read from, for code frames.
    pub source: Option<SourceFile>,
    pub key: KeySetting,
    pub key_per_column: bool,
    pub batch_rows: usize,
    pub tables: Vec<TableRules>,
    /// Problems that do not stop a run (a Python strategy that was weak, …).
    pub warnings: Vec<Diagnostic>,
}

/// Where the key comes from.
#[derive(Clone)]
pub enum KeySetting {
    /// Written in the profile (usually rendered from the environment).
    Text(String, SourceSpan),
    /// Read from an environment variable when the run starts.
    Env(String, SourceSpan),
    /// `deterministic #false`: a random key per run.
    Random,
    Missing,
}

impl std::fmt::Debug for KeySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySetting::Text(..) => f.write_str("Text(***)"),
            KeySetting::Env(var, _) => write!(f, "Env({var})"),
            KeySetting::Random => f.write_str("Random"),
            KeySetting::Missing => f.write_str("Missing"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TableRules {
    /// As written: `schema.table`, or `table` (the `public` schema).
    pub name: String,
    pub span: SourceSpan,
    pub columns: Vec<Rule>,
}

/// One column's rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub column: String,
    pub span: SourceSpan,
    pub strategy: String,
    pub strategy_span: SourceSpan,
    pub params: Vec<RawParam>,
    /// `json`: strategies for paths inside the document.
    pub paths: Vec<PathRule>,
    /// `wasm`: the plugin's own settings.
    pub plugin_params: Vec<(String, String)>,
    /// `allow-collisions=#true`: a strategy that is not `preserved` may rewrite a unique column.
    pub allow_collisions: bool,
    /// `key-scope="column"` on the rule.
    pub key_per_column: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct PathRule {
    pub path: String,
    pub span: SourceSpan,
    pub strategy: String,
    pub strategy_span: SourceSpan,
    pub params: Vec<RawParam>,
}

/// A parameter as written.
#[derive(Clone, Debug)]
pub struct RawParam {
    pub name: String,
    pub value: RawValue,
    pub span: SourceSpan,
}

#[derive(Clone, Debug)]
pub enum RawValue {
    One(String),
    List(Vec<String>),
}

/// A profile's problems as a stage's error (exit 5), each attached as a diagnostic; `outcome`
/// says what was spared ("nothing was changed").
pub fn problems(d: Diagnostics, outcome: &str) -> confiture_engine::stage::StageError {
    crate::problems(d, "the profile", outcome)
}

/// Find a profile by name (confiture.kdl's `anonymize "NAME"`) or path (a `.kdl` file holding
/// `anonymize` blocks, or a Python Confiture `.yaml`).
pub fn load(project: &Project, reference: &str) -> Result<Profile, Diagnostics> {
    if let Some(node) = project.named_block("anonymize", reference) {
        let mut d = Diagnostics::default();
        let profile = decode_kdl(node, project.source.clone(), &mut d);
        if let Some(source) = &project.source {
            d = d.finish(source);
        }
        return match profile {
            Some(p) if !d.has_errors() => Ok(p),
            _ => Err(d),
        };
    }
    let path = project.resolve(Path::new(reference));
    let looks_like_path = reference.contains('/') || [".kdl", ".yaml", ".yml"].iter().any(|e| reference.ends_with(e));
    if !looks_like_path || !path.is_file() {
        let names = project.named_blocks("anonymize");
        let help = if names.is_empty() {
            "declare one in confiture.kdl: `anonymize \"staging\" { key env=\"CONFITURE_ANON_KEY\"; table \"users\" { column \"email\" \"email\" } }`, or pass a profile file".to_string()
        } else {
            decode::one_of("profiles in confiture.kdl", &names, reference)
        };
        return Err(Diagnostic::error(
            "anonymize::unknown-profile",
            (0..0).into(),
            format!("no anonymization profile `{reference}` (neither in confiture.kdl nor a file)"),
        )
        .with_help(help)
        .into());
    }
    load_file(&path)
}

/// A profile file: `.kdl` (its first `anonymize` block) or YAML.
pub fn load_file(path: &Path) -> Result<Profile, Diagnostics> {
    let shown = confiture_engine::project::display_path(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "anonymize::unreadable",
            (0..0).into(),
            format!("cannot read {shown}: {e}"),
        ))
    })?;
    let source = SourceFile::new(shown.clone(), text.clone());
    if path.extension().is_some_and(|e| e == "kdl") {
        let mut d = Diagnostics::default();
        let templates = confiture_engine::template::Templates::from_process_env();
        let nodes = confiture_engine::kdl::node::parse(&source, &templates, &mut d).unwrap_or_default();
        let Some(node) = nodes.iter().find(|n| n.name == "anonymize") else {
            d.push(Diagnostic::error(
                "anonymize::unknown-profile",
                (0..0).into(),
                format!("{shown} has no `anonymize \"NAME\" {{ … }}` block"),
            ));
            return Err(d.finish(&source));
        };
        let profile = decode_kdl(node, Some(source.clone()), &mut d);
        let d = d.finish(&source);
        return match profile {
            Some(p) if !d.has_errors() => Ok(p),
            _ => Err(d),
        };
    }
    decode_yaml(&text, &source)
}

fn decode_kdl(node: &Node, source: Option<SourceFile>, d: &mut Diagnostics) -> Option<Profile> {
    let mut f = Fields::new(node, "`anonymize`");
    let name = f.required_arg(0, "the profile's name", d).and_then(|e| decode::static_text(e, d));
    let deterministic = f.setting_bool("deterministic", d);
    let key = match (f.child("key", d), deterministic) {
        (Some(k), Some(false)) => {
            d.push(
                Diagnostic::error(
                    "anonymize::conflicting-settings",
                    k.name_span,
                    "a profile has a `key` or `deterministic #false`, not both",
                )
                .with_label("key given")
                .with_help("remove one: `deterministic #false` masks with a random key per run"),
            );
            KeySetting::Missing
        }
        (Some(k), _) => decode_key(k, d),
        (None, Some(false)) => KeySetting::Random,
        (None, _) => KeySetting::Missing,
    };
    let key_per_column = f.setting("key-scope", d).and_then(|e| key_scope(e, d)).unwrap_or(false);
    let batch_rows = f
        .setting("batch-size", d)
        .and_then(|e| decode::integer(e, d))
        .map_or(10_000, |n| n.clamp(1, 1_000_000) as usize);
    let mut tables = Vec::new();
    for t in f.children("table") {
        let mut tf = Fields::new(t, "`table`");
        let Some(entry) = tf.required_arg(0, "the table's name (`schema.table`)", d) else { continue };
        let Some(table) = decode::static_text(entry, d) else { continue };
        let mut columns = Vec::new();
        for c in tf.children("column") {
            if let Some(rule) = decode_rule(c, d) {
                columns.push(rule);
            }
        }
        tf.finish(d);
        tables.push(TableRules { name: table, span: entry.span, columns });
    }
    f.finish(d);
    Some(Profile { name: name?, source, key, key_per_column, batch_rows, tables, warnings: Vec::new() })
}

fn decode_key(k: &Node, d: &mut Diagnostics) -> KeySetting {
    let mut f = Fields::new(k, "`key`");
    let arg = f.arg(0);
    let env = f.prop("env", d);
    f.finish(d);
    match (arg, env) {
        (Some(a), None) => match decode::text(a, d).and_then(|t| t.rendered.clone()) {
            Some(s) => KeySetting::Text(s, a.span),
            None => KeySetting::Missing,
        },
        (None, Some(e)) => match decode::static_text(e, d) {
            Some(var) => KeySetting::Env(var, e.span),
            None => KeySetting::Missing,
        },
        _ => {
            d.push(
                Diagnostic::error("anonymize::invalid-key", k.name_span, "`key` takes the key or `env=\"VARIABLE\"`")
                    .with_label("key")
                    .with_help("e.g. `key env=\"CONFITURE_ANON_KEY\"` (the variable is read when the run starts)"),
            );
            KeySetting::Missing
        }
    }
}

fn key_scope(e: &confiture_engine::kdl::node::Entry, d: &mut Diagnostics) -> Option<bool> {
    match decode::static_text(e, d)?.as_str() {
        "strategy" => Some(false),
        "column" => Some(true),
        other => {
            d.push(
                Diagnostic::error("anonymize::invalid-key-scope", e.span, format!("`{other}` is not a key scope"))
                    .with_label("key scope")
                    .with_help(
                        "`strategy` (default: the same value masks alike in every column, so joins match) or `column`",
                    ),
            );
            None
        }
    }
}

fn entry_text(e: &confiture_engine::kdl::node::Entry, d: &mut Diagnostics) -> Option<String> {
    match &e.value {
        Value::Text(_) => decode::static_text(e, d),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => {
            d.push(
                Diagnostic::error("anonymize::invalid-param", e.span, "a parameter cannot be #null")
                    .with_label("#null")
                    .with_help("give a value, or leave the parameter out for its default"),
            );
            None
        }
    }
}

/// `column "NAME" "STRATEGY" param=value… { path …; values …; param "k" "v" }`.
fn decode_rule(c: &Node, d: &mut Diagnostics) -> Option<Rule> {
    let column = c.args.first();
    let strategy = c.args.get(1);
    let (Some(column), Some(strategy)) = (column, strategy) else {
        d.push(
            Diagnostic::error(
                "anonymize::invalid-rule",
                c.name_span,
                "a column rule is `column \"NAME\" \"STRATEGY\"`",
            )
            .with_label("incomplete rule")
            .with_help("e.g. `column \"email\" \"email\"`; `confiture anonymize --list-strategies` lists them"),
        );
        return None;
    };
    for extra in c.args.iter().skip(2) {
        d.push(
            Diagnostic::error("anonymize::invalid-rule", extra.span, "a column rule has two arguments")
                .with_label("extra argument")
                .with_help("parameters are properties: `column \"phone\" \"phone\" keep-country=#true`"),
        );
    }
    let mut rule = Rule {
        column: decode::static_text(column, d)?,
        span: column.span,
        strategy: decode::static_text(strategy, d)?,
        strategy_span: strategy.span,
        params: Vec::new(),
        paths: Vec::new(),
        plugin_params: Vec::new(),
        allow_collisions: false,
        key_per_column: None,
    };
    for p in &c.props {
        match p.key.as_str() {
            "allow-collisions" => rule.allow_collisions = decode::boolean(&p.value, d).unwrap_or(false),
            "key-scope" => rule.key_per_column = key_scope(&p.value, d),
            _ => {
                if let Some(v) = entry_text(&p.value, d) {
                    rule.params.push(RawParam { name: p.key.clone(), value: RawValue::One(v), span: p.value.span });
                }
            }
        }
    }
    for child in &c.children {
        match child.name.as_str() {
            "path" => {
                let (Some(path), Some(strategy)) = (child.args.first(), child.args.get(1)) else {
                    d.push(
                        Diagnostic::error(
                            "anonymize::invalid-rule",
                            child.name_span,
                            "a path rule is `path \"$.a.b\" \"STRATEGY\"`",
                        )
                        .with_label("incomplete path rule")
                        .with_help("e.g. `path \"$.address.street\" \"street-address\"`"),
                    );
                    continue;
                };
                let params = child
                    .props
                    .iter()
                    .filter_map(|p| {
                        Some(RawParam {
                            name: p.key.clone(),
                            value: RawValue::One(entry_text(&p.value, d)?),
                            span: p.value.span,
                        })
                    })
                    .collect();
                if let (Some(p), Some(s)) = (decode::static_text(path, d), decode::static_text(strategy, d)) {
                    rule.paths.push(PathRule {
                        path: p,
                        span: path.span,
                        strategy: s,
                        strategy_span: strategy.span,
                        params,
                    });
                }
            }
            "param" => match (child.args.first(), child.args.get(1)) {
                (Some(k), Some(v)) => {
                    if let (Some(k), Some(v)) = (decode::static_text(k, d), entry_text(v, d)) {
                        rule.plugin_params.push((k, v));
                    }
                }
                _ => d.push(
                    Diagnostic::error(
                        "anonymize::invalid-param",
                        child.name_span,
                        "`param` is `param \"NAME\" \"VALUE\"`",
                    )
                    .with_label("incomplete param")
                    .with_help("a WASM strategy's own settings, passed to its `configure`"),
                ),
            },
            // A list parameter written as a child: `values "a" "b"`.
            name => {
                let values: Vec<String> = child.args.iter().filter_map(|a| entry_text(a, d)).collect();
                rule.params.push(RawParam {
                    name: name.to_string(),
                    value: RawValue::List(values),
                    span: child.name_span,
                });
            }
        }
    }
    Some(rule)
}

// ---- Python Confiture profiles ----

#[derive(Deserialize)]
struct YamlProfile {
    name: Option<String>,
    #[serde(default)]
    global_seed: Option<serde_norway::Value>,
    #[serde(default)]
    strategies: std::collections::BTreeMap<String, YamlStrategy>,
    tables: std::collections::BTreeMap<String, YamlTable>,
}

#[derive(Deserialize)]
struct YamlStrategy {
    #[serde(rename = "type", alias = "strategy")]
    kind: String,
    #[serde(default)]
    config: std::collections::BTreeMap<String, serde_norway::Value>,
}

#[derive(Deserialize)]
struct YamlTable {
    #[serde(default)]
    rules: Vec<YamlRule>,
}

#[derive(Deserialize)]
struct YamlRule {
    column: String,
    strategy: String,
    #[serde(default)]
    seed: Option<serde_norway::Value>,
}

/// A Python Confiture strategy name → ours, with a warning when the old one was weak.
fn python_strategy(name: &str) -> Option<(&'static str, Option<&'static str>)> {
    let weak_hash =
        "the Python Confiture's hash was unsalted (reversible with a dictionary of likely values); it is now keyed";
    Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
        "email" | "email_mask" => ("email", None),
        "phone" | "phone_number" | "phone_mask" => ("phone", None),
        "name" | "full_name" | "person_name" | "name_mask" => ("person-name", None),
        "first_name" => ("first-name", None),
        "last_name" => ("last-name", None),
        "redact" | "mask" | "text_redaction" => ("redact", None),
        "hash" | "md5" | "sha256" | "sha1" | "deterministic_hash" => ("hash", Some(weak_hash)),
        "keep" | "preserve" | "none" | "passthrough" => ("keep", None),
        "null" | "nullify" => ("null", None),
        "date" | "date_shift" | "date_mask" | "birth_date" => ("date-shift", None),
        "ip" | "ip_address" => ("ip", None),
        "credit_card" | "card" => ("credit-card", None),
        "address" | "street" | "street_address" => ("street-address", None),
        "city" => ("city", None),
        "company" => ("company", None),
        "text" | "lorem" => ("lorem", None),
        "uuid" => ("uuid", None),
        "iban" => ("iban", None),
        _ => return None,
    })
}

fn yaml_scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Sequence(items) => {
            Some(items.iter().filter_map(yaml_scalar).collect::<Vec<_>>().join(","))
        }
        _ => None,
    }
}

fn decode_yaml(text: &str, source: &SourceFile) -> Result<Profile, Diagnostics> {
    let at = |line: Option<usize>| -> SourceSpan {
        let Some(line) = line else { return (0..0).into() };
        let start: usize = text.lines().take(line.saturating_sub(1)).map(|l| l.len() + 1).sum();
        (start..start + text.lines().nth(line.saturating_sub(1)).map_or(0, str::len)).into()
    };
    // Which of the two shapes: the profile (with `tables:`) or the sync form `{table: [rules]}`.
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error("anonymize::invalid-yaml", at(e.location().map(|l| l.line())), format!("not YAML: {e}"))
                .with_source(source),
        )
    })?;
    let profile: YamlProfile = if value.get("tables").is_some() {
        serde_norway::from_value(value).map_err(|e| {
            Diagnostics::from(
                Diagnostic::error(
                    "anonymize::invalid-yaml",
                    (0..0).into(),
                    format!("not a Python Confiture profile: {e}"),
                )
                .with_source(source)
                .with_help(
                    "expected `name`, `global_seed`, `strategies` and `tables: {TABLE: {rules: [{column, strategy}]}}`",
                ),
            )
        })?
    } else {
        let sync: std::collections::BTreeMap<String, Vec<YamlRule>> = serde_norway::from_value(value).map_err(|e| {
            Diagnostics::from(
                Diagnostic::error(
                    "anonymize::invalid-yaml",
                    (0..0).into(),
                    format!("not a Python Confiture profile: {e}"),
                )
                .with_source(source)
                .with_help("expected a profile (`tables: …`) or the sync form `{TABLE: [{column, strategy, seed}]}`"),
            )
        })?;
        YamlProfile {
            name: None,
            global_seed: None,
            strategies: Default::default(),
            tables: sync.into_iter().map(|(t, rules)| (t, YamlTable { rules })).collect(),
        }
    };
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    let mut d = Diagnostics::default();
    let mut warnings = Vec::new();
    if profile.global_seed.is_some() {
        warnings.push(
            Diagnostic::warning(
                "anonymize::python-seed",
                at(line_of("global_seed")),
                format!("`global_seed` is not a secret and is ignored: the key comes from ${KEY_ENV}"),
            )
            .with_source(source),
        );
    }
    let mut tables = Vec::new();
    for (table, rules) in &profile.tables {
        let mut columns = Vec::new();
        for r in &rules.rules {
            let span = at(line_of(&format!("column: {}", r.column)).or_else(|| line_of(&r.column)));
            let (kind, config) = match profile.strategies.get(&r.strategy) {
                Some(s) => (s.kind.as_str(), Some(&s.config)),
                None => (r.strategy.as_str(), None),
            };
            let Some((ours, weak)) = python_strategy(kind) else {
                d.push(
                    Diagnostic::error(
                        "anonymize::unknown-strategy",
                        span,
                        format!("{table}.{}: no strategy matches the Python strategy `{kind}`", r.column),
                    )
                    .with_help("write the profile in KDL with one of `confiture anonymize --list-strategies`"),
                );
                continue;
            };
            if let Some(w) = weak {
                warnings.push(
                    Diagnostic::warning("anonymize::python-weak", span, format!("{table}.{}: {w}", r.column))
                        .with_source(source),
                );
            }
            if r.seed.is_some() {
                warnings.push(
                    Diagnostic::warning(
                        "anonymize::python-seed",
                        span,
                        format!("{table}.{}: a per-column `seed` is not a secret and is ignored; columns are keyed by ${KEY_ENV}", r.column),
                    )
                    .with_source(source),
                );
            }
            let mut params = Vec::new();
            if ours == "keep" {
                params.push(RawParam {
                    name: "reason".into(),
                    value: RawValue::One(format!("kept by the Python Confiture profile ({kind})")),
                    span,
                });
            }
            // Config keys that name one of our parameters (`keep_domain` → `keep-domain`) carry over.
            if let (Some(config), Some(strategy)) = (config, super::strategies::find(ours)) {
                for (k, v) in config {
                    let k = k.replace('_', "-");
                    if strategy.meta().param(&k).is_some()
                        && let Some(v) = yaml_scalar(v)
                    {
                        params.push(RawParam { name: k, value: RawValue::One(v), span });
                    }
                }
            }
            columns.push(Rule {
                column: r.column.clone(),
                span,
                strategy: ours.to_string(),
                strategy_span: span,
                params,
                paths: Vec::new(),
                plugin_params: Vec::new(),
                allow_collisions: false,
                key_per_column: None,
            });
        }
        tables.push(TableRules { name: table.clone(), span: at(line_of(&format!("{table}:"))), columns });
    }
    if d.has_errors() {
        return Err(d.finish(source));
    }
    Ok(Profile {
        name: profile.name.unwrap_or_else(|| source.name.clone()),
        source: Some(source.clone()),
        key: KeySetting::Env(KEY_ENV.into(), (0..0).into()),
        key_per_column: false,
        batch_rows: 10_000,
        tables,
        warnings,
    })
}
